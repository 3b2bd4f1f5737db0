#include "config.h"

#include <cmath>

#include "error.h"
#include "unet.h"

namespace ddim {
namespace {

const char* schedule_name(ScheduleKind kind) { return kind == ScheduleKind::Cosine ? "cosine" : "linear"; }
const char* target_name(Target target) { return target == Target::Noise ? "noise" : "image"; }

void invalid(const std::string& message) { fail(DDIM_ERR_INVALID_ARGUMENT, "invalid model config: " + message); }

}  // namespace

void ModelConfig::validate() const {
  if (channels < 1 || channels > 4) invalid("channels must be 1..4, got " + std::to_string(channels));
  if (widths.empty()) invalid("widths must not be empty");
  if (widths.size() > DDIM_MAX_WIDTHS)
    invalid("at most " + std::to_string(DDIM_MAX_WIDTHS) + " widths, got " + std::to_string(widths.size()));
  for (int64_t width : widths)
    if (width < 1 || width > 4096) invalid("every width must be 1..4096, got " + std::to_string(width));
  if (image_size < 1 || image_size > 4096) invalid("image_size must be 1..4096, got " + std::to_string(image_size));
  const int64_t factor = int64_t{1} << widths.size();
  if (image_size % factor != 0)
    invalid("image_size " + std::to_string(image_size) + " must be divisible by 2^len(widths) = " +
            std::to_string(factor));
  if (block_depth < 1 || block_depth > 64) invalid("block_depth must be 1..64, got " + std::to_string(block_depth));
  if (embedding_dim < 2 || embedding_dim % 2 != 0 || embedding_dim > 4096)
    invalid("embedding_dim must be even and 2..4096, got " + std::to_string(embedding_dim));
  if (schedule.kind != ScheduleKind::Cosine && schedule.kind != ScheduleKind::Linear) invalid("unknown schedule");
  if (!(std::isfinite(schedule.min_signal) && std::isfinite(schedule.max_signal) && schedule.min_signal > 0 &&
        schedule.min_signal < schedule.max_signal && schedule.max_signal < 1))
    invalid("signal bounds must satisfy 0 < min_signal < max_signal < 1, got " + std::to_string(schedule.min_signal) +
            " and " + std::to_string(schedule.max_signal));
  if (target != Target::Noise && target != Target::Image) invalid("unknown target");
  // Last: counting needs the fields above to be sane. Checked before any network is built.
  const int64_t parameters = unet_parameter_count(*this);
  if (parameters > DDIM_MAX_PARAMETERS)
    invalid("the network would have " + std::to_string(parameters) + " parameters, more than the limit of " +
            std::to_string(DDIM_MAX_PARAMETERS) + " (DDIM_MAX_PARAMETERS)");
}

nlohmann::json ModelConfig::to_json() const {
  return {{"channels", channels},
          {"image_size", image_size},
          {"widths", widths},
          {"block_depth", block_depth},
          {"embedding_dim", embedding_dim},
          {"schedule",
           {{"kind", schedule_name(schedule.kind)},
            {"min_signal", schedule.min_signal},
            {"max_signal", schedule.max_signal}}},
          {"target", target_name(target)}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& json) {
  ModelConfig config;
  try {
    config.channels = json.at("channels").get<int64_t>();
    config.image_size = json.at("image_size").get<int64_t>();
    config.widths = json.at("widths").get<std::vector<int64_t>>();
    config.block_depth = json.at("block_depth").get<int64_t>();
    config.embedding_dim = json.at("embedding_dim").get<int64_t>();
    const auto& schedule = json.at("schedule");
    const auto kind = schedule.at("kind").get<std::string>();
    if (kind == "cosine") {
      config.schedule.kind = ScheduleKind::Cosine;
    } else if (kind == "linear") {
      config.schedule.kind = ScheduleKind::Linear;
    } else {
      fail(DDIM_ERR_FORMAT, "model config: unknown schedule '" + kind + "'");
    }
    config.schedule.min_signal = schedule.at("min_signal").get<double>();
    config.schedule.max_signal = schedule.at("max_signal").get<double>();
    const auto target = json.at("target").get<std::string>();
    if (target == "noise") {
      config.target = Target::Noise;
    } else if (target == "image") {
      config.target = Target::Image;
    } else {
      fail(DDIM_ERR_FORMAT, "model config: unknown target '" + target + "'");
    }
  } catch (const nlohmann::json::exception& e) {
    fail(DDIM_ERR_FORMAT, std::string("model config: ") + e.what());
  }
  try {
    config.validate();
  } catch (const Error& e) {
    fail(DDIM_ERR_FORMAT, e.what());
  }
  return config;
}

ddim_config ModelConfig::to_c() const {
  ddim_config out{};
  out.channels = static_cast<int32_t>(channels);
  out.image_size = static_cast<int32_t>(image_size);
  out.num_widths = static_cast<int32_t>(widths.size());
  for (size_t i = 0; i < widths.size(); ++i) out.widths[i] = static_cast<int32_t>(widths[i]);
  out.block_depth = static_cast<int32_t>(block_depth);
  out.embedding_dim = static_cast<int32_t>(embedding_dim);
  out.schedule = static_cast<int32_t>(schedule.kind);
  out.min_signal = schedule.min_signal;
  out.max_signal = schedule.max_signal;
  out.target = static_cast<int32_t>(target);
  return out;
}

ModelConfig ModelConfig::from_c(const ddim_config* c) {
  require(c != nullptr, DDIM_ERR_NULL_POINTER, "config is NULL");
  if (c->num_widths < 1 || c->num_widths > DDIM_MAX_WIDTHS)
    invalid("num_widths must be 1.." + std::to_string(DDIM_MAX_WIDTHS) + ", got " + std::to_string(c->num_widths));
  if (c->schedule != DDIM_SCHEDULE_COSINE && c->schedule != DDIM_SCHEDULE_LINEAR)
    invalid("unknown schedule kind " + std::to_string(c->schedule));
  if (c->target != DDIM_TARGET_NOISE && c->target != DDIM_TARGET_IMAGE)
    invalid("unknown target " + std::to_string(c->target));
  ModelConfig config;
  config.channels = c->channels;
  config.image_size = c->image_size;
  config.widths.assign(c->widths, c->widths + c->num_widths);
  config.block_depth = c->block_depth;
  config.embedding_dim = c->embedding_dim;
  config.schedule.kind = static_cast<ScheduleKind>(c->schedule);
  config.schedule.min_signal = c->min_signal;
  config.schedule.max_signal = c->max_signal;
  config.target = static_cast<Target>(c->target);
  config.validate();
  return config;
}

}  // namespace ddim
