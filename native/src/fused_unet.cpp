#include "fused_unet.h"

#include "error.h"

#ifdef DDIM_HAVE_DNNL
#include <ATen/Parallel.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "winograd_f2x3.h"
#endif

namespace ddim {

#ifndef DDIM_HAVE_DNNL

bool fused_network_available() { return false; }

bool fused_bfloat16_native(std::string* reason) {
  if (reason != nullptr) *reason = "this build of ddim4j has no fused network (it was built without oneDNN's headers)";
  return false;
}

std::string fused_instruction_set() { return "none"; }

struct FusedUNet::Plan {
  FusedOptions options;
};

FusedUNet::FusedUNet(const ModelConfig&, int64_t, FusedOptions) {
  fail(Status::InvalidArgument, "this build of ddim4j has no fused network (it was built without oneDNN's headers)");
}
FusedUNet::~FusedUNet() = default;
int64_t FusedUNet::batch() const { return 0; }
const FusedOptions& FusedUNet::options() const { return plan_->options; }
void FusedUNet::load_weights(UNetImpl&) {}
void FusedUNet::load_weights_if_changed(UNetImpl&) {}
torch::Tensor FusedUNet::forward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) { return {}; }
const char* FusedUNet::activation_layout() const { return ""; }
bool FusedUNet::joins_in_place() const { return false; }
std::vector<FusedStepTiming> FusedUNet::profile(int) { return {}; }

#else

bool fused_network_available() { return true; }

std::string fused_instruction_set() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto has = [isa](dnnl::cpu_isa level) { return (isa & static_cast<unsigned>(level)) == static_cast<unsigned>(level); };
  if (has(dnnl::cpu_isa::avx512_core_amx)) return "AMX";
  if (has(dnnl::cpu_isa::avx512_core_bf16)) return "AVX-512 with BF16";
  if (has(dnnl::cpu_isa::avx512_core)) return "AVX-512";
  if (has(dnnl::cpu_isa::avx2)) return "AVX2";
  return "older than AVX2";
}

bool fused_bfloat16_native(std::string* reason) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto needed = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);  // AMX includes it
  if ((isa & needed) == needed) return true;
  if (reason != nullptr) {
    const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    *reason = std::string("this CPU has no AVX512-BF16 or AMX (oneDNN runs it as ") +
              ((isa & avx512) == avx512 ? "AVX-512" : "AVX2 or older") + ")";
  }
  return false;
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

constexpr auto kF32 = memory::data_type::f32;
constexpr auto kInference = dnnl::prop_kind::forward_inference;

// A convolution's weights as the plan holds them: the layer's weight prefix, and memories in the
// layout the primitive chose.
struct ConvWeights {
  std::string name;    // e.g. "down.0.blocks.1.conv_a"
  memory::desc plain;  // OIHW float32, as libtorch stores it
  memory weights, bias;
  // A BatchNorm folded into this convolution ("" when none): its weights scaled per input channel,
  // and `norm_map` [1, out, H, W] the convolution of the norm's shift (zero-padded, so its border
  // differs from its interior), added after the convolution.
  std::string norm;
  memory norm_map;
  // Set where ddim4j's own Winograd F(2x2, 3x3) runs the convolution (AVX2): it holds the weights.
  std::shared_ptr<WinogradF2x3> winograd;
};

struct NormWeights {
  std::string name;  // e.g. "down.0.blocks.1.norm"
  memory mean, variance, scale, shift;
};

struct Step {
  dnnl::primitive primitive;
  Args args;
  std::string layer;
  std::string implementation;
  double flops = 0;
  std::function<void()> run;  // instead of the primitive: ddim4j's own kernels
};

// oneDNN has no fast kernel for some layer's part of a shared buffer: build with copies instead.
struct NoFastKernelInPlace : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

struct FusedUNet::Plan {
  ModelConfig config;
  int64_t batch = 0;
  FusedOptions options;
  memory::data_type dtype = kF32;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  Tag layout = Tag::nChw8c;
  const char* layout_name = "nChw8c";
  bool in_place = true;  // embeddings written into their part of the joined buffer (build() falls back to a copy)

  std::vector<Step> steps;  // executed in order
  std::vector<ConvWeights> convs;
  std::vector<NormWeights> norms;
  float norm_epsilon = 1e-5f;
  // Temporaries of a residual block (its BatchNorm output and conv_a output), shared by all blocks
  // since they run one after another: one buffer each, of the largest size, allocated in finish().
  torch::Tensor normalized_buffer, hidden_buffer, scratchpad;
  std::vector<memory> normalized_uses, hidden_uses;  // views of the shared buffers, bound in finish()
  memory::desc scratchpad_desc;  // the largest any step asks for
  memory input, output;          // the caller's tensors, plain NCHW float32: handles set per call
  memory embeddings;             // the buffer the embeddings are written into, per call
  int64_t embedding_offset = 0;  // the channel of `embeddings` where they start
  SinusoidalEmbedding embedder{nullptr};
  torch::Tensor class_vectors;  // [classes + 1, embedding_dim] float32: class models only
  // What load_weights() copied: the network's instance_id(), then each tensor's storage and version
  // (parameters, then buffers).
  std::vector<std::pair<const void*, uint64_t>> loaded;

