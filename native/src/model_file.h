// Model files: one safetensors file (https://github.com/huggingface/safetensors) holding
//   net.<parameter or buffer>   the raw weights (BatchNorm running statistics included)
//   ema.<parameter or buffer>   the EMA weights, when the model has them
//   normalizer.mean, normalizer.std   the per-channel normaliser, [C]
// and in __metadata__ (all strings, as safetensors requires):
//   format = "ddim4j", format_version = "1", config = the ModelConfig as JSON,
//   data_crc32 = CRC-32 of the data section (lower-case hex), library_version.
// Tensors are stored as F32 (BatchNorm's counter as I64); F16 and BF16 are accepted on load.
#pragma once

#include <memory>
#include <string>

#include <torch/torch.h>

#include "model.h"

namespace ddim {

constexpr int kModelFormatVersion = 1;

// Writes atomically: a temporary file in the same directory, flushed, then renamed over `path`.
void save_model(Model& model, const std::string& path);

// Throws ddim::Error: DDIM_ERR_IO when the file can't be read, DDIM_ERR_FORMAT when it is
// truncated, corrupt, of another version or inconsistent with its config.
std::unique_ptr<Model> load_model(const std::string& path, torch::Device device);

}  // namespace ddim
