#include "samplers/dpm_solver_sampler.h"

#ifdef DDIM_CUDA
#include "cuda/kernels_torch.h"
#endif

namespace ddim {

torch::Tensor DpmSolverPP2MSampler::step(const StepInput& in, const NoiseSource&) {
  const auto lambda = (in.signal / in.noise).log();
  const auto next_lambda = (in.next_signal / in.next_noise).log();
  const auto h = next_lambda - lambda;
  const auto& image = in.prediction.image;
  // 1/(2r): the weight of the second-order correction (none on the first step).
  const auto half_inverse_r = previous_image_.defined() ? 0.5 * h / previous_h_ : torch::Tensor();
  last_ = {image, previous_image_, half_inverse_r, h};
  previous_image_ = image;
  previous_h_ = h;
#ifdef DDIM_CUDA
  if (cuda::fusable(in.x))
    return cuda::dpm_solver_update(in.x, image, last_.previous_image, in.noise, in.next_signal, in.next_noise, h,
                                   half_inverse_r.defined() ? half_inverse_r : torch::zeros_like(h));
#endif
  return (in.next_noise / in.noise) * in.x - in.next_signal * (torch::exp(-h) - 1) * last_.data();
}

torch::Tensor DpmSolverPP2MSampler::result(const Prediction&) {
  const auto decay = torch::exp(-last_.h);
  return decay * last_.image + (1 - decay) * last_.data();
}

torch::Tensor DpmSolverPP2MSampler::LastStep::data() const {
  if (!half_inverse_r.defined()) return image;
  return (1 + half_inverse_r) * image - half_inverse_r * previous_image;
}

}  // namespace ddim
