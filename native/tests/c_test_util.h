// Shared helpers for the native tests that call the C ABI, as a C caller would.
#pragma once

#include "ddim.h"

namespace ddim::testing {

// tiny_config() (test_util.h) as a C caller writes it.
inline ddim_config tiny_c_config() {
  ddim_config config;
  ddim_config_init(&config);
  config.channels = 1;
  config.image_size = 16;
  config.num_widths = 2;
  config.widths[0] = 8;
  config.widths[1] = 16;
  config.block_depth = 1;
  config.embedding_dim = 8;
  return config;
}

}  // namespace ddim::testing
