// The C boundary: status codes, messages, NULLs and wrong lengths, never a crash or an exception.
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "c_test_util.h"
#include "cpu_allocator.h"
#include "ddim.h"
#include "test_util.h"

namespace {

using ddim::testing::tiny_c_config;
using ddim::testing::train_a_little;

struct ModelHandle {
  ddim_model* model = nullptr;
  ~ModelHandle() { ddim_model_free(model); }
};

TEST(CApi, StatusNamesAndVersions) {
  EXPECT_STREQ(ddim_status_name(DDIM_OK), "DDIM_OK");
  EXPECT_STREQ(ddim_status_name(DDIM_ERR_FORMAT), "DDIM_ERR_FORMAT");
  EXPECT_STREQ(ddim_status_name(12345), "DDIM_UNKNOWN_STATUS");
  EXPECT_STREQ(ddim_version(), "0.1.0");
  EXPECT_GT(std::strlen(ddim_torch_version()), 0u);
}

TEST(CApi, NullsAreErrorsNotCrashes) {
  ddim_model* model = nullptr;
  EXPECT_EQ(ddim_model_create(nullptr, DDIM_DEVICE_CPU, 1, &model), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(model, nullptr);
  const auto config = tiny_c_config();
  EXPECT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, nullptr), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_model_load(nullptr, DDIM_DEVICE_CPU, &model), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_model_save(nullptr, "x"), DDIM_ERR_NULL_POINTER);
  EXPECT_NE(std::string(ddim_last_error()).find("NULL"), std::string::npos);
  int64_t count = 0;
  EXPECT_EQ(ddim_model_parameter_count(nullptr, &count), DDIM_ERR_NULL_POINTER);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  float pixel = 0;
  EXPECT_EQ(ddim_sample(nullptr, &params, nullptr, 0, &pixel, 1), DDIM_ERR_NULL_POINTER);
  ddim_model_free(nullptr);
  ddim_config_init(nullptr);
  ddim_sample_params_init(nullptr);
  EXPECT_EQ(ddim_config_validate(nullptr), DDIM_ERR_NULL_POINTER);
}

