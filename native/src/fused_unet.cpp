#include "fused_unet.h"

#include "error.h"

#ifdef DDIM_HAVE_DNNL
#include <ATen/Parallel.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>
#endif

namespace ddim {

#ifndef DDIM_HAVE_DNNL

bool fused_network_available() { return false; }

struct FusedUNet::Plan {};

FusedUNet::FusedUNet(const ModelConfig&, int64_t) {
  fail(Status::InvalidArgument, "this build of ddim4j has no fused network (it was built without oneDNN's headers)");
}
FusedUNet::~FusedUNet() = default;
int64_t FusedUNet::batch() const { return 0; }
void FusedUNet::load_weights(UNetImpl&) {}
torch::Tensor FusedUNet::forward(const torch::Tensor&, const torch::Tensor&) { return {}; }
const char* FusedUNet::activation_layout() const { return ""; }

#else

bool fused_network_available() { return true; }

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

constexpr auto kF32 = memory::data_type::f32;
constexpr auto kInference = dnnl::prop_kind::forward_inference;

// A convolution's weights as the plan holds them: the module's name, and memories in the layout the
// primitive chose.
struct ConvWeights {
  std::string name;    // e.g. "down.0.blocks.1.conv_a"
  int64_t in_first;    // the module's input channels in_first .. in_first + in (all of them but in the first block)
  memory::desc plain;  // OIHW, as libtorch stores it
  memory weights, bias;  // bias: none where the first block's embedding terms carry it
};

struct NormWeights {
  std::string name;  // e.g. "down.0.blocks.1.norm"
  memory mean, variance, scale, shift;  // the module's first channels (all of them but in the first block)
};

// The first residual block sees concat(features, embedding), and the embedding half is the same at
// every pixel of an image. So its share of the block (a quarter of the level's arithmetic) is
// computed per image, not per pixel: the shortcut's share is one number per (image, channel); a
// 3x3 convolution of a constant image is one number per (image, channel) inside and one per border
// class at the edges, where the zero padding drops taps. These are written into the block's output
// and conv_a's output before the convolutions over the features alone accumulate onto them.
struct EmbeddingTerms {
  std::string name;                 // "down.0.blocks.0"
  torch::Tensor norm_scale, norm_shift;  // [E]: BatchNorm on the embedding channels as scale * e + shift
  torch::Tensor shortcut_weight;    // [out, E]
  torch::Tensor shortcut_bias;      // [out]
  torch::Tensor conv_a_sums;        // [3, 3, out, E]: conv_a's taps summed by (row class, column class),
                                    // the classes being first row/column, inner, last (taps inside the image)
  torch::Tensor conv_a_bias;        // [out]
  memory block_output, conv_a_output;  // filled per call, before the convolutions accumulate
};

}  // namespace

struct FusedUNet::Plan {
  ModelConfig config;
  int64_t batch = 0;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  Tag layout = Tag::nChw8c;
  const char* layout_name = "nChw8c";

  std::vector<std::pair<dnnl::primitive, Args>> steps;  // executed in order
  std::vector<ConvWeights> convs;
  std::vector<NormWeights> norms;
  float norm_epsilon = 1e-5f;
  // Temporaries of a residual block (its BatchNorm output and conv_a output), shared by all blocks
  // since they run one after another: the largest sizes, allocated once.
  torch::Tensor normalized_buffer, hidden_buffer, scratchpad;
  memory::desc scratchpad_desc;  // the largest any step asks for
  memory input, output;          // the caller's tensors, plain NCHW: handles set per call
  EmbeddingTerms embedding_terms;
  SinusoidalEmbedding embedder{nullptr};

  memory::desc activation(int64_t channels, int64_t size) const {
    return memory::desc({batch, channels, size, size}, kF32, layout);
  }

  memory new_activation(int64_t channels, int64_t size) const { return memory(activation(channels, size), engine); }

