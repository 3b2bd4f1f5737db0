// libtorch glue for the fused CUDA kernels (built only with DDIM_CUDA): tensors in, tensors out,
// on the tensors' device and current stream. Callers use them for float32 CUDA tensors only.
#pragma once

#include <torch/torch.h>

namespace ddim::cuda {

// True when the fused kernels can take `t`: a float32 CUDA tensor.
inline bool fusable(const torch::Tensor& t) { return t.is_cuda() && t.scalar_type() == torch::kFloat; }

// next_signal * image + next_noise * noise; rates are [B, 1, 1, 1].
torch::Tensor ddim_update(const torch::Tensor& image, const torch::Tensor& noise, const torch::Tensor& next_signal,
                          const torch::Tensor& next_noise);

// The DPM-Solver++(2M) update (samplers/dpm_solver_sampler.h); `previous_image` undefined on the first step,
// `half_inverse_r` = 1/(2r) per image ([B, 1, 1, 1], zeros on the first step), `h` [B, 1, 1, 1].
torch::Tensor dpm_solver_update(const torch::Tensor& x, const torch::Tensor& image, const torch::Tensor& previous_image,
                                const torch::Tensor& noise, const torch::Tensor& next_signal, const torch::Tensor& next_noise,
                                const torch::Tensor& h, const torch::Tensor& half_inverse_r);

// The sinusoidal embedding of noise variances [B] as [B, dim].
torch::Tensor sinusoidal_embedding(const torch::Tensor& variances, int64_t dim);

}  // namespace ddim::cuda
