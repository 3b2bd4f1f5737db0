#include "schedule.h"

#include <cmath>
#include <vector>

namespace ddim {
namespace {

// The linear schedule of DDPM: betas linspace(1e-4, 0.02, 1000), alpha_bar their running product of (1 - beta).
constexpr int kLinearSteps = 1000;
constexpr double kBetaStart = 1e-4;
constexpr double kBetaEnd = 0.02;

const std::vector<double>& linear_alpha_bar() {
  static const std::vector<double> table = [] {
    std::vector<double> alpha_bar(kLinearSteps);
    double product = 1.0;
    for (int i = 0; i < kLinearSteps; ++i) {
      const double beta = kBetaStart + (kBetaEnd - kBetaStart) * i / (kLinearSteps - 1);
      product *= 1.0 - beta;
      alpha_bar[i] = product;
    }
    return alpha_bar;
  }();
  return table;
}

}  // namespace

Rates diffusion_rates(const ScheduleConfig& schedule, const torch::Tensor& t) {
  if (schedule.kind == ScheduleKind::Cosine) {
    const double start = std::acos(schedule.max_signal);
    const double end = std::acos(schedule.min_signal);
    const auto angle = start + t * (end - start);
    return {torch::cos(angle), torch::sin(angle)};
  }
  // Linear: interpolate alpha_bar at the fractional index t * 999, then clamp the signal rate itself
  // to [min_signal, max_signal] (the reference clamps alpha_bar; clamping the rate keeps both
  // schedules within the same bounds) and derive the noise rate from it.
  const auto& table = linear_alpha_bar();
  const auto alpha_bar = torch::tensor(table, torch::TensorOptions().dtype(torch::kDouble))
                             .to(t.device(), t.scalar_type());
  const auto position = t.clamp(0.0, 1.0) * (kLinearSteps - 1);
  const auto lower = position.floor().clamp(0, kLinearSteps - 1).to(torch::kLong);
  const auto upper = (lower + 1).clamp_max(kLinearSteps - 1);
  const auto fraction = position - lower.to(t.scalar_type());
  const auto flat_lower = lower.reshape({-1});
  const auto flat_upper = upper.reshape({-1});
  const auto interpolated = (alpha_bar.index_select(0, flat_lower) * (1 - fraction.reshape({-1})) +
                             alpha_bar.index_select(0, flat_upper) * fraction.reshape({-1}))
                                .reshape(t.sizes());
  const auto signal = interpolated.sqrt().clamp(schedule.min_signal, schedule.max_signal);
  return {signal, (1 - signal * signal).sqrt()};
}

std::pair<double, double> diffusion_rates(const ScheduleConfig& schedule, double t) {
  const auto rates = diffusion_rates(schedule, torch::full({1}, t, torch::TensorOptions().dtype(torch::kDouble)));
  return {rates.signal.item<double>(), rates.noise.item<double>()};
}

}  // namespace ddim