  dnnl::primitive_attr attributes(const dnnl::post_ops& post_ops = {}) const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(post_ops);
    return attr;
  }

  void add_step(dnnl::primitive primitive, Args args, const memory::desc& scratchpad_needed) {
    if (scratchpad_needed.get_size() > scratchpad_desc.get_size()) scratchpad_desc = scratchpad_needed;
    args[DNNL_ARG_SCRATCHPAD] = memory();  // bound to the shared scratchpad in finish()
    steps.emplace_back(std::move(primitive), std::move(args));
  }

  // dst = conv(src) + bias, with `post_ops` applied. `name` is the module's name; its weights for
  // input channels in_first .. in_first + src's channels are used. Without bias where with_bias is false.
  void conv(const std::string& name, const memory& src, const memory& dst, int64_t kernel,
            const dnnl::post_ops& post_ops = {}, int64_t in_first = 0, bool with_bias = true) {
    const auto& src_desc = src.get_desc();
    const auto& dst_desc = dst.get_desc();
    const int64_t in = src_desc.dims()[1], out = dst_desc.dims()[1], pad = kernel / 2;
    const memory::desc weights_any({out, in, kernel, kernel}, kF32, Tag::any);
    const memory::desc bias_desc({out}, kF32, Tag::a);
    using Conv = dnnl::convolution_forward;
    const auto algorithm = dnnl::algorithm::convolution_direct;
    const Conv::primitive_desc pd(
        with_bias ? Conv::desc(kInference, algorithm, src_desc, weights_any, bias_desc, dst_desc, {1, 1}, {pad, pad}, {pad, pad})
                  : Conv::desc(kInference, algorithm, src_desc, weights_any, dst_desc, {1, 1}, {pad, pad}, {pad, pad}),
        attributes(post_ops), engine);
    ConvWeights weights{name, in_first, memory::desc({out, in, kernel, kernel}, kF32, Tag::oihw),
                        memory(pd.weights_desc(), engine), with_bias ? memory(bias_desc, engine) : memory()};
    Args args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights.weights}, {DNNL_ARG_DST, dst}};
    if (with_bias) args[DNNL_ARG_BIAS] = weights.bias;
    add_step(Conv(pd), std::move(args), pd.scratchpad_desc());
    convs.push_back(std::move(weights));
  }

  // dst = BatchNorm(x) with the running statistics of `name`'s first channels.
  void norm(const std::string& name, const memory& x, const memory& dst) {
    const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                       dnnl::normalization_flags::use_shift;
    const dnnl::batch_normalization_forward::desc desc(kInference, x.get_desc(), norm_epsilon, flags);
    const dnnl::batch_normalization_forward::primitive_desc pd(desc, attributes(), engine);
    const memory::desc channel_desc({x.get_desc().dims()[1]}, kF32, Tag::a);
    NormWeights weights{name, memory(channel_desc, engine), memory(channel_desc, engine), memory(channel_desc, engine),
                        memory(channel_desc, engine)};
    add_step(dnnl::batch_normalization_forward(pd),
             {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, dst}, {DNNL_ARG_MEAN, weights.mean}, {DNNL_ARG_VARIANCE, weights.variance},
              {DNNL_ARG_SCALE, weights.scale}, {DNNL_ARG_SHIFT, weights.shift}},
             pd.scratchpad_desc());
    norms.push_back(std::move(weights));
  }

  memory shared(torch::Tensor& buffer, const memory::desc& desc) const {
    const auto bytes = static_cast<int64_t>(desc.get_size());
    if (!buffer.defined() || buffer.numel() < bytes) buffer = torch::empty({bytes}, torch::kUInt8);
    return memory(desc, engine, nullptr);  // handle bound in finish(), once the buffer has its final size
  }

  // Residual(in, out) = conv1x1(x) + conv3x3_b(swish(conv3x3_a(batchnorm(x)))), as in unet.cpp.
  memory residual(const std::string& name, const memory& x, int64_t out_channels) {
    const auto& x_desc = x.get_desc();
    const int64_t size = x_desc.dims()[2];
    auto normalized = shared(normalized_buffer, x_desc);
    auto hidden = shared(hidden_buffer, activation(out_channels, size));
    normalized_uses.push_back(normalized);
    hidden_uses.push_back(hidden);
    auto y = new_activation(out_channels, size);
    norm(name + ".norm", x, normalized);
    conv(name + ".shortcut", x, y, 1);
    conv(name + ".conv_a", normalized, hidden, 3, swish());
    conv(name + ".conv_b", hidden, y, 3, accumulate());  // y = conv_b(hidden) + y, y holding the shortcut
    return y;
  }

  // The first block, on concat(features, embedding) without building the concatenation (EmbeddingTerms).
  memory first_residual(const std::string& name, const memory& features, int64_t out_channels) {
    const int64_t size = features.get_desc().dims()[2];
    auto normalized = shared(normalized_buffer, features.get_desc());
    normalized_uses.push_back(normalized);
    auto hidden = new_activation(out_channels, size);  // its own: filled before the block runs
    auto y = new_activation(out_channels, size);
    norm(name + ".norm", features, normalized);
    conv(name + ".shortcut", features, y, 1, accumulate(), 0, false);
    dnnl::post_ops accumulate_then_swish = accumulate();
    accumulate_then_swish.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
    conv(name + ".conv_a", normalized, hidden, 3, accumulate_then_swish, 0, false);
    conv(name + ".conv_b", hidden, y, 3, accumulate());
    embedding_terms.name = name;
    embedding_terms.block_output = y;
    embedding_terms.conv_a_output = hidden;
    return y;
  }

  static dnnl::post_ops swish() {
    dnnl::post_ops post_ops;
    post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);  // x * sigmoid(1 * x) = SiLU
    return post_ops;
  }

  static dnnl::post_ops accumulate() {
    dnnl::post_ops post_ops;
    post_ops.append_sum(1.0f);  // dst = result + dst
    return post_ops;
  }

  memory pool(const memory& x) {
    const auto dims = x.get_desc().dims();
    auto y = new_activation(dims[1], dims[2] / 2);
    const dnnl::pooling_forward::desc desc(kInference, dnnl::algorithm::pooling_avg_exclude_padding, x.get_desc(),
                                           y.get_desc(), {2, 2}, {2, 2}, {0, 0}, {0, 0});
    const dnnl::pooling_forward::primitive_desc pd(desc, attributes(), engine);
    add_step(dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}, pd.scratchpad_desc());
    return y;
  }

  // Bilinear 2x, half-pixel centres: libtorch's align_corners = false.
  memory upsample(const memory& x) {
    const auto dims = x.get_desc().dims();
    auto y = new_activation(dims[1], dims[2] * 2);
    const dnnl::resampling_forward::desc desc(kInference, dnnl::algorithm::resampling_linear, x.get_desc(), y.get_desc());
    const dnnl::resampling_forward::primitive_desc pd(desc, attributes(), engine);
    add_step(dnnl::resampling_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}, pd.scratchpad_desc());
    return y;
  }

  memory concat(const memory& a, const memory& b) {
    const auto a_dims = a.get_desc().dims();
    auto y = new_activation(a_dims[1] + b.get_desc().dims()[1], a_dims[2]);
    const dnnl::concat::primitive_desc pd(y.get_desc(), 1, {a.get_desc(), b.get_desc()}, engine, attributes());
    add_step(dnnl::concat(pd), {{DNNL_ARG_MULTIPLE_SRC, a}, {DNNL_ARG_MULTIPLE_SRC + 1, b}, {DNNL_ARG_DST, y}},
             pd.scratchpad_desc());
    return y;
  }

  void reorder(const memory& from, const memory& to) {
    const dnnl::reorder::primitive_desc pd(engine, from.get_desc(), engine, to.get_desc(), attributes());
    add_step(dnnl::reorder(pd), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, pd.scratchpad_desc());
  }

  // The layout oneDNN's convolutions prefer on this CPU, asked of a typical 3x3 convolution.
  void choose_layout() {
    const int64_t width = config.widths[0], size = config.image_size;
    const memory::desc any({batch, width, size, size}, kF32, Tag::any);
    const dnnl::convolution_forward::desc desc(kInference, dnnl::algorithm::convolution_direct, any,
                                               memory::desc({width, width, 3, 3}, kF32, Tag::any),
                                               memory::desc({width}, kF32, Tag::a), any, {1, 1}, {1, 1}, {1, 1});
    const auto chosen = dnnl::convolution_forward::primitive_desc(desc, engine).src_desc();
    const std::pair<Tag, const char*> candidates[] = {{Tag::nChw16c, "nChw16c"}, {Tag::nChw8c, "nChw8c"}};
    layout = Tag::nhwc;
    layout_name = "nhwc";
    for (const auto& [tag, name] : candidates)
      if (chosen == memory::desc(chosen.dims(), kF32, tag)) {
        layout = tag;
        layout_name = name;
      }
  }

  std::vector<memory> normalized_uses, hidden_uses;  // views of the shared buffers, bound in finish()

  void build() {
    choose_layout();
    const auto& widths = config.widths;
    const int64_t levels = static_cast<int64_t>(widths.size()), size = config.image_size;
    embedder = SinusoidalEmbedding(config.embedding_dim);

    input = memory(memory::desc({batch, config.channels, size, size}, kF32, Tag::nchw), engine, nullptr);
    auto image = new_activation(config.channels, size);
    reorder(input, image);
    auto features = new_activation(widths[0], size);
    conv("input_conv", image, features, 1);

    std::vector<memory> skips;
    memory x = features;
    for (int64_t level = 0; level < levels; ++level) {
      for (int64_t i = 0; i < config.block_depth; ++i) {
        const auto name = "down." + std::to_string(level) + ".blocks." + std::to_string(i);
        x = level == 0 && i == 0 ? first_residual(name, x, widths[level]) : residual(name, x, widths[level]);
        skips.push_back(x);
      }
      x = pool(x);
    }
    const int64_t deepest = widths[levels - 1];
    x = residual("middle_a", x, 2 * deepest);
    x = residual("middle_b", x, deepest);
    for (int64_t level = levels - 1, up = 0; level >= 0; --level, ++up) {
      x = upsample(x);
      for (int64_t i = 0; i < config.block_depth; ++i) {
        x = residual("up." + std::to_string(up) + ".blocks." + std::to_string(i), concat(x, skips.back()),
                     widths[level > 0 ? level - 1 : 0]);
        skips.pop_back();
      }
    }
    auto result = new_activation(config.channels, size);
    conv("output_conv", x, result, 1);
    output = memory(memory::desc({batch, config.channels, size, size}, kF32, Tag::nchw), engine, nullptr);
    reorder(result, output);
    finish();
  }

  void finish() {
    for (auto& view : normalized_uses) view.set_data_handle(normalized_buffer.data_ptr());
    for (auto& view : hidden_uses) view.set_data_handle(hidden_buffer.data_ptr());
    scratchpad = torch::empty({std::max<int64_t>(1, static_cast<int64_t>(scratchpad_desc.get_size()))}, torch::kUInt8);
    const memory scratch(scratchpad_desc, engine, scratchpad.data_ptr());
    for (auto& [primitive, args] : steps) args[DNNL_ARG_SCRATCHPAD] = scratch;
  }

  // Writes value(n, c, h, w) into every element of `target` (an activation of the plan's layout),
  // zero into the padding channels of a blocked layout.
  template <typename Value>
  void fill(const memory& target, const Value& value) const {
    const auto dims = target.get_desc().dims();
    const int64_t channels = dims[1], height = dims[2], width = dims[3], plane = height * width;
    const int64_t block = layout == Tag::nChw16c ? 16 : layout == Tag::nChw8c ? 8 : 0;
    const int64_t padded = block > 0 ? (channels + block - 1) / block * block : channels;
    auto* data = static_cast<float*>(target.get_data_handle());
    at::parallel_for(0, batch * height, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / height, h = row % height;
        for (int64_t w = 0; w < width; ++w) {
          const int64_t pixel = h * width + w;
          for (int64_t c = 0; c < padded; ++c) {
            const int64_t offset = block > 0 ? ((n * (padded / block) + c / block) * plane + pixel) * block + c % block
                                             : (n * plane + pixel) * channels + c;
            data[offset] = c < channels ? value(n, c, h, w) : 0.0f;
          }
        }
      }
    });
  }

  // The embedding's share of the first block for this call's noise variances (EmbeddingTerms).
  void fill_embedding_terms(const torch::Tensor& noise_variances) {
    const auto& terms = embedding_terms;
    const auto embedding = embedder->forward(noise_variances.to(torch::kFloat)).reshape({batch, -1});
    const auto shortcut = torch::addmm(terms.shortcut_bias, embedding, terms.shortcut_weight.t()).contiguous();  // [B, out]
    const auto normalized = embedding * terms.norm_scale + terms.norm_shift;                                       // [B, E]
    const auto conv_a = (torch::matmul(normalized, terms.conv_a_sums.transpose(-1, -2)) + terms.conv_a_bias)
                            .contiguous();  // [3, 3, B, out]
    const int64_t out = shortcut.size(1), size = config.image_size;
    const float* shortcut_values = shortcut.data_ptr<float>();
    const float* conv_a_values = conv_a.data_ptr<float>();
    const auto border_class = [size](int64_t i) -> int64_t { return i == 0 ? 0 : i == size - 1 ? 2 : 1; };
    fill(terms.block_output, [&](int64_t n, int64_t c, int64_t, int64_t) { return shortcut_values[n * out + c]; });
    fill(terms.conv_a_output, [&](int64_t n, int64_t c, int64_t h, int64_t w) {
      return conv_a_values[((border_class(h) * 3 + border_class(w)) * batch + n) * out + c];
    });
  }
};

