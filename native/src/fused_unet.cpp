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
  std::string name;  // e.g. "down.0.blocks.1.conv_a"
  memory::desc plain;  // OIHW, as libtorch stores it
  memory weights, bias;
};

struct NormWeights {
  std::string name;  // e.g. "down.0.blocks.1.norm"
  memory mean, variance, scale, shift;
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
  // since they run one after another: one buffer each, of the largest size, allocated in finish().
  torch::Tensor normalized_buffer, hidden_buffer, scratchpad;
  std::vector<memory> normalized_uses, hidden_uses;  // views of the shared buffers, bound in finish()
  memory::desc scratchpad_desc;  // the largest any step asks for
  memory input, output;          // the caller's tensors, plain NCHW: handles set per call
  memory embedding;              // [batch, embedding_dim, S, S] in the blocked layout, filled per call
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

  // dst = conv(src) (+ bias), with `post_ops` applied. `name` is the module's name.
  void conv(const std::string& name, const memory& src, const memory& dst, int64_t kernel,
            const dnnl::post_ops& post_ops = {}) {
    const auto& src_desc = src.get_desc();
    const auto& dst_desc = dst.get_desc();
    const int64_t in = src_desc.dims()[1], out = dst_desc.dims()[1], pad = kernel / 2;
    const memory::desc weights_any({out, in, kernel, kernel}, kF32, Tag::any);
    const memory::desc bias_desc({out}, kF32, Tag::a);
    const dnnl::convolution_forward::desc desc(kInference, dnnl::algorithm::convolution_direct, src_desc, weights_any,
                                               bias_desc, dst_desc, {1, 1}, {pad, pad}, {pad, pad});
    const dnnl::convolution_forward::primitive_desc pd(desc, attributes(post_ops), engine);
    ConvWeights weights{name, memory::desc({out, in, kernel, kernel}, kF32, Tag::oihw),
                        memory(pd.weights_desc(), engine), memory(bias_desc, engine)};
    add_step(dnnl::convolution_forward(pd),
             {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights.weights}, {DNNL_ARG_BIAS, weights.bias}, {DNNL_ARG_DST, dst}},
             pd.scratchpad_desc());
    convs.push_back(std::move(weights));
  }

  // A view of one of the shared buffers; its handle is bound in finish(), once the largest size is known.
  memory shared(std::vector<memory>& uses, const memory::desc& desc) {
    uses.emplace_back(desc, engine, nullptr);
    return uses.back();
  }

  // Residual(in, out) = conv1x1(x) + conv3x3_b(swish(conv3x3_a(batchnorm(x)))), as in unet.cpp.
  memory residual(const std::string& name, const memory& x, int64_t out_channels) {
    const auto& x_desc = x.get_desc();
    const int64_t in_channels = x_desc.dims()[1], size = x_desc.dims()[2];
    auto normalized = shared(normalized_uses, x_desc);
    auto hidden = shared(hidden_uses, activation(out_channels, size));
    auto y = new_activation(out_channels, size);

    const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                       dnnl::normalization_flags::use_shift;
    const dnnl::batch_normalization_forward::desc norm_desc(kInference, x_desc, norm_epsilon, flags);
    const dnnl::batch_normalization_forward::primitive_desc norm_pd(norm_desc, attributes(), engine);
    const memory::desc channel_desc({in_channels}, kF32, Tag::a);
    NormWeights norm{name + ".norm", memory(channel_desc, engine), memory(channel_desc, engine),
                     memory(channel_desc, engine), memory(channel_desc, engine)};
    add_step(dnnl::batch_normalization_forward(norm_pd),
             {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, normalized}, {DNNL_ARG_MEAN, norm.mean},
              {DNNL_ARG_VARIANCE, norm.variance}, {DNNL_ARG_SCALE, norm.scale}, {DNNL_ARG_SHIFT, norm.shift}},
             norm_pd.scratchpad_desc());
    norms.push_back(std::move(norm));

    conv(name + ".shortcut", x, y, 1);
    dnnl::post_ops swish;
    swish.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);  // x * sigmoid(1 * x) = SiLU
    conv(name + ".conv_a", normalized, hidden, 3, swish);
    dnnl::post_ops add_residual;
    add_residual.append_sum(1.0f);  // y = conv_b(hidden) + y, y holding the shortcut
    conv(name + ".conv_b", hidden, y, 3, add_residual);
    return y;
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
    embedding = new_activation(config.embedding_dim, size);
    auto x = concat(features, embedding);

    std::vector<memory> skips;
    for (int64_t level = 0; level < levels; ++level) {
      for (int64_t i = 0; i < config.block_depth; ++i) {
        x = residual("down." + std::to_string(level) + ".blocks." + std::to_string(i), x, widths[level]);
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

  // One buffer of `uses`' largest size, every view bound to it.
  static torch::Tensor bind_shared(std::vector<memory>& uses) {
    size_t bytes = 1;
    for (const auto& view : uses) bytes = std::max(bytes, view.get_desc().get_size());
    auto buffer = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
    for (auto& view : uses) view.set_data_handle(buffer.data_ptr());
    return buffer;
  }

  void finish() {
    normalized_buffer = bind_shared(normalized_uses);
    hidden_buffer = bind_shared(hidden_uses);
    scratchpad = torch::empty({std::max<int64_t>(1, static_cast<int64_t>(scratchpad_desc.get_size()))}, torch::kUInt8);
    const memory scratch(scratchpad_desc, engine, scratchpad.data_ptr());
    for (auto& [primitive, args] : steps) args[DNNL_ARG_SCRATCHPAD] = scratch;
  }

  // The embedding of each image's noise variance, repeated over H x W, written straight into the
  // blocked layout (one pass, no NCHW intermediate).
  void fill_embedding(const torch::Tensor& noise_variances) {
    const auto values = embedder->forward(noise_variances.to(torch::kFloat)).reshape({batch, -1}).contiguous();
    const int64_t dim = config.embedding_dim, plane = config.image_size * config.image_size;
    const int64_t block = layout == Tag::nChw16c ? 16 : layout == Tag::nChw8c ? 8 : 0;
    const int64_t padded = block > 0 ? (dim + block - 1) / block * block : dim;
    const float* source = values.data_ptr<float>();
    auto* target = static_cast<float*>(embedding.get_data_handle());
    at::parallel_for(0, batch * plane, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t index = begin; index < end; ++index) {
        const int64_t n = index / plane, pixel = index % plane;
        const float* row = source + n * dim;
        for (int64_t c = 0; c < padded; ++c) {
          const float value = c < dim ? row[c] : 0.0f;  // blocked layouts pad channels with zeros
          const int64_t offset = block > 0 ? ((n * (padded / block) + c / block) * plane + pixel) * block + c % block
                                           : (n * plane + pixel) * dim + c;
          target[offset] = value;
        }
      }
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
  auto& plan = *plan_;
  for (auto& conv : plan.convs) {
    const auto weights = tensor(conv.name + ".weight");
    memory plain(conv.plain, plan.engine, weights.data_ptr());
    dnnl::reorder(plain, conv.weights).execute(plan.stream, plain, conv.weights);
    copy_into(conv.bias, tensor(conv.name + ".bias"));
  }
  for (auto& norm : plan.norms) {
    copy_into(norm.mean, tensor(norm.name + ".running_mean"));
    copy_into(norm.variance, tensor(norm.name + ".running_var"));
    copy_into(norm.scale, tensor(norm.name + ".weight"));
    copy_into(norm.shift, tensor(norm.name + ".bias"));
  }
  plan.stream.wait();
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
  plan.fill_embedding(noise_variances);
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