TEST(CApi, EditingCallsCheckTheirBuffersAndTheNoiseRoundTrips) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = 2;
  params.steps = 3;
  std::vector<float> noise(512), from_seed(512), from_noise(512), out(512), pixels(512, 0.5f);
  ASSERT_EQ(ddim_initial_noise(handle.model, params.seed, 0, 2, noise.data(), 512), DDIM_OK);
  ASSERT_EQ(ddim_sample(handle.model, &params, nullptr, 0, from_seed.data(), 512), DDIM_OK);
  ASSERT_EQ(ddim_sample(handle.model, &params, noise.data(), 512, from_noise.data(), 512), DDIM_OK);
  EXPECT_EQ(from_seed, from_noise);
  EXPECT_EQ(ddim_sample(handle.model, &params, noise.data(), 511, out.data(), 512), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(ddim_initial_noise(handle.model, 1, 0, 2, noise.data(), 500), DDIM_ERR_BUFFER_SIZE);
  // Without a model: the same noise from the config alone, image by image.
  std::vector<float> seed_noise(512), second(256);
  ASSERT_EQ(ddim_seed_noise(&config, params.seed, 0, 2, seed_noise.data(), 512), DDIM_OK);
  EXPECT_EQ(seed_noise, noise);
  ASSERT_EQ(ddim_seed_noise(&config, params.seed, 1, 1, second.data(), 256), DDIM_OK);
  EXPECT_TRUE(std::equal(second.begin(), second.end(), noise.begin() + 256));
  EXPECT_EQ(ddim_seed_noise(&config, 1, 0, 2, seed_noise.data(), 500), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(ddim_seed_noise(nullptr, 1, 0, 2, seed_noise.data(), 512), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_seed_noise(&config, 1, -1, 2, seed_noise.data(), 512), DDIM_ERR_INVALID_ARGUMENT);

  EXPECT_EQ(ddim_invert(handle.model, &params, pixels.data(), 512, out.data(), 512), DDIM_OK);
  EXPECT_EQ(ddim_invert(handle.model, &params, pixels.data(), 256, out.data(), 512), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(ddim_invert(handle.model, &params, nullptr, 512, out.data(), 512), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_vary(handle.model, &params, 0.5, pixels.data(), 512, out.data(), 512), DDIM_OK);
  EXPECT_EQ(ddim_vary(handle.model, &params, 1.5, pixels.data(), 512, out.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("strength"), std::string::npos) << ddim_last_error();
  std::vector<float> mask(2 * 256, 1.0f);
  EXPECT_EQ(ddim_inpaint(handle.model, &params, pixels.data(), 512, mask.data(), 256, out.data(), 512), DDIM_OK);
  EXPECT_EQ(ddim_inpaint(handle.model, &params, pixels.data(), 512, mask.data(), 512, out.data(), 512), DDIM_OK);
  EXPECT_EQ(ddim_inpaint(handle.model, &params, pixels.data(), 512, mask.data(), 300, out.data(), 512), DDIM_ERR_BUFFER_SIZE);
  pixels[7] = 2.0f;
  EXPECT_EQ(ddim_vary(handle.model, &params, 0.5, pixels.data(), 512, out.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  params.micro_batch = 0;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  params.micro_batch = 16;
  params.precision = 5;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  params.precision = DDIM_PRECISION_BFLOAT16;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), 512), DDIM_OK);
}

TEST(CApi, PredictIsOneStepOfSamplingAndChecksItsBuffers) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ASSERT_EQ(train_a_little(handle.model), DDIM_OK) << ddim_last_error();  // a nonzero output layer
  const float mean = 0.5f, std = 0.25f;
  ASSERT_EQ(ddim_model_set_normalizer(handle.model, &mean, &std, 1), DDIM_OK);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = 2;
  params.steps = 1;
  std::vector<float> noise(512), sampled(512), predicted_noise(512), image(512);
  const std::vector<float> t{1.0f, 1.0f};
  ASSERT_EQ(ddim_initial_noise(handle.model, params.seed, 0, 2, noise.data(), 512), DDIM_OK);
  ASSERT_EQ(ddim_sample(handle.model, &params, nullptr, 0, sampled.data(), 512), DDIM_OK);
  ASSERT_EQ(ddim_predict(handle.model, &params, noise.data(), 512, t.data(), 2, predicted_noise.data(), image.data(), 512),
            DDIM_OK)
      << ddim_last_error();
  // One DDIM step: the predicted image at t = 1, de-normalised and clamped.
  for (size_t i = 0; i < image.size(); ++i) EXPECT_EQ(sampled[i], std::clamp(image[i] * std + mean, 0.0f, 1.0f)) << i;
  // A trained network predicts something: the image is not the noise's rescaled copy of a zero output.
  EXPECT_GT(*std::max_element(predicted_noise.begin(), predicted_noise.end()), 0.0f);
  EXPECT_LT(*std::min_element(predicted_noise.begin(), predicted_noise.end()), 0.0f);

  const auto predict = [&](const float* x, int64_t x_count, const float* times, int64_t t_count, float* out_noise,
                           float* out_image, int64_t out_count) {
    return ddim_predict(handle.model, &params, x, x_count, times, t_count, out_noise, out_image, out_count);
  };
  EXPECT_EQ(predict(noise.data(), 511, t.data(), 2, predicted_noise.data(), image.data(), 512), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(predict(noise.data(), 512, t.data(), 1, predicted_noise.data(), image.data(), 512), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(predict(noise.data(), 512, t.data(), 2, predicted_noise.data(), image.data(), 256), DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(predict(nullptr, 512, t.data(), 2, predicted_noise.data(), image.data(), 512), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(predict(noise.data(), 512, nullptr, 2, predicted_noise.data(), image.data(), 512), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(predict(noise.data(), 512, t.data(), 2, nullptr, image.data(), 512), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(predict(noise.data(), 512, t.data(), 2, predicted_noise.data(), nullptr, 512), DDIM_ERR_NULL_POINTER);
  const std::vector<float> late{0.5f, 1.01f};
  EXPECT_EQ(predict(noise.data(), 512, late.data(), 2, predicted_noise.data(), image.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("t must"), std::string::npos) << ddim_last_error();
  noise[5] = std::nanf("");
  EXPECT_EQ(predict(noise.data(), 512, t.data(), 2, predicted_noise.data(), image.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_predict(nullptr, &params, noise.data(), 512, t.data(), 2, predicted_noise.data(), image.data(), 512),
            DDIM_ERR_NULL_POINTER);
}

// A full heap while the cache records a block: the allocation fails cleanly and loses nothing (a cached block stays
// cached, a fresh one is freed), and a free whose block cannot be recorded frees it instead of throwing from a deleter.
TEST(CpuCache, FailedBookkeepingLosesNoBlock) {
  ddim::install_caching_cpu_allocator();
  ddim::release_cpu_cache();
  c10::Allocator* allocator = c10::GetCPUAllocator();
  const size_t bytes = 1 << 20;
  { c10::DataPtr warm = allocator->allocate(bytes); }
  const int64_t cached = ddim::cpu_cache_stats().cached_bytes;
  ASSERT_GE(cached, static_cast<int64_t>(bytes));

  ddim::fail_cpu_cache_bookkeeping_for_testing(1);  // a hit whose block cannot be recorded as live
  EXPECT_THROW(allocator->allocate(bytes), std::bad_alloc);
  EXPECT_EQ(ddim::cpu_cache_stats().cached_bytes, cached) << "the cached block was lost";
  { c10::DataPtr reused = allocator->allocate(bytes); }  // and it is still handed out

  ddim::release_cpu_cache();
  ddim::fail_cpu_cache_bookkeeping_for_testing(1);  // a miss: the fresh block is freed before the error
  EXPECT_THROW(allocator->allocate(bytes), std::bad_alloc);
  EXPECT_EQ(ddim::cpu_cache_stats().cached_bytes, 0);

  c10::DataPtr block = allocator->allocate(bytes);
  ddim::fail_cpu_cache_bookkeeping_for_testing(1);  // the free cannot be recorded: freed, not thrown
  EXPECT_NO_THROW(block.clear());
  EXPECT_EQ(ddim::cpu_cache_stats().cached_bytes, 0);
  ddim::fail_cpu_cache_bookkeeping_for_testing(0);
  { c10::DataPtr again = allocator->allocate(bytes); }
  EXPECT_GE(ddim::cpu_cache_stats().cached_bytes, static_cast<int64_t>(bytes));
}

// In a fresh process (a death test re-runs this binary), loading libddim leaves libtorch's CPU
// allocator alone; the first handle installs the caching one.
TEST(CpuCacheDeathTest, TheAllocatorChangesWithTheFirstHandleNotAtLoad) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        c10::Allocator* at_load = c10::GetCPUAllocator();
        const auto config = tiny_c_config();
        ddim_model* model = nullptr;
        if (ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &model) != DDIM_OK) std::_Exit(2);
        c10::Allocator* with_a_model = c10::GetCPUAllocator();
        ddim_model_free(model);
        std::_Exit(at_load != with_a_model ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(CApi, CpuCacheReusesFreedMemoryWithinItsLimit) {
  ddim_cpu_cache_stats before{}, after{};
  ASSERT_EQ(ddim_cpu_cache_stats_get(&before), DDIM_OK);
  EXPECT_EQ(before.limit_bytes, DDIM_DEFAULT_CPU_CACHE_BYTES);
  // Large enough for activations above the cache's 256 KiB threshold.
  auto config = tiny_c_config();
  config.image_size = 32;
  config.widths[0] = 16;
  config.widths[1] = 32;
  ddim_model* model = nullptr;
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &model), DDIM_OK) << ddim_last_error();
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = 4;
  params.steps = 2;
  params.network = DDIM_NETWORK_EAGER;  // the cache serves libtorch's allocations; the fused plan allocates once
  std::vector<float> out(4 * 32 * 32);
  ASSERT_EQ(ddim_sample(model, &params, nullptr, 0, out.data(), out.size()), DDIM_OK) << ddim_last_error();
  ASSERT_EQ(ddim_sample(model, &params, nullptr, 0, out.data(), out.size()), DDIM_OK);
  ASSERT_EQ(ddim_cpu_cache_stats_get(&after), DDIM_OK);
  EXPECT_GT(after.hits, before.hits);  // the second run reused the first one's activations
  EXPECT_GT(after.cached_bytes, 0);
  EXPECT_LE(after.cached_bytes, after.limit_bytes);

  ASSERT_EQ(ddim_release_cpu_cache(), DDIM_OK);
  ASSERT_EQ(ddim_cpu_cache_stats_get(&after), DDIM_OK);
  EXPECT_EQ(after.cached_bytes, 0);

  // Off: nothing is kept, results are unchanged.
  std::vector<float> uncached(out.size());
  ASSERT_EQ(ddim_set_cpu_cache_limit(0), DDIM_OK);
  ASSERT_EQ(ddim_sample(model, &params, nullptr, 0, uncached.data(), uncached.size()), DDIM_OK);
  ASSERT_EQ(ddim_cpu_cache_stats_get(&after), DDIM_OK);
  EXPECT_EQ(after.cached_bytes, 0);
  EXPECT_EQ(uncached, out);
  EXPECT_EQ(ddim_set_cpu_cache_limit(-1), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_cpu_cache_stats_get(nullptr), DDIM_ERR_NULL_POINTER);
  ASSERT_EQ(ddim_set_cpu_cache_limit(DDIM_DEFAULT_CPU_CACHE_BYTES), DDIM_OK);

  // Freeing the last handle empties the cache.
  ASSERT_EQ(ddim_sample(model, &params, nullptr, 0, out.data(), out.size()), DDIM_OK);
  ddim_model_free(model);
  ASSERT_EQ(ddim_cpu_cache_stats_get(&after), DDIM_OK);
  EXPECT_EQ(after.cached_bytes, 0);
}

TEST(CApi, CheckPixelsNamesTheFirstBadValue) {
  std::vector<float> pixels(10, 0.5f);
  EXPECT_EQ(ddim_check_pixels(pixels.data(), 10), DDIM_OK);
  pixels[7] = 1.5f;
  EXPECT_EQ(ddim_check_pixels(pixels.data(), 10), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("pixel 7"), std::string::npos) << ddim_last_error();
  pixels[7] = std::nanf("");
  EXPECT_EQ(ddim_check_pixels(pixels.data(), 10), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_check_pixels(nullptr, 10), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_check_pixels(pixels.data(), 0), DDIM_OK);
}

int32_t cancel_at_second_step(void* user_data, int32_t step, int32_t steps, int64_t first_image, int32_t images) {
  ++*static_cast<int*>(user_data);
  return step == 2 ? 1 : 0;
}

TEST(CApi, AProgressCallbackCanCancel) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = 1;
  params.steps = 5;
  int calls = 0;
  params.progress = cancel_at_second_step;
  params.progress_user_data = &calls;
  std::vector<float> out(256);
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), 256), DDIM_ERR_CANCELLED);
  EXPECT_EQ(calls, 2);
  EXPECT_STREQ(ddim_status_name(DDIM_ERR_CANCELLED), "DDIM_ERR_CANCELLED");
  EXPECT_NE(std::string(ddim_last_error()).find("cancelled"), std::string::npos) << ddim_last_error();
}

int32_t count_steps(void* user_data, int32_t, int32_t, int64_t, int32_t) {
  ++*static_cast<int*>(user_data);
  return 0;
}

TEST(CApi, ImageIdsAndPreviewsCheckTheirBuffers) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  EXPECT_EQ(params.preview_every, 1);
  EXPECT_EQ(params.images, nullptr);
  EXPECT_EQ(params.preview, nullptr);
  params.count = 2;
  params.steps = 3;
  params.seed = 8;
  params.first_index = 4;
  std::vector<float> alone(512), merged(512), preview(512, -1.0f);
  ASSERT_EQ(ddim_sample(handle.model, &params, nullptr, 0, alone.data(), 512), DDIM_OK);
  const ddim_image_id ids[2] = {{8, 4}, {8, 5}};
  params.seed = 0;
  params.first_index = 0;
  params.images = ids;
  params.image_count = 1;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, merged.data(), 512), DDIM_ERR_BUFFER_SIZE);
  params.image_count = 2;
  params.preview = preview.data();
  params.preview_count = 511;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, merged.data(), 512), DDIM_ERR_BUFFER_SIZE);
  params.preview_count = 512;
  params.preview_every = 0;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, merged.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  params.preview_every = 2;
  int steps = 0;
  params.progress = count_steps;
  params.progress_user_data = &steps;
  ASSERT_EQ(ddim_sample(handle.model, &params, nullptr, 0, merged.data(), 512), DDIM_OK) << ddim_last_error();
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(merged, alone);   // the ids draw what (seed 8, first_index 4) draws
  EXPECT_EQ(preview, alone);  // the last preview is the sampled image
  const ddim_image_id negative[2] = {{8, 4}, {8, -5}};
  params.images = negative;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, merged.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("index"), std::string::npos) << ddim_last_error();
}

