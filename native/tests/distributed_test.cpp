// Distributed training: ranks are threads of this test, each with its own model and its own Gloo
// process group over a TCPStore on 127.0.0.1 (the CLI's test runs them as processes).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <exception>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "distributed.h"
#include "error.h"
#include "model_file.h"
#include "test_util.h"
#include "training.h"

namespace ddim {
namespace {

// A TCP port nothing listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

DistributedConfig group_config(int rank, int world_size, int port, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  DistributedConfig config;
  config.rank = rank;
  config.world_size = world_size;
  config.master_port = port;
  config.timeout = timeout;
  return config;
}

// Runs body(rank) on one thread per rank and rethrows the first failure.
void run_ranks(int world_size, const std::function<void(int)>& body) {
  std::vector<std::exception_ptr> errors(world_size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world_size; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        body(rank);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

// Images in [0, 1] that differ per (step, micro-batch).
torch::Tensor micro_batch(int64_t step, int64_t index, int64_t count) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1000 * step + index);
  return torch::rand({count, 1, 16, 16}, generator, torch::kFloat);
}

TrainConfig train_config(int64_t accumulate = 1) {
  TrainConfig config;
  config.seed = 5;
  config.accumulate = accumulate;
  return config;
}

// Every tensor a rank holds: weights, BatchNorm buffers, EMA, normaliser, AdamW's moments.
std::map<std::string, torch::Tensor> state(Model& model, const Trainer& trainer) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : model.net()->named_parameters()) tensors["net." + item.key()] = item.value().detach().clone();
  for (const auto& item : model.net()->named_buffers()) tensors["net." + item.key()] = item.value().clone();
  for (const auto& item : model.ema().value()->named_parameters()) tensors["ema." + item.key()] = item.value().detach().clone();
  for (const auto& item : model.ema().value()->named_buffers()) tensors["ema." + item.key()] = item.value().clone();
  tensors["mean"] = model.mean().clone();
  tensors["std"] = model.std().clone();
  for (const auto& item : trainer.optimizer_state()) tensors["adam." + item.first] = item.second.clone();
  return tensors;
}

double max_difference(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b,
                      const std::string& prefix) {
  double difference = 0;
  for (const auto& item : a) {
    if (item.first.rfind(prefix, 0) != 0 || !item.second.is_floating_point()) continue;
    difference = std::max(difference, (item.second - b.at(item.first)).abs().max().item<double>());
  }
  return difference;
}

TEST(Distributed, ConfigIsValidated) {
  EXPECT_THROW(group_config(2, 2, 29500).validate(), Error);
  EXPECT_THROW(group_config(0, 0, 29500).validate(), Error);
  EXPECT_THROW(group_config(0, 2, 0).validate(), Error);
  EXPECT_THROW(group_config(0, 2, 29500, std::chrono::milliseconds(0)).validate(), Error);
  EXPECT_NO_THROW(group_config(1, 2, 29500).validate());
}

TEST(Distributed, TwoRanksHoldBitIdenticalStateAfterSteps) {
  ASSERT_TRUE(has_process_group(torch::kCPU)) << "built without Gloo (libgloo-dev)";
  const int port = free_port();
  std::vector<std::map<std::string, torch::Tensor>> states(2);
  std::vector<int64_t> calls(2);
  run_ranks(2, [&](int rank) {
    // Different initial weights and normalisers: joining must replace rank 1's by rank 0's.
    Model model(testing::tiny_config(), torch::kCPU, 100 + rank);
    model.set_normalizer(torch::full({1}, 0.4f + 0.1f * rank), torch::full({1}, 0.3f));
    Trainer trainer(model, train_config());
    trainer.join(std::make_unique<ProcessGroup>(group_config(rank, 2, port), torch::kCPU));
    for (int64_t step = 0; step < 5; ++step) trainer.step(micro_batch(step, rank, 4));
    EXPECT_TRUE(trainer.any_rank(rank == 1)) << "rank 1's vote reaches rank 0";
    EXPECT_FALSE(trainer.any_rank(false));
    states[rank] = state(model, trainer);
    calls[rank] = trainer.group()->stats().calls;
  });
  ASSERT_EQ(states[0].size(), states[1].size());
  for (const auto& item : states[0]) EXPECT_TRUE(torch::equal(item.second, states[1].at(item.first))) << item.first;
  // Bucketed: per step one call for all gradients of this small model and one for BatchNorm + loss.
  EXPECT_EQ(calls[0], 3 + 5 * 2 + 2) << "join: settings check, float and int64 broadcasts; then 2 per step; 2 votes";
}

