// Deterministic DDIM (eta = 0), Song, Meng & Ermon 2020, eq. 12 with sigma = 0.
//
// Visits t_k = 1 - k / steps for k = 0 .. steps-1 (one network evaluation each). After evaluating
// at t_k it re-mixes the predicted image and noise at the next time t_{k+1} (t_steps = 0):
//   x_{k+1} = signal(t_{k+1}) * predicted_image + noise(t_{k+1}) * predicted_noise
// The result of sampling is the last predicted image, not x_steps.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "model.h"

namespace ddim {

class DdimSampler {
 public:
  explicit DdimSampler(int64_t steps) : steps_(steps) {}

  // The times at which the network is evaluated, then the final 0: steps + 1 values from 1 down to 0.
  std::vector<double> times() const;

  torch::Tensor step(const Prediction& prediction, const torch::Tensor& next_signal_rate,
                     const torch::Tensor& next_noise_rate) const {
    return next_signal_rate * prediction.image + next_noise_rate * prediction.noise;
  }

 private:
  int64_t steps_;
};

}  // namespace ddim
