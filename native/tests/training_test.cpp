#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "c_test_util.h"
#include "ddim.h"
#include "error.h"
#include "model_file.h"
#include "test_util.h"
#include "training.h"

namespace ddim {
namespace {

// `count` 1x16x16 images: a bright 6x6 square at a seeded position on a dark background.
torch::Tensor squares(int64_t count, uint64_t seed) {
  torch::manual_seed(seed);
  auto images = torch::full({count, 1, 16, 16}, 0.1f);
  const auto positions = torch::randint(0, 10, {count, 2});
  for (int64_t i = 0; i < count; ++i) {
    const auto y = positions[i][0].item<int64_t>(), x = positions[i][1].item<int64_t>();
    images[i].slice(1, y, y + 6).slice(2, x, x + 6).fill_(0.9f);
  }
  return images;
}

TrainConfig train_config() {
  TrainConfig config;
  config.seed = 3;
  return config;
}

double mean(const std::vector<double>& values, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i) sum += values[i];
  return sum / static_cast<double>(to - from);
}

TEST(Training, LossFallsClearlyOnATinyDataset) {
  Model model(testing::tiny_config(), torch::kCPU, 1);
  model.set_normalizer(torch::tensor({0.25f}), torch::tensor({0.3f}));
  Trainer trainer(model, train_config());
  const auto data = squares(64, 1);
  std::vector<double> losses;
  for (int step = 0; step < 300; ++step) losses.push_back(trainer.step(data.slice(0, (step % 4) * 16, (step % 4 + 1) * 16)));
  EXPECT_EQ(trainer.steps(), 300);
  const double first = mean(losses, 0, 20), last = mean(losses, 280, 300);
  EXPECT_LT(last, 0.6 * first) << "first " << first << ", last " << last;
}

TEST(Training, EmaWarmsUpAndFollowsTheFormula) {
  EXPECT_DOUBLE_EQ(Trainer::ema_decay_at(0.999, 0), 0.1);
  EXPECT_DOUBLE_EQ(Trainer::ema_decay_at(0.999, 90), 91.0 / 100.0);
  EXPECT_DOUBLE_EQ(Trainer::ema_decay_at(0.999, 100000), 0.999);

  // The output convolution starts at zero and is the only layer with a gradient at the first step
  // (everything upstream is multiplied by its zero weights).
  Model model(testing::tiny_config(), torch::kCPU, 1);
  const auto before = model.net()->named_parameters()["output_conv.weight"].clone();
  Trainer trainer(model, train_config());
  ASSERT_TRUE(model.ema().has_value());
  EXPECT_TRUE(torch::equal(model.ema().value()->named_parameters()["output_conv.weight"], before));
  trainer.step(squares(8, 2));
  const auto after = model.net()->named_parameters()["output_conv.weight"];
  const auto ema = model.ema().value()->named_parameters()["output_conv.weight"];
  EXPECT_FALSE(torch::equal(after, before));
  EXPECT_FALSE(torch::equal(ema, after));
  // First update: decay min(0.999, 1/10) = 0.1.
  EXPECT_TRUE(torch::allclose(ema, 0.1 * before + 0.9 * after, 1e-6, 1e-7));
  // BatchNorm statistics are averaged too.
  const auto raw_mean = model.net()->named_buffers()["down.0.blocks.0.norm.running_mean"];
  const auto ema_mean = model.ema().value()->named_buffers()["down.0.blocks.0.norm.running_mean"];
  EXPECT_TRUE(torch::allclose(ema_mean, 0.9 * raw_mean, 1e-6, 1e-7));  // started at zero
}

TEST(Training, WarmedUpEmaValidatesAsWellAsTheRawWeights) {
  Model model(testing::tiny_config(), torch::kCPU, 4);
  model.set_normalizer(torch::tensor({0.25f}), torch::tensor({0.3f}));
  Trainer trainer(model, train_config());
  // Beside it, the plain 0.999 average started from the initial weights, which the warm-up replaces.
  UNet plain = model.make_network();
  const auto average_into_plain = [&](double decay) {
    torch::NoGradGuard no_grad;
    const auto parameters = model.net()->named_parameters();
    for (auto& item : plain->named_parameters()) item.value().mul_(decay).add_(parameters[item.key()], 1 - decay);
    const auto buffers = model.net()->named_buffers();
    for (auto& item : plain->named_buffers())
      if (item.value().is_floating_point()) item.value().mul_(decay).add_(buffers[item.key()], 1 - decay);
  };
  average_into_plain(0.0);
  const auto data = squares(64, 5), validation = squares(64, 6);
  for (int step = 0; step < 300; ++step) {
    trainer.step(data.slice(0, (step % 4) * 16, (step % 4 + 1) * 16));
    average_into_plain(0.999);
  }
  const auto raw = evaluate(model, model.net(), validation, 9);
  const auto ema = evaluate(model, *model.ema(), validation, 9);
  const auto plain_losses = evaluate(model, plain, validation, 9);
  EXPECT_LT(ema.noise, 1.10 * raw.noise) << "ema " << ema.noise << ", raw " << raw.noise;
  EXPECT_GT(plain_losses.noise, 1.10 * raw.noise) << "plain " << plain_losses.noise << ", raw " << raw.noise;
}

TEST(Training, EvaluationIsDeterministicAndChangesNothing) {
  Model model(testing::tiny_config(), torch::kCPU, 1);
  Trainer trainer(model, train_config());
  trainer.step(squares(8, 1));
  const auto weights = model.net()->named_parameters()["input_conv.weight"].clone();
  const auto a = evaluate(model, model.net(), squares(8, 2), 5);
  const auto b = evaluate(model, model.net(), squares(8, 2), 5);
  EXPECT_EQ(a.noise, b.noise);
  EXPECT_EQ(a.image, b.image);
  EXPECT_TRUE(torch::equal(weights, model.net()->named_parameters()["input_conv.weight"]));
  EXPECT_EQ(trainer.steps(), 1);
}

TEST(Training, BadBatchesAreRejectedBeforeAnyUpdate) {
  Model model(testing::tiny_config(), torch::kCPU, 1);
  Trainer trainer(model, train_config());
  const auto weights = model.net()->named_parameters()["input_conv.weight"].clone();
  auto nan_batch = squares(4, 1);
  nan_batch[0][0][0][0] = std::nanf("");
  EXPECT_THROW(trainer.step(nan_batch), Error);
  EXPECT_THROW(trainer.step(torch::zeros({4, 3, 16, 16})), Error);
  EXPECT_TRUE(torch::equal(weights, model.net()->named_parameters()["input_conv.weight"]));
  EXPECT_EQ(trainer.steps(), 0);
}

// Through the C ABI, as Java uses it.
class TrainingCApi : public ::testing::Test {
 protected:
  ddim_model* create() {
    const auto config = testing::tiny_c_config();
    ddim_model* model = nullptr;
    EXPECT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 7, &model), DDIM_OK);
    handles.push_back(model);
    return model;
  }
  ddim_model* load(const std::string& path) {
    ddim_model* model = nullptr;
    EXPECT_EQ(ddim_model_load(path.c_str(), DDIM_DEVICE_CPU, &model), DDIM_OK) << ddim_last_error();
    handles.push_back(model);
    return model;
  }
  void train(ddim_model* model, int steps, int first_batch) {
    for (int i = 0; i < steps; ++i) {
      const auto batch = data.slice(0, ((first_batch + i) % 4) * 8, ((first_batch + i) % 4 + 1) * 8).contiguous();
      float loss = 0;
      ASSERT_EQ(ddim_train_step(model, batch.data_ptr<float>(), 8, batch.numel(), &loss), DDIM_OK) << ddim_last_error();
    }
  }
  std::vector<float> sample(ddim_model* model) {
    ddim_sample_params params;
    ddim_sample_params_init(&params);
    params.count = 2;
    params.steps = 3;
    std::vector<float> pixels(2 * 256);
    EXPECT_EQ(ddim_sample(model, &params, nullptr, 0, pixels.data(), 512), DDIM_OK);
    return pixels;
  }
  void TearDown() override {
    for (auto* handle : handles) ddim_model_free(handle);
  }
  std::vector<ddim_model*> handles;
  testing::TempDir dir;
  torch::Tensor data = squares(32, 8);
};