TEST(CApi, BadConfigIsRejectedWithTheFieldNamed) {
  ddim_config config;
  ddim_config_init(&config);
  EXPECT_EQ(ddim_config_validate(&config), DDIM_OK);
  config.image_size = 50;
  ddim_model* model = nullptr;
  EXPECT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &model), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(ddim_last_error()).find("image_size"), std::string::npos) << ddim_last_error();
  ddim_config_init(&config);
  config.num_widths = 0;
  EXPECT_EQ(ddim_config_validate(&config), DDIM_ERR_INVALID_ARGUMENT);
  config.num_widths = DDIM_MAX_WIDTHS + 1;
  EXPECT_EQ(ddim_config_validate(&config), DDIM_ERR_INVALID_ARGUMENT);
  ddim_config_init(&config);
  config.schedule.kind = 7;
  EXPECT_EQ(ddim_config_validate(&config), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("schedule kind 7"), std::string::npos) << ddim_last_error();
  ddim_config_init(&config);
  config.schedule.min_signal = 0.99;
  EXPECT_EQ(ddim_config_validate(&config), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("min_signal"), std::string::npos) << ddim_last_error();
  ddim_config_init(&config);
  config.target = 2;
  EXPECT_EQ(ddim_config_validate(&config), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("target 2"), std::string::npos) << ddim_last_error();
}

