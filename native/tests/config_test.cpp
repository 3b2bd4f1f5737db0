#include <gtest/gtest.h>

#include "config.h"
#include "error.h"

namespace ddim {
namespace {

std::string validation_message(const ModelConfig& config) {
  try {
    config.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::InvalidArgument);
    return e.what();
  }
  return "";
}

TEST(ModelConfig, DefaultsAreTheReference) {
  const ModelConfig config;
  EXPECT_EQ(config.channels, 3);
  EXPECT_EQ(config.image_size, 64);
  EXPECT_EQ(config.widths, (std::vector<int64_t>{32, 64, 96, 128}));
  EXPECT_EQ(config.block_depth, 2);
  EXPECT_EQ(config.embedding_dim, 32);
  EXPECT_EQ(config.schedule.kind, ScheduleKind::Cosine);
  EXPECT_DOUBLE_EQ(config.schedule.min_signal, 0.02);
  EXPECT_DOUBLE_EQ(config.schedule.max_signal, 0.95);
  EXPECT_EQ(config.target, Target::Noise);
  EXPECT_NO_THROW(config.validate());
}

TEST(ModelConfig, BadFieldsAreNamed) {
  auto bad = [](auto change) {
    ModelConfig config;
    change(config);
    return validation_message(config);
  };
  EXPECT_NE(bad([](ModelConfig& c) { c.channels = 0; }).find("channels"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.channels = 5; }).find("channels"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.image_size = 40; }).find("divisible"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.widths.clear(); }).find("widths"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.widths = {32, 0, 64, 128}; }).find("width"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.block_depth = 0; }).find("block_depth"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.embedding_dim = 31; }).find("embedding_dim"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.schedule.min_signal = 0.96; }).find("signal"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& c) { c.schedule.max_signal = std::nan(""); }).find("signal"), std::string::npos);
}

TEST(ModelConfig, AcceptsAnyWidthCountWithMatchingSize) {
  ModelConfig config;
  config.widths = {16};
  config.image_size = 2;
  EXPECT_NO_THROW(config.validate());
  config.widths = {8, 8, 8, 8, 8};
  config.image_size = 32;
  EXPECT_NO_THROW(config.validate());
  config.image_size = 48;
  EXPECT_THROW(config.validate(), Error);
}

TEST(ModelConfig, JsonRoundTrip) {
  ModelConfig config;
  config.channels = 1;
  config.image_size = 32;
  config.widths = {16, 32};
  config.schedule.kind = ScheduleKind::Linear;
  config.schedule.min_signal = 0.05;
  config.target = Target::Image;
  const auto back = ModelConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
}

TEST(ModelConfig, JsonErrorsAreFormatErrors) {
  auto json = ModelConfig{}.to_json();
  json.erase("widths");
  try {
    ModelConfig::from_json(json);
    FAIL() << "accepted a config without widths";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::Format);
  }
  json = ModelConfig{}.to_json();
  json["schedule"]["kind"] = "quadratic";
  EXPECT_THROW(ModelConfig::from_json(json), Error);
  json = ModelConfig{}.to_json();
  json["channels"] = "three";
  EXPECT_THROW(ModelConfig::from_json(json), Error);
}

TEST(ScheduleConfig, ValidatesOnItsOwn) {
  ScheduleConfig schedule;
  EXPECT_NO_THROW(schedule.validate());
  schedule.max_signal = 1.0;
  try {
    schedule.validate();
    FAIL() << "accepted max_signal 1";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("max_signal"), std::string::npos) << e.what();
  }
  schedule = ScheduleConfig{};
  schedule.kind = static_cast<ScheduleKind>(7);
  EXPECT_THROW(schedule.validate(), Error);
}

}  // namespace
}  // namespace ddim
