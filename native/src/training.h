// Training: the reference's procedure, one native call per batch.
//
// For each image: t ~ U(0, 1); rates from the model's schedule; noisy = signal * x + noise * eps
// with eps ~ N(0, I); the network predicts the target (noise or image); MAE (default) or MSE
// against it; backward; AdamW; then an EMA of all weights and BatchNorm statistics with a warm-up,
//   decay_n = min(decay, (1 + n) / (10 + n))    (n = optimizer steps taken before this update)
// so that short runs already sample well (a plain 0.999 average keeps 13% of the random initial
// weights after 2,000 steps).
//
// The randomness of step n is drawn on the CPU from a generator seeded by (seed, n), so a run's
// random state is fully described by its seed and step count: resuming is bit-exact.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model.h"

namespace ddim {

enum class Loss : int32_t { Mae = 0, Mse = 1 };

struct TrainConfig {
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  double ema_decay = 0.999;  // 0 turns the EMA off
  Loss loss = Loss::Mae;
  uint64_t seed = 0;

  void validate() const;
  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& json);
};

struct Losses {
  double noise;
  double image;
};

class Trainer {
 public:
  // Starts training `model`: a fresh AdamW; the EMA network (if ema_decay > 0) starts as a copy
  // of the weights unless the model already has one.
  Trainer(Model& model, const TrainConfig& config);

  const TrainConfig& config() const { return config_; }
  // Hyper-parameters may change between steps (e.g. an LR schedule); state is kept.
  void set_config(const TrainConfig& config);

  // One optimisation step on a batch of pixels in [0, 1], [B, C, S, S] (any device). Returns the loss.
  double step(const torch::Tensor& pixels);

  int64_t steps() const { return steps_; }

  // The EMA decay used by update number n (0-based).
  static double ema_decay_at(double decay, int64_t n);

  // Optimizer state, for checkpoints: per parameter name, AdamW's exp_avg and exp_avg_sq.
  std::map<std::string, torch::Tensor> optimizer_state() const;
  void restore(int64_t steps, const std::map<std::string, torch::Tensor>& optimizer_state);

 private:
  void update_ema();

  Model& model_;
  TrainConfig config_;
  torch::optim::AdamW optimizer_;
  int64_t steps_ = 0;
};

// Validation losses of `network` on pixels in [0, 1]: MAE of the predicted noise and of the
// predicted image, at times and noise drawn from `seed` (the same seed gives the same draw).
Losses evaluate(Model& model, UNet& network, const torch::Tensor& pixels, uint64_t seed);

}  // namespace ddim