TEST(Distributed, TwoRanksMatchOneProcessAccumulatingTwoMicroBatches) {
  constexpr int64_t kSteps = 10, kMicro = 4;
  const int port = free_port();
  std::vector<std::map<std::string, torch::Tensor>> ranks(2);
  std::vector<std::vector<double>> rank_losses(2);
  run_ranks(2, [&](int rank) {
    Model model(testing::tiny_config(), torch::kCPU, 1);
    Trainer trainer(model, train_config());
    trainer.join(std::make_unique<ProcessGroup>(group_config(rank, 2, port), torch::kCPU));
    for (int64_t step = 0; step < kSteps; ++step) rank_losses[rank].push_back(trainer.step(micro_batch(step, rank, kMicro)));
    ranks[rank] = state(model, trainer);
  });
  Model model(testing::tiny_config(), torch::kCPU, 1);
  Trainer trainer(model, train_config(2));
  std::vector<double> losses;
  for (int64_t step = 0; step < kSteps; ++step) {
    losses.push_back(trainer.step(torch::cat({micro_batch(step, 0, kMicro), micro_batch(step, 1, kMicro)})));
  }
  const auto single = state(model, trainer);
  const double weights = max_difference(ranks[0], single, "net."), ema = max_difference(ranks[0], single, "ema.");
  const double adam = max_difference(ranks[0], single, "adam.");
  double loss = 0;
  for (int64_t step = 0; step < kSteps; ++step) loss = std::max(loss, std::abs(losses[step] - rank_losses[0][step]));
  std::printf("2 ranks x %lld images vs 1 process x 2 micro-batches, after %lld steps: max |difference| weights+BatchNorm %.3g,"
              " EMA %.3g, AdamW moments %.3g, loss %.3g\n",
              static_cast<long long>(kMicro), static_cast<long long>(kSteps), weights, ema, adam, loss);
  // Float rounding: the sum of two half-gradients against the half of a sum, through 10 AdamW steps.
  EXPECT_LT(weights, 1e-5);
  EXPECT_LT(ema, 1e-5);
  EXPECT_LT(loss, 1e-5);
  // Not vacuous: training moved the weights by far more than that.
  Model initial(testing::tiny_config(), torch::kCPU, 1);
  double moved = 0;
  for (const auto& item : initial.net()->named_parameters()) {
    moved = std::max(moved, (item.value() - single.at("net." + item.key())).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3);
}

TEST(Distributed, AccumulationKeepsOneBatchNormUpdatePerStep) {
  // One process: 2 micro-batches of 4 against 1 batch of 8 differ in their batch statistics, but
  // the BatchNorm counter advances once per step either way.
  Model model(testing::tiny_config(), torch::kCPU, 1);
  Trainer trainer(model, train_config(2));
  for (int64_t step = 0; step < 3; ++step) trainer.step(micro_batch(step, 0, 8));
  for (const auto& item : model.net()->named_buffers()) {
    if (!item.value().is_floating_point()) EXPECT_EQ(item.value().item<int64_t>(), 3) << item.key();
  }
  EXPECT_THROW(trainer.step(micro_batch(0, 0, 7)), Error) << "7 images do not split into 2 micro-batches";
}

TEST(Distributed, ResumingWithTheSameWorldSizeIsBitExact) {
  testing::TempDir dir;
  const auto checkpoint = dir.file("checkpoint.safetensors");
  std::vector<std::map<std::string, torch::Tensor>> straight(2), resumed(2);
  const int port = free_port();
  run_ranks(2, [&](int rank) {
    Model model(testing::tiny_config(), torch::kCPU, 1);
    Trainer trainer(model, train_config());
    trainer.join(std::make_unique<ProcessGroup>(group_config(rank, 2, port), torch::kCPU));
    for (int64_t step = 0; step < 6; ++step) {
      if (step == 3 && rank == 0) {
        SaveOptions options;
        options.trainer = &trainer;
        save_model(model, checkpoint, options);
      }
      trainer.step(micro_batch(step, rank, 4));
    }
    straight[rank] = state(model, trainer);
  });
  const int second_port = free_port();
  run_ranks(2, [&](int rank) {
    // Rank 0 resumes from the checkpoint; rank 1 starts empty and gets everything from rank 0.
    std::optional<CheckpointState> saved;
    auto model = rank == 0 ? load_model(checkpoint, torch::kCPU, &saved) : std::make_unique<Model>(testing::tiny_config(), torch::kCPU, 9);
    Trainer trainer(*model, train_config());
    if (saved) trainer.restore(saved->steps, saved->optimizer);
    trainer.join(std::make_unique<ProcessGroup>(group_config(rank, 2, second_port), torch::kCPU));
    EXPECT_EQ(trainer.steps(), 3);
    for (int64_t step = 3; step < 6; ++step) trainer.step(micro_batch(step, rank, 4));
    resumed[rank] = state(*model, trainer);
  });
  for (int rank = 0; rank < 2; ++rank) {
    for (const auto& item : straight[rank]) EXPECT_TRUE(torch::equal(item.second, resumed[rank].at(item.first))) << rank << " " << item.first;
  }
}

TEST(Distributed, DifferentSettingsAreRefusedOnEveryRank) {
  const int port = free_port();
  std::vector<std::string> messages(2);
  run_ranks(2, [&](int rank) {
    Model model(testing::tiny_config(), torch::kCPU, 1);
    auto config = train_config();
    config.learning_rate = rank == 0 ? 1e-3 : 2e-3;
    Trainer trainer(model, config);
    try {
      trainer.join(std::make_unique<ProcessGroup>(group_config(rank, 2, port), torch::kCPU));
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::InvalidArgument);
      messages[rank] = e.what();
    }
  });
  for (const auto& message : messages) EXPECT_NE(message.find("different model or training settings"), std::string::npos) << message;
}

