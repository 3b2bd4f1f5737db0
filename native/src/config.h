// ModelConfig: the architecture and diffusion process of a model, its validation and its JSON form
// (stored in a model file's metadata).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ddim {

enum class ScheduleKind : int32_t { Cosine = 0, Linear = 1 };
enum class Target : int32_t { Noise = 0, Image = 1 };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Cosine;
  double min_signal = 0.02;
  double max_signal = 0.95;

  // Throws ddim::Error(Status::InvalidArgument) naming the bad field.
  void validate() const;
};

struct ModelConfig {
  int64_t channels = 3;
  int64_t image_size = 64;
  std::vector<int64_t> widths = {32, 64, 96, 128};
  int64_t block_depth = 2;
  int64_t embedding_dim = 32;
  ScheduleConfig schedule;
  Target target = Target::Noise;

  // Throws ddim::Error(Status::InvalidArgument) naming the first bad field.
  void validate() const;

  nlohmann::json to_json() const;
  // Parses and validates; a missing or mistyped field is Status::Format.
  static ModelConfig from_json(const nlohmann::json& json);
};

}  // namespace ddim
