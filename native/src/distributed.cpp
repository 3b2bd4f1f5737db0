#include "distributed.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "error.h"

#if defined(DDIM_HAVE_GLOO) || defined(DDIM_HAVE_NCCL)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef DDIM_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DDIM_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace ddim {
namespace {

constexpr auto kHeartbeatEvery = std::chrono::seconds(1);
constexpr auto kHeartbeatTimeout = std::chrono::milliseconds(10000);
// How long a failed rank watches the others' heartbeats before it names the lost ones.
constexpr auto kDiagnosis = std::chrono::seconds(3);

std::string heartbeat_key(int rank) { return "ddim/heartbeat/" + std::to_string(rank); }
std::string step_key(int rank) { return "ddim/step/" + std::to_string(rank); }

// The first line of a c10d or Gloo message (they carry source locations and backtraces after it).
std::string first_line(const char* what) {
  std::string message(what == nullptr ? "" : what);
  const auto newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  return message.substr(0, 300);
}

std::string rank_list(const std::vector<int>& ranks) {
  std::ostringstream out;
  out << (ranks.size() == 1 ? "rank " : "ranks ");
  for (size_t i = 0; i < ranks.size(); ++i) out << (i > 0 ? ", " : "") << ranks[i];
  return out.str();
}

}  // namespace

void DistributedConfig::validate() const {
  const auto bad = [](const std::string& message) { fail(Status::InvalidArgument, "invalid distributed config: " + message); };
  if (world_size < 1 || world_size > 65536) bad("world_size must lie in [1, 65536], got " + std::to_string(world_size));
  if (rank < 0 || rank >= world_size) {
    bad("rank must lie in [0, world_size), got " + std::to_string(rank) + " of " + std::to_string(world_size));
  }
  if (master_addr.empty() || master_addr.size() > 255) bad("master_addr must be a host name or address");
  if (master_port < 1 || master_port > 65535) bad("master_port must lie in [1, 65535], got " + std::to_string(master_port));
  if (timeout.count() < 1 || timeout > std::chrono::hours(24)) bad("the timeout must lie in [1 ms, 24 h]");
}

bool has_process_group(torch::Device device) {
#ifdef DDIM_HAVE_NCCL
  if (device.is_cuda()) return true;
#endif
#ifdef DDIM_HAVE_GLOO
  if (device.is_cpu()) return true;
#endif
  return false;
}

#if defined(DDIM_HAVE_GLOO) || defined(DDIM_HAVE_NCCL)

struct ProcessGroup::Backend {
  c10::intrusive_ptr<c10d::Store> store;      // rank 0 serves it; everyone's client connection
  c10::intrusive_ptr<c10d::Store> heartbeat;  // a second connection, used by the heartbeat thread only
#ifdef DDIM_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef DDIM_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::string broken;  // set once a collective failed: the group can't be used again

  template <typename Group>
  static void run(Group& group, Op op, std::vector<at::Tensor>& tensors) {
    if (op == Op::Broadcast) {
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      group->broadcast(tensors, options)->wait();
    } else {
      c10d::AllreduceOptions options;
      options.reduceOp = op == Op::Sum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
      group->allreduce(tensors, options)->wait();
    }
  }
};

namespace {

c10::intrusive_ptr<c10d::Store> connect_store(const DistributedConfig& config, bool server) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(config.master_port);
  options.isServer = server;
  options.waitWorkers = false;
  options.timeout = config.timeout;
  return c10::make_intrusive<c10d::TCPStore>(config.master_addr, options);
}

// The local address this host reaches `host` from: the source address of a UDP socket connected to it
// (connect() on UDP sends nothing; the kernel only picks the route). Empty when `host` does not
// resolve or no route leads there.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return "";
  std::string address;
  for (const addrinfo* candidate = found; candidate != nullptr && address.empty(); candidate = candidate->ai_next) {
    const int fd = socket(candidate->ai_family, candidate->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    if (connect(fd, candidate->ai_addr, candidate->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw = local.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                                                    : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
      if (inet_ntop(local.ss_family, raw, text, sizeof(text)) != nullptr) address = text;
    }
    close(fd);
  }
  freeaddrinfo(found);
  return address;
}

// Gloo writes to its peers with writev, which raises SIGPIPE when a peer has died; by default that
// kills this process before the failed collective can be reported. Python (and so torchrun) and the
// JVM ignore SIGPIPE; a C or C++ program joining a group gets the same, unless it installed a handler.
void ignore_sigpipe_unless_handled() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
}

}  // namespace