TEST_F(TrainingCApi, ResumingFromACheckpointIsBitExact) {
  ddim_train_params params;
  ddim_train_params_init(&params);
  params.seed = 11;

  ddim_model* straight = create();
  ASSERT_EQ(ddim_train_begin(straight, &params), DDIM_OK);
  train(straight, 12, 0);

  ddim_model* first_half = create();
  ASSERT_EQ(ddim_train_begin(first_half, &params), DDIM_OK);
  train(first_half, 6, 0);
  const auto checkpoint = dir.file("checkpoint.safetensors");
  ASSERT_EQ(ddim_checkpoint_save(first_half, checkpoint.c_str(), "{\"epoch\": 1}"), DDIM_OK) << ddim_last_error();

  ddim_model* resumed = load(checkpoint);
  int32_t active = 0;
  int64_t steps = 0;
  ddim_train_params restored;
  ASSERT_EQ(ddim_train_state(resumed, &active, &restored, &steps), DDIM_OK);
  EXPECT_EQ(active, 1);
  EXPECT_EQ(steps, 6);
  EXPECT_EQ(restored.seed, 11u);
  int64_t length = 0;
  ASSERT_EQ(ddim_checkpoint_user_state(resumed, nullptr, 0, &length), DDIM_OK);
  std::vector<char> buffer(static_cast<size_t>(length) + 1);
  ASSERT_EQ(ddim_checkpoint_user_state(resumed, buffer.data(), length + 1, &length), DDIM_OK);
  EXPECT_STREQ(buffer.data(), "{\"epoch\": 1}");
  EXPECT_EQ(ddim_checkpoint_user_state(resumed, buffer.data(), length, &length), DDIM_ERR_BUFFER_SIZE);

  ASSERT_EQ(ddim_train_begin(resumed, &restored), DDIM_OK);
  train(resumed, 6, 6);

  // Same weights, EMA and BatchNorm statistics, bit for bit: compare the saved files' tensors.
  const auto a = dir.file("a.safetensors"), b = dir.file("b.safetensors");
  ASSERT_EQ(ddim_model_save(straight, a.c_str()), DDIM_OK);
  ASSERT_EQ(ddim_model_save(resumed, b.c_str()), DDIM_OK);
  auto model_a = load_model(a, torch::kCPU), model_b = load_model(b, torch::kCPU);
  const auto pa = model_a->net()->named_parameters(), pb = model_b->net()->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  const auto ea = model_a->ema().value()->named_parameters(), eb = model_b->ema().value()->named_parameters();
  for (const auto& item : ea) EXPECT_TRUE(torch::equal(item.value(), eb[item.key()])) << item.key();
  const auto ba = model_a->net()->named_buffers(), bb = model_b->net()->named_buffers();
  for (const auto& item : ba) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
  EXPECT_EQ(sample(straight), sample(resumed));
}

