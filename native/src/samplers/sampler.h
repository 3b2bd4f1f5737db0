// The samplers, side by side: each is one small class with a clear step(). They share the time
// grid and the loop in sampling.cpp, which evaluates the network exactly `steps` times, at
//   t_k = 1 - k / steps,  k = 0 .. steps-1,
// and after each evaluation asks the sampler for the sample at t_{k+1} (t_steps = 0). The result
// of sampling is the sampler's image estimate after the last step (for DDIM and DDPM, the last
// predicted image).
#pragma once

#include <functional>
#include <memory>

#include <torch/torch.h>

#include "model.h"

namespace ddim {

enum class SamplerKind : int32_t { Ddim = 0, Ddpm = 1, DpmSolverPP2M = 2 };

// One step's inputs. Rates are [B, 1, 1, 1] tensors.
struct StepInput {
  int64_t step;                     // k
  const torch::Tensor& x;           // the sample at t_k
  const Prediction& prediction;     // the network's noise and image predictions at t_k
  const torch::Tensor& signal;      // rates at t_k
  const torch::Tensor& noise;
  const torch::Tensor& next_signal;  // rates at t_{k+1}
  const torch::Tensor& next_noise;
};

// Fresh N(0, I) noise shaped like the sample, for step k; image i's draw depends only on (seed, i, k).
using NoiseSource = std::function<torch::Tensor(int64_t step)>;

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The sample at t_{k+1}.
  virtual torch::Tensor step(const StepInput& in, const NoiseSource& fresh_noise) = 0;
  // The clean-image estimate after the last step, given the last prediction.
  virtual torch::Tensor result(const Prediction& last) { return last.image; }
};

// eta is used by DDIM only (0: deterministic; 1: the DDPM-like variance).
std::unique_ptr<Sampler> make_sampler(SamplerKind kind, double eta);

// The uniform grid 1 = t_0 > t_1 > ... > t_steps = 0.
std::vector<double> sampling_times(int64_t steps);

}  // namespace ddim