ProcessGroup::ProcessGroup(const DistributedConfig& config, torch::Device device)
    : config_(config), device_(device), backend_(std::make_unique<Backend>()) {
  config_.validate();
  ignore_sigpipe_unless_handled();
  require(has_process_group(device), Status::Device,
          "this build has no process group for " + device.str() +
              (device.is_cuda() ? " (NCCL: build against a libtorch with NCCL)" : " (Gloo: apt-get install libgloo-dev, then rebuild)"));
  const std::string where = config_.master_addr + ":" + std::to_string(config_.master_port);
  try {
    backend_->store = connect_store(config_, config_.rank == 0);
    backend_->heartbeat = connect_store(config_, false);
    // A heartbeat blocked by a stopped rank 0 must not hold up this rank's exit (the destructor joins it).
    backend_->heartbeat->setTimeout(std::min<std::chrono::milliseconds>(config_.timeout, kHeartbeatTimeout));
    // Every joined rank is counted before the group forms, so a rank that never comes is reported by
    // the others as missing instead of as a c10d timeout.
    backend_->store->add("ddim/joined", 1);
    const auto deadline = std::chrono::steady_clock::now() + config_.timeout;
    int64_t joined = 0;
    while ((joined = backend_->store->add("ddim/joined", 0)) < config_.world_size) {
      if (std::chrono::steady_clock::now() > deadline) {
        fail(Status::Distributed, "only " + std::to_string(joined) + " of " + std::to_string(config_.world_size) +
                                      " ranks joined at " + where + " within " +
                                      std::to_string(config_.timeout.count() / 1000) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("ddim/group", backend_->store);
#ifdef DDIM_HAVE_NCCL
    if (device.is_cuda()) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = config_.timeout;
      backend_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, config_.rank, config_.world_size, options);
    }
#endif
#ifdef DDIM_HAVE_GLOO
    if (device.is_cpu()) {
      auto options = c10d::ProcessGroupGloo::Options::create(config_.timeout);
      // GLOO_SOCKET_IFNAME picks the network interface, as in torch.distributed. Else each rank
      // advertises the address it reaches MASTER_ADDR from: the loopback for a group on this machine
      // alone, the right interface across hosts. (torch.distributed's default, the address the host
      // name resolves to, is 127.0.1.1 on a default Debian host, and peers elsewhere cannot connect.)
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      if (interface != nullptr && *interface != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
      } else if (const std::string local = local_address_towards(config_.master_addr, config_.master_port); !local.empty()) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      options->threads = 2;
      backend_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, config_.rank, config_.world_size, options);
    }
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(Status::Distributed, "cannot join the process group at " + where + " as rank " + std::to_string(config_.rank) +
                                  " of " + std::to_string(config_.world_size) + ": " + first_line(e.what()));
  }
  heartbeat_ = std::thread([this] {
    try {
      while (!stop_heartbeat_) {
        backend_->heartbeat->add(heartbeat_key(config_.rank), 1);
        for (auto slept = std::chrono::milliseconds(0); slept < kHeartbeatEvery && !stop_heartbeat_; slept += std::chrono::milliseconds(50)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    } catch (const std::exception&) {
      // The store is gone (rank 0 ended): the next collective reports it.
    }
  });
}

ProcessGroup::~ProcessGroup() {
  stop_heartbeat_ = true;
  if (heartbeat_.joinable()) heartbeat_.join();
}

void ProcessGroup::mark_step(int64_t step) {
  step_ = step;
  if (!backend_->broken.empty()) fail(Status::Distributed, backend_->broken);
  try {
    const auto text = std::to_string(step);
    backend_->store->set(step_key(config_.rank), std::vector<uint8_t>(text.begin(), text.end()));
  } catch (const std::exception& e) {
    lost("starting step " + std::to_string(step), first_line(e.what()));
  }
}

void ProcessGroup::run(Op op, torch::Tensor& flat, const char* what) {
  if (!backend_->broken.empty()) fail(Status::Distributed, backend_->broken);
  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> tensors{flat};
  try {
#ifdef DDIM_HAVE_NCCL
    if (backend_->nccl) Backend::run(backend_->nccl, op, tensors);
#endif
#ifdef DDIM_HAVE_GLOO
    if (backend_->gloo) Backend::run(backend_->gloo, op, tensors);
#endif
  } catch (const std::exception& e) {
    lost(what, first_line(e.what()));
  }
  if (device_.is_cuda()) torch::cuda::synchronize();  // so that the time below is the collective's
  stats_.calls += 1;
  stats_.bytes += flat.numel() * static_cast<int64_t>(flat.element_size());
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void ProcessGroup::lost(const std::string& what, const std::string& cause) {
  std::string who;
  try {
    // A short wait: the store may be gone with rank 0.
    backend_->store->setTimeout(std::chrono::seconds(5));
    const auto counters = [&] {
      std::vector<int64_t> values;
      for (int r = 0; r < config_.world_size; ++r) values.push_back(backend_->store->add(heartbeat_key(r), 0));
      return values;
    };
    const auto before = counters();
    std::this_thread::sleep_for(kDiagnosis);
    const auto after = counters();
    std::vector<int> silent, behind;
    for (int r = 0; r < config_.world_size; ++r) {
      if (r == config_.rank) continue;
      if (after[r] == before[r]) {
        silent.push_back(r);
        continue;
      }
      const bool marked = backend_->store->check({step_key(r)});
      const auto bytes = marked ? backend_->store->get(step_key(r)) : std::vector<uint8_t>{};
      if (!marked || std::stoll(std::string(bytes.begin(), bytes.end())) < step_) behind.push_back(r);
    }
    if (!silent.empty()) {
      who = rank_list(silent) + " stopped responding (the process died or was stopped)";
    } else if (!behind.empty()) {
      who = rank_list(behind) + " is alive but never reached step " + std::to_string(step_) + " (hung?)";
    } else {
      who = "no rank was found lost (a network failure?)";
    }
  } catch (const std::exception&) {
    who = config_.rank == 0 ? "the rendezvous store failed"
                            : "rank 0 was lost (its rendezvous store at " + config_.master_addr + ":" +
                                  std::to_string(config_.master_port) + " no longer answers)";
  }
  backend_->broken = "distributed training stopped: " + who + "; rank " + std::to_string(config_.rank) + " failed in " +
                     what + " at step " + std::to_string(step_) + " (" + cause + ")";
  fail(Status::Distributed, backend_->broken);
}

#else  // no process group in this build

struct ProcessGroup::Backend {};

ProcessGroup::ProcessGroup(const DistributedConfig& config, torch::Device device) : config_(config), device_(device) {
  config_.validate();
  fail(Status::Device, "this build of ddim4j has no process group (Gloo: apt-get install libgloo-dev, then rebuild)");
}
ProcessGroup::~ProcessGroup() = default;
void ProcessGroup::mark_step(int64_t) {}
void ProcessGroup::run(Op, torch::Tensor&, const char*) { fail(Status::Device, "no process group in this build"); }
void ProcessGroup::lost(const std::string& what, const std::string& cause) { fail(Status::Distributed, what + ": " + cause); }

#endif

void ProcessGroup::bucketed(Op op, const std::vector<torch::Tensor>& tensors, const char* what) {
  // Buckets: tensors of one dtype, in their order, up to kBucketBytes each (a larger tensor goes alone).
  std::vector<torch::ScalarType> dtypes;
  for (const auto& tensor : tensors) {
    if (std::find(dtypes.begin(), dtypes.end(), tensor.scalar_type()) == dtypes.end()) dtypes.push_back(tensor.scalar_type());
  }
  torch::NoGradGuard no_grad;
  for (const auto dtype : dtypes) {
    std::vector<torch::Tensor> bucket;
    int64_t bytes = 0;
    const auto flush = [&] {
      if (bucket.empty()) return;
      std::vector<torch::Tensor> flat_parts;
      for (const auto& tensor : bucket) flat_parts.push_back(tensor.detach().reshape({-1}));
      auto flat = torch::cat(flat_parts);
      run(op, flat, what);
      if (op == Op::Sum) flat.div_(config_.world_size);
      int64_t offset = 0;
      for (auto& tensor : bucket) {
        tensor.copy_(flat.narrow(0, offset, tensor.numel()).view_as(tensor));
        offset += tensor.numel();
      }
      bucket.clear();
      bytes = 0;
    };
    for (const auto& tensor : tensors) {
      if (tensor.scalar_type() != dtype) continue;
      const int64_t size = tensor.numel() * static_cast<int64_t>(tensor.element_size());
      if (!bucket.empty() && bytes + size > kBucketBytes) flush();
      bucket.push_back(tensor);
      bytes += size;
    }
    flush();
  }
}

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors) { bucketed(Op::Broadcast, tensors, "a broadcast from rank 0"); }

void ProcessGroup::average(const std::vector<torch::Tensor>& tensors) {
  for (const auto& tensor : tensors) require(tensor.is_floating_point(), Status::Internal, "average() needs floating-point tensors");
  bucketed(Op::Sum, tensors, "averaging gradients");
}

void ProcessGroup::maximum(torch::Tensor& values) {
  require(values.scalar_type() == torch::kLong, Status::Internal, "maximum() needs an int64 tensor");
  run(Op::Max, values, "a vote of the ranks");
}

}  // namespace ddim
