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

#include "distributed.h"
#include "model.h"

namespace ddim {

enum class Loss : int32_t { Mae = 0, Mse = 1 };

struct TrainConfig {
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  double ema_decay = 0.999;  // 0 turns the EMA off
  Loss loss = Loss::Mae;
  uint64_t seed = 0;
  // Micro-batches per step: step() splits its batch into this many equal parts and accumulates
  // their gradients before one optimizer step (as N ranks would, see join()).
  int64_t accumulate = 1;
  // Class-conditional models: the probability that an image's label is replaced by "no class", so
  // that the network also learns the unconditional prediction classifier-free guidance needs.
  double label_dropout = 0.1;

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

  // One optimisation step on a batch of pixels in [0, 1], [B, C, S, S] (any device), B a multiple
  // of `accumulate`, and for class-conditional models their labels ([B] integers, each 0 .. classes,
  // classes meaning "no class"; unconditional models take none). Each label becomes "no class"
  // with probability label_dropout, drawn with the step's t and noise. Returns the loss (the mean
  // over all ranks' micro-batches).
  //
  // Micro-batch k of rank r is micro-batch j = r * accumulate + k of the step; its draws of t and
  // noise come from (seed, step, j), micro-batch 0 drawing exactly as a one-batch step does. So N
  // ranks with batches of B/N and one process accumulating N micro-batches of B/N compute the same
  // step, to float rounding. BatchNorm normalises each micro-batch by its own statistics (as DDP
  // without SyncBatchNorm); its running statistics take one update per step, from the mean of the
  // micro-batches' updates, so they too agree between the two and across ranks.
  double step(const torch::Tensor& pixels, const torch::Tensor& labels = {});

  // Trains with `group` from now on: every rank gets rank 0's weights, BatchNorm statistics, EMA,
  // normaliser, optimizer state and step count (after checking that all ranks have the same model
  // and training settings); each step then averages gradients and BatchNorm statistics over the ranks.
  void join(std::unique_ptr<ProcessGroup> group);
  const ProcessGroup* group() const { return group_.get(); }
  // True on every rank when `flag` is true on any (e.g. "stop after this step"); `flag` when alone.
  bool any_rank(bool flag);

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
  std::unique_ptr<ProcessGroup> group_;
};

// Validation losses of `network` on pixels in [0, 1]: MAE of the predicted noise and of the
// predicted image, at times and noise drawn from `seed` (the same seed gives the same draw).
// Class-conditional models take the images' labels (as Trainer::step; none: "no class" for all)
// and are evaluated on the conditional prediction.
Losses evaluate(Model& model, UNet& network, const torch::Tensor& pixels, uint64_t seed,
                const torch::Tensor& labels = {});

}  // namespace ddim
