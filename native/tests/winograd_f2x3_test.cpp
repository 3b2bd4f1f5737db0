// ddim4j's Winograd F(2x2, 3x3) against libtorch's convolution, on nChw8c buffers made here.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "winograd_f2x3.h"

namespace ddim {
namespace {

class Winograd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WinogradF2x3::supported(2)) GTEST_SKIP() << "no AVX2 and FMA on this CPU";
  }
};

// [N, C, H, W] -> nChw8c, channels padded with zeros to a multiple of 8.
torch::Tensor to_blocked(const torch::Tensor& plain) {
  const int64_t channels = plain.size(1), padded = (channels + 7) / 8 * 8;
  return torch::constant_pad_nd(plain, {0, 0, 0, 0, 0, padded - channels})
      .view({plain.size(0), padded / 8, 8, plain.size(2), plain.size(3)})
      .permute({0, 1, 3, 4, 2})
      .contiguous();
}

// nChw8c -> [N, channels, H, W], and the padding channels, which must stay zero.
std::pair<torch::Tensor, torch::Tensor> from_blocked(const torch::Tensor& blocked, int64_t channels) {
  const auto plain = blocked.permute({0, 1, 4, 2, 3}).reshape({blocked.size(0), -1, blocked.size(2), blocked.size(3)});
  return {plain.slice(1, 0, channels), plain.slice(1, channels)};
}

struct Shape {
  int64_t batch, in, out, size;
};

using Epilogue = WinogradF2x3::Epilogue;

// The convolution into `destination` (else a fresh buffer of 7s), with `bias_map` [out, size, size] if given.
torch::Tensor run(const Shape& shape, const torch::Tensor& input, const torch::Tensor& weights, const torch::Tensor& bias,
                  Epilogue epilogue = Epilogue::Store, torch::Tensor destination = {}, const torch::Tensor& bias_map = {}) {
  WinogradF2x3 winograd(shape.batch, shape.in, shape.out, shape.size);
  const auto map = bias_map.defined() ? bias_map.contiguous() : bias_map;
  winograd.set_weights(weights.contiguous().data_ptr<float>(), bias.contiguous().data_ptr<float>(),
                       map.defined() ? map.data_ptr<float>() : nullptr);
  const auto source = to_blocked(input);
  if (!destination.defined()) destination = to_blocked(torch::full({shape.batch, shape.out, shape.size, shape.size}, 7.0f));
  winograd.run(source.data_ptr<float>(), destination.data_ptr<float>(), epilogue);
  return destination;
}

// Channels that fill no whole block, sizes from 2x2 (one tile per image) up, and batches of several
// chunks with a partial last one (17 images of 8x8: 272 tiles).
TEST_F(Winograd, ComputesTheConvolutionOfEveryShape) {
  const Shape shapes[] = {{1, 8, 16, 2}, {3, 12, 20, 6}, {2, 32, 32, 16}, {17, 8, 8, 8}, {2, 40, 24, 4}, {1, 3, 5, 10}};
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  for (const auto& shape : shapes) {
    const auto input = torch::randn({shape.batch, shape.in, shape.size, shape.size}, generator);
    const auto weights = torch::randn({shape.out, shape.in, 3, 3}, generator) * 0.2;
    const auto bias = torch::randn({shape.out}, generator);
    const auto expected = torch::conv2d(input, weights, bias, 1, 1);
    const auto [result, padding] = from_blocked(run(shape, input, weights, bias), shape.out);
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT((result - expected).abs().max().item<double>(), 1e-5 * scale)
        << shape.batch << "x" << shape.in << "->" << shape.out << " at " << shape.size;
    if (padding.numel() > 0) EXPECT_EQ(padding.abs().max().item<double>(), 0.0) << "padding channels written";
  }
}

// accumulate: dst += conv(src) + bias, the residual add of conv_b.
TEST_F(Winograd, AddsOntoTheDestinationWhenAccumulating) {
  const Shape shape{2, 16, 12, 8};
  auto generator = at::make_generator<at::CPUGeneratorImpl>(6);
  const auto input = torch::randn({shape.batch, shape.in, shape.size, shape.size}, generator);
  const auto weights = torch::randn({shape.out, shape.in, 3, 3}, generator) * 0.2;
  const auto bias = torch::randn({shape.out}, generator);
  const auto residual = torch::randn({shape.batch, shape.out, shape.size, shape.size}, generator);
  const auto [result, padding] =
      from_blocked(run(shape, input, weights, bias, Epilogue::Accumulate, to_blocked(residual)), shape.out);
  const auto expected = residual + torch::conv2d(input, weights, bias, 1, 1);
  EXPECT_LT((result - expected).abs().max().item<double>(), 1e-5 * expected.abs().max().item<double>());
  EXPECT_EQ(padding.abs().max().item<double>(), 0.0);
}