TEST(Distributed, AMissingRankIsReportedAfterTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  try {
    ProcessGroup group(group_config(0, 2, free_port(), std::chrono::milliseconds(1500)), torch::kCPU);
    FAIL() << "a group of 2 formed with 1 rank";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::Distributed);
    EXPECT_NE(std::string(e.what()).find("only 1 of 2 ranks joined"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

// A rank that dies (its group torn down, as when the process ends) or hangs fails the others'
// next step with a message naming it, within the timeout plus a few seconds, and no weight changes.
void expect_lost_rank_named(bool dies) {
  const int port = free_port();
  std::string message;
  double seconds = 0;
  bool weights_kept = false;
  run_ranks(2, [&](int rank) {
    Model model(testing::tiny_config(), torch::kCPU, 1);
    Trainer trainer(model, train_config());
    auto group = std::make_unique<ProcessGroup>(group_config(rank, 2, port, std::chrono::seconds(3)), torch::kCPU);
    trainer.join(std::move(group));
    trainer.step(micro_batch(0, rank, 4));
    if (rank == 1) {
      if (dies) return;  // the trainer and its group go away with this scope
      std::this_thread::sleep_for(std::chrono::seconds(8));  // hung, but alive (its heartbeat goes on)
      return;
    }
    const auto before = state(model, trainer);
    const auto start = std::chrono::steady_clock::now();
    try {
      trainer.step(micro_batch(1, rank, 4));
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::Distributed);
      message = e.what();
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    weights_kept = max_difference(before, state(model, trainer), "net.") == 0;
    // The group stays failed: the next step says so at once.
    EXPECT_THROW(trainer.step(micro_batch(2, rank, 4)), Error);
  });
  std::printf("rank 1 %s: rank 0 failed after %.1f s: %s\n", dies ? "left" : "hung", seconds, message.c_str());
  EXPECT_NE(message.find("rank 1"), std::string::npos) << message;
  EXPECT_NE(message.find(dies ? "stopped responding" : "never reached step 1"), std::string::npos) << message;
  EXPECT_LT(seconds, 3 + 3 + 6) << "timeout + diagnosis + slack";
  EXPECT_TRUE(weights_kept);
}

TEST(Distributed, ARankThatDiesIsNamed) {
  // A write to the dead rank's socket raises SIGPIPE, which by default ends the process (seen once in
  // CI): joining ignores it, as Python and the JVM do.
  std::signal(SIGPIPE, SIG_DFL);
  expect_lost_rank_named(true);
  struct sigaction after {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, SIG_IGN);
}

TEST(Distributed, ARankThatHangsIsNamed) { expect_lost_rank_named(false); }

}  // namespace
}  // namespace ddim