// Every field survives the way into the core and back out (ddim_model_config).
TEST(CApi, ConfigRoundTripsThroughAModel) {
  ddim_config config = tiny_c_config();
  config.num_widths = 3;
  config.widths[2] = 24;
  config.image_size = 24;
  config.schedule.kind = DDIM_SCHEDULE_LINEAR;
  config.schedule.min_signal = 0.05;
  config.schedule.max_signal = 0.9;
  config.target = DDIM_TARGET_IMAGE;
  ModelHandle handle;
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK) << ddim_last_error();
  ddim_config back;
  std::memset(&back, 0xff, sizeof back);
  ASSERT_EQ(ddim_model_config(handle.model, &back), DDIM_OK);
  EXPECT_EQ(back.channels, config.channels);
  EXPECT_EQ(back.image_size, 24);
  ASSERT_EQ(back.num_widths, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(back.widths[i], config.widths[i]) << i;
  for (int i = 3; i < DDIM_MAX_WIDTHS; ++i) EXPECT_EQ(back.widths[i], 0) << i;  // unused entries are zeroed
  EXPECT_EQ(back.block_depth, config.block_depth);
  EXPECT_EQ(back.embedding_dim, config.embedding_dim);
  EXPECT_EQ(back.schedule.kind, DDIM_SCHEDULE_LINEAR);
  EXPECT_EQ(back.schedule.min_signal, 0.05);
  EXPECT_EQ(back.schedule.max_signal, 0.9);
  EXPECT_EQ(back.target, DDIM_TARGET_IMAGE);
}

