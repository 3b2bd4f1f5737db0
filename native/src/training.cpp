#include "training.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>
#include <type_traits>

#include "error.h"
#include "sampling.h"
#include "schedule.h"

namespace ddim {
namespace {

// Distinguishes training draws from sampling draws made with the same user seed.
constexpr uint64_t kTrainingStream = 0x747261696e696e67ULL;  // "training"

struct NoisyBatch {
  torch::Tensor noisy, noise, signal_rates, noise_rates;
};

// Draws t ~ U(0, 1) per image and eps ~ N(0, I) on the CPU from `generator_seed`, then mixes them
// with the normalised images on their device.
NoisyBatch diffuse(const Model& model, const torch::Tensor& images, uint64_t generator_seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(generator_seed);
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
  const int64_t batch = images.size(0);
  const auto t = torch::rand({batch, 1, 1, 1}, generator, cpu).to(images.device());
  const auto noise = torch::randn(images.sizes(), generator, cpu).to(images.device());
  const auto rates = diffusion_rates(model.config().schedule, t);
  return {rates.signal * images + rates.noise * noise, noise, rates.signal, rates.noise};
}

// The key of a parameter in the optimizer's state map: its TensorImpl's address, formatted as a
// string in libtorch 1.x and kept as a pointer in 2.x.
template <typename StateMap>
typename StateMap::key_type state_key(const StateMap&, const torch::Tensor& parameter) {
  using Key = typename StateMap::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << parameter.unsafeGetTensorImpl();
    return key.str();
  } else {
    return static_cast<Key>(parameter.unsafeGetTensorImpl());
  }
}

torch::Tensor prepare(const Model& model, const torch::Tensor& pixels) {
  const auto& config = model.config();
  require(pixels.dim() == 4 && pixels.size(0) >= 1 && pixels.size(1) == config.channels &&
              pixels.size(2) == config.image_size && pixels.size(3) == config.image_size,
          Status::BufferSize, "a batch must be [B >= 1, " + std::to_string(config.channels) + ", " +
                                    std::to_string(config.image_size) + ", " + std::to_string(config.image_size) + "]");
  const auto on_device = pixels.to(model.device(), torch::kFloat);
  require_unit_range(on_device, "pixels");  // as for every other call that takes pixels
  return model.normalize(on_device);
}

}  // namespace

void TrainConfig::validate() const {
  const auto bad = [](const std::string& message) { fail(Status::InvalidArgument, "invalid training config: " + message); };
  if (!(std::isfinite(learning_rate) && learning_rate > 0)) bad("learning_rate must be finite and > 0");
  if (!(std::isfinite(weight_decay) && weight_decay >= 0)) bad("weight_decay must be finite and >= 0");
  if (!(ema_decay >= 0 && ema_decay < 1)) bad("ema_decay must lie in [0, 1)");
  if (loss != Loss::Mae && loss != Loss::Mse) bad("unknown loss");
}

