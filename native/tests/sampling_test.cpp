#include <gtest/gtest.h>

#include "error.h"
#include "model.h"
#include "sampling.h"
#include "schedule.h"
#include "samplers/sampler.h"
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

TEST(Sampling, SamplersVisitAUniformGridFromOneToZero) {
  EXPECT_EQ(sampling_times(4), (std::vector<double>{1.0, 0.75, 0.5, 0.25, 0.0}));
  EXPECT_EQ(sampling_times(1), (std::vector<double>{1.0, 0.0}));
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

SampleRequest with_sampler(SampleRequest r, SamplerKind kind, double eta = 0) {
  r.sampler = kind;
  r.eta = eta;
  return r;
}

const SamplerKind kAllSamplers[] = {SamplerKind::Ddim, SamplerKind::Ddpm, SamplerKind::DpmSolverPP2M};

TEST(Sampling, EverySamplerEvaluatesTheNetworkExactlyStepsTimes) {
  auto model = trained_looking_model();
  for (auto kind : kAllSamplers) {
    for (int64_t steps : {1, 3, 7}) {
      const auto before = model.evaluations();
      const auto images = sample(model, with_sampler(request(2, steps, 1), kind, 0.5));
      EXPECT_EQ(model.evaluations() - before, steps) << static_cast<int>(kind);
      EXPECT_TRUE(torch::isfinite(images).all().item<bool>());
      EXPECT_GE(images.min().item<float>(), 0.0f);
      EXPECT_LE(images.max().item<float>(), 1.0f);
    }
  }
}

TEST(Sampling, EverySamplerIsReproducibleFromItsSeed) {
  auto model = trained_looking_model();
  for (auto kind : kAllSamplers) {
    const auto a = sample(model, with_sampler(request(2, 4, 5), kind, 1.0));
    const auto b = sample(model, with_sampler(request(2, 4, 5), kind, 1.0));
    const auto c = sample(model, with_sampler(request(2, 4, 6), kind, 1.0));
    EXPECT_TRUE(torch::equal(a, b)) << static_cast<int>(kind);
    EXPECT_FALSE(torch::equal(a, c)) << static_cast<int>(kind);
  }
}

TEST(Sampling, DeterministicDdimIsTheReferenceLoop) {
  auto model = trained_looking_model();
  const auto images = sample(model, with_sampler(request(2, 5, 8), SamplerKind::Ddim, 0.0));
  // The reference's loop, written out: predict, then re-mix at the next time.
  torch::InferenceMode inference;
  model.net()->eval();
  auto x = initial_noise(model.config(), 8, 0, 2, torch::kCPU);
  const auto t = torch::tensor(sampling_times(5)).to(torch::kFloat);
  const auto rates = diffusion_rates(model.config().schedule, t);
  Prediction p;
  for (int k = 0; k < 5; ++k) {
    p = model.predict(model.net(), x, rates.signal[k].expand({2, 1, 1, 1}), rates.noise[k].expand({2, 1, 1, 1}));
    x = rates.signal[k + 1].expand({2, 1, 1, 1}) * p.image + rates.noise[k + 1].expand({2, 1, 1, 1}) * p.noise;
  }
  EXPECT_TRUE(torch::equal(images, model.denormalize(p.image).clamp(0, 1)));
  // eta > 0 adds noise, and so changes the result.
  EXPECT_FALSE(torch::equal(images, sample(model, with_sampler(request(2, 5, 8), SamplerKind::Ddim, 1.0))));
}

TEST(Sampling, StepNoiseDependsOnlyOnSeedImageAndStep) {
  const auto config = testing::tiny_config();
  const auto four = step_noise(config, 9, 0, 4, 3, torch::kCPU);
  EXPECT_TRUE(torch::equal(four.slice(0, 2, 4), step_noise(config, 9, 2, 2, 3, torch::kCPU)));
  EXPECT_FALSE(torch::equal(four, step_noise(config, 9, 0, 4, 4, torch::kCPU)));
  EXPECT_FALSE(torch::equal(four, initial_noise(config, 9, 0, 4, torch::kCPU)));
}

TEST(Sampling, RejectsBadRequests) {
  auto model = trained_looking_model();
  EXPECT_THROW(sample(model, request(0, 4, 1)), Error);
  EXPECT_THROW(sample(model, request(1, 0, 1)), Error);
  EXPECT_THROW(sample(model, with_sampler(request(1, 2, 1), SamplerKind::Ddim, -0.5)), Error);
  EXPECT_THROW(sample(model, with_sampler(request(1, 2, 1), SamplerKind::Ddim, std::nan(""))), Error);
}

}  // namespace
}  // namespace ddim
