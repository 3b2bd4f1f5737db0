#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

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
  auto one_step = request(2, 1, 3);
  one_step.network = NetworkKind::Eager;  // the network predict() runs below; the fused plan differs in the last bits
  const auto images = sample(model, one_step);
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
  auto eager = with_sampler(request(2, 5, 8), SamplerKind::Ddim, 0.0);
  eager.network = NetworkKind::Eager;  // the loop below runs the eager network
  const auto images = sample(model, eager);
  // The reference's loop, written out: predict (with sampling's micro-batch shape), then re-mix at the next time.
  torch::InferenceMode inference;
  model.net()->eval();
  auto x = initial_noise(model.config(), 8, 0, 2, torch::kCPU);
  const auto t = torch::tensor(sampling_times(5)).to(torch::kFloat);
  const auto rates = diffusion_rates(model.config().schedule, t);
  Prediction p;
  for (int k = 0; k < 5; ++k) {
    p = model.predict(model.net(), x, rates.signal[k].expand({2, 1, 1, 1}), rates.noise[k].expand({2, 1, 1, 1}),
                      SampleRequest{}.micro_batch);
    x = rates.signal[k + 1].expand({2, 1, 1, 1}) * p.image + rates.noise[k + 1].expand({2, 1, 1, 1}) * p.noise;
  }
  EXPECT_TRUE(torch::equal(images, model.denormalize(p.image).clamp(0, 1)));
  // eta > 0 adds noise, and so changes the result.
  EXPECT_FALSE(torch::equal(images, sample(model, with_sampler(request(2, 5, 8), SamplerKind::Ddim, 1.0))));
}

TEST(Sampling, PredictIsTheSamplersNetworkEvaluation) {
  auto model = trained_looking_model();
  // 20 steps: the loop's 21 times fill whole vector registers and a tail, so any position-dependent
  // rounding of the schedule between the loop's grid and predict's per-image times would show.
  const auto r = request(3, 20, 8);
  const auto images = sample(model, r);
  // The deterministic DDIM loop written with predict(): the same bits as sample().
  auto x = initial_noise(model.config(), 8, 0, 3, torch::kCPU);
  const auto times = sampling_times(20);
  const auto grid = diffusion_rates(model.config().schedule, torch::tensor(times).to(torch::kFloat));
  Prediction p;
  for (int k = 0; k < 20; ++k) {
    p = predict(model, r, x, torch::full({3}, static_cast<float>(times[k])));
    x = grid.signal[k + 1] * p.image + grid.noise[k + 1] * p.noise;
  }
  EXPECT_TRUE(torch::equal(images, model.denormalize(p.image).clamp(0, 1)));
  // Each image at its own time, alone or in a batch, at a smaller micro-batch: the same as at that
  // time in a batch of its own (the fixed micro-batch shape makes it so).
  auto small = r;
  small.micro_batch = 2;
  const auto noisy = initial_noise(model.config(), 4, 0, 3, torch::kCPU);
  const auto mixed = predict(model, small, noisy, torch::tensor({1.0f, 0.35f, 0.0f}));
  SampleRequest one = small;
  one.count = 1;
  const auto second = predict(model, one, noisy.slice(0, 1, 2), torch::tensor({0.35f}));
  EXPECT_TRUE(torch::equal(mixed.noise.slice(0, 1, 2), second.noise));
  EXPECT_TRUE(torch::equal(mixed.image.slice(0, 1, 2), second.image));
}

TEST(Sampling, PredictUsesTheEmaWeightsWhenAsked) {
  auto model = trained_looking_model();
  model.ema() = model.make_network();
  {
    torch::NoGradGuard no_grad;  // an EMA network that predicts zero noise
    for (auto& item : model.ema().value()->named_parameters())
      if (item.key().rfind("output_conv", 0) == 0) item.value().zero_();
  }
  auto r = request(2, 1, 0);
  const auto noisy = initial_noise(model.config(), 1, 0, 2, torch::kCPU);
  const auto t = torch::tensor({0.5f, 0.9f});
  EXPECT_EQ(predict(model, r, noisy, t).noise.abs().max().item<float>(), 0.0f);
  r.use_ema = false;
  EXPECT_GT(predict(model, r, noisy, t).noise.abs().max().item<float>(), 0.0f);
}

