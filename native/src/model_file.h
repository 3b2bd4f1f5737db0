// Model files: one safetensors file (https://github.com/huggingface/safetensors) holding
//   net.<parameter or buffer>   the raw weights (BatchNorm running statistics included)
//   ema.<parameter or buffer>   the EMA weights, when the model has them
//   normalizer.mean, normalizer.std   the per-channel normaliser, [C]
//   optim.<parameter>.exp_avg, optim.<parameter>.exp_avg_sq   AdamW's state (checkpoints only)
// and in __metadata__ (all strings, as safetensors requires):
//   format = "ddim4j", format_version = "1", config = the ModelConfig as JSON,
//   tensors_crc32 = CRC-32 of the tensors in name order, each with its name, dtype and shape, so
//   it holds whatever order a writer lays them out in (lower-case hex; see model_file.cpp),
//   data_crc32 = CRC-32 of the data section in file order (checked by builds that predate
//   tensors_crc32, and by this one for files that lack tensors_crc32), library_version,
//   and in checkpoints: training = {"config": TrainConfig, "steps": N}, user_state = the caller's
//   opaque string (the Java trainer keeps its position in the data there).
// Tensors are stored as F32 (BatchNorm's counter as I64), or F16 when exported so; F16 and BF16
// are accepted on load.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "model.h"
#include "training.h"

namespace ddim {

constexpr int kModelFormatVersion = 1;

struct SaveOptions {
  bool ema_as_weights = false;     // export: the EMA weights (if any) become the only weights
  bool half_precision = false;     // export: store floating-point weights as F16
  const Trainer* trainer = nullptr;  // checkpoint: also store the optimizer state and step count
  std::string user_state;          // checkpoint: an opaque string stored beside it
};

// What a checkpoint holds beyond the model.
struct CheckpointState {
  TrainConfig config;
  int64_t steps = 0;
  std::map<std::string, torch::Tensor> optimizer;
  std::string user_state;
};

// Writes atomically: a temporary file in the same directory, flushed, then renamed over `path`.
void save_model(Model& model, const std::string& path, const SaveOptions& options = {});

// Throws ddim::Error: Status::Io when the file can't be read, Status::Format when it is
// truncated, corrupt, of another version or inconsistent with its config. When the file is a
// checkpoint and `checkpoint` is not null, its training state is returned there.
std::unique_ptr<Model> load_model(const std::string& path, torch::Device device,
                                  std::optional<CheckpointState>* checkpoint = nullptr);

}  // namespace ddim
