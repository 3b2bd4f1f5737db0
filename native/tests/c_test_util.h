// Shared helpers for the native tests that call the C ABI, as a C caller would.
#pragma once

#include <cmath>
#include <vector>

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

// A few optimisation steps (EMA off) on smooth 16x16 one-channel images, so that a fresh model's
// zero-initialised output layer is not zero any more: tests that compare outputs then compare
// something. Returns the last status.
inline ddim_status train_a_little(ddim_model* model, int steps = 3) {
  ddim_train_params params;
  ddim_train_params_init(&params);
  params.ema_decay = 0;
  params.learning_rate = 1e-2;
  ddim_status status = ddim_train_begin(model, &params);
  std::vector<float> pixels(4 * 16 * 16);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = 0.5f + 0.4f * static_cast<float>(std::sin(0.37 * i));
  for (int step = 0; step < steps && status == DDIM_OK; ++step) {
    float loss = 0;
    status = ddim_train_step(model, pixels.data(), 4, static_cast<int64_t>(pixels.size()), &loss);
  }
  return status;
}

}  // namespace ddim::testing
