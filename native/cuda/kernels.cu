#include "kernels.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddim::cuda {
namespace {

constexpr int kThreads = 256;

void check_launch(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": " + cudaGetErrorString(error));
}

int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

__global__ void ddim_update_kernel(const float* __restrict__ image, const float* __restrict__ noise,
                                   const float* __restrict__ next_signal, const float* __restrict__ next_noise,
                                   int64_t n, int64_t per_image, float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t b = i / per_image;
  out[i] = next_signal[b] * image[i] + next_noise[b] * noise[i];
}

__global__ void dpm_solver_update_kernel(const float* __restrict__ x, const float* __restrict__ image,
                                         const float* __restrict__ previous_image, const float* __restrict__ noise,
                                         const float* __restrict__ next_signal, const float* __restrict__ next_noise,
                                         const float* __restrict__ h, const float* __restrict__ k, int64_t n,
                                         int64_t per_image, float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t b = i / per_image;
  const float correction = k[b];
  const float data = previous_image == nullptr ? image[i] : (1.0f + correction) * image[i] - correction * previous_image[i];
  out[i] = (next_noise[b] / noise[b]) * x[i] - next_signal[b] * (expf(-h[b]) - 1.0f) * data;
}

__global__ void sinusoidal_embedding_kernel(const float* __restrict__ variances, int64_t batch, int64_t dim,
                                            float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= batch * dim) return;
  const int64_t b = i / dim, j = i % dim, half = dim / 2;
  const int64_t f = j < half ? j : j - half;
  const float log_step = half > 1 ? logf(1000.0f) / static_cast<float>(half - 1) : 0.0f;
  const float angle = 2.0f * 3.14159265358979323846f * expf(f * log_step) * variances[b];
  out[i] = j < half ? sinf(angle) : cosf(angle);
}

}  // namespace

void ddim_update(const float* image, const float* noise, const float* next_signal, const float* next_noise,
                 int64_t images, int64_t per_image, float* out, cudaStream_t stream) {
  const int64_t n = images * per_image;
  if (n == 0) return;
  ddim_update_kernel<<<blocks_for(n), kThreads, 0, stream>>>(image, noise, next_signal, next_noise, n, per_image, out);
  check_launch("ddim_update");
}

void dpm_solver_update(const float* x, const float* image, const float* previous_image, const float* noise,
                       const float* next_signal, const float* next_noise, const float* h, const float* k, int64_t images,
                       int64_t per_image, float* out, cudaStream_t stream) {
  const int64_t n = images * per_image;
  if (n == 0) return;
  dpm_solver_update_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, image, previous_image, noise, next_signal, next_noise,
                                                                   h, k, n, per_image, out);
  check_launch("dpm_solver_update");
}

void sinusoidal_embedding(const float* variances, int64_t batch, int64_t dim, float* out, cudaStream_t stream) {
  const int64_t n = batch * dim;
  if (n == 0) return;
  sinusoidal_embedding_kernel<<<blocks_for(n), kThreads, 0, stream>>>(variances, batch, dim, out);
  check_launch("sinusoidal_embedding");
}

}  // namespace ddim::cuda
