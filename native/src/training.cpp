#include "training.h"

#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>

#include <cmath>
#include <sstream>
#include <type_traits>

#include "error.h"
#include "json_fields.h"
#include "sampling.h"
#include "schedule.h"

namespace ddim {
namespace {

// Distinguishes training draws from sampling draws made with the same user seed.
constexpr uint64_t kTrainingStream = 0x747261696e696e67ULL;  // "training"

struct NoisyBatch {
  torch::Tensor noisy, noise, signal_rates, noise_rates;
  torch::Tensor labels;  // class models: the labels after dropout; else undefined
};

// Draws t ~ U(0, 1) per image and eps ~ N(0, I) on the CPU from `generator_seed`, then mixes them
// with the normalised images on their device. With labels, then draws which of them become
// "no class" (probability `label_dropout`), after t and noise so that those draws stay as they are.
NoisyBatch diffuse(const Model& model, const torch::Tensor& images, uint64_t generator_seed,
                   const torch::Tensor& labels = {}, double label_dropout = 0) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(generator_seed);
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
  const int64_t batch = images.size(0);
  const auto t = torch::rand({batch, 1, 1, 1}, generator, cpu).to(images.device());
  const auto noise = torch::randn(images.sizes(), generator, cpu).to(images.device());
  const auto rates = diffusion_rates(model.config().schedule, t);
  NoisyBatch noisy{rates.signal * images + rates.noise * noise, noise, rates.signal, rates.noise, labels};
  if (labels.defined() && label_dropout > 0) {
    const auto dropped = (torch::rand({batch}, generator, cpu) < label_dropout).to(labels.device());
    noisy.labels = labels.masked_fill(dropped, model.config().classes);
  }
  return noisy;
}

// The labels of a batch of `count` images as the network takes them: [count] int64 on the model's
// device, each 0 .. classes (classes = "no class"). Class models need them; others take none.
torch::Tensor prepare_labels(const Model& model, const torch::Tensor& labels, int64_t count) {
  const int64_t classes = model.config().classes;
  if (classes == 0) {
    require(!labels.defined(), Status::InvalidArgument, "this model is unconditional: it takes no labels");
    return {};
  }
  require(labels.defined(), Status::InvalidArgument,
          "a class-conditional model needs a label per image (" + std::to_string(classes) + " classes)");
  require(labels.dim() == 1 && labels.size(0) == count, Status::BufferSize,
          "one label per image: " + std::to_string(count) + " labels");
  const auto values = labels.to(torch::kLong);
  require((values >= 0).logical_and(values <= classes).all().item<bool>(), Status::InvalidArgument,
          "labels must lie in [0, " + std::to_string(classes) + "] (" + std::to_string(classes) + " = no class)");
  return values.to(model.device());
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

void require_finite_loss(double loss, int64_t step) {
  require(std::isfinite(loss), Status::NonFinite,
          "the loss is " + std::to_string(loss) + " at step " + std::to_string(step) + ": training diverged (lower the learning rate?)");
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
  if (accumulate < 1 || accumulate > 4096) bad("accumulate must lie in [1, 4096]");
  if (!(label_dropout >= 0 && label_dropout <= 1)) bad("label_dropout must lie in [0, 1]");
}

nlohmann::json TrainConfig::to_json() const {
  return {{"learning_rate", learning_rate},
          {"weight_decay", weight_decay},
          {"ema_decay", ema_decay},
          {"loss", loss == Loss::Mae ? "mae" : "mse"},
          {"seed", seed},
          {"accumulate", accumulate},
          {"label_dropout", label_dropout}};
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
    config.seed = json_unsigned_field(json, "seed");
    config.accumulate = json_integer_field_or(json, "accumulate", 1);  // absent before accumulation existed
    config.label_dropout = json.value("label_dropout", 0.1);  // absent before class models existed
  } catch (const nlohmann::json::exception& e) {
    fail(Status::Format, std::string("training config: ") + e.what());
  } catch (const Error& e) {
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

double Trainer::step(const torch::Tensor& pixels, const torch::Tensor& given_labels) {
  const auto images = prepare(model_, pixels);
  const auto labels = prepare_labels(model_, given_labels, images.size(0));
  const int64_t parts = config_.accumulate;
  require(images.size(0) % parts == 0, Status::BufferSize,
          "a batch of " + std::to_string(images.size(0)) + " images does not split into " + std::to_string(parts) +
              " equal micro-batches (accumulate)");
  const int64_t micro = images.size(0) / parts;
  const int rank = group_ ? group_->rank() : 0;
  const int64_t micro_batches = parts * (group_ ? group_->world_size() : 1);
  if (group_) group_->mark_step(steps_);
  auto& net = model_.net();
  net->train();
  optimizer_.zero_grad();

  // With more than one micro-batch per step, each one's BatchNorm update starts from the same
  // running statistics; the step keeps their mean (see training.h).
  std::vector<torch::Tensor> buffers, start, sums;
  if (micro_batches > 1) {
    torch::NoGradGuard no_grad;
    for (auto& buffer : net->buffers()) {
      buffers.push_back(buffer);
      start.push_back(buffer.clone());
      sums.push_back(torch::zeros_like(buffer));
    }
  }
  const uint64_t step_seed = image_seed(config_.seed ^ kTrainingStream, steps_);
  double loss_sum = 0;
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t j = rank * parts + k;
    const auto part = parts == 1 ? images : images.narrow(0, k * micro, micro);
    const auto part_labels = labels.defined() && parts > 1 ? labels.narrow(0, k * micro, micro) : labels;
    const auto batch = diffuse(model_, part, j == 0 ? step_seed : image_seed(step_seed, j), part_labels,
                               config_.label_dropout);
    const auto prediction = net->forward(batch.noisy, batch.noise_rates.square().reshape({-1}), batch.labels);
    const auto& target = model_.config().target == Target::Noise ? batch.noise : part;
    const auto loss = config_.loss == Loss::Mae ? torch::l1_loss(prediction, target) : torch::mse_loss(prediction, target);
    const double value = loss.item<double>();
    loss_sum += value;
    if (!group_) require_finite_loss(value, steps_);
    (parts == 1 ? loss : loss / static_cast<double>(parts)).backward();
    if (micro_batches > 1) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < buffers.size(); ++i) {
        if (buffers[i].is_floating_point()) sums[i].add_(buffers[i]);
        if (k + 1 < parts) buffers[i].copy_(start[i]);  // the counter keeps the first update: one per step
        else if (!buffers[i].is_floating_point()) buffers[i].copy_(start[i] + 1);
      }
    }
  }
  double loss_mean = loss_sum / static_cast<double>(parts);
  if (micro_batches > 1) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < buffers.size(); ++i) {
      if (buffers[i].is_floating_point()) buffers[i].copy_(parts == 1 ? sums[i] : sums[i] / static_cast<double>(parts));
    }
  }
  if (group_) {
    try {
      // Gradients, then BatchNorm statistics and the loss, averaged over the ranks in buckets.
      std::vector<torch::Tensor> gradients;
      for (auto& parameter : net->parameters()) {
        if (!parameter.grad().defined()) parameter.mutable_grad() = torch::zeros_like(parameter);
        gradients.push_back(parameter.grad());
      }
      group_->average(gradients);
      std::vector<torch::Tensor> statistics;
      for (auto& buffer : buffers) {
        if (buffer.is_floating_point()) statistics.push_back(buffer);
      }
      auto loss = torch::full({1}, loss_mean, torch::TensorOptions().dtype(torch::kFloat).device(model_.device()));
      statistics.push_back(loss);
      group_->average(statistics);
      loss_mean = loss.item<double>();
      require_finite_loss(loss_mean, steps_);  // the same mean on every rank: all of them stop here together
    } catch (...) {
      // A lost rank or a diverged step leaves this rank's model as it was before the step.
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(start[i]);
      throw;
    }
  }
  optimizer_.step();
  update_ema();
  ++steps_;
  return loss_mean;
}

