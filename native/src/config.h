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
  // Class-conditional models (classifier-free guidance): 0 = unconditional. A model of N classes
  // learns an embedding of N + 1 rows, the last one "no class" (see unet.h).
  int64_t classes = 0;
  // Empty, or one name per class (unique, 1..kMaxClassNameBytes bytes, no control characters), so
  // that callers can name a class ("sneaker") instead of numbering it.
  std::vector<std::string> class_names;

  // The name of class `index` (0 <= index < classes): its name when the model has names, else the index.
  std::string class_name(int64_t index) const;

  // Throws ddim::Error(Status::InvalidArgument) naming the first bad field.
  void validate() const;

  nlohmann::json to_json() const;
  // Parses and validates; a missing or mistyped field is Status::Format.
  static ModelConfig from_json(const nlohmann::json& json);
};

}  // namespace ddim