TEST(Sampling, PredictChecksItsInput) {
  auto model = trained_looking_model();
  const auto r = request(2, 1, 0);
  const auto noisy = initial_noise(model.config(), 1, 0, 2, torch::kCPU);
  const auto status_of = [&](const torch::Tensor& x, const torch::Tensor& t) {
    try {
      predict(model, r, x, t);
    } catch (const Error& e) {
      return e.status();
    }
    return Status::Ok;
  };
  EXPECT_EQ(status_of(noisy, torch::tensor({0.0f, 1.0f})), Status::Ok);
  EXPECT_EQ(status_of(noisy, torch::tensor({0.5f, 1.5f})), Status::InvalidArgument);
  EXPECT_EQ(status_of(noisy, torch::tensor({0.5f, std::nanf("")})), Status::InvalidArgument);
  EXPECT_EQ(status_of(noisy, torch::tensor({0.5f})), Status::InvalidArgument);
  EXPECT_EQ(status_of(noisy.slice(0, 0, 1), torch::tensor({0.5f, 0.5f})), Status::InvalidArgument);
  auto bad = noisy.clone();
  bad[1][0][3][3] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(status_of(bad, torch::tensor({0.5f, 0.5f})), Status::InvalidArgument);
  EXPECT_EQ(status_of(noisy * 1e3, torch::tensor({0.5f, 0.5f})), Status::Ok);  // any finite values
}

TEST(Sampling, StepNoiseDependsOnlyOnSeedImageAndStep) {
  const auto config = testing::tiny_config();
  const auto four = step_noise(config, 9, 0, 4, 3, torch::kCPU);
  EXPECT_TRUE(torch::equal(four.slice(0, 2, 4), step_noise(config, 9, 2, 2, 3, torch::kCPU)));
  EXPECT_FALSE(torch::equal(four, step_noise(config, 9, 0, 4, 4, torch::kCPU)));
  EXPECT_FALSE(torch::equal(four, initial_noise(config, 9, 0, 4, torch::kCPU)));
}

SampleRequest with_precision(SampleRequest r) {
  r.precision = Precision::BFloat16;
  return r;
}

SampleRequest chunked(SampleRequest r, int64_t batch_size, int64_t first_index = 0) {
  r.batch_size = batch_size;
  r.first_index = first_index;
  return r;
}

TEST(Sampling, ImageIDependsOnlyOnSeedAndIBitExactly) {
  auto model = trained_looking_model();
  const auto threads = torch::get_num_threads();
  for (int thread_count : {1, 2})
  for (auto kind : kAllSamplers) {
    torch::set_num_threads(thread_count);  // libtorch picks other kernels with other thread counts
    const auto all = sample(model, with_sampler(chunked(request(64, 3, 21), 64), kind, 1.0));
    const auto first_eight = sample(model, with_sampler(chunked(request(8, 3, 21), 64), kind, 1.0));
    EXPECT_TRUE(torch::equal(all.slice(0, 0, 8), first_eight)) << static_cast<int>(kind);
    // Chunks of 3 (the last chunk holds one image) and a request starting at image 5.
    const auto in_threes = sample(model, with_sampler(chunked(request(10, 3, 21), 3), kind, 1.0));
    EXPECT_TRUE(torch::equal(all.slice(0, 0, 10), in_threes)) << static_cast<int>(kind);
    const auto lone = sample(model, with_sampler(chunked(request(1, 3, 21), 64, 5), kind, 1.0));
    EXPECT_TRUE(torch::equal(all.slice(0, 5, 6), lone)) << static_cast<int>(kind);
    const auto middle = sample(model, with_sampler(chunked(request(7, 3, 21), 4, 30), kind, 1.0));
    EXPECT_TRUE(torch::equal(all.slice(0, 30, 37), middle)) << static_cast<int>(kind);
  }
  torch::set_num_threads(threads);
}