TEST(CApi, SchedulesInitAndValidateOnTheirOwn) {
  ddim_schedule schedule;
  ddim_schedule_init(&schedule);
  EXPECT_EQ(schedule.kind, DDIM_SCHEDULE_COSINE);
  EXPECT_EQ(schedule.min_signal, 0.02);
  EXPECT_EQ(schedule.max_signal, 0.95);
  EXPECT_EQ(ddim_schedule_validate(&schedule), DDIM_OK);
  ddim_config config;
  ddim_config_init(&config);
  EXPECT_EQ(std::memcmp(&config.schedule, &schedule, sizeof schedule), 0);  // the config's default schedule
  ddim_schedule_init(nullptr);
  EXPECT_EQ(ddim_schedule_validate(nullptr), DDIM_ERR_NULL_POINTER);
  schedule.kind = 9;
  EXPECT_EQ(ddim_schedule_validate(&schedule), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("schedule kind 9"), std::string::npos) << ddim_last_error();
  ddim_schedule_init(&schedule);
  schedule.max_signal = std::nan("");
  EXPECT_EQ(ddim_schedule_validate(&schedule), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("max_signal"), std::string::npos) << ddim_last_error();
}

TEST(CApi, UnknownEnumValuesAreRejected) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  EXPECT_EQ(params.precision, DDIM_PRECISION_FLOAT32);
  params.count = 1;
  params.steps = 1;
  std::vector<float> out(256);
  params.sampler = 3;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), 256), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("unknown sampler 3"), std::string::npos) << ddim_last_error();
  params.sampler = DDIM_SAMPLER_DPM_SOLVER_PP_2M;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), 256), DDIM_OK) << ddim_last_error();
  ddim_train_params train;
  ddim_train_params_init(&train);
  train.loss = -1;
  EXPECT_EQ(ddim_train_begin(handle.model, &train), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("unknown loss -1"), std::string::npos) << ddim_last_error();
  train.loss = DDIM_LOSS_MSE;
  EXPECT_EQ(ddim_train_begin(handle.model, &train), DDIM_OK) << ddim_last_error();
  ddim_train_params state;
  ASSERT_EQ(ddim_train_state(handle.model, nullptr, &state, nullptr), DDIM_OK);
  EXPECT_EQ(state.loss, DDIM_LOSS_MSE);
}

