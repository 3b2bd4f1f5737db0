// KID, the feature extractor, the noise embedding and sampling trajectories (the pieces of
// `ddim eval` and `ddim plot`).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "c_test_util.h"
#include "ddim.h"
#include "error.h"
#include "feature_extractor.h"
#include "kid.h"
#include "test_util.h"

namespace {

const std::string kExtractor = std::string(DDIM_SOURCE_DIR) + "/models/fashion-mnist-features.pt";

// The unbiased MMD^2 under (x.y/d + 1)^3, by the definition, in long double.
double direct_mmd(const std::vector<std::vector<double>>& x, const std::vector<std::vector<double>>& y) {
  const auto k = [](const std::vector<double>& a, const std::vector<double>& b) {
    long double dot = 0;
    for (size_t i = 0; i < a.size(); ++i) dot += static_cast<long double>(a[i]) * b[i];
    const long double base = dot / a.size() + 1;
    return base * base * base;
  };
  long double xx = 0, yy = 0, xy = 0;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x.size(); ++j)
      if (i != j) xx += k(x[i], x[j]);
  for (size_t i = 0; i < y.size(); ++i)
    for (size_t j = 0; j < y.size(); ++j)
      if (i != j) yy += k(y[i], y[j]);
  for (const auto& a : x)
    for (const auto& b : y) xy += k(a, b);
  const long double m = x.size(), n = y.size();
  return static_cast<double>(xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n));
}

torch::Tensor to_tensor(const std::vector<std::vector<double>>& rows) {
  std::vector<torch::Tensor> tensors;
  for (const auto& row : rows) tensors.push_back(torch::tensor(row, torch::kDouble));
  return torch::stack(tensors).to(torch::kFloat);
}

TEST(Kid, MatchesTheDefinitionOnAHandMadeCase) {
  // Features near 10 make each kernel value ~1e6 while MMD^2 is a few units: float32 sums of such
  // terms would lose the difference, float64 keeps it.
  const std::vector<std::vector<double>> real{{10.0, 10.5, 9.5}, {10.25, 9.75, 10.0}, {9.5, 10.0, 10.5}};
  const std::vector<std::vector<double>> generated{{10.5, 10.5, 10.0}, {9.75, 10.25, 10.25}, {10.0, 9.5, 10.75}, {10.5, 9.75, 9.5}};
  const double expected = direct_mmd(real, generated);
  const double computed = ddim::polynomial_mmd(to_tensor(real), to_tensor(generated));
  EXPECT_NEAR(computed, expected, 1e-9 * std::abs(expected) + 1e-9) << "expected " << expected;
  EXPECT_NE(expected, 0.0);

  // Subsets of 3: all the real images and 3 of the 4 generated ones, so every subset's estimate is one
  // of the 4 direct MMDs below, and KID (their mean over 5 draws) lies between the extremes.
  ddim::KidOptions options;
  options.subsets = 5;
  options.subset_size = 3;
  const auto kid = ddim::kernel_inception_distance(to_tensor(real), to_tensor(generated), options);
  EXPECT_EQ(kid.subset_size, 3);
  EXPECT_EQ(kid.subsets, 5);
  double lowest = INFINITY, highest = -INFINITY;
  for (size_t left_out = 0; left_out < generated.size(); ++left_out) {
    auto three = generated;
    three.erase(three.begin() + static_cast<std::ptrdiff_t>(left_out));
    lowest = std::min(lowest, direct_mmd(real, three));
    highest = std::max(highest, direct_mmd(real, three));
  }
  EXPECT_GE(kid.mean, lowest - 1e-9) << lowest;
  EXPECT_LE(kid.mean, highest + 1e-9) << highest;
  EXPECT_LE(kid.std, highest - lowest + 1e-9);
}

TEST(Kid, NearZeroForOneDistributionLargeForAnother) {
  torch::manual_seed(3);
  const auto a = torch::randn({400, 16}), b = torch::randn({400, 16}), shifted = torch::randn({400, 16}) * 2 + 1;
  ddim::KidOptions options;
  options.subsets = 20;
  options.subset_size = 200;
  const auto same = ddim::kernel_inception_distance(a, b, options);
  const auto different = ddim::kernel_inception_distance(a, shifted, options);
  EXPECT_LT(std::abs(same.mean), 0.05) << same.mean;
  EXPECT_GT(different.mean, 20 * std::abs(same.mean) + 0.5) << different.mean;
  EXPECT_GT(same.std, 0.0);
  // Same seed, same subsets, same figure.
  const auto again = ddim::kernel_inception_distance(a, shifted, options);
  EXPECT_EQ(again.mean, different.mean);
  EXPECT_EQ(again.std, different.std);
}

TEST(Kid, RejectsBadFeatures) {
  const auto good = torch::randn({10, 4});
  ddim::KidOptions options;
  auto nan = good.clone();
  nan[3][1] = NAN;
  EXPECT_THROW(ddim::kernel_inception_distance(good, nan, options), ddim::Error);
  EXPECT_THROW(ddim::kernel_inception_distance(good, torch::randn({10, 5}), options), ddim::Error);
  EXPECT_THROW(ddim::kernel_inception_distance(good, torch::randn({1, 4}), options), ddim::Error);
  options.subset_size = 11;
  EXPECT_THROW(ddim::kernel_inception_distance(good, good, options), ddim::Error);
  options.subset_size = 0;
  options.subsets = 0;
  EXPECT_THROW(ddim::kernel_inception_distance(good, good, options), ddim::Error);
}