bool Trainer::any_rank(bool flag) {
  if (!group_) return flag;
  auto value = torch::tensor({int64_t{flag}}, torch::kLong);
  group_->maximum(value);
  return value.item<int64_t>() != 0;
}

void Trainer::join(std::unique_ptr<ProcessGroup> group) {
  require(group != nullptr, Status::Internal, "no process group");
  require(!group_, Status::InvalidArgument, "this model already trains in a process group");
  // Every rank's settings against the others': a rank started with another model, learning rate or
  // seed would silently train something else. The ranks' hashes h are all equal exactly when, on
  // every rank, max(h) == h and max(-h) == -h: one collective of maxima tells every rank.
  const auto settings = model_.config().to_json().dump() + config_.to_json().dump();
  const int64_t hash = static_cast<int64_t>(crc32(0L, reinterpret_cast<const Bytef*>(settings.data()),
                                                  static_cast<uInt>(settings.size())));
  const bool has_ema = static_cast<bool>(model_.ema());
  const bool has_state = !optimizer_.state().empty();
  auto compared = torch::tensor({hash, -hash, int64_t{has_ema}, int64_t{has_state}, steps_,
                                 group->rank() == 0 ? steps_ : int64_t{-1}},
                                torch::kLong);
  group->maximum(compared);
  require(compared[0].item<int64_t>() == hash && compared[1].item<int64_t>() == -hash, Status::InvalidArgument,
          "the ranks were started with different model or training settings: give every rank the same command");
  const int64_t steps = compared[5].item<int64_t>();
  require(compared[4].item<int64_t>() == steps, Status::InvalidArgument,
          "another rank holds a later training step (" + std::to_string(compared[4].item<int64_t>()) + ") than rank 0 (" +
              std::to_string(steps) + "): a run resumes from rank 0's checkpoint");
  // Receivers get room for what rank 0 has (an EMA, AdamW's moments) and its step count.
  if (compared[2].item<int64_t>() != 0 && !model_.ema()) {
    UNet ema = model_.make_network();
    for (auto& p : ema->parameters()) p.set_requires_grad(false);
    model_.ema() = ema;
  }
  if (compared[3].item<int64_t>() != 0 && !has_state) {
    std::map<std::string, torch::Tensor> zeros;
    for (const auto& item : model_.net()->named_parameters()) {
      zeros[item.key() + ".exp_avg"] = torch::zeros_like(item.value());
      zeros[item.key() + ".exp_avg_sq"] = torch::zeros_like(item.value());
    }
    restore(steps, zeros);
  }
  steps_ = steps;
  // Everything rank 0 sends, in one order on every rank. The normaliser travels in copies, since
  // set_normalizer replaces it rather than writing in place; AdamW's moments by name.
  std::vector<torch::Tensor> tensors;
  const auto add_network = [&](UNet& network) {
    for (auto& parameter : network->parameters()) tensors.push_back(parameter);
    for (auto& buffer : network->buffers()) tensors.push_back(buffer);
  };
  add_network(model_.net());
  if (model_.ema()) add_network(*model_.ema());
  auto mean = model_.mean().clone();
  auto std = model_.std().clone();
  tensors.push_back(mean);
  tensors.push_back(std);
  for (auto& item : optimizer_state()) tensors.push_back(item.second);
  {
    torch::NoGradGuard no_grad;
    group->broadcast(tensors);
  }
  model_.set_normalizer(mean, std);
  group_ = std::move(group);
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

Losses evaluate(Model& model, UNet& network, const torch::Tensor& pixels, uint64_t seed, const torch::Tensor& labels) {
  torch::InferenceMode inference;
  const auto images = prepare(model, pixels);
  Conditioning conditioning;
  // Unconditional models refuse labels; class models without them are evaluated with "no class".
  if (model.config().classes == 0 || labels.defined()) conditioning.labels = prepare_labels(model, labels, images.size(0));
  network->eval();
  const auto batch = diffuse(model, images, image_seed(seed ^ kTrainingStream, -1));
  const auto prediction =
      model.predict(network, batch.noisy, batch.signal_rates, batch.noise_rates, 0, conditioning);
  return {torch::l1_loss(prediction.noise, batch.noise).item<double>(),
          torch::l1_loss(prediction.image, images).item<double>()};
}

}  // namespace ddim
