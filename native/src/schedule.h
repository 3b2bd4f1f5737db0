// Noise schedules: continuous time t in [0, 1] -> (signal rate, noise rate), signal^2 + noise^2 = 1.
// t = 0 is the (almost) clean image, t = 1 the (almost) pure noise.
#pragma once

#include <torch/torch.h>

#include "config.h"

namespace ddim {

struct Rates {
  torch::Tensor signal;
  torch::Tensor noise;
};

// Rates at each element of `t` (any shape, floating point, any device); results have t's shape,
// dtype and device.
Rates diffusion_rates(const ScheduleConfig& schedule, const torch::Tensor& t);

// The same for one t, in double precision (tests and plots).
std::pair<double, double> diffusion_rates(const ScheduleConfig& schedule, double t);

}  // namespace ddim
