#include "samplers/ddim_sampler.h"

#ifdef DDIM_CUDA
#include "cuda/kernels_torch.h"
#endif

namespace ddim {

torch::Tensor DdimSampler::step(const StepInput& in, const NoiseSource& fresh_noise) {
  const auto& p = in.prediction;
  if (eta_ == 0) {
#ifdef DDIM_CUDA
    if (cuda::fusable(p.image)) return cuda::ddim_update(p.image, p.noise, in.next_signal, in.next_noise);
#endif
    return in.next_signal * p.image + in.next_noise * p.noise;
  }
  const auto sigma = eta_ * (in.next_noise / in.noise) * (1 - (in.signal / in.next_signal).square()).clamp_min(0).sqrt();
  const auto direction = (in.next_noise.square() - sigma.square()).clamp_min(0).sqrt();
  return in.next_signal * p.image + direction * p.noise + sigma * fresh_noise(in.step);
}

}  // namespace ddim