TEST(CApi, WrongBufferLengthsAreRejected) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = 2;
  params.steps = 2;
  std::vector<float> pixels(2 * 16 * 16 + 1);
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), static_cast<int64_t>(pixels.size())), DDIM_ERR_BUFFER_SIZE);
  EXPECT_NE(std::string(ddim_last_error()).find("512"), std::string::npos) << ddim_last_error();
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), 512), DDIM_OK);
  params.steps = 0;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), 512), DDIM_ERR_INVALID_ARGUMENT);
  float mean[2] = {0, 0}, std[2] = {1, 1};
  EXPECT_EQ(ddim_model_set_normalizer(handle.model, mean, std, 2), DDIM_ERR_BUFFER_SIZE);
  std[0] = 0;
  EXPECT_EQ(ddim_model_set_normalizer(handle.model, mean, std, 1), DDIM_ERR_INVALID_ARGUMENT);
  std[0] = 0.5f;
  mean[0] = 0.25f;
  EXPECT_EQ(ddim_model_set_normalizer(handle.model, mean, std, 1), DDIM_OK);
  float got_mean = 0, got_std = 0;
  EXPECT_EQ(ddim_model_normalizer(handle.model, &got_mean, &got_std, 1), DDIM_OK);
  EXPECT_EQ(got_mean, 0.25f);
  EXPECT_EQ(got_std, 0.5f);
}

TEST(CApi, ScheduleRatesCheckTheirInput) {
  ddim_schedule schedule;
  ddim_schedule_init(&schedule);
  const float t[3] = {0.0f, 0.5f, 1.0f};
  float signal[3], noise[3];
  ASSERT_EQ(ddim_schedule_rates(&schedule, t, 3, signal, noise), DDIM_OK);
  EXPECT_NEAR(signal[0], 0.95f, 1e-6);
  EXPECT_NEAR(signal[2], 0.02f, 1e-6);
  const float bad[1] = {1.5f};
  EXPECT_EQ(ddim_schedule_rates(&schedule, bad, 1, signal, noise), DDIM_ERR_INVALID_ARGUMENT);
  const float nan[1] = {std::nanf("")};
  EXPECT_EQ(ddim_schedule_rates(&schedule, nan, 1, signal, noise), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_schedule_rates(&schedule, t, 3, nullptr, noise), DDIM_ERR_NULL_POINTER);
  EXPECT_EQ(ddim_schedule_rates(nullptr, t, 3, signal, noise), DDIM_ERR_NULL_POINTER);
  schedule.min_signal = 0.96;  // above max_signal
  EXPECT_EQ(ddim_schedule_rates(&schedule, t, 3, signal, noise), DDIM_ERR_INVALID_ARGUMENT);
  // The linear schedule clamps its signal rate to the bounds.
  ddim_schedule_init(&schedule);
  schedule.kind = DDIM_SCHEDULE_LINEAR;
  schedule.max_signal = 0.9;
  ASSERT_EQ(ddim_schedule_rates(&schedule, t, 3, signal, noise), DDIM_OK);
  EXPECT_FLOAT_EQ(signal[0], 0.9f);
  EXPECT_FLOAT_EQ(signal[2], 0.02f);
  EXPECT_NEAR(signal[1] * signal[1] + noise[1] * noise[1], 1.0f, 1e-6);
}