  memory::desc activation(int64_t channels, int64_t size, memory::data_type type) const {
    return memory::desc({batch, channels, size, size}, type, layout);
  }
  memory::desc activation(int64_t channels, int64_t size) const { return activation(channels, size, dtype); }

  // A buffer of its own, zeroed once: oneDNN reads the channels that pad a blocked layout's last
  // block (against zero weights), so they must never hold NaN.
  memory new_activation(int64_t channels, int64_t size) const {
    memory buffer(activation(channels, size), engine);
    std::memset(buffer.get_data_handle(), 0, buffer.get_desc().get_size());
    return buffer;
  }

  // Channels per block of the layout (0: nhwc, not blocked).
  int64_t channel_block() const { return layout == Tag::nChw16c ? 16 : layout == Tag::nChw8c ? 8 : 0; }

  // Channels [offset, offset + channels) of `buffer`, sharing its memory.
  memory part(const memory& buffer, int64_t offset, int64_t channels) const {
    const auto dims = buffer.get_desc().dims();
    return memory(buffer.get_desc().submemory_desc({dims[0], channels, dims[2], dims[3]}, {0, offset, 0, 0}), engine,
                  buffer.get_data_handle());
  }

  dnnl::primitive_attr attributes(const dnnl::post_ops& post_ops = {}) const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(post_ops);
    return attr;
  }

  template <class PrimitiveDesc>
  void add_step(dnnl::primitive primitive, const PrimitiveDesc& pd, Args args, std::string layer, double flops = 0) {
    std::string implementation = pd.impl_info_str();
    // A reference kernel is oneDNN saying it has no fast one for these memories: in place, that
    // means for a part of a shared buffer, and copying is faster.
    if (in_place && implementation.rfind("ref", 0) == 0)
      throw NoFastKernelInPlace(layer + " would run oneDNN's reference kernel " + implementation);
    const auto needed = pd.scratchpad_desc();
    if (needed.get_size() > scratchpad_desc.get_size()) scratchpad_desc = needed;
    args[DNNL_ARG_SCRATCHPAD] = memory();  // bound to the shared scratchpad in finish()
    steps.push_back({std::move(primitive), std::move(args), std::move(layer), std::move(implementation), flops, /*run=*/{}});
  }

  // Whether a 3x3 convolution of `in` -> `out` channels at `size` x `size` uses Winograd.
  // Fastest: everywhere. Measured per layer on this U-Net's shapes (the reference at 64x64 down to
  // 8x8, the shipped 32x32 models down to 4x4, batch 16; benchmarks/RESULTS.md), oneDNN's F(4x4,
  // 3x3) on AVX-512 and ddim4j's F(2x2, 3x3) on AVX2 were the faster at every shape. At batch 1 the
  // smallest layers (8x8 and 4x4 of the reference) ran ~0.05 ms slower each, the forward as a whole
  // still faster; the choice does not depend on the batch, so that results do not either.
  bool winograd_for(int64_t /*in*/, int64_t /*out*/, int64_t /*size*/) const {
    return options.convolutions != ConvAlgorithm::Direct && dtype == kF32;
  }

  // Whether a 3x3 convolution runs ddim4j's own Winograd F(2x2, 3x3) (winograd_f2x3.h): float32 on
  // nChw8c, that is, AVX2 CPUs, where oneDNN 2.6 has no Winograd kernel of its own.
  bool own_winograd_for(int64_t in, int64_t out, int64_t size) const {
    return winograd_for(in, out, size) && layout == Tag::nChw8c && WinogradF2x3::supported(size);
  }

  // A convolution's direct FLOPs (2 x multiply-adds) over the batch, as the profile reports them.
  double conv_flops(int64_t in, int64_t out, int64_t kernel, int64_t size) const {
    return 2.0 * static_cast<double>(batch * out * in * kernel * kernel * size * size);
  }

  // dst = conv(src) (+ bias), then SiLU if `swish`, then + dst's old value if `accumulate`.
  void conv(const std::string& name, const memory& src, const memory& dst, int64_t kernel, bool swish = false,
            bool accumulate = false) {
    const auto& src_desc = src.get_desc();
    const auto& dst_desc = dst.get_desc();
    const int64_t in = src_desc.dims()[1], out = dst_desc.dims()[1], size = dst_desc.dims()[2], pad = kernel / 2;
    if (kernel == 3 && own_winograd_for(in, out, size)) {
      own_winograd(name, src, dst, swish, accumulate);
      return;
    }
    const memory::desc weights_any({out, in, kernel, kernel}, dtype, Tag::any);
    const memory::desc bias_desc({out}, kF32, Tag::a);
    const auto make = [&](dnnl::algorithm algorithm, bool with_swish) {
      dnnl::post_ops post_ops;
      // x * sigmoid(1 * x) = SiLU; then y = conv(...) + y, y holding the shortcut.
      if (with_swish) post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
      if (accumulate) post_ops.append_sum(1.0f);
      const dnnl::convolution_forward::desc desc(kInference, algorithm, src_desc, weights_any, bias_desc, dst_desc,
                                                 {1, 1}, {pad, pad}, {pad, pad});
      return dnnl::convolution_forward::primitive_desc(desc, attributes(post_ops), engine);
    };
    dnnl::convolution_forward::primitive_desc pd;
    bool separate_swish = false;
    if (kernel == 3 && winograd_for(in, out, size)) {
      // oneDNN's Winograd kernel fuses a sum but not SiLU: then SiLU is a pass of its own over dst.
      try {
        pd = make(dnnl::algorithm::convolution_winograd, swish);
      } catch (const dnnl::error&) {
        if (swish) try {
            pd = make(dnnl::algorithm::convolution_winograd, false);
            separate_swish = true;
          } catch (const dnnl::error&) {
          }
      }
    }
    if (!pd) pd = make(dnnl::algorithm::convolution_direct, swish);
    ConvWeights weights{name, memory::desc({out, in, kernel, kernel}, kF32, Tag::oihw),
                        memory(pd.weights_desc(), engine), memory(bias_desc, engine), /*norm=*/"", memory(), /*winograd=*/nullptr};
    add_step(dnnl::convolution_forward(pd), pd,
             {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights.weights}, {DNNL_ARG_BIAS, weights.bias}, {DNNL_ARG_DST, dst}},
             name, conv_flops(in, out, kernel, size));
    convs.push_back(std::move(weights));
    if (separate_swish) add_swish(name, dst);
  }

  // SiLU as a pass of its own over `dst`, after oneDNN's Winograd convolution (which fuses none).
  void add_swish(const std::string& name, const memory& dst) {
    const dnnl::eltwise_forward::desc desc(kInference, dnnl::algorithm::eltwise_swish, dst.get_desc(), 1.0f, 0.0f);
    const dnnl::eltwise_forward::primitive_desc swish_pd(desc, attributes(), engine);
    add_step(dnnl::eltwise_forward(swish_pd), swish_pd, {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}}, name + " swish");
  }

  // conv() by ddim4j's own Winograd F(2x2, 3x3), SiLU or the residual add included; `norm`: the
  // BatchNorm folded into it ("" for none). The memories' handles are read when the step runs: the
  // shared buffers and the caller's tensors are bound later.
  void own_winograd(const std::string& name, const memory& src, const memory& dst, bool swish, bool accumulate,
                    const std::string& norm = "") {
    const int64_t in = src.get_desc().dims()[1], out = dst.get_desc().dims()[1], size = dst.get_desc().dims()[2];
    auto winograd = std::make_shared<WinogradF2x3>(batch, in, out, size);
    using Epilogue = WinogradF2x3::Epilogue;
    const auto epilogue = swish ? Epilogue::Silu : accumulate ? Epilogue::Accumulate : Epilogue::Store;
    Step step;
    step.run = [winograd, src, dst, epilogue] {
      winograd->run(static_cast<const float*>(src.get_data_handle()), static_cast<float*>(dst.get_data_handle()), epilogue);
    };
    step.layer = name;
    step.implementation = "ddim4j_winograd_2x3:avx2";
    step.flops = conv_flops(in, out, 3, size);
    steps.push_back(std::move(step));
    // load_weights() hands `winograd` the weights, and a folded norm's map in plain NCHW: no memories here.
    convs.push_back({name, memory::desc({out, in, 3, 3}, kF32, Tag::oihw), memory(), memory(), norm, memory(), winograd});
  }

  // A view of one of the shared buffers; its handle is bound in finish(), once the largest size is known.
  memory shared(std::vector<memory>& uses, const memory::desc& desc) {
    uses.emplace_back(desc, engine, nullptr);
    return uses.back();
  }

  // conv3x3_a(batchnorm(x)) with the BatchNorm folded into the convolution, where conv_a runs Winograd
  // (float32). ddim4j's own (AVX2) adds the norm's shift map and applies SiLU in its output
  // transform. oneDNN's (AVX-512) fuses no SiLU, so SiLU is a pass of its own anyway, and adding the
  // map in that pass costs little more. Either way the BatchNorm pass (a read and a write of x)
  // goes. False, having added nothing, where that does not hold.
  bool folded_conv_a(const std::string& name, const memory& x, const memory& hidden) {
    const auto& x_desc = x.get_desc();
    const auto& hidden_desc = hidden.get_desc();
    const int64_t in = x_desc.dims()[1], out = hidden_desc.dims()[1], size = hidden_desc.dims()[2];
    if (own_winograd_for(in, out, size)) {  // the map, the bias and SiLU all in its output transform
      own_winograd(name + ".conv_a", x, hidden, /*swish=*/true, /*accumulate=*/false, name + ".norm");
      return true;
    }
    if (!winograd_for(in, out, size)) return false;
    // Channels that fill whole blocks only: on a layout padded to its block (8 of 16 channels, say)
    // oneDNN 2.6's broadcast add gave wrong sums (FusedNetwork.FoldsBatchNormIntoWinogradConvolutions).
    const int64_t block = channel_block();
    if (block == 0 || in % block != 0 || out % block != 0) return false;
    const memory::desc bias_desc({out}, kF32, Tag::a);
    dnnl::convolution_forward::primitive_desc conv_pd;
    dnnl::binary::primitive_desc map_pd;
    const memory::desc map_desc({1, out, size, size}, kF32, layout);
    try {
      const dnnl::convolution_forward::desc desc(kInference, dnnl::algorithm::convolution_winograd, x_desc,
                                                 memory::desc({out, in, 3, 3}, kF32, Tag::any), bias_desc, hidden_desc,
                                                 {1, 1}, {1, 1}, {1, 1});
      conv_pd = dnnl::convolution_forward::primitive_desc(desc, attributes(), engine);
      dnnl::post_ops swish;
      swish.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
      const dnnl::binary::desc map_add(dnnl::algorithm::binary_add, hidden_desc, map_desc, hidden_desc);
      map_pd = dnnl::binary::primitive_desc(map_add, attributes(swish), engine);
    } catch (const dnnl::error&) {
      return false;
    }
    if (std::string(map_pd.impl_info_str()).rfind("ref", 0) == 0) return false;  // a slow pass would cost what it saves
    const std::string conv_name = name + ".conv_a";
    ConvWeights weights{conv_name, memory::desc({out, in, 3, 3}, kF32, Tag::oihw), memory(conv_pd.weights_desc(), engine),
                        memory(bias_desc, engine), name + ".norm", memory(map_desc, engine), /*winograd=*/nullptr};
    add_step(dnnl::convolution_forward(conv_pd), conv_pd,
             {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, weights.weights}, {DNNL_ARG_BIAS, weights.bias}, {DNNL_ARG_DST, hidden}},
             conv_name, conv_flops(in, out, 3, size));
    add_step(dnnl::binary(map_pd), map_pd, {{DNNL_ARG_SRC_0, hidden}, {DNNL_ARG_SRC_1, weights.norm_map}, {DNNL_ARG_DST, hidden}},
             conv_name + " norm shift + swish");
    convs.push_back(std::move(weights));
    return true;
  }

  // y = conv1x1(x) + conv3x3_b(swish(conv3x3_a(batchnorm(x)))), as in unet.cpp.
  void residual(const std::string& name, const memory& x, const memory& y) {
    const int64_t in_channels = x.get_desc().dims()[1], out_channels = y.get_desc().dims()[1];
    const int64_t size = x.get_desc().dims()[2];
    auto hidden = shared(hidden_uses, activation(out_channels, size));
    conv(name + ".shortcut", x, y, 1);
    if (options.fold_norms && folded_conv_a(name, x, hidden)) {
      conv(name + ".conv_b", hidden, y, 3, /*swish=*/false, /*accumulate=*/true);
      return;
    }
    auto normalized = shared(normalized_uses, activation(in_channels, size));

    const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                       dnnl::normalization_flags::use_shift;
    const dnnl::batch_normalization_forward::desc norm_desc(kInference, x.get_desc(), norm_epsilon, flags);
    const dnnl::batch_normalization_forward::primitive_desc norm_pd(norm_desc, attributes(), engine);
    const memory::desc channel_desc({in_channels}, kF32, Tag::a);
    NormWeights norm{name + ".norm", memory(channel_desc, engine), memory(channel_desc, engine),
                     memory(channel_desc, engine), memory(channel_desc, engine)};
    add_step(dnnl::batch_normalization_forward(norm_pd), norm_pd,
             {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, normalized}, {DNNL_ARG_MEAN, norm.mean},
              {DNNL_ARG_VARIANCE, norm.variance}, {DNNL_ARG_SCALE, norm.scale}, {DNNL_ARG_SHIFT, norm.shift}},
             norm.name);
    norms.push_back(std::move(norm));

    conv(name + ".conv_a", normalized, hidden, 3, /*swish=*/true);
    conv(name + ".conv_b", hidden, y, 3, /*swish=*/false, /*accumulate=*/true);
  }

  void pool(const memory& x, const memory& y) {
    const dnnl::pooling_forward::desc desc(kInference, dnnl::algorithm::pooling_avg_exclude_padding, x.get_desc(),
                                           y.get_desc(), {2, 2}, {2, 2}, {0, 0}, {0, 0});
    const dnnl::pooling_forward::primitive_desc pd(desc, attributes(), engine);
    add_step(dnnl::pooling_forward(pd), pd, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}, "pool");
  }

  // Bilinear 2x, half-pixel centres: libtorch's align_corners = false.
  void upsample(const memory& x, const memory& y) {
    const dnnl::resampling_forward::desc desc(kInference, dnnl::algorithm::resampling_linear, x.get_desc(), y.get_desc());
    const dnnl::resampling_forward::primitive_desc pd(desc, attributes(), engine);
    add_step(dnnl::resampling_forward(pd), pd, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}, "upsample");
  }

  memory concat(const memory& a, const memory& b, const std::string& layer) {
    const auto a_dims = a.get_desc().dims();
    auto y = new_activation(a_dims[1] + b.get_desc().dims()[1], a_dims[2]);
    const dnnl::concat::primitive_desc pd(y.get_desc(), 1, {a.get_desc(), b.get_desc()}, engine, attributes());
    add_step(dnnl::concat(pd), pd, {{DNNL_ARG_MULTIPLE_SRC, a}, {DNNL_ARG_MULTIPLE_SRC + 1, b}, {DNNL_ARG_DST, y}},
             layer + " join");
    return y;
  }

  void reorder(const memory& from, const memory& to, const std::string& layer) {
    const dnnl::reorder::primitive_desc pd(engine, from.get_desc(), engine, to.get_desc(), attributes());
    add_step(dnnl::reorder(pd), pd, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, layer);
  }

  // The blocked layout for activations: nChw16c where the CPU has AVX-512 (oneDNN's Winograd
  // kernel needs it, and its direct kernel on it was faster than on nhwc: 145 vs 160 ms per
  // reference forward, benchmarks/RESULTS.md), else the layout oneDNN's direct 3x3 convolution
  // prefers (nChw8c with AVX2).
  void choose_layout() {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    if ((isa & avx512) == avx512) {
      layout = Tag::nChw16c;
      layout_name = "nChw16c";
      return;
    }
    const int64_t width = config.widths[0], size = config.image_size;
    const memory::desc any({batch, width, size, size}, dtype, Tag::any);
    const dnnl::convolution_forward::desc desc(kInference, dnnl::algorithm::convolution_direct, any,
                                               memory::desc({width, width, 3, 3}, dtype, Tag::any),
                                               memory::desc({width}, kF32, Tag::a), any, {1, 1}, {1, 1}, {1, 1});
    const auto chosen = dnnl::convolution_forward::primitive_desc(desc, engine).src_desc();
    const std::pair<Tag, const char*> candidates[] = {{Tag::nChw16c, "nChw16c"}, {Tag::nChw8c, "nChw8c"}};
    layout = Tag::nhwc;
    layout_name = "nhwc";
    for (const auto& [tag, name] : candidates)
      if (chosen == memory::desc(chosen.dims(), dtype, tag)) {
        layout = tag;
        layout_name = name;
      }
  }

  // Walks unet_layers(config) once, creating each layer's primitives and buffers.
  void build() {
    const auto layers = unet_layers(config);
    const int64_t size = config.image_size;
    input = memory(memory::desc({batch, config.channels, size, size}, kF32, Tag::nchw), engine, nullptr);
    auto image = new_activation(config.channels, size);
    reorder(input, image, "input");
    memory x;
    std::vector<memory> skips;
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto& layer = layers[i];
      switch (layer.kind) {
        case LayerKind::InputConv: {
          auto features = new_activation(layer.out_channels, size);
          conv(layer.name, image, features, 1);
          // The joined buffer: input_conv's output, then the embeddings. In place, forward() writes
          // the embeddings straight into their part and only the features are copied.
          const int64_t joined_channels = layers[i + 1].out_channels;
          x = new_activation(joined_channels, size);
          if (in_place && channel_block() > 0 && layer.out_channels % channel_block() != 0)
            throw NoFastKernelInPlace("the embeddings would start inside a block of channels");
          if (in_place) {
            reorder(features, part(x, 0, layer.out_channels), "embeddings join");
            embeddings = x;
            embedding_offset = layer.out_channels;
          } else {
            embeddings = new_activation(joined_channels - layer.out_channels, size);
            embedding_offset = 0;
            x = concat(features, embeddings, "embeddings");
          }
          break;
        }
        case LayerKind::JoinEmbeddings:
          break;  // done with InputConv
        case LayerKind::Residual: {
          // Skips are copied into the joined input: oneDNN 2.6 offers only its reference kernel
          // ("ref:any", orders of magnitude slower) for a convolution whose destination is part of a
          // wider buffer, and the joins cost ~2.5% of a forward (benchmarks/RESULTS.md, per layer).
          if (layer.takes_skip) {
            x = concat(x, skips.back(), layer.name);
            skips.pop_back();
          }
          auto y = new_activation(layer.out_channels, layer.size);
          residual(layer.name, x, y);
          if (layer.keeps_skip) skips.push_back(y);
          x = y;
          break;
        }
        case LayerKind::Pool: {
          auto y = new_activation(layer.out_channels, layer.size / 2);
          pool(x, y);
          x = y;
          break;
        }
        case LayerKind::Upsample: {
          auto y = new_activation(layer.out_channels, layer.size * 2);
          upsample(x, y);
          x = y;
          break;
        }
        case LayerKind::OutputConv: {
          // float32 whatever the plan's dtype: the prediction keeps its precision.
          memory result(activation(config.channels, size, kF32), engine);
          conv(layer.name, x, result, 1);
          output = memory(memory::desc({batch, config.channels, size, size}, kF32, Tag::nchw), engine, nullptr);
          reorder(result, output, "output");
          break;
        }
      }
    }
    finish();
  }

  // One buffer of `uses`' largest size, every view bound to it.
  static torch::Tensor bind_shared(std::vector<memory>& uses) {
    size_t bytes = 1;
    for (const auto& view : uses) bytes = std::max(bytes, view.get_desc().get_size());
    auto buffer = torch::zeros({static_cast<int64_t>(bytes)}, torch::kUInt8);
    for (auto& view : uses) view.set_data_handle(buffer.data_ptr());
    return buffer;
  }

  void finish() {
    normalized_buffer = bind_shared(normalized_uses);
    hidden_buffer = bind_shared(hidden_uses);
    scratchpad = torch::empty({std::max<int64_t>(1, static_cast<int64_t>(scratchpad_desc.get_size()))}, torch::kUInt8);
    const memory scratch(scratchpad_desc, engine, scratchpad.data_ptr());
    for (auto& step : steps)
      if (!step.run) step.args[DNNL_ARG_SCRATCHPAD] = scratch;
  }

  void run(Step& step) {
    if (step.run) {
      step.run();
    } else {
      step.primitive.execute(stream, step.args);
    }
  }

  void reset() {
    steps.clear();
    convs.clear();
    norms.clear();
    normalized_uses.clear();
    hidden_uses.clear();
    scratchpad_desc = memory::desc();
  }

  // Each image's noise embedding (and class vector), repeated over H x W, written straight into
  // channels embedding_offset.. of `embeddings` in the plan's layout and dtype: per image, the
  // channels as one pattern in the dtype, then copied to every pixel (a memcpy per pixel and block).
  void fill_embeddings(const torch::Tensor& noise_variances, const torch::Tensor& labels) {
    auto values = embedder->forward(noise_variances.to(torch::kFloat)).reshape({batch, -1});
    if (config.classes > 0) {
      const auto indices = labels.defined() ? labels.to(torch::kLong) : torch::full({batch}, config.classes, torch::kLong);
      values = torch::cat({values, class_vectors.index_select(0, indices)}, 1);
    }
    const int64_t channels = embeddings.get_desc().dims()[1], first = embedding_offset;
    const int64_t plane = config.image_size * config.image_size;
    const int64_t block = channel_block();
    const int64_t padded = block > 0 ? (channels + block - 1) / block * block : channels;
    // [batch, padded - first] in the dtype; blocked layouts pad channels with zeros.
    const auto patterns =
        torch::constant_pad_nd(values, {0, padded - first - values.size(1)}).to(dtype == kF32 ? torch::kFloat : torch::kBFloat16).contiguous();
    const int64_t width = padded - first, element = patterns.element_size();
    const auto* source = static_cast<const char*>(patterns.data_ptr());
    auto* target = static_cast<char*>(embeddings.get_data_handle());
    if (block == 0) {  // nhwc: each pixel's channels first.. are contiguous
      at::parallel_for(0, batch * plane, 1024, [&](int64_t begin, int64_t end) {
        for (int64_t index = begin; index < end; ++index)
          std::memcpy(target + (index * channels + first) * element, source + (index / plane) * width * element, width * element);
      });
      return;
    }
    // Blocked: first is a multiple of the block (build() makes it so), so the embeddings own whole blocks.
    const int64_t blocks = padded / block, own = width / block;
    at::parallel_for(0, batch * own, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / own, b = task % own;
        const char* pattern = source + (n * width + b * block) * element;
        char* destination = target + ((n * blocks + first / block + b) * plane) * block * element;
        for (int64_t pixel = 0; pixel < plane; ++pixel) std::memcpy(destination + pixel * block * element, pattern, block * element);
      }
    });
  }

  void execute(const torch::Tensor& input_tensor, const torch::Tensor& output_tensor,
               const torch::Tensor& noise_variances, const torch::Tensor& labels) {
    // oneDNN runs on OpenMP in the calling thread: give it libtorch's thread count, as libtorch's ops do.
    at::internal::lazy_init_num_threads();
    fill_embeddings(noise_variances, labels);
    input.set_data_handle(input_tensor.data_ptr());
    output.set_data_handle(output_tensor.data_ptr());
    for (auto& step : steps) run(step);
    stream.wait();
  }
};

