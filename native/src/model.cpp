#include "model.h"

#include <algorithm>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "error.h"

namespace ddim {
namespace {

// libtorch's default convolution initialisation (kaiming_uniform with a = sqrt(5), and the same
// bound for the bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn from our own generator so that
// creation is reproducible and independent of torch's global RNG. The output convolution starts
// at zero, as in the reference, so an untrained model predicts zero noise.
void initialise(UNet& net, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : net->named_modules()) {
    if (auto* embedding = item.value()->as<torch::nn::Embedding>()) {  // class models: libtorch's N(0, 1)
      embedding->weight.copy_(torch::empty(embedding->weight.sizes()).normal_(0, 1, generator));
      continue;
    }
    auto* conv = item.value()->as<torch::nn::Conv2d>();
    if (conv == nullptr) continue;
    const auto& weight = conv->weight;
    const bool zero = item.key() == "output_conv";
    const double fan_in = static_cast<double>(weight.size(1) * weight.size(2) * weight.size(3));
    const double bound = zero ? 0.0 : 1.0 / std::sqrt(fan_in);
    weight.copy_(torch::empty(weight.sizes()).uniform_(-bound, bound, generator));
    if (conv->bias.defined()) conv->bias.copy_(torch::empty(conv->bias.sizes()).uniform_(-bound, bound, generator));
  }
}

}  // namespace

Model::Model(const ModelConfig& config, torch::Device device, uint64_t seed) : config_(config), device_(device) {
  config_.validate();
  net_ = UNet(config_);
  initialise(net_, seed);
  net_->to(device_);
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  mean_ = torch::zeros({config_.channels}, options);
  std_ = torch::ones({config_.channels}, options);
}

UNet Model::make_network() const {
  UNet network(config_);
  network->to(device_);
  return network;
}

void Model::set_class_names(const std::vector<std::string>& names) {
  auto config = config_;
  config.class_names = names;
  config.validate();
  config_ = config;
}

int64_t Model::parameter_count() const {
  int64_t count = 0;
  for (const auto& parameter : net_->parameters()) count += parameter.numel();
  return count;
}

void Model::set_normalizer(const torch::Tensor& mean, const torch::Tensor& std) {
  require(mean.numel() == config_.channels && std.numel() == config_.channels, Status::BufferSize,
          "normaliser needs " + std::to_string(config_.channels) + " values per tensor");
  require(torch::isfinite(mean).all().item<bool>(), Status::InvalidArgument, "normaliser mean must be finite");
  require(torch::isfinite(std).all().item<bool>() && (std > 0).all().item<bool>(), Status::InvalidArgument,
          "normaliser std must be finite and > 0");
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  mean_ = mean.reshape({-1}).to(options).clone();
  std_ = std.reshape({-1}).to(options).clone();
}

torch::Tensor Model::normalize(const torch::Tensor& pixels) const {
  return (pixels - mean_.view({1, -1, 1, 1})) / std_.view({1, -1, 1, 1});
}

torch::Tensor Model::denormalize(const torch::Tensor& x) const {
  return x * std_.view({1, -1, 1, 1}) + mean_.view({1, -1, 1, 1});
}

