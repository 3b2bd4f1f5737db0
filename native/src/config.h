// ModelConfig: the architecture and diffusion process of a model, its validation and its JSON form
// (stored in a model file's metadata).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ddim.h"

namespace ddim {

enum class ScheduleKind { Cosine = DDIM_SCHEDULE_COSINE, Linear = DDIM_SCHEDULE_LINEAR };
enum class Target { Noise = DDIM_TARGET_NOISE, Image = DDIM_TARGET_IMAGE };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Cosine;
  double min_signal = 0.02;
  double max_signal = 0.95;
};

struct ModelConfig {
  int64_t channels = 3;
  int64_t image_size = 64;
  std::vector<int64_t> widths = {32, 64, 96, 128};
  int64_t block_depth = 2;
  int64_t embedding_dim = 32;
  ScheduleConfig schedule;
  Target target = Target::Noise;

  // Throws ddim::Error(DDIM_ERR_INVALID_ARGUMENT) naming the first bad field.
  void validate() const;

  nlohmann::json to_json() const;
  // Parses and validates; a missing or mistyped field is DDIM_ERR_FORMAT.
  static ModelConfig from_json(const nlohmann::json& json);

  ddim_config to_c() const;
  // Validates; NULL or a bad field is an error.
  static ModelConfig from_c(const ddim_config* config);
};

}  // namespace ddim