nlohmann::json TrainConfig::to_json() const {
  return {{"learning_rate", learning_rate},
          {"weight_decay", weight_decay},
          {"ema_decay", ema_decay},
          {"loss", loss == Loss::Mae ? "mae" : "mse"},
          {"seed", seed}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& json) {
  TrainConfig config;
  try {
    config.learning_rate = json.at("learning_rate").get<double>();
    config.weight_decay = json.at("weight_decay").get<double>();
    config.ema_decay = json.at("ema_decay").get<double>();
    const auto loss = json.at("loss").get<std::string>();
    if (loss != "mae" && loss != "mse") fail(Status::Format, "training config: unknown loss '" + loss + "'");
    config.loss = loss == "mae" ? Loss::Mae : Loss::Mse;
    config.seed = json.at("seed").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail(Status::Format, std::string("training config: ") + e.what());
  }
  return config;
}

Trainer::Trainer(Model& model, const TrainConfig& config)
    : model_(model),
      config_(config),
      optimizer_(model.net()->parameters(),
                 torch::optim::AdamWOptions(config.learning_rate).weight_decay(config.weight_decay)) {
  config_.validate();
  if (config_.ema_decay > 0 && !model_.ema()) {
    UNet ema = model_.make_network();
    torch::NoGradGuard no_grad;
    const auto source = model_.net()->named_parameters();
    for (auto& item : ema->named_parameters()) item.value().copy_(source[item.key()]);
    const auto buffers = model_.net()->named_buffers();
    for (auto& item : ema->named_buffers()) item.value().copy_(buffers[item.key()]);
    for (auto& p : ema->parameters()) p.set_requires_grad(false);
    model_.ema() = ema;
  }
}

void Trainer::set_config(const TrainConfig& config) {
  config.validate();
  config_ = config;
  for (auto& group : optimizer_.param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    options.lr(config.learning_rate);
    options.weight_decay(config.weight_decay);
  }
}

double Trainer::ema_decay_at(double decay, int64_t n) {
  return std::min(decay, (1.0 + static_cast<double>(n)) / (10.0 + static_cast<double>(n)));
}

double Trainer::step(const torch::Tensor& pixels) {
  const auto images = prepare(model_, pixels);
  auto& net = model_.net();
  net->train();
  const auto batch = diffuse(model_, images, image_seed(config_.seed ^ kTrainingStream, steps_));
  const auto prediction = net->forward(batch.noisy, batch.noise_rates.square().reshape({-1}));
  const auto& target = model_.config().target == Target::Noise ? batch.noise : images;
  const auto loss = config_.loss == Loss::Mae ? torch::l1_loss(prediction, target) : torch::mse_loss(prediction, target);
  const double value = loss.item<double>();
  require(std::isfinite(value), Status::NonFinite,
          "the loss is " + std::to_string(value) + " at step " + std::to_string(steps_) + ": training diverged (lower the learning rate?)");
  optimizer_.zero_grad();
  loss.backward();
  optimizer_.step();
  update_ema();
  ++steps_;
  return value;
}

void Trainer::update_ema() {
  if (!model_.ema()) return;
  torch::NoGradGuard no_grad;
  const double decay = ema_decay_at(config_.ema_decay, steps_);
  auto& ema = *model_.ema();
  const auto parameters = model_.net()->named_parameters();
  for (auto& item : ema->named_parameters()) item.value().mul_(decay).add_(parameters[item.key()], 1 - decay);
  // BatchNorm statistics are averaged too, as Keras's EMA does; its integer counter is copied.
  const auto buffers = model_.net()->named_buffers();
  for (auto& item : ema->named_buffers()) {
    auto& value = item.value();
    if (value.is_floating_point()) {
      value.mul_(decay).add_(buffers[item.key()], 1 - decay);
    } else {
      value.copy_(buffers[item.key()]);
    }
  }
}

std::map<std::string, torch::Tensor> Trainer::optimizer_state() const {
  std::map<std::string, torch::Tensor> state;
  const auto& states = optimizer_.state();
  for (const auto& item : model_.net()->named_parameters()) {
    const auto found = states.find(state_key(states, item.value()));
    if (found == states.end()) continue;  // no step taken yet
    const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*found->second);
    state[item.key() + ".exp_avg"] = adam.exp_avg();
    state[item.key() + ".exp_avg_sq"] = adam.exp_avg_sq();
  }
  return state;
}

void Trainer::restore(int64_t steps, const std::map<std::string, torch::Tensor>& optimizer_state) {
  require(steps >= 0, Status::Format, "negative training step count");
  steps_ = steps;
  auto& states = optimizer_.state();
  states.clear();
  if (optimizer_state.empty()) return;
  for (const auto& item : model_.net()->named_parameters()) {
    const auto exp_avg = optimizer_state.find(item.key() + ".exp_avg");
    const auto exp_avg_sq = optimizer_state.find(item.key() + ".exp_avg_sq");
    require(exp_avg != optimizer_state.end() && exp_avg_sq != optimizer_state.end(), Status::Format,
            "optimizer state lacks " + item.key());
    auto adam = std::make_unique<torch::optim::AdamWParamState>();
    adam->step(steps);
    adam->exp_avg(exp_avg->second.to(model_.device()).clone());
    adam->exp_avg_sq(exp_avg_sq->second.to(model_.device()).clone());
    states[state_key(states, item.value())] = std::move(adam);
  }
}

Losses evaluate(Model& model, UNet& network, const torch::Tensor& pixels, uint64_t seed) {
  torch::InferenceMode inference;
  const auto images = prepare(model, pixels);
  network->eval();
  const auto batch = diffuse(model, images, image_seed(seed ^ kTrainingStream, -1));
  const auto prediction = model.predict(network, batch.noisy, batch.signal_rates, batch.noise_rates);
  return {torch::l1_loss(prediction.noise, batch.noise).item<double>(),
          torch::l1_loss(prediction.image, images).item<double>()};
}

}  // namespace ddim
