#include <gtest/gtest.h>

#include "error.h"
#include "model.h"
#include "sampling.h"
#include "schedule.h"
#include "samplers/ddim.h"
#include "test_util.h"

namespace ddim {
namespace {

// A tiny model whose output is not identically zero, so samples depend on the network.
Model trained_looking_model(uint64_t seed = 5) {
  Model model(testing::tiny_config(), torch::kCPU, seed);
  torch::NoGradGuard no_grad;
  for (auto& item : model.net()->named_parameters())
    if (item.key().rfind("output_conv", 0) == 0) item.value().uniform_(-0.3, 0.3);
  model.set_normalizer(torch::tensor({0.3f}), torch::tensor({0.4f}));
  return model;
}

SampleRequest request(int64_t count, int64_t steps, uint64_t seed) {
  SampleRequest r;
  r.count = count;
  r.steps = steps;
  r.seed = seed;
  return r;
}

TEST(Sampling, ShapeRangeAndFiniteness) {
  auto model = trained_looking_model();
  const auto images = sample(model, request(3, 4, 1));
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{3, 1, 16, 16}));
  EXPECT_TRUE(torch::isfinite(images).all().item<bool>());
  EXPECT_GE(images.min().item<float>(), 0.0f);
  EXPECT_LE(images.max().item<float>(), 1.0f);
  EXPECT_GT(images.std().item<float>(), 0.0f);
}

TEST(Sampling, SameSeedIsBitIdenticalDifferentSeedDiffers) {
  auto model = trained_looking_model();
  const auto a = sample(model, request(2, 5, 11));
  const auto b = sample(model, request(2, 5, 11));
  const auto c = sample(model, request(2, 5, 12));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(Sampling, ImageNoiseDependsOnlyOnSeedAndIndex) {
  const auto config = testing::tiny_config();
  const auto four = initial_noise(config, 9, 0, 4, torch::kCPU);
  const auto two = initial_noise(config, 9, 0, 2, torch::kCPU);
  const auto last_two = initial_noise(config, 9, 2, 2, torch::kCPU);
  EXPECT_TRUE(torch::equal(four.slice(0, 0, 2), two));
  EXPECT_TRUE(torch::equal(four.slice(0, 2, 4), last_two));
  EXPECT_FALSE(torch::equal(four[0], four[1]));
  EXPECT_NEAR(four.mean().item<double>(), 0.0, 0.15);
  EXPECT_NEAR(four.std().item<double>(), 1.0, 0.1);
}

TEST(Sampling, DdimVisitsAUniformGridFromOneToZero) {
  const auto times = DdimSampler(4).times();
  EXPECT_EQ(times, (std::vector<double>{1.0, 0.75, 0.5, 0.25, 0.0}));
  EXPECT_EQ(DdimSampler(1).times(), (std::vector<double>{1.0, 0.0}));
}

TEST(Sampling, OneStepReturnsTheDenormalisedFirstPrediction) {
  auto model = trained_looking_model();
  const auto images = sample(model, request(2, 1, 3));
  torch::InferenceMode inference;
  model.net()->eval();
  const auto noise = initial_noise(model.config(), 3, 0, 2, torch::kCPU);
  const auto [signal, noise_rate] = diffusion_rates(model.config().schedule, 1.0);
  const auto prediction = model.predict(model.net(), noise, torch::full({2, 1, 1, 1}, static_cast<float>(signal)),
                                        torch::full({2, 1, 1, 1}, static_cast<float>(noise_rate)));
  const auto expected = model.denormalize(prediction.image).clamp(0, 1);
  EXPECT_TRUE(torch::allclose(images, expected, 1e-5, 1e-6));
}

TEST(Sampling, NetworkIsEvaluatedExactlyStepsTimes) {
  auto model = trained_looking_model();
  for (int64_t steps : {1, 3, 7}) {
    const auto before = model.evaluations();
    sample(model, request(2, steps, 1));
    EXPECT_EQ(model.evaluations() - before, steps);
  }
}

TEST(Sampling, RejectsBadRequests) {
  auto model = trained_looking_model();
  EXPECT_THROW(sample(model, request(0, 4, 1)), Error);
  EXPECT_THROW(sample(model, request(1, 0, 1)), Error);
}

}  // namespace
}  // namespace ddim
