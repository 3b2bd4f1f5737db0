// DDPM ancestral sampling (Ho et al. 2020): draw x' from the posterior q(x_t' | x_t, image) with
// the predicted image, alpha = a^2 / a'^2 and beta = 1 - alpha:
//   mean  = a' beta / s^2 * image + sqrt(alpha) s'^2 / s^2 * x
//   sigma = (s' / s) sqrt(beta)
#pragma once

#include "samplers/sampler.h"

namespace ddim {

class DdpmSampler : public Sampler {
 public:
  torch::Tensor step(const StepInput& in, const NoiseSource& fresh_noise) override;
};

}  // namespace ddim
