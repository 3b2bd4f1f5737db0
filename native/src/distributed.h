// Data-parallel training across processes on torch's own c10d: a TCPStore rendezvous (rank 0
// hosts it, as torchrun's MASTER_ADDR:MASTER_PORT) and a Gloo process group on the CPU, NCCL on
// CUDA. The collectives are c10d's; this file only packs tensors into buckets, as PyTorch's
// DistributedDataParallel does, and turns a failed collective into an error that names the lost rank.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

namespace ddim {

struct DistributedConfig {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // How long the rendezvous and each collective may wait for the other ranks: a rank that hangs
  // (or never starts) makes the others fail after this long. A rank that dies fails them at once.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};

  void validate() const;
};

// Totals over the collectives a group ran, for benchmarks.
struct CollectiveStats {
  int64_t calls = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

// Whether this build has a process group for `device` (Gloo for the CPU, NCCL for CUDA).
bool has_process_group(torch::Device device);

class ProcessGroup {
 public:
  // Joins the group: blocks until all world_size ranks have connected, or fails (Status::Distributed)
  // after the timeout.
  ProcessGroup(const DistributedConfig& config, torch::Device device);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return config_.rank; }
  int world_size() const { return config_.world_size; }

  // Overwrites `tensors` (same shapes and dtypes on every rank) with rank 0's values.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Replaces each of `tensors` (floating point) by its mean over the ranks. Every rank gets the
  // same bits: Gloo's ring reduces each chunk once and sends the result around.
  void average(const std::vector<torch::Tensor>& tensors);
  // The element-wise maximum over the ranks of a small int64 tensor, in place.
  void maximum(torch::Tensor& values);

  // Records, in the store, that this rank starts training step `step`: when a collective fails,
  // the others can tell a rank that hangs before it from one that died.
  void mark_step(int64_t step);

  const CollectiveStats& stats() const { return stats_; }

  // Gradients travel in buckets of at most this many bytes: a few calls per step, not one per
  // tensor, and no more than this much extra memory (DDP's default is 25 MiB).
  static constexpr int64_t kBucketBytes = 4 << 20;

 private:
  struct Backend;
  enum class Op { Broadcast, Sum, Max };
  // Runs one collective on a flat tensor; a failure becomes Status::Distributed naming the lost rank.
  void run(Op op, torch::Tensor& flat, const char* what);
  void bucketed(Op op, const std::vector<torch::Tensor>& tensors, const char* what);
  [[noreturn]] void lost(const std::string& what, const std::string& cause);

  DistributedConfig config_;
  torch::Device device_;
  std::unique_ptr<Backend> backend_;
  CollectiveStats stats_;
  int64_t step_ = -1;
  // Each rank bumps a counter in the store every second from its own connection; a rank whose
  // counter stops is dead or stopped.
  std::atomic<bool> stop_heartbeat_{false};
  std::thread heartbeat_;
};

}  // namespace ddim
