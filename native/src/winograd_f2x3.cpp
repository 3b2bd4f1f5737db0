#include "winograd_f2x3.h"

#include <algorithm>

#include <ATen/Parallel.h>

#include "error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DDIM_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace ddim {

namespace {

constexpr int64_t kLanes = 8;         // floats per AVX2 register, and nChw8c's channel block
constexpr int64_t kPositions = 16;    // the 4x4 transformed tile
constexpr int64_t kRowsPerKernel = 6; // tiles per matrix-product kernel call: 12 accumulators, 2 weight registers
constexpr int64_t kScratchBytes = 384 * 1024;  // per thread: the transformed chunk and its products, in L2
constexpr int64_t kMatrixGap = 16;  // floats between the transformed input's matrices (see run_chunk)

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

#if defined(__x86_64__)

namespace {

// products[r][0..16) = sum over c of inputs[r][c] * weights[c][0..16), for 6 rows of tiles: 12
// accumulators, named one by one (in an array, GCC stores them to the stack at every iteration).
DDIM_AVX2 void multiply(const float* inputs, int64_t input_stride, const float* weights, int64_t channels,
                        float* products, int64_t product_stride) {
  __m256 low0 = _mm256_setzero_ps(), low1 = low0, low2 = low0, low3 = low0, low4 = low0, low5 = low0;
  __m256 high0 = low0, high1 = low0, high2 = low0, high3 = low0, high4 = low0, high5 = low0;
  const float *row0 = inputs, *row1 = row0 + input_stride, *row2 = row1 + input_stride;
  const float *row3 = row2 + input_stride, *row4 = row3 + input_stride, *row5 = row4 + input_stride;
  for (int64_t c = 0; c < channels; ++c) {
    const __m256 w_low = _mm256_loadu_ps(weights + c * 16), w_high = _mm256_loadu_ps(weights + c * 16 + 8);
#define DDIM_ROW(r)                                            \
  {                                                            \
    const __m256 x = _mm256_broadcast_ss(row##r + c);          \
    low##r = _mm256_fmadd_ps(x, w_low, low##r);                \
    high##r = _mm256_fmadd_ps(x, w_high, high##r);             \
  }
    DDIM_ROW(0) DDIM_ROW(1) DDIM_ROW(2) DDIM_ROW(3) DDIM_ROW(4) DDIM_ROW(5)
#undef DDIM_ROW
  }
  const __m256 results[12] = {low0, high0, low1, high1, low2, high2, low3, high3, low4, high4, low5, high5};
  for (int r = 0; r < kRowsPerKernel; ++r) {
    _mm256_storeu_ps(products + r * product_stride, results[2 * r]);
    _mm256_storeu_ps(products + r * product_stride + 8, results[2 * r + 1]);
  }
}

// SiLU, x * sigmoid(x) = x / (1 + exp(-x)), with exp by Cephes' expf: exp(x) = 2^n e^r, |r| <= ln2/2,
// e^r by a degree-6 polynomial (~1 ulp); n goes into the exponent bits. -x is clamped to expf's range,
// where the quotient is 0 or x anyway.
DDIM_AVX2 __m256 silu(__m256 x) {
  const __m256 minus_x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), _mm256_set1_ps(-87.3f)),
                                       _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(minus_x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = -x - n ln2, ln2 in two parts so that the product rounds exactly.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), minus_x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

}  // namespace

bool WinogradF2x3::supported(int64_t size) {
  return size >= 2 && size % 2 == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// The chunk's tiles [first_tile, first_tile + tiles), numbered image by image, row by row.
// scratch: transformed input [16][rows][in_padded_], then products [rows][16][out_padded_], rows:
// tiles rounded up to the kernel's 6 (the rows past `tiles` are computed from stale values and
// never read). The 16 matrices of the transformed input lie a cache line further apart than they
// need: at a multiple of 4 KiB, the 16 stores of each tile would all fall in one set of the L1
// cache (measured: the input transform took 3.4 ms for 3 ms of products).
DDIM_AVX2 void WinogradF2x3::run_chunk(const float* src, float* dst, Epilogue epilogue, int64_t first_tile, int64_t tiles,
                                       int64_t first_column, int64_t end_column, float* scratch) const {
  const int64_t per_row = size_ / 2, per_image = per_row * per_row, plane = size_ * size_;
  const int64_t in_blocks = in_padded_ / kLanes, out_blocks = round_up(out_, kLanes) / kLanes;
  const int64_t rows = round_up(tiles, kRowsPerKernel);
  const int64_t matrix_stride = rows * in_padded_ + kMatrixGap;
  float* transformed = scratch;
  float* products = scratch + kPositions * matrix_stride;

  // Input transform V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], 8 channels at a time.
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t tile = first_tile + t, n = tile / per_image, ty = (tile % per_image) / per_row, tx = tile % per_row;
    for (int64_t block = 0; block < in_blocks; ++block) {
      const float* image = src + (n * in_blocks + block) * plane * kLanes;
      __m256 d[4][4];
      for (int i = 0; i < 4; ++i) {
        const int64_t y = 2 * ty - 1 + i;
        for (int j = 0; j < 4; ++j) {
          const int64_t x = 2 * tx - 1 + j;
          d[i][j] = (y >= 0 && y < size_ && x >= 0 && x < size_) ? _mm256_loadu_ps(image + (y * size_ + x) * kLanes)
                                                                 : _mm256_setzero_ps();
        }
      }
      __m256 left[4][4];  // B^T d
      for (int j = 0; j < 4; ++j) {
        left[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
        left[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
        left[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
        left[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
      }
      for (int i = 0; i < 4; ++i) {
        const __m256 v[4] = {_mm256_sub_ps(left[i][0], left[i][2]), _mm256_add_ps(left[i][1], left[i][2]),
                             _mm256_sub_ps(left[i][2], left[i][1]), _mm256_sub_ps(left[i][1], left[i][3])};
        for (int j = 0; j < 4; ++j)
          _mm256_storeu_ps(transformed + (4 * i + j) * matrix_stride + t * in_padded_ + block * kLanes, v[j]);
      }
    }
  }

  // 16 products [tiles x in] x [in x out], 6 tiles x 16 output channels per kernel call.
  const int64_t column_blocks = out_padded_ / 16;
  for (int64_t position = 0; position < kPositions; ++position)
    for (int64_t columns = first_column; columns < end_column; ++columns) {
      const float* weights = transformed_weights_.data() + (position * column_blocks + columns) * in_padded_ * 16;
      for (int64_t t = 0; t < rows; t += kRowsPerKernel)
        multiply(transformed + position * matrix_stride + t * in_padded_, in_padded_, weights, in_padded_,
                 products + (t * kPositions + position) * out_padded_ + columns * 16, kPositions * out_padded_);
    }

  // Output transform Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1], plus the bias (or the bias map), then
  // the epilogue, 8 channels at a time.
  const bool map = !bias_map_.empty();
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t tile = first_tile + t, n = tile / per_image, ty = (tile % per_image) / per_row, tx = tile % per_row;
    for (int64_t block = 2 * first_column; block < std::min(2 * end_column, out_blocks); ++block) {
      const float* m = products + t * kPositions * out_padded_ + block * kLanes;
      __m256 sums[2][4];
      for (int j = 0; j < 4; ++j) {
        const __m256 m0 = _mm256_loadu_ps(m + (0 * 4 + j) * out_padded_), m1 = _mm256_loadu_ps(m + (1 * 4 + j) * out_padded_);
        const __m256 m2 = _mm256_loadu_ps(m + (2 * 4 + j) * out_padded_), m3 = _mm256_loadu_ps(m + (3 * 4 + j) * out_padded_);
        sums[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        sums[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      const __m256 bias = _mm256_loadu_ps(bias_.data() + block * kLanes);
      float* image = dst + (n * out_blocks + block) * plane * kLanes;
      for (int i = 0; i < 2; ++i) {
        const __m256 y[2] = {_mm256_add_ps(_mm256_add_ps(sums[i][0], sums[i][1]), sums[i][2]),
                             _mm256_sub_ps(_mm256_sub_ps(sums[i][1], sums[i][2]), sums[i][3])};
        for (int j = 0; j < 2; ++j) {
          const int64_t pixel = (2 * ty + i) * size_ + 2 * tx + j;
          float* out = image + pixel * kLanes;
          __m256 value = _mm256_add_ps(
              y[j], map ? _mm256_loadu_ps(bias_map_.data() + (block * plane + pixel) * kLanes) : bias);
          if (epilogue == Epilogue::Silu) value = silu(value);
          if (epilogue == Epilogue::Accumulate) value = _mm256_add_ps(_mm256_loadu_ps(out), value);
          _mm256_storeu_ps(out, value);
        }
      }
    }
  }
}

#else  // not x86-64: never supported(), so never run

bool WinogradF2x3::supported(int64_t) { return false; }

void WinogradF2x3::run_chunk(const float*, float*, Epilogue, int64_t, int64_t, int64_t, int64_t, float*) const {
  fail(Status::Internal, "Winograd F(2x2, 3x3) needs an x86-64 CPU with AVX2");
}

#endif

WinogradF2x3::WinogradF2x3(int64_t batch, int64_t in, int64_t out, int64_t size)
    : batch_(batch), in_(in), out_(out), size_(size), in_padded_(round_up(in, kLanes)), out_padded_(round_up(out, 16)) {
  require(batch >= 1 && in >= 1 && out >= 1 && supported(size), Status::Internal,
          "Winograd F(2x2, 3x3) got a shape or a CPU it does not run on");
  const int64_t per_tile = kPositions * (in_padded_ + out_padded_) * static_cast<int64_t>(sizeof(float));
  chunk_ = std::clamp<int64_t>(kScratchBytes / per_tile / kRowsPerKernel * kRowsPerKernel, kRowsPerKernel, 16 * kRowsPerKernel);
  transformed_weights_.assign(kPositions * out_padded_ * in_padded_, 0.0f);
  bias_.assign(out_padded_, 0.0f);
}

void WinogradF2x3::set_weights(const float* weights, const float* bias, const float* bias_map) {
  // U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], stored [position][out / 16][in][16].
  const int64_t column_blocks = out_padded_ / 16;
  for (int64_t k = 0; k < out_; ++k)
    for (int64_t c = 0; c < in_; ++c) {
      const float* g = weights + (k * in_ + c) * 9;
      float left[4][3];  // G g
      for (int j = 0; j < 3; ++j) {
        left[0][j] = g[j];
        left[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        left[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        left[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; ++i) {
        const float u[4] = {left[i][0], 0.5f * (left[i][0] + left[i][1] + left[i][2]),
                            0.5f * (left[i][0] - left[i][1] + left[i][2]), left[i][2]};
        for (int j = 0; j < 4; ++j)
          transformed_weights_[(((4 * i + j) * column_blocks + k / 16) * in_padded_ + c) * 16 + k % 16] = u[j];
      }
    }
  std::copy(bias, bias + out_, bias_.begin());
  bias_map_.clear();
  if (bias_map == nullptr) return;
  // bias + map, in nChw8c order: [out blocks][size][size][8], zeros past out.
  const int64_t plane = size_ * size_;
  bias_map_.assign(round_up(out_, kLanes) * plane, 0.0f);
  for (int64_t k = 0; k < out_; ++k)
    for (int64_t pixel = 0; pixel < plane; ++pixel)
      bias_map_[((k / kLanes) * plane + pixel) * kLanes + k % kLanes] = bias[k] + bias_map[k * plane + pixel];
}

void WinogradF2x3::run(const float* src, float* dst, Epilogue epilogue) const {
  const int64_t tiles = batch_ * (size_ / 2) * (size_ / 2);
  const int64_t chunks = (tiles + chunk_ - 1) / chunk_;
  const int64_t scratch_floats = kPositions * (chunk_ * (in_padded_ + out_padded_) + kMatrixGap);
  const int threads = at::get_num_threads();
  // Too few chunks for the threads (one image of 8x8: 16 tiles, one chunk): the output channels are
  // split as well, each part transforming the chunk's input again. Every value is computed alike
  // whatever the split, so results do not depend on it.
  const int64_t column_blocks = out_padded_ / 16;
  const int64_t splits = std::min<int64_t>(column_blocks, (2 * threads + chunks - 1) / chunks);
  // OpenMP, as libtorch and oneDNN thread: libtorch's thread count, and no threads of our own to
  // compete with their spinning ones. (at::parallel_for is inline: it would be serial here.)
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
  for (int64_t task = 0; task < chunks * splits; ++task) {
    // Zeroed when first made, so that the rows past a partial chunk's tiles hold numbers.
    thread_local std::vector<float> scratch;  // one per thread, kept: the pool's threads live on
    if (static_cast<int64_t>(scratch.size()) < scratch_floats) scratch.resize(scratch_floats, 0.0f);
    const int64_t chunk = task / splits, split = task % splits, first = chunk * chunk_;
    run_chunk(src, dst, epilogue, first, std::min(chunk_, tiles - first), split * column_blocks / splits,
              (split + 1) * column_blocks / splits, scratch.data());
  }
}

}  // namespace ddim
