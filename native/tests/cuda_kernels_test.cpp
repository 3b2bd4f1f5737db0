// The fused CUDA kernels against the libtorch op sequences they replace, on random inputs: relative
// error, and every element written: before each call, a block of the output's size is filled with NaN
// and freed, so that libtorch's caching allocator hands that block to the kernel's output, and an
// element the kernel skipped stays NaN. Built only with DDIM_CUDA; skipped without a CUDA device.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <limits>

#include "cuda/kernels_torch.h"

namespace ddim {
namespace {

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    torch::manual_seed(7);
  }
  torch::TensorOptions cuda() const { return torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA); }
};

// Leaves a NaN-filled block of `shape`'s size in libtorch's CUDA cache for the next allocation of that size.
void poison_next_output(at::IntArrayRef shape) {
  torch::full(shape, std::numeric_limits<float>::quiet_NaN(), torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA));
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item<double>();
}

TEST_F(CudaKernels, DdimUpdateMatchesLibtorch) {
  for (int64_t b : {1, 3, 64}) {
    const auto image = torch::randn({b, 3, 64, 64}, cuda()), noise = torch::randn({b, 3, 64, 64}, cuda());
    const auto a = torch::rand({b, 1, 1, 1}, cuda()), s = torch::rand({b, 1, 1, 1}, cuda());
    poison_next_output({b, 3, 64, 64});
    const auto got = cuda::ddim_update(image, noise, a, s);
    EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
    EXPECT_LT(relative_error(got, a * image + s * noise), 1e-6);
  }
}

TEST_F(CudaKernels, DpmSolverUpdateMatchesLibtorchOnFirstAndLaterSteps) {
  const int64_t b = 5;
  const auto x = torch::randn({b, 1, 32, 32}, cuda()), image = torch::randn({b, 1, 32, 32}, cuda());
  const auto previous = torch::randn({b, 1, 32, 32}, cuda());
  const auto s = torch::rand({b, 1, 1, 1}, cuda()) + 0.1, a_next = torch::rand({b, 1, 1, 1}, cuda());
  const auto s_next = torch::rand({b, 1, 1, 1}, cuda()) + 0.1, h = torch::rand({b, 1, 1, 1}, cuda());
  const auto k = torch::rand({b, 1, 1, 1}, cuda());
  poison_next_output({b, 1, 32, 32});
  const auto first = cuda::dpm_solver_update(x, image, torch::Tensor(), s, a_next, s_next, h, torch::zeros_like(h));
  EXPECT_LT(relative_error(first, (s_next / s) * x - a_next * (torch::exp(-h) - 1) * image), 1e-5);
  EXPECT_TRUE(torch::isfinite(first).all().item<bool>());
  poison_next_output({b, 1, 32, 32});
  const auto later = cuda::dpm_solver_update(x, image, previous, s, a_next, s_next, h, k);
  const auto data = (1 + k) * image - k * previous;
  EXPECT_LT(relative_error(later, (s_next / s) * x - a_next * (torch::exp(-h) - 1) * data), 1e-5);
  EXPECT_TRUE(torch::isfinite(later).all().item<bool>());
}

TEST_F(CudaKernels, SinusoidalEmbeddingMatchesLibtorch) {
  const auto variances = torch::rand({17}, cuda());
  poison_next_output({17, 32});
  const auto got = cuda::sinusoidal_embedding(variances, 32);
  EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
  const auto frequencies = torch::linspace(std::log(1.0), std::log(1000.0), 16, cuda()).exp();
  const auto angles = (2 * M_PI) * frequencies.unsqueeze(0) * variances.reshape({-1, 1});
  const auto want = torch::cat({torch::sin(angles), torch::cos(angles)}, 1);
  EXPECT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-4);  // angles reach 2 pi x 1000: absolute error
}

}  // namespace
}  // namespace ddim