TEST_F(TrainingCApi, StepsNeedBeginAndValidBuffers) {
  ddim_model* model = create();
  float loss = 0;
  const auto batch = data.slice(0, 0, 8).contiguous();
  EXPECT_EQ(ddim_train_step(model, batch.data_ptr<float>(), 8, batch.numel(), &loss), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("ddim_train_begin"), std::string::npos);
  EXPECT_EQ(ddim_checkpoint_save(model, dir.file("c").c_str(), nullptr), DDIM_ERR_INVALID_ARGUMENT);
  ddim_train_params params;
  ddim_train_params_init(&params);
  params.learning_rate = -1;
  EXPECT_EQ(ddim_train_begin(model, &params), DDIM_ERR_INVALID_ARGUMENT);
  ddim_train_params_init(&params);
  ASSERT_EQ(ddim_train_begin(model, &params), DDIM_OK);
  EXPECT_EQ(ddim_train_step(model, batch.data_ptr<float>(), 8, batch.numel() - 1, &loss), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(ddim_train_step(model, nullptr, 8, batch.numel(), &loss), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_train_step(model, batch.data_ptr<float>(), 8, batch.numel(), &loss), DDIM_OK);
  EXPECT_GT(loss, 0.0f);
}

TEST_F(TrainingCApi, ExportKeepsTheEmaWeightsInHalfTheSpace) {
  ddim_model* model = create();
  ddim_train_params params;
  ddim_train_params_init(&params);
  ASSERT_EQ(ddim_train_begin(model, &params), DDIM_OK);
  train(model, 5, 0);
  const auto full = dir.file("full.safetensors"), exported = dir.file("exported.safetensors");
  ASSERT_EQ(ddim_model_save(model, full.c_str()), DDIM_OK);
  ASSERT_EQ(ddim_model_export(model, exported.c_str(), DDIM_EXPORT_EMA_WEIGHTS | DDIM_EXPORT_HALF), DDIM_OK);
  EXPECT_LT(std::filesystem::file_size(exported), std::filesystem::file_size(full) / 3);
  EXPECT_EQ(ddim_model_export(model, exported.c_str(), 8), DDIM_ERR_INVALID_ARGUMENT);
  auto original = load_model(full, torch::kCPU), small = load_model(exported, torch::kCPU);
  EXPECT_FALSE(small->ema().has_value());
  const auto ema = original->ema().value()->named_parameters();
  for (const auto& item : small->net()->named_parameters())
    EXPECT_TRUE(torch::allclose(item.value(), ema[item.key()], 1e-3, 1e-4)) << item.key();
  EXPECT_TRUE(torch::equal(small->std(), original->std()));
}

}  // namespace
}  // namespace ddim
