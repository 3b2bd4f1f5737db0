#include "kid.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "error.h"

namespace ddim {

namespace {

void require_features(const torch::Tensor& features, const char* name) {
  require(features.dim() == 2, Status::InvalidArgument, std::string(name) + " features must be [count, dimension]");
  require(features.size(0) >= 2, Status::InvalidArgument,
          std::string(name) + " features: KID needs at least 2 images, got " + std::to_string(features.size(0)));
  require(features.size(1) >= 1, Status::InvalidArgument, std::string(name) + " features have dimension 0");
  require(torch::isfinite(features).all().item<bool>(), Status::InvalidArgument,
          std::string(name) + " features contain NaN or infinite values");
}

// The mean of k(a_i, b_j) over all pairs, or over the pairs i != j when `same` (a and b are one set).
double mean_kernel(const torch::Tensor& a, const torch::Tensor& b, bool same) {
  const auto kernel = (a.mm(b.t()) / static_cast<double>(a.size(1)) + 1.0).pow(3);
  const double m = static_cast<double>(a.size(0)), n = static_cast<double>(b.size(0));
  if (!same) return kernel.sum().item<double>() / (m * n);
  return (kernel.sum() - kernel.diagonal().sum()).item<double>() / (m * (m - 1));
}

// Both sets valid and of one dimension.
void require_pair(const torch::Tensor& real, const torch::Tensor& generated) {
  require_features(real, "real");
  require_features(generated, "generated");
  require(real.size(1) == generated.size(1), Status::InvalidArgument,
          "real and generated features differ in dimension: " + std::to_string(real.size(1)) + " and " +
              std::to_string(generated.size(1)));
}

// The unbiased MMD^2 of two checked float64 CPU feature sets.
double mmd(const torch::Tensor& x, const torch::Tensor& y) {
  return mean_kernel(x, x, true) + mean_kernel(y, y, true) - 2.0 * mean_kernel(x, y, false);
}

}  // namespace

double polynomial_mmd(const torch::Tensor& real, const torch::Tensor& generated) {
  require_pair(real, generated);
  return mmd(real.to(torch::kCPU, torch::kDouble), generated.to(torch::kCPU, torch::kDouble));
}

KidResult kernel_inception_distance(const torch::Tensor& real, const torch::Tensor& generated, const KidOptions& options) {
  // Checked and converted once here, not again for every subset.
  require_pair(real, generated);
  require(options.subsets >= 1, Status::InvalidArgument, "subsets must be >= 1, got " + std::to_string(options.subsets));
  const int64_t available = std::min(real.size(0), generated.size(0));
  // By default half the smaller set (at most the customary 1000), so that subsets differ and their spread means something.
  const int64_t size = options.subset_size == 0 ? std::max<int64_t>(2, std::min<int64_t>(1000, available / 2)) : options.subset_size;
  require(size >= 2 && size <= available, Status::InvalidArgument,
          "subset_size must lie in [2, " + std::to_string(available) + "] (the smaller set), got " + std::to_string(size));
  const auto x = real.to(torch::kCPU, torch::kDouble), y = generated.to(torch::kCPU, torch::kDouble);

  // Subsets drawn without replacement by a partial Fisher-Yates shuffle from one seeded generator:
  // the same seed gives the same subsets on every platform (std::mt19937_64 is fully specified).
  std::mt19937_64 random(options.seed);
  const auto draw = [&](int64_t count) {
    std::vector<int64_t> order(static_cast<size_t>(count));
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = 0; i < size; ++i) {
      const auto j = i + static_cast<int64_t>(random() % static_cast<uint64_t>(count - i));
      std::swap(order[i], order[j]);
    }
    order.resize(static_cast<size_t>(size));
    return torch::tensor(order, torch::kLong);
  };
  std::vector<double> estimates;
  estimates.reserve(static_cast<size_t>(options.subsets));
  for (int64_t s = 0; s < options.subsets; ++s) {
    const auto real_subset = x.index_select(0, draw(x.size(0)));
    const auto generated_subset = y.index_select(0, draw(y.size(0)));
    estimates.push_back(mmd(real_subset, generated_subset));
  }
  KidResult result;
  result.subsets = options.subsets;
  result.subset_size = size;
  result.mean = std::accumulate(estimates.begin(), estimates.end(), 0.0) / static_cast<double>(estimates.size());
  double squares = 0;
  for (double e : estimates) squares += (e - result.mean) * (e - result.mean);
  result.std = std::sqrt(squares / static_cast<double>(estimates.size()));
  return result;
}

}  // namespace ddim