TEST(Sampling, CallerNoiseIsTheStartingPoint) {
  auto model = trained_looking_model();
  const auto noise = initial_noise(model.config(), 4, 0, 3, torch::kCPU);
  EXPECT_TRUE(torch::equal(sample(model, request(3, 4, 4), noise), sample(model, request(3, 4, 4))));
  EXPECT_FALSE(torch::equal(sample(model, request(3, 4, 4), noise * 0.5), sample(model, request(3, 4, 4))));
  EXPECT_THROW(sample(model, request(2, 4, 4), noise), Error);  // 3 noises for 2 images
  auto bad = noise.clone();
  bad[1][0][2][2] = std::nanf("");
  EXPECT_THROW(sample(model, request(3, 4, 4), bad), Error);
}

TEST(Sampling, ProgressReportsEveryStepOfEveryChunkAndCanCancel) {
  auto model = trained_looking_model();
  auto r = chunked(request(5, 3, 1), 2);
  std::vector<StepProgress> seen;
  r.progress = [&](const StepProgress& p) {
    seen.push_back(p);
    return true;
  };
  sample(model, r);
  ASSERT_EQ(seen.size(), 9u);  // chunks of 2, 2 and 1 images, 3 steps each
  EXPECT_EQ(seen[0].step, 1);
  EXPECT_EQ(seen[2].step, 3);
  EXPECT_EQ(seen[2].steps, 3);
  EXPECT_EQ(seen[3].first_image, 2);
  EXPECT_EQ(seen[8].first_image, 4);
  EXPECT_EQ(seen[8].images, 1);

  const auto before = model.evaluations();
  r.progress = [](const StepProgress& p) { return !(p.first_image == 2 && p.step == 2); };
  try {
    sample(model, r);
    FAIL() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::Cancelled);
    EXPECT_NE(std::string(e.what()).find("cancelled after step 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model.evaluations() - before, 5);  // 3 for the first chunk, 2 for the second
}

TEST(Sampling, DpmSolverResultKeepsItsSecondOrderCorrection) {
  // With one step there is no previous prediction: DPM-Solver++ is first order, and its result
  // e^-h image + (1 - e^-h) image is the prediction itself.
  auto model = trained_looking_model();
  const auto ddim = sample(model, with_sampler(request(2, 1, 3), SamplerKind::Ddim));
  const auto dpm = sample(model, with_sampler(request(2, 1, 3), SamplerKind::DpmSolverPP2M));
  EXPECT_TRUE(torch::allclose(ddim, dpm, 1e-5, 1e-6));
  EXPECT_FALSE(torch::equal(sample(model, with_sampler(request(2, 4, 3), SamplerKind::Ddim)),
                            sample(model, with_sampler(request(2, 4, 3), SamplerKind::DpmSolverPP2M))));
}

torch::Tensor some_images(const Model& model, int64_t count, uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto& c = model.config();
  return torch::rand({count, c.channels, c.image_size, c.image_size}, generator, torch::kFloat);
}

TEST(Inversion, EvaluatesStepsTimesIsDeterministicAndChunkInvariant) {
  auto model = trained_looking_model();
  const auto images = some_images(model, 5, 2);
  const auto before = model.evaluations();
  const auto noise = invert(model, request(5, 6, 0), images);
  EXPECT_EQ(model.evaluations() - before, 6);
  EXPECT_EQ(noise.sizes(), images.sizes());
  EXPECT_TRUE(torch::isfinite(noise).all().item<bool>());
  EXPECT_TRUE(torch::equal(noise, invert(model, chunked(request(5, 6, 0), 2), images)));
  EXPECT_FALSE(torch::equal(noise, invert(model, request(5, 7, 0), images)));
}

TEST(Inversion, RejectsImagesOutsideTheUnitRangeOrNotFinite) {
  auto model = trained_looking_model();
  EXPECT_THROW(invert(model, request(2, 3, 0), some_images(model, 2, 1) * 2), Error);
  auto nan = some_images(model, 2, 1);
  nan[0][0][0][0] = std::nanf("");
  EXPECT_THROW(invert(model, request(2, 3, 0), nan), Error);
  EXPECT_THROW(invert(model, request(3, 3, 0), some_images(model, 2, 1)), Error);
}

TEST(Variations, EvaluateStepsTimesStayInRangeAndFollowTheSeed) {
  auto model = trained_looking_model();
  const auto images = some_images(model, 3, 4);
  const auto before = model.evaluations();
  const auto varied = vary(model, request(3, 5, 9), images, 0.4);
  EXPECT_EQ(model.evaluations() - before, 5);
  EXPECT_GE(varied.min().item<float>(), 0.0f);
  EXPECT_LE(varied.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(varied, vary(model, chunked(request(3, 5, 9), 1), images, 0.4)));
  EXPECT_FALSE(torch::equal(varied, vary(model, request(3, 5, 10), images, 0.4)));
  EXPECT_FALSE(torch::equal(varied, vary(model, request(3, 5, 9), images, 0.8)));
}

TEST(Variations, RejectStrengthOutsideZeroToOne) {
  auto model = trained_looking_model();
  const auto images = some_images(model, 1, 4);
  for (double strength : {0.0, -0.1, 1.01, std::nan(""), std::numeric_limits<double>::infinity()})
    EXPECT_THROW(vary(model, request(1, 3, 0), images, strength), Error) << strength;
  EXPECT_NO_THROW(vary(model, request(1, 3, 0), images, 1.0));
}

TEST(Inpainting, GeneratingEverywhereIsPlainSampling) {
  auto model = trained_looking_model();
  const auto images = some_images(model, 3, 6);
  const auto everywhere = torch::ones({1, 1, 16, 16});
  for (auto kind : kAllSamplers) {
    const auto r = with_sampler(request(3, 4, 2), kind, 1.0);
    EXPECT_TRUE(torch::equal(inpaint(model, r, images, everywhere), sample(model, r))) << static_cast<int>(kind);
  }
}

TEST(Inpainting, KeptRegionFollowsTheImageAndEachImageMayHaveItsOwnMask) {
  auto model = trained_looking_model();
  const auto images = some_images(model, 2, 6);
  auto masks = torch::zeros({2, 1, 16, 16});
  masks[0].slice(1, 0, 8).fill_(1);  // image 0: generate the top half
  masks[1].slice(2, 0, 8).fill_(1);  // image 1: generate the left half
  const auto out = inpaint(model, request(2, 4, 2), images, masks);
  EXPECT_EQ(out.sizes(), images.sizes());
  // Per-image masks act per image: image 1 with its own mask alone gives the same bits.
  EXPECT_TRUE(torch::equal(out.slice(0, 1, 2), inpaint(model, chunked(request(1, 4, 2), 64, 1), images.slice(0, 1, 2),
                                                       masks.slice(0, 1, 2))));
  // Keeping everything differs from generating everything.
  EXPECT_FALSE(torch::equal(inpaint(model, request(2, 4, 2), images, torch::zeros({1, 1, 16, 16})),
                            sample(model, request(2, 4, 2))));
}

TEST(Inpainting, RejectsBadMasks) {
  auto model = trained_looking_model();
  const auto images = some_images(model, 2, 6);
  EXPECT_THROW(inpaint(model, request(2, 3, 0), images, torch::ones({1, 1, 8, 8})), Error);
  EXPECT_THROW(inpaint(model, request(2, 3, 0), images, torch::ones({3, 1, 16, 16})), Error);
  EXPECT_THROW(inpaint(model, request(2, 3, 0), images, torch::ones({1, 1, 16, 16}) * 2), Error);
  EXPECT_THROW(inpaint(model, request(2, 3, 0), images, torch::full({1, 1, 16, 16}, std::nanf(""))), Error);
}

TEST(Sampling, Bfloat16NetworkIsDeterministicAndCloseToFloat32) {
  auto model = trained_looking_model();
  auto r = request(4, 3, 5);
  const auto exact = sample(model, r);
  r.precision = Precision::BFloat16;
  const auto before = model.evaluations();
  const auto reduced = sample(model, r);
  EXPECT_EQ(model.evaluations() - before, 3);
  EXPECT_TRUE(torch::equal(reduced, sample(model, r)));
  EXPECT_FALSE(torch::equal(reduced, exact));
  EXPECT_LT((reduced - exact).abs().mean().item<float>(), 0.05f);
  EXPECT_TRUE(torch::equal(reduced.slice(0, 1, 3), sample(model, chunked(with_precision(request(2, 3, 5)), 64, 1))));
}

// Two requests of other seeds, counts and first indices, merged into one call by their image ids
// (as `ddim serve` batches them), give each request's pixels bit for bit, with every sampler.
TEST(Sampling, ImageIdsMergeRequestsBitExactly) {
  auto model = trained_looking_model();
  for (auto kind : kAllSamplers) {
    const auto alone_a = sample(model, with_sampler(chunked(request(3, 4, 11), 64, 0), kind, 0.7));
    const auto alone_b = sample(model, with_sampler(chunked(request(2, 4, 97), 64, 5), kind, 0.7));
    auto merged = with_sampler(request(5, 4, 0), kind, 0.7);
    merged.images = {{11, 0}, {11, 1}, {11, 2}, {97, 5}, {97, 6}};
    const auto both = sample(model, merged);
    EXPECT_TRUE(torch::equal(both.slice(0, 0, 3), alone_a)) << static_cast<int>(kind);
    EXPECT_TRUE(torch::equal(both.slice(0, 3, 5), alone_b)) << static_cast<int>(kind);
    // Chunked across batch_size 2, the ids still follow their images.
    merged.batch_size = 2;
    EXPECT_TRUE(torch::equal(sample(model, merged), both)) << static_cast<int>(kind);
  }
  auto wrong = request(2, 2, 0);
  wrong.images = {{1, 0}};
  EXPECT_THROW(sample(model, wrong), Error);
  wrong.images = {{1, 0}, {1, -1}};
  EXPECT_THROW(sample(model, wrong), Error);
}

// Previews come after every preview_every-th step and the last, hold the predicted image as pixels,
// and the last one is the sampled image (DDIM returns its last prediction).
TEST(Sampling, PreviewsShowThePredictedImageEveryFewSteps) {
  auto model = trained_looking_model();
  auto r = chunked(request(3, 5, 4), 2);
  r.preview_every = 2;
  std::vector<std::pair<int64_t, int64_t>> seen;  // (first image, step) of each preview
  int64_t step_in_chunk = 0;
  torch::Tensor last_previews = torch::zeros({3, 1, 16, 16});
  r.progress = [&](const StepProgress& p) {
    step_in_chunk = p.step;
    return true;
  };
  r.preview = [&](int64_t first, const torch::Tensor& pixels) {
    seen.emplace_back(first, step_in_chunk + 1);  // progress for this step comes after the preview
    EXPECT_GE(pixels.min().item<float>(), 0.0f);
    EXPECT_LE(pixels.max().item<float>(), 1.0f);
    last_previews.slice(0, first, first + pixels.size(0)).copy_(pixels);
  };
  const auto images = sample(model, r);
  const std::vector<std::pair<int64_t, int64_t>> expected{{0, 2}, {0, 4}, {0, 5}, {2, 2}, {2, 4}, {2, 5}};
  EXPECT_EQ(seen, expected);
  EXPECT_TRUE(torch::equal(last_previews, images));
  r.preview_every = 0;
  EXPECT_THROW(sample(model, r), Error);
}

TEST(Sampling, RejectsBadRequests) {
  auto model = trained_looking_model();
  EXPECT_THROW(sample(model, request(0, 4, 1)), Error);
  EXPECT_THROW(sample(model, request(1, 0, 1)), Error);
  EXPECT_THROW(sample(model, with_sampler(request(1, 2, 1), SamplerKind::Ddim, -0.5)), Error);
  EXPECT_THROW(sample(model, with_sampler(request(1, 2, 1), SamplerKind::Ddim, std::nan(""))), Error);
  EXPECT_THROW(sample(model, chunked(request(1, 2, 1), 0)), Error);
  EXPECT_THROW(sample(model, chunked(request(1, 2, 1), 4, -1)), Error);
}

// ---- one step of each sampler against its formula, with numbers worked out by hand ----

torch::Tensor scalar(double value) { return torch::full({1, 1, 1, 1}, value, torch::kFloat64); }

// A variance-preserving schedule point: signal s, noise sqrt(1 - s^2).
struct Rates {
  torch::Tensor signal, noise;
};
Rates rates(double signal) { return {scalar(signal), scalar(std::sqrt(1 - signal * signal))}; }

// DDPM's ancestral step is the posterior q(x_{t-1} | x_t, x_0) of Ho et al. (2020), eqs. 6-7, with
// abar_t = s^2 and abar_{t-1} = s'^2: mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0
// + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t, variance (1 - abar_{t-1}) / (1 - abar_t) beta_t.
TEST(SamplerFormulas, OneDdpmStepIsThePosteriorOfHoEtAl) {
  const Rates now = rates(0.8), next = rates(0.9);
  const auto x = scalar(0.5);
  const Prediction prediction{scalar(0.7), scalar(0.2)};
  auto sampler = make_sampler(SamplerKind::Ddpm, 0);
  const auto stepped = sampler->step({0, x, prediction, now.signal, now.noise, next.signal, next.noise},
                                     [](int64_t) { return scalar(0.3); });
  // By hand: abar_t = 0.64, abar_{t-1} = 0.81, alpha_t = 0.64 / 0.81 = 0.790123, beta_t = 0.209877;
  // mean = 0.9 * 0.209877 / 0.36 * 0.2 + 0.888889 * 0.19 / 0.36 * 0.5 = 0.104938 + 0.234568 = 0.339506;
  // sigma = sqrt(0.19 / 0.36 * 0.209877) = 0.332819; x_{t-1} = 0.339506 + 0.332819 * 0.3 = 0.439352.
  EXPECT_NEAR(stepped.item<double>(), 0.439352, 1e-6);
}

// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), with lambda = log(s / sigma) and h_i = lambda_i - lambda_{i-1}:
// x_i = (sigma_i / sigma_{i-1}) x_{i-1} - s_i (e^{-h_i} - 1) D_i, where D_1 = x0_0 and, from the second step on,
// D_i = (1 + 1 / (2 r_i)) x0_{i-1} - 1 / (2 r_i) x0_{i-2}, r_i = h_{i-1} / h_i.
TEST(SamplerFormulas, DpmSolverSecondStepUsesTheSecondOrderCorrection) {
  const Rates first = rates(0.2), second = rates(0.6), third = rates(0.9);
  auto sampler = make_sampler(SamplerKind::DpmSolverPP2M, 0);
  const auto none = [](int64_t) -> torch::Tensor { ADD_FAILURE() << "DPM-Solver++ draws no noise"; return scalar(0); };
  const auto x0 = scalar(-0.4);
  const Prediction p0{scalar(0.1), scalar(0.3)};
  const auto x1 = sampler->step({0, x0, p0, first.signal, first.noise, second.signal, second.noise}, none);
  // By hand: lambda = log(0.2 / 0.979796) = -1.589027, log(0.6 / 0.8) = -0.287682, log(0.9 / 0.435890) = 0.725005;
  // h_1 = 1.301345, h_2 = 1.012687. Step 1 (first order): x_1 = 0.8 / 0.979796 * -0.4 - 0.6 * (e^-1.301345 - 1) * 0.3
  // = -0.326599 + 0.131010 = -0.195588.
  EXPECT_NEAR(x1.item<double>(), -0.195588, 1e-6);
  const Prediction p1{scalar(0.2), scalar(0.5)};
  const auto x2 = sampler->step({1, x1, p1, second.signal, second.noise, third.signal, third.noise}, none);
  // Step 2: 1 / (2 r) = h_2 / (2 h_1) = 0.389093; D = 1.389093 * 0.5 - 0.389093 * 0.3 = 0.577819;
  // x_2 = 0.435890 / 0.8 * -0.195588 - 0.9 * (e^-1.012687 - 1) * 0.577819 = -0.106569 + 0.331138 = 0.224569.
  EXPECT_NEAR(x2.item<double>(), 0.224569, 1e-6);
}

}  // namespace
}  // namespace ddim
