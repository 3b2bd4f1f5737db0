// A 3x3 convolution (stride 1, zero padding 1) by Winograd's F(2x2, 3x3), on float32 activations
// in oneDNN's nChw8c layout, for the fused network on AVX2 CPUs: oneDNN 2.6 has a Winograd kernel
// only for AVX-512, and its direct AVX2 kernel already runs near the FMA peak, so fewer
// multiplications are the one lever left there. F(2x2, 3x3) computes each 2x2 block of outputs
// from a 4x4 block of input with 16 multiplications per channel pair instead of 36 (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2015); its transforms only add, subtract and
// halve, so it rounds little differently from a direct convolution.
//
// The work runs in chunks of 2x2 output tiles small enough for the core's L2 cache: the chunk's
// input transformed (16 matrices [tiles x in]), 16 matrix products with the transformed weights
// ([in x out] each), and the output transform, which adds the bias (or a per-pixel map of biases:
// a BatchNorm folded in) and stores, applies SiLU or accumulates.
#pragma once

#include <cstdint>
#include <vector>

namespace ddim {

class WinogradF2x3 {
 public:
  // Whether this CPU and build run it (AVX2 and FMA), for images of `size` x `size` (even sizes).
  static bool supported(int64_t size);

  // `in` and `out`: channels (the nChw8c buffers pad them to a multiple of 8, with zeros).
  WinogradF2x3(int64_t batch, int64_t in, int64_t out, int64_t size);

  int64_t size() const { return size_; }

  // What happens to conv(src) + bias before it is stored.
  enum class Epilogue {
    Store,       // dst = result
    Silu,        // dst = SiLU(result): conv_a
    Accumulate,  // dst += result: conv_b's residual add onto the shortcut
  };

  // weights: [out, in, 3, 3] and bias: [out], float32, contiguous. Transforms and keeps them.
  // bias_map, where given: [out, size, size], added per pixel as well (a BatchNorm folded into the
  // convolution: the convolution of its shift, whose border differs from its interior).
  void set_weights(const float* weights, const float* bias, const float* bias_map = nullptr);

  // src and dst: nChw8c float32 of [batch, in or out, size, size], distinct buffers.
  void run(const float* src, float* dst, Epilogue epilogue) const;

 private:
  // Tiles [first_tile, first_tile + tiles), output channels [16 first_column, 16 end_column).
  void run_chunk(const float* src, float* dst, Epilogue epilogue, int64_t first_tile, int64_t tiles, int64_t first_column,
                 int64_t end_column, float* scratch) const;

  int64_t batch_, in_, out_, size_;
  int64_t in_padded_;   // in rounded up to 8: the layout's channels
  int64_t out_padded_;  // out rounded up to 16: the matrix products' columns (two AVX2 registers)
  int64_t chunk_;       // tiles per chunk
  std::vector<float> transformed_weights_;  // [16][out_padded_ / 16][in_padded_][16]
  std::vector<float> bias_;                 // [out_padded_], zeros past out
  std::vector<float> bias_map_;             // bias + bias map, [out / 8][size][size][8]: empty without a map
};

}  // namespace ddim
