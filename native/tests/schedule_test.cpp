#include <gtest/gtest.h>

#include <cmath>

#include "schedule.h"

namespace ddim {
namespace {

ScheduleConfig schedule(ScheduleKind kind) {
  ScheduleConfig config;
  config.kind = kind;
  return config;
}

TEST(Schedule, CosineMatchesClosedForm) {
  const auto cosine = schedule(ScheduleKind::Cosine);
  for (double t : {0.0, 0.5, 1.0}) {
    const double angle = std::acos(0.95) + t * (std::acos(0.02) - std::acos(0.95));
    const auto [signal, noise] = diffusion_rates(cosine, t);
    EXPECT_NEAR(signal, std::cos(angle), 1e-12) << "t=" << t;
    EXPECT_NEAR(noise, std::sin(angle), 1e-12) << "t=" << t;
  }
  EXPECT_NEAR(diffusion_rates(cosine, 0.0).first, 0.95, 1e-12);
  EXPECT_NEAR(diffusion_rates(cosine, 1.0).first, 0.02, 1e-12);
}

TEST(Schedule, LinearMatchesClosedForm) {
  const auto linear = schedule(ScheduleKind::Linear);
  // alpha_bar at index i = prod_{j <= i} (1 - beta_j), beta = linspace(1e-4, 0.02, 1000).
  const auto alpha_bar = [](int index) {
    double product = 1;
    for (int j = 0; j <= index; ++j) product *= 1 - (1e-4 + (0.02 - 1e-4) * j / 999.0);
    return product;
  };
  // t = 0: sqrt(alpha_bar) ~ 0.99995 is clamped to max_signal.
  EXPECT_NEAR(diffusion_rates(linear, 0.0).first, 0.95, 1e-12);
  // t = 1: sqrt(alpha_bar) ~ 0.0064 is clamped to min_signal.
  EXPECT_NEAR(diffusion_rates(linear, 1.0).first, 0.02, 1e-12);
  // t = 0.5: index 499.5, halfway between two entries.
  const double expected = std::sqrt(0.5 * alpha_bar(499) + 0.5 * alpha_bar(500));
  const auto [signal, noise] = diffusion_rates(linear, 0.5);
  EXPECT_NEAR(signal, expected, 1e-12);
  EXPECT_NEAR(noise, std::sqrt(1 - expected * expected), 1e-12);
}

TEST(Schedule, RatesAreUnitNormAndSignalFalls) {
  for (auto kind : {ScheduleKind::Cosine, ScheduleKind::Linear}) {
    const auto t = torch::linspace(0, 1, 101, torch::kDouble);
    const auto rates = diffusion_rates(schedule(kind), t);
    EXPECT_TRUE(torch::allclose(rates.signal.square() + rates.noise.square(), torch::ones_like(t), 0, 1e-12));
    EXPECT_TRUE((rates.signal.slice(0, 1) <= rates.signal.slice(0, 0, -1)).all().item<bool>());
    EXPECT_GE(rates.signal.min().item<double>(), 0.02 - 1e-12);
    EXPECT_LE(rates.signal.max().item<double>(), 0.95 + 1e-12);
  }
}

TEST(Schedule, FloatTensorsKeepShapeAndAgreeWithDouble) {
  const auto cosine = schedule(ScheduleKind::Cosine);
  const auto t = torch::rand({4, 1, 1, 1});
  const auto rates = diffusion_rates(cosine, t);
  EXPECT_EQ(rates.signal.sizes(), t.sizes());
  EXPECT_EQ(rates.signal.scalar_type(), torch::kFloat);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(rates.signal[i].item<float>(), diffusion_rates(cosine, t[i].item<double>()).first, 1e-6);
}

}  // namespace
}  // namespace ddim
