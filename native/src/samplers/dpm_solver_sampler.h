// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): a second-order multistep solver
// of the diffusion ODE in the data-prediction form, in lambda = log(signal / noise). With
// h = lambda' - lambda:
//   first step:  x' = (s'/s) x - a' (e^-h - 1) image
//   later steps: r = h_previous / h,  D = (1 + 1/(2r)) image - 1/(2r) image_previous
//                x' = (s'/s) x - a' (e^-h - 1) D
// It reuses the previous step's prediction, so it costs one evaluation a step like DDIM, and is
// more accurate at few steps. Its result is the image its last state x' implies with the last
// noise prediction: (x' - s' noise) / a' = e^-h image + (1 - e^-h) D, so the final step keeps its
// second-order correction instead of falling back to the raw last prediction.
#pragma once

#include "samplers/sampler.h"

namespace ddim {

class DpmSolverPP2MSampler : public Sampler {
 public:
  torch::Tensor step(const StepInput& in, const NoiseSource& fresh_noise) override;
  torch::Tensor result(const Prediction& last) override;

 private:
  // What the last step saw, for result(): its data prediction D is rebuilt once, not every step.
  struct LastStep {
    torch::Tensor image, previous_image, half_inverse_r, h;
    torch::Tensor data() const;
  };
  torch::Tensor previous_image_;
  torch::Tensor previous_h_;
  LastStep last_;
};

}  // namespace ddim
