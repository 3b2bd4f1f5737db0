// DDIM, Song, Meng & Ermon 2020, eq. 12. With signal a, noise s at t and a', s' at the next t:
//   sigma = eta * (s' / s) * sqrt(1 - a^2 / a'^2)
//   x'    = a' * image + sqrt(s'^2 - sigma^2) * noise + sigma * z,   z ~ N(0, I)
// eta = 0 is deterministic (the reference's sampler); eta = 1 has the DDPM posterior's variance.
#pragma once

#include "samplers/sampler.h"

namespace ddim {

class DdimSampler : public Sampler {
 public:
  explicit DdimSampler(double eta) : eta_(eta) {}
  torch::Tensor step(const StepInput& in, const NoiseSource& fresh_noise) override;

 private:
  double eta_;
};

}  // namespace ddim