FusedUNet::FusedUNet(const ModelConfig& config, int64_t batch, FusedOptions options) : plan_(std::make_unique<Plan>()) {
  config.validate();
  require(batch >= 1, Status::InvalidArgument, "the fused network needs a batch >= 1");
  require(options.dtype == torch::kFloat || options.dtype == torch::kBFloat16, Status::InvalidArgument,
          "the fused network computes in float32 or bfloat16");
  std::string reason;  // filled before the message is built: arguments have no evaluation order
  const bool runs = options.dtype == torch::kFloat || fused_bfloat16_native(&reason);
  require(runs, Status::InvalidArgument, "the fused network runs bfloat16 only where oneDNN has bfloat16 kernels: " + reason);
  auto& plan = *plan_;
  plan.config = config;
  plan.batch = batch;
  plan.options = options;
  plan.dtype = options.dtype == torch::kBFloat16 ? memory::data_type::bf16 : kF32;
  plan.embedder = SinusoidalEmbedding(config.embedding_dim);
  try {
    plan.choose_layout();
    // widths[0] not a multiple of the layout's block (no part of a blocked buffer starts there), or
    // no fast kernel for the part: the same plan with the embeddings joined by a copy.
    const auto without_parts = [&] {
      plan.reset();
      plan.in_place = false;
      plan.build();
    };
    try {
      plan.build();
    } catch (const NoFastKernelInPlace&) {
      without_parts();
    } catch (const dnnl::error& error) {
      if (error.status == dnnl_out_of_memory) throw;
      without_parts();
    }
  } catch (const dnnl::error& error) {
    fail(error.status == dnnl_out_of_memory ? Status::OutOfMemory : Status::Internal,
         std::string("oneDNN could not build the fused network: ") + error.what());
  }
}

