// Model: a configured U-Net on a device, its optional EMA copy, and the per-channel normaliser.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <torch/torch.h>

#include "config.h"
#include "fused_unet.h"
#include "unet.h"

namespace ddim {

struct Prediction {
  torch::Tensor noise;
  torch::Tensor image;
};

// A network as predict() runs it: noisy images [B, C, S, S] (float32), their noise variances [B]
// and class labels ([B] int64, or undefined: no class) -> the network's output [B, C, S, S]
// (float32), whatever arithmetic it uses inside.
using NetworkFn = std::function<torch::Tensor(const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                                              const torch::Tensor& labels)>;

// What a class-conditional prediction is conditioned on. Default: nothing (unconditional models,
// or "no class" for all images of a class model).
struct Conditioning {
  torch::Tensor labels;   // [B] int64 on the model's device, each 0 .. no_class; undefined: no class
  double guidance = 1;    // classifier-free guidance weight: 1 plain conditional, 0 unconditional
  int64_t no_class = 0;   // the "no class" label: the model's class count
  // Whether predict() evaluates both halves: only with labels and a weight other than 0 and 1 (at 1
  // the unconditional half is multiplied by zero, at 0 the conditional one, so it is skipped).
  bool guided() const { return labels.defined() && guidance != 1 && guidance != 0; }
  // The labels the network sees without guidance: none ("no class") at weight 0.
  torch::Tensor unguided_labels() const { return guidance == 0 ? torch::Tensor() : labels; }
};

// `network` as a NetworkFn: inputs converted to its dtype (bfloat16 for a reduced-precision copy),
// the output back to float32.
NetworkFn network_fn(UNet network);

class Model {
 public:
  // Validates `config` first. Weights come from a CPU generator seeded with `seed`, then move to `device`.
  Model(const ModelConfig& config, torch::Device device, uint64_t seed);

  const ModelConfig& config() const { return config_; }
  // Names the classes (empty: none); validated as ModelConfig::class_names.
  void set_class_names(const std::vector<std::string>& names);
  torch::Device device() const { return device_; }
  UNet& net() { return net_; }
  std::optional<UNet>& ema() { return ema_; }
  // The EMA network when asked for and present, else the raw one.
  UNet& network(bool use_ema) { return use_ema && ema_ ? *ema_ : net_; }

  int64_t parameter_count() const;

  // Normaliser: the network sees (pixels - mean) / std, per channel. Tensors of shape [C], on device().
  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& std() const { return std_; }
  void set_normalizer(const torch::Tensor& mean, const torch::Tensor& std);
  torch::Tensor normalize(const torch::Tensor& pixels) const;
  torch::Tensor denormalize(const torch::Tensor& x) const;

  // Runs `network` on noisy images at the given rates ([B, 1, 1, 1]) and returns both the
  // predicted noise and the predicted image, whichever of the two the model's target is. With
  // micro_batch > 0 the network sees batches of exactly that many images (see model.cpp), so each
  // image's result is independent of the batch; 0 runs the whole batch at once (training).
  // With conditioning.guided(), the network sees each micro-batch twice in one batch (with its labels
  // and with "no class") and its output is uncond + guidance * (cond - uncond).
  Prediction predict(const NetworkFn& network, const torch::Tensor& noisy, const torch::Tensor& signal_rates,
                     const torch::Tensor& noise_rates, int64_t micro_batch = 0,
                     const Conditioning& conditioning = {}) const;
  Prediction predict(UNet& network, const torch::Tensor& noisy, const torch::Tensor& signal_rates,
                     const torch::Tensor& noise_rates, int64_t micro_batch = 0,
                     const Conditioning& conditioning = {}) const {
    return predict(network_fn(network), noisy, signal_rates, noise_rates, micro_batch, conditioning);
  }

  // `network` through the fused inference plan (fused_unet.h) with its current weights. Plans are
  // built on first use for each batch size the network sees (the micro-batch, twice it with
  // guidance) and kept with the model for later calls (at most kFusedPlansKept); a plan copies the
  // weights again whenever they changed since (FusedUNet::load_weights_if_changed).
  NetworkFn fused_network(UNet& network, FusedOptions options = {});
  static constexpr size_t kFusedPlansKept = 2;
  // The batch sizes of the fused plans kept, most recently used first (for tests).
  std::vector<int64_t> fused_plan_batches() const;

  // How many network evaluations predict() has run on this model (instrumentation for tests and benchmarks).
  int64_t evaluations() const { return evaluations_; }

  // A fresh network of this model's config on this model's device (for loading or an EMA copy).
  UNet make_network() const;

  // A copy of `network` with its weights and buffers converted to `dtype` (e.g. bfloat16 for faster sampling).
  UNet converted_copy(UNet& network, torch::ScalarType dtype) const;

 private:
  ModelConfig config_;
  torch::Device device_;
  UNet net_{nullptr};
  std::optional<UNet> ema_;
  torch::Tensor mean_, std_;
  mutable int64_t evaluations_ = 0;
  std::vector<std::shared_ptr<FusedUNet>> fused_;  // most recently used first
};

}  // namespace ddim