FusedUNet::FusedUNet(const ModelConfig& config, int64_t batch) : plan_(std::make_unique<Plan>()) {
  config.validate();
  require(batch >= 1, Status::InvalidArgument, "the fused network needs a batch >= 1");
  plan_->config = config;
  plan_->batch = batch;
  try {
    plan_->build();
  } catch (const dnnl::error& error) {
    fail(Status::Internal, std::string("oneDNN could not build the fused network: ") + error.what());
  }
}

FusedUNet::~FusedUNet() = default;

int64_t FusedUNet::batch() const { return plan_->batch; }

const char* FusedUNet::activation_layout() const { return plan_->layout_name; }

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
  // The first `count` entries of a per-channel tensor.
  const auto first = [&](const std::string& name, int64_t count) { return tensor(name).slice(0, 0, count).contiguous(); };
  auto& plan = *plan_;
  for (auto& conv : plan.convs) {
    const int64_t in = conv.plain.dims()[1];
    const auto weights = tensor(conv.name + ".weight").slice(1, conv.in_first, conv.in_first + in).contiguous();
    memory plain(conv.plain, plan.engine, weights.data_ptr());
    dnnl::reorder(plain, conv.weights).execute(plan.stream, plain, conv.weights);
    if (conv.bias) copy_into(conv.bias, tensor(conv.name + ".bias"));
  }
  for (auto& norm : plan.norms) {
    const int64_t count = norm.mean.get_desc().dims()[0];
    copy_into(norm.mean, first(norm.name + ".running_mean", count));
    copy_into(norm.variance, first(norm.name + ".running_var", count));
    copy_into(norm.scale, first(norm.name + ".weight", count));
    copy_into(norm.shift, first(norm.name + ".bias", count));
  }
  plan.stream.wait();

  // The embedding channels come after the input convolution's in the first block's input.
  auto& terms = plan.embedding_terms;
  const int64_t features = plan.config.widths[0], dim = plan.config.embedding_dim;
  const auto embedding_part = [&](const std::string& name) { return tensor(name).slice(0, features, features + dim); };
  const auto scale = embedding_part(terms.name + ".norm.weight") /
                     (embedding_part(terms.name + ".norm.running_var") + plan.norm_epsilon).sqrt();
  terms.norm_scale = scale;
  terms.norm_shift = embedding_part(terms.name + ".norm.bias") - embedding_part(terms.name + ".norm.running_mean") * scale;
  const auto shortcut = tensor(terms.name + ".shortcut.weight");
  terms.shortcut_weight = shortcut.slice(1, features, features + dim).flatten(1).contiguous();
  terms.shortcut_bias = tensor(terms.name + ".shortcut.bias");
  const auto conv_a = tensor(terms.name + ".conv_a.weight").slice(1, features, features + dim);  // [out, E, 3, 3]
  // Taps inside the image at the first row (or column), the inner ones, and the last one.
  const std::pair<int64_t, int64_t> taps[3] = {{1, 3}, {0, 3}, {0, 2}};
  std::vector<torch::Tensor> sums;
  for (const auto& [row_first, row_end] : taps)
    for (const auto& [column_first, column_end] : taps)
      sums.push_back(conv_a.slice(2, row_first, row_end).slice(3, column_first, column_end).sum({2, 3}));
  terms.conv_a_sums = torch::stack(sums).reshape({3, 3, conv_a.size(0), dim}).contiguous();
  terms.conv_a_bias = tensor(terms.name + ".conv_a.bias");
}

torch::Tensor FusedUNet::forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances) {
  auto& plan = *plan_;
  const int64_t size = plan.config.image_size;
  require(noisy.device().is_cpu() && noisy.scalar_type() == torch::kFloat && noisy.dim() == 4 &&
              noisy.size(0) == plan.batch && noisy.size(1) == plan.config.channels && noisy.size(2) == size &&
              noisy.size(3) == size && noise_variances.numel() == plan.batch,
          Status::Internal, "the fused network got a tensor of the wrong shape, type or device");
  // oneDNN runs on OpenMP in the calling thread: give it libtorch's thread count, as libtorch's ops do.
  at::internal::lazy_init_num_threads();
  const auto input = noisy.contiguous();
  auto output = torch::empty_like(input);
  plan.fill_embedding_terms(noise_variances);
  plan.input.set_data_handle(input.data_ptr());
  plan.output.set_data_handle(output.data_ptr());
  try {
    for (auto& [primitive, args] : plan.steps) primitive.execute(plan.stream, args);
    plan.stream.wait();
  } catch (const dnnl::error& error) {
    fail(Status::Internal, std::string("oneDNN failed in the fused network: ") + error.what());
  }
  return output;
}

#endif  // DDIM_HAVE_DNNL

}  // namespace ddim