FusedUNet::~FusedUNet() = default;

int64_t FusedUNet::batch() const { return plan_->batch; }

const FusedOptions& FusedUNet::options() const { return plan_->options; }

const char* FusedUNet::activation_layout() const { return plan_->layout_name; }

bool FusedUNet::joins_in_place() const { return plan_->in_place; }

namespace {

std::vector<std::pair<const void*, uint64_t>> weights_signature(UNetImpl& network) {
  std::vector<std::pair<const void*, uint64_t>> signature{{nullptr, network.instance_id()}};
  for (const auto& tensor : network.parameters()) signature.emplace_back(tensor.data_ptr(), tensor._version());
  for (const auto& tensor : network.buffers()) signature.emplace_back(tensor.data_ptr(), tensor._version());
  return signature;
}

}  // namespace

void FusedUNet::load_weights_if_changed(UNetImpl& network) {
  if (plan_->loaded.empty() || plan_->loaded != weights_signature(network)) load_weights(network);
}

void FusedUNet::load_weights(UNetImpl& network) {
  torch::NoGradGuard no_grad;
  const auto parameters = network.named_parameters();
  const auto buffers = network.named_buffers();
  const auto tensor = [&](const std::string& name) {
    const auto* found = parameters.find(name);
    if (found == nullptr) found = buffers.find(name);
    require(found != nullptr, Status::Internal, "the fused network found no tensor " + name);
    return found->detach().to(torch::kCPU, torch::kFloat).contiguous();
  };
  const auto copy_into = [&](const memory& target, const torch::Tensor& values) {
    require(static_cast<size_t>(values.numel()) * sizeof(float) == target.get_desc().get_size(), Status::Internal,
            "the fused network's buffer does not match a weight");
    std::memcpy(target.get_data_handle(), values.data_ptr<float>(), values.numel() * sizeof(float));
  };
  auto& plan = *plan_;
  for (auto& conv : plan.convs) {
    auto weights = tensor(conv.name + ".weight");
    const auto bias = tensor(conv.name + ".bias");
    torch::Tensor map;  // a folded norm's shift map, [1, out, H, W]
    if (!conv.norm.empty()) {
      // conv(W, (x - mean) * scale + beta) = conv(W * scale, x) + conv(W, shift), the latter zero-padded
      // like x: shift = beta - mean * scale, scale = gamma / sqrt(var + eps), as BatchNorm computes them.
      const auto scale = tensor(conv.norm + ".weight") / torch::sqrt(tensor(conv.norm + ".running_var") + plan.norm_epsilon);
      const auto shift = tensor(conv.norm + ".bias") - tensor(conv.norm + ".running_mean") * scale;
      const int64_t size = conv.winograd ? conv.winograd->size() : conv.norm_map.get_desc().dims()[2];
      const auto shift_image = shift.view({1, -1, 1, 1}).expand({1, shift.size(0), size, size}).contiguous();
      map = torch::conv2d(shift_image, weights, {}, 1, 1).contiguous();
      weights = (weights * scale.view({1, -1, 1, 1})).contiguous();
    }
    if (conv.winograd) {
      conv.winograd->set_weights(weights.data_ptr<float>(), bias.data_ptr<float>(),
                                 map.defined() ? map.data_ptr<float>() : nullptr);
      continue;
    }
    if (map.defined()) {
      memory plain_map(memory::desc(map.sizes().vec(), kF32, Tag::nchw), plan.engine, map.data_ptr());
      dnnl::reorder(plain_map, conv.norm_map).execute(plan.stream, plain_map, conv.norm_map);
      plan.stream.wait();  // before `map` goes
    }
    memory plain(conv.plain, plan.engine, weights.data_ptr());
    dnnl::reorder(plain, conv.weights).execute(plan.stream, plain, conv.weights);  // and to bfloat16 if need be
    plan.stream.wait();  // before `weights`, perhaps the folded temporary, goes
    copy_into(conv.bias, bias);
  }
  for (auto& norm : plan.norms) {
    copy_into(norm.mean, tensor(norm.name + ".running_mean"));
    copy_into(norm.variance, tensor(norm.name + ".running_var"));
    copy_into(norm.scale, tensor(norm.name + ".weight"));
    copy_into(norm.shift, tensor(norm.name + ".bias"));
  }
  if (plan.config.classes > 0) {
    // Rounded as the eager bfloat16 network rounds its embedding table.
    auto vectors = tensor("class_embedding.weight");
    if (plan.dtype != kF32) vectors = vectors.to(torch::kBFloat16).to(torch::kFloat);
    plan.class_vectors = vectors;
  }
  plan.stream.wait();
  plan.loaded = weights_signature(network);
}

