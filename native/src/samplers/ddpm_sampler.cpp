#include "samplers/ddpm_sampler.h"

namespace ddim {

torch::Tensor DdpmSampler::step(const StepInput& in, const NoiseSource& fresh_noise) {
  const auto alpha = (in.signal / in.next_signal).square();
  const auto beta = 1 - alpha;
  const auto noise_variance = in.noise.square();
  const auto mean = in.next_signal * beta / noise_variance * in.prediction.image +
                    alpha.sqrt() * in.next_noise.square() / noise_variance * in.x;
  const auto sigma = (in.next_noise / in.noise) * beta.clamp_min(0).sqrt();
  return mean + sigma * fresh_noise(in.step);
}

}  // namespace ddim
