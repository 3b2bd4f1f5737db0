// Fused CUDA kernels for the sampling loop (issue 6). Plain CUDA on raw pointers, so that they
// compile with nvcc alone; the libtorch glue lives in kernels_torch.cpp. Each replaces a sequence
// of libtorch element-wise ops (one kernel launch and one pass over memory instead of several).
//
// Layout: `images` images of `per_image` floats each; rates are one float per image.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace ddim::cuda {

// DDIM (eta = 0): out = next_signal * image + next_noise * noise.
void ddim_update(const float* image, const float* noise, const float* next_signal, const float* next_noise,
                 int64_t images, int64_t per_image, float* out, cudaStream_t stream);

// DPM-Solver++(2M): with h, lambda as in samplers/dpm_solver_sampler.h and k = 1/(2r) (0 on the first step):
//   data = (1 + k) * image - k * previous_image
//   out  = (next_noise / noise) * x - next_signal * (exp(-h) - 1) * data
// `previous_image` may be null when k is 0.
void dpm_solver_update(const float* x, const float* image, const float* previous_image, const float* noise,
                       const float* next_signal, const float* next_noise, const float* h, const float* k, int64_t images,
                       int64_t per_image, float* out, cudaStream_t stream);

// The noise-variance embedding: out[b][j] = sin(2 pi f_j v_b) for j < dim/2 and cos(2 pi f_(j - dim/2) v_b)
// after, with f_j = exp(log(1) + j * (log(1000) - log(1)) / (dim/2 - 1)) (torch.linspace in log space).
void sinusoidal_embedding(const float* variances, int64_t batch, int64_t dim, float* out, cudaStream_t stream);

}  // namespace ddim::cuda
