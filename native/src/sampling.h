// Sampling: initial noise and the reverse-diffusion loop that drives a sampler.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "model.h"
#include "samplers/sampler.h"

namespace ddim {

struct SampleRequest {
  int64_t count = 16;
  int64_t steps = 20;
  uint64_t seed = 42;
  bool use_ema = true;
  SamplerKind sampler = SamplerKind::Ddim;
  double eta = 0;
};

// The seed of image `index` in a request seeded with `seed` (SplitMix64 of both), so that image i
// depends only on (seed, i), never on the batch it was drawn in.
uint64_t image_seed(uint64_t seed, int64_t index);

// [count, C, S, S] standard normal noise; image i drawn on the CPU from a generator seeded with
// image_seed(seed, first + i), then moved to `device`: the same noise on every device.
torch::Tensor initial_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count,
                            torch::Device device);

// [count, C, S, S] standard normal noise for a stochastic sampler's step `step`; image i's draw
// depends only on (seed, first + i, step).
torch::Tensor step_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count, int64_t step,
                         torch::Device device);

// Generates images in [0, 1], [count, C, S, S] on the model's device.
torch::Tensor sample(Model& model, const SampleRequest& request);

}  // namespace ddim
