#include "samplers/dpm_solver.h"

namespace ddim {

torch::Tensor DpmSolverPP2MSampler::step(const StepInput& in, const NoiseSource&) {
  const auto lambda = (in.signal / in.noise).log();
  const auto next_lambda = (in.next_signal / in.next_noise).log();
  const auto h = next_lambda - lambda;
  auto data = in.prediction.image;
  if (previous_image_.defined()) {
    const auto half_inverse_r = 0.5 * h / previous_h_;
    data = (1 + half_inverse_r) * in.prediction.image - half_inverse_r * previous_image_;
  }
  previous_image_ = in.prediction.image;
  previous_h_ = h;
  const auto decay = torch::exp(-h);
  final_image_ = decay * in.prediction.image + (1 - decay) * data;
  return (in.next_noise / in.noise) * in.x - in.next_signal * (torch::exp(-h) - 1) * data;
}

}  // namespace ddim
