#include "config.h"

#include <cmath>

#include "error.h"
#include "json_fields.h"
#include "library_limits.h"
#include "unet.h"

namespace ddim {
namespace {

const char* schedule_name(ScheduleKind kind) { return kind == ScheduleKind::Cosine ? "cosine" : "linear"; }
const char* target_name(Target target) { return target == Target::Noise ? "noise" : "image"; }

void invalid(const std::string& message) { fail(Status::InvalidArgument, "invalid model config: " + message); }

// What is wrong with `schedule`, or "" when nothing is; each validation says whose schedule it is.
std::string schedule_problem(const ScheduleConfig& schedule) {
  if (schedule.kind != ScheduleKind::Cosine && schedule.kind != ScheduleKind::Linear) return "unknown schedule";
  if (!(std::isfinite(schedule.min_signal) && std::isfinite(schedule.max_signal) && schedule.min_signal > 0 &&
        schedule.min_signal < schedule.max_signal && schedule.max_signal < 1))
    return "signal bounds must satisfy 0 < min_signal < max_signal < 1, got " + std::to_string(schedule.min_signal) +
           " and " + std::to_string(schedule.max_signal);
  return "";
}

}  // namespace

void ScheduleConfig::validate() const {
  const auto problem = schedule_problem(*this);
  if (!problem.empty()) fail(Status::InvalidArgument, "invalid schedule: " + problem);
}

void ModelConfig::validate() const {
  if (channels < 1 || channels > 4) invalid("channels must be 1..4, got " + std::to_string(channels));
  if (widths.empty()) invalid("widths must not be empty");
  if (static_cast<int64_t>(widths.size()) > kMaxWidths)
    invalid("at most " + std::to_string(kMaxWidths) + " widths, got " + std::to_string(widths.size()));
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
  const auto problem = schedule_problem(schedule);
  if (!problem.empty()) invalid(problem);
  if (target != Target::Noise && target != Target::Image) invalid("unknown target");
  if (classes < 0 || classes > kMaxClasses)
    invalid("classes must be 0.." + std::to_string(kMaxClasses) + ", got " + std::to_string(classes));
  if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != classes)
    invalid(std::to_string(class_names.size()) + " class names for " + std::to_string(classes) + " classes");
  for (size_t i = 0; i < class_names.size(); ++i) {
    const auto& name = class_names[i];
    if (name.empty() || static_cast<int64_t>(name.size()) > kMaxClassNameBytes)
      invalid("class name " + std::to_string(i) + " must have 1.." + std::to_string(kMaxClassNameBytes) + " bytes");
    for (const unsigned char c : name)
      if (c < 0x20 || c == 0x7f) invalid("class name " + std::to_string(i) + " contains a control character");
    for (size_t j = 0; j < i; ++j)
      if (class_names[j] == name) invalid("class name '" + name + "' appears twice");
  }
  // Last: counting needs the fields above to be sane. Checked before any network is built.
  const int64_t parameters = unet_parameter_count(*this);
  // The message names the limit as callers know it, from ddim.h.
  if (parameters > kMaxParameters)
    invalid("the network would have " + std::to_string(parameters) + " parameters, more than the limit of " +
            std::to_string(kMaxParameters) + " (DDIM_MAX_PARAMETERS)");
}

std::string ModelConfig::class_name(int64_t index) const {
  return class_names.empty() ? std::to_string(index) : class_names.at(static_cast<size_t>(index));
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json json = {{"channels", channels},
          {"image_size", image_size},
          {"widths", widths},
          {"block_depth", block_depth},
          {"embedding_dim", embedding_dim},
          {"schedule",
           {{"kind", schedule_name(schedule.kind)},
            {"min_signal", schedule.min_signal},
            {"max_signal", schedule.max_signal}}},
          {"target", target_name(target)}};
  // Only class-conditional models carry the fields, so unconditional files stay as they were.
  if (classes > 0) {
    json["classes"] = classes;
    if (!class_names.empty()) json["class_names"] = class_names;
  }
  return json;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& json) {
  ModelConfig config;
  try {
    config.channels = json_integer_field(json, "channels");
    config.image_size = json_integer_field(json, "image_size");
    // More than kMaxWidths is refused here, before the list is copied; validate() says the same for callers.
    config.widths = json_integer_array_field(json, "widths", static_cast<size_t>(kMaxWidths));
    config.block_depth = json_integer_field(json, "block_depth");
    config.embedding_dim = json_integer_field(json, "embedding_dim");
    const auto& schedule = json.at("schedule");
    const auto kind = schedule.at("kind").get<std::string>();
    if (kind == "cosine") {
      config.schedule.kind = ScheduleKind::Cosine;
    } else if (kind == "linear") {
      config.schedule.kind = ScheduleKind::Linear;
    } else {
      fail(Status::Format, "model config: unknown schedule '" + kind + "'");
    }
    config.schedule.min_signal = schedule.at("min_signal").get<double>();
    config.schedule.max_signal = schedule.at("max_signal").get<double>();
    const auto target = json.at("target").get<std::string>();
    if (target == "noise") {
      config.target = Target::Noise;
    } else if (target == "image") {
      config.target = Target::Image;
    } else {
      fail(Status::Format, "model config: unknown target '" + target + "'");
    }
    config.classes = json_integer_field_or(json, "classes", 0);
    // Bounded before the names are copied: the header's size bounds them too, but this is cheaper.
    if (config.classes < 0 || config.classes > kMaxClasses)
      fail(Status::Format, "model config: classes must be 0.." + std::to_string(kMaxClasses));
    if (json.contains("class_names")) config.class_names = json.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail(Status::Format, std::string("model config: ") + e.what());
  } catch (const Error& e) {
    fail(Status::Format, std::string("model config: ") + e.what());
  }
  try {
    config.validate();
  } catch (const Error& e) {
    fail(Status::Format, e.what());
  }
  return config;
}

}  // namespace ddim