torch::Tensor FusedUNet::forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                                 const torch::Tensor& labels) {
  auto& plan = *plan_;
  const int64_t size = plan.config.image_size;
  require(noisy.device().is_cpu() && noisy.scalar_type() == torch::kFloat && noisy.dim() == 4 &&
              noisy.size(0) == plan.batch && noisy.size(1) == plan.config.channels && noisy.size(2) == size &&
              noisy.size(3) == size && noise_variances.numel() == plan.batch,
          Status::Internal, "the fused network got a tensor of the wrong shape, type or device");
  require(plan.config.classes > 0 || !labels.defined(), Status::Internal, "an unconditional network takes no class labels");
  if (labels.defined()) {
    require(labels.dim() == 1 && labels.size(0) == plan.batch, Status::Internal, "one class label per image");
    require(labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() <= plan.config.classes, Status::Internal,
            "a class label is out of range");
  }
  require(plan.config.classes == 0 || plan.class_vectors.defined(), Status::Internal,
          "the fused network's weights were never loaded");
  const auto input = noisy.contiguous();
  auto output = torch::empty_like(input);
  try {
    plan.execute(input, output, noise_variances, labels);
  } catch (const dnnl::error& error) {
    fail(error.status == dnnl_out_of_memory ? Status::OutOfMemory : Status::Internal,
         std::string("oneDNN failed in the fused network: ") + error.what());
  }
  return output;
}