namespace {

// Classifier-free guidance (Ho & Salimans 2022) of one batch: the conditional and the
// unconditional prediction from one network evaluation of both halves, mixed as
// uncond + guidance * (cond - uncond).
torch::Tensor guide(const NetworkFn& network, const torch::Tensor& x, const torch::Tensor& variances,
                    const torch::Tensor& labels, const Conditioning& conditioning) {
  const int64_t n = x.size(0);
  const auto both = network(torch::cat({x, x}), torch::cat({variances, variances}),
                            torch::cat({labels, torch::full_like(labels, conditioning.no_class)}));
  const auto conditional = both.slice(0, 0, n), unconditional = both.slice(0, n, 2 * n);
  return unconditional + conditioning.guidance * (conditional - unconditional);
}

// Runs `network` on slices of exactly `micro_batch` images, padding the last slice with copies of
// its last image. libtorch picks its convolution kernels by batch shape (and thread count), and
// different kernels round differently; with one fixed shape every image gets the same bits
// whatever batch it came in and wherever it sat in it. With guidance each slice goes through the
// network twice in one batch of 2 x micro_batch, first with its labels, then with "no class".
torch::Tensor forward_in_micro_batches(const NetworkFn& network, const torch::Tensor& x, const torch::Tensor& variances,
                                       const Conditioning& conditioning, int64_t micro_batch) {
  const int64_t count = x.size(0);
  const auto pad = [&](const torch::Tensor& part, int64_t n) {
    if (!part.defined() || n == micro_batch) return part;
    auto sizes = part.sizes().vec();
    sizes[0] = micro_batch - n;
    return torch::cat({part, part.slice(0, n - 1, n).expand(sizes)});
  };
  std::vector<torch::Tensor> outputs;
  for (int64_t first = 0; first < count; first += micro_batch) {
    const int64_t n = std::min(micro_batch, count - first);
    auto slice = pad(x.slice(0, first, first + n), n);
    auto slice_variances = pad(variances.slice(0, first, first + n), n);
    const auto given = conditioning.unguided_labels();  // the labels themselves whenever guided
    const auto labels = given.defined() ? pad(given.slice(0, first, first + n), n) : torch::Tensor();
    outputs.push_back(conditioning.guided() ? guide(network, slice, slice_variances, labels, conditioning).slice(0, 0, n)
                                            : network(slice, slice_variances, labels).slice(0, 0, n));
  }
  return outputs.size() == 1 ? outputs[0] : torch::cat(outputs);
}

}  // namespace

NetworkFn network_fn(UNet network) {
  return [network](const torch::Tensor& noisy, const torch::Tensor& noise_variances, const torch::Tensor& labels) mutable {
    // A reduced-precision network computes in its own dtype; the prediction is float32 again.
    return network->forward(noisy.to(network->dtype()), noise_variances, labels).to(torch::kFloat);
  };
}

NetworkFn Model::fused_network(UNet& network, FusedOptions options) {
  return [this, network, options](const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                                  const torch::Tensor& labels) mutable {
    const int64_t batch = noisy.size(0);
    auto found = std::find_if(fused_.begin(), fused_.end(), [&](const auto& plan) {
      return plan->batch() == batch && plan->options().dtype == options.dtype &&
             plan->options().convolutions == options.convolutions;
    });
    std::shared_ptr<FusedUNet> plan;
    if (found != fused_.end()) {
      plan = *found;
      fused_.erase(found);
    } else {
      if (fused_.size() >= kFusedPlansKept) fused_.pop_back();  // frees its buffers before the new plan allocates
      plan = std::make_shared<FusedUNet>(config_, batch, options);
    }
    fused_.insert(fused_.begin(), plan);
    plan->load_weights_if_changed(*network);
    return plan->forward(noisy, noise_variances, labels);
  };
}

std::vector<int64_t> Model::fused_plan_batches() const {
  std::vector<int64_t> batches;
  for (const auto& plan : fused_) batches.push_back(plan->batch());
  return batches;
}

Prediction Model::predict(const NetworkFn& network, const torch::Tensor& noisy, const torch::Tensor& signal_rates,
                          const torch::Tensor& noise_rates, int64_t micro_batch,
                          const Conditioning& conditioning) const {
  // The network is conditioned on the noise variance, as in the reference, and on the class.
  ++evaluations_;
  const auto variances = noise_rates.square().reshape({-1});
  torch::Tensor output;
  if (micro_batch > 0) {
    output = forward_in_micro_batches(network, noisy, variances, conditioning, micro_batch);
  } else {
    output = conditioning.guided() ? guide(network, noisy, variances, conditioning.labels, conditioning)
                                   : network(noisy, variances, conditioning.unguided_labels());
  }
  if (config_.target == Target::Noise) return {output, (noisy - noise_rates * output) / signal_rates};
  return {(noisy - signal_rates * output) / noise_rates, output};
}

UNet Model::converted_copy(UNet& network, torch::ScalarType dtype) const {
  auto copy = make_network();
  torch::NoGradGuard no_grad;
  const auto parameters = network->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(parameters[item.key()]);
  const auto buffers = network->named_buffers();
  for (auto& item : copy->named_buffers()) item.value().copy_(buffers[item.key()]);
  copy->to(dtype);
  return copy;
}

}  // namespace ddim