TEST(Kid, CApiChecksItsArguments) {
  std::vector<float> real(8 * 4, 0.5f), generated(8 * 4, 0.25f);
  for (size_t i = 0; i < real.size(); ++i) real[i] += 0.01f * static_cast<float>(i % 7);
  ddim_kid_params params;
  ddim_kid_params_init(&params);
  EXPECT_EQ(params.subsets, 100);
  ddim_kid_result result{};
  ASSERT_EQ(ddim_kid(real.data(), 8, generated.data(), 8, 4, &params, &result), DDIM_OK) << ddim_last_error();
  EXPECT_EQ(result.subset_size, 4);  // half the smaller set by default
  EXPECT_GT(result.kid, 0.0);
  EXPECT_EQ(ddim_kid(nullptr, 8, generated.data(), 8, 4, &params, &result), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_kid(real.data(), 1, generated.data(), 8, 4, &params, &result), DDIM_ERR_INVALID_ARGUMENT);
  real[5] = NAN;
  EXPECT_EQ(ddim_kid(real.data(), 8, generated.data(), 8, 4, &params, &result), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("NaN"), std::string::npos);
}

TEST(Extractor, ShippedExtractorLoadsAndIsDeterministic) {
  ddim_extractor* extractor = nullptr;
  ASSERT_EQ(ddim_extractor_load(kExtractor.c_str(), DDIM_DEVICE_CPU, &extractor), DDIM_OK) << ddim_last_error();
  int64_t dimension = 0;
  int32_t size = 0, channels = 0, standardised = 0;
  ASSERT_EQ(ddim_extractor_info(extractor, &dimension, &size, &channels, &standardised), DDIM_OK);
  EXPECT_EQ(dimension, 128);
  EXPECT_EQ(size, 32);
  EXPECT_EQ(channels, 1);
  EXPECT_EQ(standardised, 1);

  // Three grey 28x28 images (resized to 32 inside), once together and once alone.
  torch::manual_seed(1);
  const auto images = torch::rand({3, 1, 28, 28});
  std::vector<float> pixels(images.data_ptr<float>(), images.data_ptr<float>() + images.numel());
  std::vector<float> together(3 * 128), first(128);
  ASSERT_EQ(ddim_extractor_features(extractor, pixels.data(), 3, 1, 28, 28, pixels.size(), together.data(), together.size()),
            DDIM_OK)
      << ddim_last_error();
  ASSERT_EQ(ddim_extractor_features(extractor, pixels.data(), 1, 1, 28, 28, 28 * 28, first.data(), first.size()), DDIM_OK);
  for (int i = 0; i < 128; ++i) EXPECT_NEAR(first[i], together[i], 1e-4);

  // RGB input is averaged to grey: a grey image given as RGB has the grey image's features.
  const auto rgb = images.slice(0, 0, 1).expand({1, 3, 28, 28}).contiguous();
  std::vector<float> rgb_pixels(rgb.data_ptr<float>(), rgb.data_ptr<float>() + rgb.numel()), from_rgb(128);
  ASSERT_EQ(ddim_extractor_features(extractor, rgb_pixels.data(), 1, 3, 28, 28, rgb_pixels.size(), from_rgb.data(), 128), DDIM_OK);
  for (int i = 0; i < 128; ++i) EXPECT_NEAR(from_rgb[i], first[i], 1e-4);

  pixels[10] = 2.0f;
  EXPECT_EQ(ddim_extractor_features(extractor, pixels.data(), 3, 1, 28, 28, pixels.size(), together.data(), together.size()),
            DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_extractor_features(extractor, pixels.data(), 3, 1, 28, 28, pixels.size(), together.data(), 5),
            DDIM_ERR_BUFFER_SIZE);
  ddim_extractor_free(extractor);
}