std::vector<FusedStepTiming> FusedUNet::profile(int runs) {
  auto& plan = *plan_;
  const int64_t size = plan.config.image_size;
  const auto input = torch::randn({plan.batch, plan.config.channels, size, size});
  const auto output = torch::empty_like(input);
  const auto variances = torch::rand({plan.batch});
  if (plan.config.classes > 0 && !plan.class_vectors.defined())
    plan.class_vectors = torch::zeros({plan.config.classes + 1, plan.config.embedding_dim});
  plan.execute(input, output, variances, {});
  const auto time = [&](Step& step) {
    const auto start = std::chrono::steady_clock::now();
    plan.run(step);
    plan.stream.wait();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  // Each step as a forward runs it (after the step before, its input fresh from that step), fastest of `runs` passes.
  std::vector<double> in_forward(plan.steps.size(), 1e300);
  for (int run = 0; run < std::max(1, runs); ++run)
    for (size_t i = 0; i < plan.steps.size(); ++i) in_forward[i] = std::min(in_forward[i], time(plan.steps[i]));
  std::vector<FusedStepTiming> timings;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    auto& step = plan.steps[i];
    double best = 1e300;
    for (int run = 0; run < std::max(1, runs); ++run) best = std::min(best, time(step));
    timings.push_back({step.layer, step.implementation, step.flops, best, in_forward[i]});
  }
  return timings;
}

#endif  // DDIM_HAVE_DNNL

}  // namespace ddim