TEST(CApi, DevicesResolve) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_AUTO, 1, &handle.model), DDIM_OK);
  int32_t device = -99;
  ASSERT_EQ(ddim_model_device(handle.model, &device), DDIM_OK);
  EXPECT_EQ(device, ddim_cuda_device_count() > 0 ? 0 : DDIM_DEVICE_CPU);
  ddim_model* model = nullptr;
  EXPECT_EQ(ddim_model_create(&config, ddim_cuda_device_count(), 1, &model), DDIM_ERR_DEVICE);
  EXPECT_EQ(ddim_model_create(&config, -7, 1, &model), DDIM_ERR_DEVICE);
  EXPECT_EQ(model, nullptr);
}

TEST(CApi, LoadErrorsCarryStatusAndMessage) {
  ddim::testing::TempDir dir;
  ddim_model* model = nullptr;
  EXPECT_EQ(ddim_model_load(dir.file("absent").c_str(), DDIM_DEVICE_CPU, &model), DDIM_ERR_IO);
  ddim::testing::write_bytes(dir.file("junk"), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_EQ(ddim_model_load(dir.file("junk").c_str(), DDIM_DEVICE_CPU, &model), DDIM_ERR_FORMAT);
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(std::string(ddim_last_error()).find('\n'), std::string::npos);
}

TEST(CApi, LastErrorIsPerThread) {
  ddim_config config;
  ddim_config_init(&config);
  config.channels = 9;
  ASSERT_EQ(ddim_config_validate(&config), DDIM_ERR_INVALID_ARGUMENT);
  std::string other;
  std::thread([&] { other = ddim_last_error(); }).join();
  EXPECT_EQ(other, "");
  EXPECT_NE(std::string(ddim_last_error()).find("channels"), std::string::npos);
}

TEST(CApi, ThreadsCanShareAHandle) {
  ModelHandle handle;
  const auto config = tiny_c_config();
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  const auto sample = [&](std::vector<float>& pixels) {
    ddim_sample_params params;
    ddim_sample_params_init(&params);
    params.count = 1;
    params.steps = 2;
    return ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), static_cast<int64_t>(pixels.size()));
  };
  std::vector<float> alone(256);
  ASSERT_EQ(sample(alone), DDIM_OK);
  std::vector<std::thread> threads;
  std::vector<ddim_status> results(4, DDIM_ERR_INTERNAL);
  std::vector<std::vector<float>> pixels(4, std::vector<float>(256, -1.0f));
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { results[i] = sample(pixels[i]); });
  for (auto& t : threads) t.join();
  // Calls take turns on a handle: each thread computes exactly what one call alone computes.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(results[i], DDIM_OK);
    EXPECT_EQ(pixels[i], alone) << "thread " << i;
  }
}

TEST(CApi, ThreadCountIsSettable) {
  ASSERT_EQ(ddim_set_num_threads(1), DDIM_OK);
  EXPECT_EQ(ddim_get_num_threads(), 1);
  ASSERT_EQ(ddim_set_num_threads(0), DDIM_OK);
  EXPECT_EQ(ddim_get_num_threads(), ddim_available_threads());
  EXPECT_GE(ddim_available_threads(), 1);
  EXPECT_LE(ddim_available_threads(), static_cast<int32_t>(std::thread::hardware_concurrency()));
}

}  // namespace
