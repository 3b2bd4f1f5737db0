// Kernel Inception Distance (Binkowski et al. 2018), as the reference computes it: the unbiased
// estimate of MMD^2 between real and generated features under the cubic polynomial kernel
// k(x, y) = (x.y / d + 1)^3, averaged over random subsets. Computed in float64: in float32 the
// three kernel means (each ~1) cancel to a difference of ~1e-3 and lose most of their digits.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace ddim {

struct KidOptions {
  int64_t subsets = 100;     // random subsets averaged over, >= 1
  int64_t subset_size = 0;   // images per subset from each side; 0: half the smaller set, at most 1000
  uint64_t seed = 0;         // which subsets
};

struct KidResult {
  double mean = 0;           // KID: the mean of the subsets' MMD^2 estimates
  double std = 0;            // their standard deviation (population, as torch-fidelity reports it)
  int64_t subsets = 0;
  int64_t subset_size = 0;
};

// The unbiased MMD^2 estimate between two sets of features ([m, d] and [n, d], m, n >= 2), in float64.
double polynomial_mmd(const torch::Tensor& real, const torch::Tensor& generated);

// KID between `real` [m, d] and `generated` [n, d] features.
KidResult kernel_inception_distance(const torch::Tensor& real, const torch::Tensor& generated, const KidOptions& options);

}  // namespace ddim