// conv_a with its BatchNorm folded in: SiLU(conv(src) + bias + map), the map varying per pixel.
TEST_F(Winograd, AddsABiasMapAndAppliesSilu) {
  const Shape shape{3, 16, 20, 8};
  auto generator = at::make_generator<at::CPUGeneratorImpl>(8);
  const auto input = torch::randn({shape.batch, shape.in, shape.size, shape.size}, generator) * 4;
  const auto weights = torch::randn({shape.out, shape.in, 3, 3}, generator) * 0.5;
  const auto bias = torch::randn({shape.out}, generator);
  const auto map = torch::randn({shape.out, shape.size, shape.size}, generator);
  const auto [result, padding] = from_blocked(run(shape, input, weights, bias, Epilogue::Silu, {}, map), shape.out);
  const auto expected = torch::silu(torch::conv2d(input, weights, bias, 1, 1) + map.unsqueeze(0));
  EXPECT_GT(expected.abs().max().item<double>(), 20);  // SiLU's whole range: large, small and negative values
  EXPECT_LT(expected.min().item<double>(), -0.2);
  EXPECT_LT((result - expected).abs().max().item<double>(), 1e-5 * expected.abs().max().item<double>());
  EXPECT_EQ(padding.abs().max().item<double>(), 0.0);
  // SiLU alone, through an identity convolution, where its input is extreme: 0 far below, x far
  // above, no NaN or infinity. (Integers, so that the transforms' sums of neighbours stay exact.)
  const auto extremes = torch::tensor({-1000.0f, -100.0f, -88.0f, -20.0f, -1.0f, 0.0f, 1.0f, 2.0f, 20.0f, 88.0f, 100.0f, 1000.0f});
  const int64_t n = extremes.numel();
  const auto identity = torch::zeros({8, 8, 3, 3});
  for (int64_t k = 0; k < 8; ++k) identity[k][k][1][1] = 1;
  const auto values = extremes.view({1, 1, 1, n}).expand({1, 8, 2, n}).contiguous();  // size 2 x n is not square
  const auto square = torch::zeros({1, 8, n, n});
  square.slice(2, 0, 2).copy_(values);
  const auto [silu, unused] = from_blocked(run({1, 8, 8, n}, square, identity, torch::zeros({8}), Epilogue::Silu), 8);
  const auto expected_silu = torch::silu(square.to(torch::kDouble));
  EXPECT_TRUE(torch::isfinite(silu).all().item<bool>());
  EXPECT_TRUE(((silu.to(torch::kDouble) - expected_silu).abs() <= expected_silu.abs() * 1e-6 + 1e-30).all().item<bool>())
      << silu.slice(2, 0, 1) << expected_silu.slice(2, 0, 1);
}

// Every tile is computed alike wherever its chunk falls: an image's output is the same to the bit
// alone, in a batch, and run after run.
TEST_F(Winograd, IsDeterministicAndBatchInvariant) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto input = torch::randn({9, 24, 16, 16}, generator);
  const auto weights = torch::randn({40, 24, 3, 3}, generator) * 0.2;
  const auto bias = torch::randn({40}, generator);
  const auto batched = run({9, 24, 40, 16}, input, weights, bias);
  EXPECT_TRUE(torch::equal(batched, run({9, 24, 40, 16}, input, weights, bias)));
  EXPECT_TRUE(torch::equal(batched.slice(0, 4, 5), run({1, 24, 40, 16}, input.slice(0, 4, 5), weights, bias)));
}

TEST_F(Winograd, RunsOnEvenSizesOnly) {
  EXPECT_TRUE(WinogradF2x3::supported(64));
  EXPECT_FALSE(WinogradF2x3::supported(7));
  EXPECT_FALSE(WinogradF2x3::supported(0));
}

}  // namespace
}  // namespace ddim