TEST(Extractor, MissingCorruptAndMalformedFilesAreClearErrors) {
  ddim::testing::TempDir dir;
  ddim_extractor* extractor = nullptr;
  EXPECT_EQ(ddim_extractor_load(dir.file("absent.pt").c_str(), DDIM_DEVICE_CPU, &extractor), DDIM_ERR_IO);
  EXPECT_EQ(extractor, nullptr);
  ddim::testing::write_bytes(dir.file("junk.pt"), {'n', 'o', 't', ' ', 'a', ' ', 'z', 'i', 'p'});
  EXPECT_EQ(ddim_extractor_load(dir.file("junk.pt").c_str(), DDIM_DEVICE_CPU, &extractor), DDIM_ERR_FORMAT);
  EXPECT_NE(std::string(ddim_last_error()).find("TorchScript"), std::string::npos) << ddim_last_error();

  // The shipped module with a broken or inconsistent .json beside it.
  auto module = ddim::testing::read_bytes(kExtractor);
  ddim::testing::write_bytes(dir.file("copy.pt"), module);
  module.resize(module.size() / 2);
  ddim::testing::write_bytes(dir.file("truncated.pt"), module);
  EXPECT_EQ(ddim_extractor_load(dir.file("truncated.pt").c_str(), DDIM_DEVICE_CPU, &extractor), DDIM_ERR_FORMAT);
  const auto json = [&](const std::string& text) {
    ddim::testing::write_bytes(dir.file("copy.pt.json"), std::vector<uint8_t>(text.begin(), text.end()));
    return ddim_extractor_load(dir.file("copy.pt").c_str(), DDIM_DEVICE_CPU, &extractor);
  };
  EXPECT_EQ(json("{\"input_size\": 32,"), DDIM_ERR_FORMAT);
  EXPECT_EQ(json("{\"input_size\": 32, \"input_channels\": 1, \"mean\": [0.3], \"std\": [0]}"), DDIM_ERR_FORMAT);
  EXPECT_EQ(json("{\"input_size\": 32, \"input_channels\": 1, \"mean\": [0.3], \"std\": [0.3], \"feature_mean\": [0], "
                 "\"feature_std\": [1]}"),
            DDIM_ERR_FORMAT);
  EXPECT_NE(std::string(ddim_last_error()).find("128"), std::string::npos) << ddim_last_error();
  ASSERT_EQ(json("{\"input_size\": 32, \"input_channels\": 1, \"mean\": [0.3], \"std\": [0.3]}"), DDIM_OK) << ddim_last_error();
  int32_t standardised = 1;
  EXPECT_EQ(ddim_extractor_info(extractor, nullptr, nullptr, nullptr, &standardised), DDIM_OK);
  EXPECT_EQ(standardised, 0);
  ddim_extractor_free(extractor);
  ddim_extractor_free(nullptr);
}

TEST(Embedding, IsTheSinusoidalEmbeddingOfTheUNet) {
  auto config = ddim::testing::tiny_c_config();  // embedding_dim 8: frequencies 1, 10, 100, 1000
  const std::vector<float> variances{0.0f, 0.25f};
  std::vector<float> out(2 * 8);
  ASSERT_EQ(ddim_noise_embedding(&config, variances.data(), 2, out.data(), out.size()), DDIM_OK) << ddim_last_error();
  for (int j = 0; j < 4; ++j) {
    EXPECT_NEAR(out[j], 0.0f, 1e-6);      // sin(0)
    EXPECT_NEAR(out[4 + j], 1.0f, 1e-6);  // cos(0)
  }
  EXPECT_NEAR(out[8 + 0], std::sin(2 * M_PI * 1.0 * 0.25), 1e-5);
  EXPECT_NEAR(out[8 + 4 + 1], std::cos(2 * M_PI * 10.0 * 0.25), 1e-4);
  EXPECT_EQ(ddim_noise_embedding(&config, variances.data(), 2, out.data(), 3), DDIM_ERR_BUFFER_SIZE);
}

TEST(Trajectory, StartsAtTheNoiseAndEndsAtTheSample) {
  const auto config = ddim::testing::tiny_c_config();
  ddim_model* model = nullptr;
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 4, &model), DDIM_OK);
  ASSERT_EQ(ddim::testing::train_a_little(model), DDIM_OK) << ddim_last_error();  // intermediate frames then differ
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = 3;
  params.steps = 4;
  params.batch_size = 2;  // chunked: frames must still come image by image
  const int64_t image = 16 * 16;
  std::vector<float> frames(3 * 5 * image), samples(3 * image);
  ASSERT_EQ(ddim_sample_trajectory(model, &params, nullptr, 0, frames.data(), frames.size()), DDIM_OK) << ddim_last_error();
  ASSERT_EQ(ddim_sample(model, &params, nullptr, 0, samples.data(), samples.size()), DDIM_OK);
  for (int i = 0; i < 3; ++i)
    for (int64_t p = 0; p < image; ++p) ASSERT_EQ(frames[(i * 5 + 4) * image + p], samples[i * image + p]);
  // Frame 0 is the starting noise (normaliser mean 0, std 1), clipped to [0, 1].
  std::vector<float> noise(3 * image);
  ASSERT_EQ(ddim_initial_noise(model, params.seed, 0, 3, noise.data(), noise.size()), DDIM_OK);
  for (int i = 0; i < 3; ++i)
    for (int64_t p = 0; p < image; ++p)
      ASSERT_EQ(frames[(i * 5) * image + p], std::min(1.0f, std::max(0.0f, noise[i * image + p])));
  // The states in between move from the noise to the sample: frame 2 equals neither end.
  const auto frame = [&](int i, int k) { return std::vector<float>(frames.begin() + (i * 5 + k) * image, frames.begin() + (i * 5 + k + 1) * image); };
  EXPECT_NE(frame(0, 2), frame(0, 0));
  EXPECT_NE(frame(0, 2), frame(0, 4));
  EXPECT_EQ(ddim_sample_trajectory(model, &params, nullptr, 0, frames.data(), 7), DDIM_ERR_BUFFER_SIZE);
  ddim_model_free(model);
}

}  // namespace
