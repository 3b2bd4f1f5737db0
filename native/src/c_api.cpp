// The C boundary: every function of include/ddim.h, and nothing else. Each fallible call runs its
// body inside guarded(), which turns every exception into a status code and a short thread-local
// message, so no C++ exception ever reaches the caller. This is the one file that knows both the C
// types and the core's: every translation between them lives here.
#include <torch/torch.h>

#include <cstring>
#if defined(__GLIBC__)
#endif
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "config.h"
#include "cpu_allocator.h"
#include "ddim.h"
#include "error.h"
#include "feature_extractor.h"
#include "kid.h"
#include "library_limits.h"
#include "model.h"
#include "model_file.h"
#include "processors.h"
#include "sampling.h"
#include "schedule.h"
#include "training.h"
#include "unet.h"
#include "version.h"

// The core's statuses, enums and limits carry the C ABI's numbers, so translating is a cast. These
// keep each pair equal.
static_assert(static_cast<int32_t>(ddim::Status::Ok) == DDIM_OK);
static_assert(static_cast<int32_t>(ddim::Status::InvalidArgument) == DDIM_ERR_INVALID_ARGUMENT);
static_assert(static_cast<int32_t>(ddim::Status::NullPointer) == DDIM_ERR_NULL_POINTER);
static_assert(static_cast<int32_t>(ddim::Status::BufferSize) == DDIM_ERR_BUFFER_SIZE);
static_assert(static_cast<int32_t>(ddim::Status::Io) == DDIM_ERR_IO);
static_assert(static_cast<int32_t>(ddim::Status::Format) == DDIM_ERR_FORMAT);
static_assert(static_cast<int32_t>(ddim::Status::Device) == DDIM_ERR_DEVICE);
static_assert(static_cast<int32_t>(ddim::Status::OutOfMemory) == DDIM_ERR_OUT_OF_MEMORY);
static_assert(static_cast<int32_t>(ddim::Status::Internal) == DDIM_ERR_INTERNAL);
static_assert(static_cast<int32_t>(ddim::Status::Cancelled) == DDIM_ERR_CANCELLED);
static_assert(static_cast<int32_t>(ddim::Status::NonFinite) == DDIM_ERR_NON_FINITE);
static_assert(static_cast<int32_t>(ddim::Status::Reentrant) == DDIM_ERR_REENTRANT);
static_assert(static_cast<int32_t>(ddim::Status::Distributed) == DDIM_ERR_DISTRIBUTED);

static_assert(static_cast<int32_t>(ddim::ScheduleKind::Cosine) == DDIM_SCHEDULE_COSINE);
static_assert(static_cast<int32_t>(ddim::ScheduleKind::Linear) == DDIM_SCHEDULE_LINEAR);
static_assert(static_cast<int32_t>(ddim::Target::Noise) == DDIM_TARGET_NOISE);
static_assert(static_cast<int32_t>(ddim::Target::Image) == DDIM_TARGET_IMAGE);
static_assert(static_cast<int32_t>(ddim::SamplerKind::Ddim) == DDIM_SAMPLER_DDIM);
static_assert(static_cast<int32_t>(ddim::SamplerKind::Ddpm) == DDIM_SAMPLER_DDPM);
static_assert(static_cast<int32_t>(ddim::SamplerKind::DpmSolverPP2M) == DDIM_SAMPLER_DPM_SOLVER_PP_2M);
static_assert(static_cast<int32_t>(ddim::Precision::Float32) == DDIM_PRECISION_FLOAT32);
static_assert(static_cast<int32_t>(ddim::Precision::BFloat16) == DDIM_PRECISION_BFLOAT16);
static_assert(static_cast<int32_t>(ddim::NetworkKind::Eager) == DDIM_NETWORK_EAGER);
static_assert(static_cast<int32_t>(ddim::NetworkKind::Fused) == DDIM_NETWORK_FUSED);
static_assert(static_cast<int32_t>(ddim::NetworkKind::Auto) == DDIM_NETWORK_AUTO);
static_assert(static_cast<int32_t>(ddim::Loss::Mae) == DDIM_LOSS_MAE);
static_assert(static_cast<int32_t>(ddim::Loss::Mse) == DDIM_LOSS_MSE);

static_assert(ddim::kMaxWidths == DDIM_MAX_WIDTHS);
static_assert(ddim::kMaxParameters == DDIM_MAX_PARAMETERS);
static_assert(ddim::kMaxSteps == DDIM_MAX_STEPS);
static_assert(ddim::kMaxMicroBatch == DDIM_MAX_MICRO_BATCH);
static_assert(ddim::kMaxEta == DDIM_MAX_ETA);
static_assert(ddim::kMaxFirstIndex == DDIM_MAX_FIRST_INDEX);
static_assert(ddim::kMaxThreadsPerCore == DDIM_MAX_THREADS_PER_CORE);
static_assert(ddim::kMaxHeaderBytes == DDIM_MAX_HEADER_BYTES);
static_assert(ddim::kMaxJsonDepth == DDIM_MAX_JSON_DEPTH);
static_assert(ddim::kMaxClasses == DDIM_MAX_CLASSES);
static_assert(ddim::kMaxClassNameBytes == DDIM_MAX_CLASS_NAME_BYTES);
static_assert(ddim::kMaxGuidance == DDIM_MAX_GUIDANCE);
static_assert(ddim::kDefaultCpuCacheBytes == DDIM_DEFAULT_CPU_CACHE_BYTES);

// Live handles: the CPU cache is emptied when the last one goes.
std::atomic<int64_t> live_handles{0};

// What every handle needs to serialise its calls and to notice a call made from inside one of
// them (a progress callback calling back in would otherwise deadlock on the mutex it holds).
struct LockedHandle {
  LockedHandle();  // registers the handle (HandleRegistry)
  ~LockedHandle();
  std::mutex mutex;                       // serialises calls on one handle
  std::atomic<std::thread::id> owner{};   // the thread running a call, if any
  bool free_requested = false;            // set by a free from inside a running call: freed when it returns
  int64_t calls = 0;                      // calls holding this handle (HandleRegistry's lock guards it)
};

// Every live handle. A call looks its handle up here by address, without touching it, and holds it
// until it returns; a free unregisters the handle and deletes it once no call holds it. So a call
// that races ddim_*_free either runs before the delete or gets DDIM_ERR_INVALID_ARGUMENT, and a
// double free does nothing. (A handle used after its free returned may, like any freed pointer,
// name a newer handle at the same address.)
class HandleRegistry {
 public:
  void add(LockedHandle* handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.insert(handle);
  }

  // Holds `handle` for a call; false when it is not live.
  bool hold(const LockedHandle* handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto live = live_.find(const_cast<LockedHandle*>(handle));
    if (live == live_.end()) return false;
    ++(*live)->calls;
    return true;
  }

  void release(LockedHandle* handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--handle->calls == 0) released_.notify_all();
  }

  // Whether `handle` is live and `thread` runs a call on it (a free from its progress callback).
  bool running_on(const LockedHandle* handle, std::thread::id thread) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.count(const_cast<LockedHandle*>(handle)) > 0 && handle->owner.load() == thread;
  }

  // Unregisters `handle` and waits until no call holds it; false when it was not live (freed already).
  bool retire(LockedHandle* handle) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (live_.erase(handle) == 0) return false;
    // wait_for, not wait: libstdc++ 12 versions wait() GLIBCXX_3.4.30, newer than the natives' floor (RHEL 9).
    while (handle->calls != 0) released_.wait_for(lock, std::chrono::milliseconds(100));
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  std::unordered_set<LockedHandle*> live_;

  friend struct LockedHandle;
  void forget(LockedHandle* handle) {  // a handle deleted on an error path, never given out
    std::lock_guard<std::mutex> lock(mutex_);
    live_.erase(handle);
  }
};

// Never destroyed: a call may still run while the process's static destructors do.
HandleRegistry& handles() {
  static auto* registry = new HandleRegistry();
  return *registry;
}

LockedHandle::LockedHandle() {
  // The caching CPU allocator goes in with the first handle, not when the library loads: a process
  // that loads libddim without using it keeps libtorch's own allocator.
  ddim::install_caching_cpu_allocator();
  handles().add(this);
  ++live_handles;
}

LockedHandle::~LockedHandle() {
  handles().forget(this);
  if (--live_handles == 0) ddim::release_cpu_cache();
}

struct ddim_model : LockedHandle {
  explicit ddim_model(std::unique_ptr<ddim::Model> model) : model(std::move(model)) {}
  std::unique_ptr<ddim::Model> model;
  std::unique_ptr<ddim::Trainer> trainer;  // declared after the model it refers to, so freed first
  std::string user_state;                  // from the checkpoint this handle was loaded from
};

struct ddim_extractor : LockedHandle {
  std::unique_ptr<ddim::FeatureExtractor> extractor;
};

namespace {

using ddim::checked_product;
using ddim::fail;
using ddim::require;
using ddim::Status;

thread_local std::string last_error;

constexpr size_t kMaxMessage = 600;

// The first line of a libtorch message, without the C++ backtrace and source locations.
std::string short_message(const char* what) {
  std::string message(what == nullptr ? "" : what);
  const auto newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage) + "...";
  return message;
}

bool is_out_of_memory(const std::string& message) {
  return message.find("out of memory") != std::string::npos || message.find("can't allocate memory") != std::string::npos ||
         message.find("Failed to allocate") != std::string::npos;
}

ddim_status to_c(Status status) { return static_cast<ddim_status>(status); }

ddim_status report(ddim_status status, const std::string& message) {
  last_error = message;
  return status;
}

template <typename Body>
ddim_status guarded(Body&& body) noexcept {
  try {
    body();
    return DDIM_OK;
  } catch (const ddim::Error& e) {
    return report(to_c(e.status()), short_message(e.what()));
  } catch (const std::bad_alloc&) {
    return report(DDIM_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const c10::Error& e) {
    const auto message = short_message(e.what_without_backtrace());
    return report(is_out_of_memory(message) ? DDIM_ERR_OUT_OF_MEMORY : DDIM_ERR_INTERNAL, message);
  } catch (const std::exception& e) {
    const auto message = short_message(e.what());
    return report(is_out_of_memory(message) ? DDIM_ERR_OUT_OF_MEMORY : DDIM_ERR_INTERNAL, message);
  } catch (...) {
    return report(DDIM_ERR_INTERNAL, "unknown native error");
  }
}

// Runs `body(*handle)` with the handle locked; `name` names it in messages. A call from the thread
// that already runs one on this handle (from its progress callback) is refused, not deadlocked.
template <typename Handle, typename Body>
ddim_status with_locked(Handle* handle, const char* name, Body&& body) noexcept {
  bool free_after = false;
  bool held = false;
  const ddim_status status = guarded([&] {
    require(handle != nullptr, Status::NullPointer, std::string(name) + " handle is NULL");
    held = handles().hold(handle);
    require(held, Status::InvalidArgument, std::string(name) + " handle is not live: freed, or not made by this library");
    require(handle->owner.load() != std::this_thread::get_id(), Status::Reentrant,
            std::string("a progress callback called back into the ") + name + " whose call is running");
    std::lock_guard<std::mutex> lock(handle->mutex);
    handle->owner.store(std::this_thread::get_id());
    // Runs before the unlock: once unlocked, another thread's free may delete the handle.
    struct Release {
      LockedHandle& handle;
      bool& free_after;
      ~Release() {
        free_after = handle.free_requested;
        handle.owner.store(std::thread::id());
      }
    } release{*handle, free_after};
    body(*handle);
  });
  if (held) handles().release(handle);
  // Freed from inside the call (its callback): now that it has returned.
  if (free_after && handles().retire(handle)) delete handle;
  return status;
}

// Frees a handle once no call holds it (a running call, calls waiting for their turn); from inside a
// running call (its progress callback), when that call returns. A handle that is not live is left alone.
template <typename Handle>
void free_handle(Handle* handle) {
  if (handle == nullptr) return;
  if (handles().running_on(handle, std::this_thread::get_id())) {
    handle->free_requested = true;
    return;
  }
  if (handles().retire(handle)) delete handle;
}

// Runs `body(handle)` with the model handle locked.
template <typename Body>
ddim_status with_handle(ddim_model* handle, Body&& body) noexcept {
  return with_locked(handle, "model", std::forward<Body>(body));
}

// Runs `body(model)` with the handle locked.
template <typename Body>
ddim_status with_model(ddim_model* handle, Body&& body) noexcept {
  return with_handle(handle, [&](ddim_model& locked) { body(*locked.model); });
}

// Runs `body(extractor)` with the handle locked.
template <typename Body>
ddim_status with_extractor(ddim_extractor* handle, Body&& body) noexcept {
  return with_locked(handle, "extractor", [&](ddim_extractor& locked) { body(*locked.extractor); });
}

template <typename T>
void require_pointer(const T* pointer, const char* name) {
  require(pointer != nullptr, Status::NullPointer, std::string(name) + " is NULL");
}

void require_count(int64_t given, int64_t needed, const std::string& name) {
  require(given == needed, Status::BufferSize,
          name + " holds " + std::to_string(given) + " floats, the call needs " + std::to_string(needed));
}

torch::Device resolve_device(int32_t device) {
  if (device == DDIM_DEVICE_CPU) return torch::kCPU;
  const int32_t cuda_count = torch::cuda::is_available() ? static_cast<int32_t>(torch::cuda::device_count()) : 0;
  if (device == DDIM_DEVICE_AUTO) return cuda_count > 0 ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  require(device >= 0, Status::Device, "unknown device code " + std::to_string(device));
  require(device < cuda_count, Status::Device,
          "CUDA device " + std::to_string(device) + " requested, but " + std::to_string(cuda_count) +
              " CUDA device(s) are available to this build");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device));
}

ddim_model* new_handle(std::unique_ptr<ddim::Model> model) { return new ddim_model(std::move(model)); }

// The core's value of a C enum field, which may hold any int32: one of `known` (whose numbers are
// the C constants, as the static_asserts above check), else `unknown` and the number.
template <typename Enum>
Enum enum_from_c(int32_t value, std::initializer_list<Enum> known, const std::string& unknown) {
  for (const Enum candidate : known)
    if (static_cast<int32_t>(candidate) == value) return candidate;
  fail(Status::InvalidArgument, unknown + " " + std::to_string(value));
}

template <typename Enum>
int32_t enum_to_c(Enum value) {
  return static_cast<int32_t>(value);
}

ddim_schedule schedule_to_c(const ddim::ScheduleConfig& schedule) {
  ddim_schedule out{};
  out.kind = enum_to_c(schedule.kind);
  out.min_signal = schedule.min_signal;
  out.max_signal = schedule.max_signal;
  return out;
}

// The fields alone; the caller validates. `context` starts the message of an unknown kind.
ddim::ScheduleConfig schedule_fields_from_c(const ddim_schedule& c, const std::string& context) {
  ddim::ScheduleConfig schedule;
  schedule.kind = enum_from_c(c.kind, {ddim::ScheduleKind::Cosine, ddim::ScheduleKind::Linear},
                              context + "unknown schedule kind");
  schedule.min_signal = c.min_signal;
  schedule.max_signal = c.max_signal;
  return schedule;
}

// Validates; NULL or a bad field is an error.
ddim::ScheduleConfig schedule_from_c(const ddim_schedule* c) {
  require_pointer(c, "schedule");
  const auto schedule = schedule_fields_from_c(*c, "invalid schedule: ");
  schedule.validate();
  return schedule;
}

ddim_config config_to_c(const ddim::ModelConfig& config) {
  ddim_config out{};
  out.channels = static_cast<int32_t>(config.channels);
  out.image_size = static_cast<int32_t>(config.image_size);
  out.num_widths = static_cast<int32_t>(config.widths.size());
  for (size_t i = 0; i < config.widths.size(); ++i) out.widths[i] = static_cast<int32_t>(config.widths[i]);
  out.block_depth = static_cast<int32_t>(config.block_depth);
  out.embedding_dim = static_cast<int32_t>(config.embedding_dim);
  out.schedule = schedule_to_c(config.schedule);
  out.target = enum_to_c(config.target);
  out.classes = static_cast<int32_t>(config.classes);
  return out;
}

// Validates; NULL or a bad field is an error.
ddim::ModelConfig config_from_c(const ddim_config* c) {
  require_pointer(c, "config");
  const std::string context = "invalid model config: ";
  require(c->num_widths >= 1 && c->num_widths <= DDIM_MAX_WIDTHS, Status::InvalidArgument,
          context + "num_widths must be 1.." + std::to_string(DDIM_MAX_WIDTHS) + ", got " + std::to_string(c->num_widths));
  ddim::ModelConfig config;
  config.channels = c->channels;
  config.image_size = c->image_size;
  config.widths.assign(c->widths, c->widths + c->num_widths);
  config.block_depth = c->block_depth;
  config.embedding_dim = c->embedding_dim;
  config.schedule = schedule_fields_from_c(c->schedule, context);
  config.target = enum_from_c(c->target, {ddim::Target::Noise, ddim::Target::Image}, context + "unknown target");
  config.classes = c->classes;
  config.validate();
  return config;
}

ddim::TrainConfig train_config_from_c(const ddim_train_params* params) {
  require_pointer(params, "params");
  ddim::TrainConfig config;
  config.learning_rate = params->learning_rate;
  config.weight_decay = params->weight_decay;
  config.ema_decay = params->ema_decay;
  config.loss = enum_from_c(params->loss, {ddim::Loss::Mae, ddim::Loss::Mse}, "unknown loss");
  config.seed = params->seed;
  config.accumulate = params->accumulate;
  config.label_dropout = params->label_dropout;
  config.validate();
  return config;
}

ddim_train_params train_config_to_c(const ddim::TrainConfig& config) {
  ddim_train_params params{};
  params.learning_rate = config.learning_rate;
  params.weight_decay = config.weight_decay;
  params.ema_decay = config.ema_decay;
  params.loss = enum_to_c(config.loss);
  params.seed = config.seed;
  params.accumulate = static_cast<int32_t>(config.accumulate);
  params.label_dropout = config.label_dropout;
  return params;
}


// Wraps `count` NCHW images (or noises) of `model` at `values` without copying, after checking the count.
torch::Tensor image_batch(const ddim::Model& model, const float* values, int64_t count, int64_t value_count,
                          const char* name) {
  require_pointer(values, name);
  const auto& config = model.config();
  require_count(value_count, checked_product({count, config.channels, config.image_size, config.image_size}, name), name);
  return torch::from_blob(const_cast<float*>(values), {count, config.channels, config.image_size, config.image_size},
                          torch::kFloat);
}

// A training or validation batch: `count` >= 1 images at `pixels`, wrapped without copying.
torch::Tensor pixel_batch(const ddim::Model& model, const float* pixels, int64_t count, int64_t pixel_count) {
  require(count >= 1, Status::InvalidArgument, "count must be >= 1, got " + std::to_string(count));
  return image_batch(model, pixels, count, pixel_count, "pixels");
}

// Writes `text`'s length to `out_length` and, unless `capacity` is 0, `text` NUL-terminated to `buffer`.
void copy_string(const std::string& text, char* buffer, int64_t capacity, int64_t* out_length, const char* what) {
  const auto length = static_cast<int64_t>(text.size());
  *out_length = length;
  if (capacity == 0) return;
  require_pointer(buffer, "buffer");
  require(capacity > length, Status::BufferSize,
          "buffer holds " + std::to_string(capacity) + " bytes, " + what + " needs " + std::to_string(length + 1));
  std::memcpy(buffer, text.c_str(), static_cast<size_t>(length) + 1);
}

// `count` labels from a caller, as a tensor Trainer::step and evaluate check further.
torch::Tensor label_batch(const int32_t* labels, int64_t label_count, int64_t count) {
  require_pointer(labels, "labels");
  require_count(label_count, count, "labels");
  return torch::from_blob(const_cast<int32_t*>(labels), {count}, torch::kInt).to(torch::kLong);
}

// Validates `params` for a call on `model` and turns them into a request; the progress callback is
// wrapped so that a nonzero return cancels, and previews are copied into the caller's buffer.
ddim::SampleRequest sample_request_from_c(const ddim_sample_params* params, const ddim::Model& model) {
  require_pointer(params, "params");
  ddim::SampleRequest request;
  request.count = params->count;
  request.steps = params->steps;
  request.seed = params->seed;
  request.use_ema = params->use_ema != 0;
  request.sampler = enum_from_c(params->sampler,
                                {ddim::SamplerKind::Ddim, ddim::SamplerKind::Ddpm, ddim::SamplerKind::DpmSolverPP2M},
                                "unknown sampler");
  request.eta = params->eta;
  request.first_index = params->first_index;
  request.batch_size = params->batch_size;
  request.micro_batch = params->micro_batch;
  request.precision =
      enum_from_c(params->precision, {ddim::Precision::Float32, ddim::Precision::BFloat16}, "unknown precision");
  request.network = enum_from_c(params->network, {ddim::NetworkKind::Eager, ddim::NetworkKind::Fused, ddim::NetworkKind::Auto},
                                "unknown network");
  if (params->progress != nullptr) {
    const auto callback = params->progress;
    void* user_data = params->progress_user_data;
    request.progress = [callback, user_data](const ddim::StepProgress& p) {
      return callback(user_data, static_cast<int32_t>(p.step), static_cast<int32_t>(p.steps), p.first_image,
                      static_cast<int32_t>(p.images)) == 0;
    };
  }
  request.preview_every = params->preview_every;
  request.guidance = params->guidance;
  request.validate();  // count and the caps first: they size the checks below
  const auto& config = model.config();
  if (params->images != nullptr) {
    require_count(params->image_count, request.count, "images");
    request.images.reserve(request.count);
    for (int64_t i = 0; i < request.count; ++i) request.images.push_back({params->images[i].seed, params->images[i].index});
  }
  if (params->preview != nullptr) {
    const int64_t per_image = config.channels * config.image_size * config.image_size;
    require_count(params->preview_count, checked_product({request.count, per_image}, "preview"), "preview");
    float* preview = params->preview;
    request.preview = [preview, per_image](int64_t first, const torch::Tensor& pixels) {
      const auto values = pixels.to(torch::kCPU, torch::kFloat).contiguous();
      std::memcpy(preview + first * per_image, values.data_ptr<float>(), values.numel() * sizeof(float));
    };
  }
  if (params->classes != nullptr) {
    require(params->class_count == 1 || params->class_count == request.count, Status::BufferSize,
            "classes must hold 1 or count (" + std::to_string(request.count) + ") entries, got " +
                std::to_string(params->class_count));
    request.classes.assign(params->classes, params->classes + params->class_count);
  } else {
    require(params->class_count == 0, Status::NullPointer, "classes is NULL but class_count is not 0");
  }
  request.validate();
  return request;
}


// Copies `count` images of `model` into `out`, after checking its size.
void write_images(const torch::Tensor& images, float* out, int64_t out_count, const ddim::ModelConfig& config, int64_t count) {
  require_pointer(out, "output buffer");
  require_count(out_count, checked_product({count, config.channels, config.image_size, config.image_size}, "output buffer"),
                "output buffer");
  const auto host = images.to(torch::kCPU, torch::kFloat).contiguous();
  std::memcpy(out, host.data_ptr<float>(), host.numel() * sizeof(float));
}

void write_images(const torch::Tensor& images, float* out, int64_t out_count, const ddim::Model& model, int64_t count) {
  write_images(images, out, out_count, model.config(), count);
}

// The seed's starting noise for images of `config`: checked arguments, drawn on the CPU.
void write_seed_noise(const ddim::ModelConfig& config, uint64_t seed, int64_t first_index, int32_t count, float* out_noise,
                      int64_t out_count) {
  require(count >= 1, Status::InvalidArgument, "count must be >= 1, got " + std::to_string(count));
  require(first_index >= 0 && first_index <= ddim::kMaxFirstIndex, Status::InvalidArgument,
          "first_index must lie in [0, 2^62], got " + std::to_string(first_index));
  require_pointer(out_noise, "out_noise");
  require_count(out_count, checked_product({count, config.channels, config.image_size, config.image_size}, "out_noise"),
                "out_noise");
  write_images(ddim::initial_noise(config, seed, first_index, count, torch::kCPU), out_noise, out_count, config, count);
}

}  // namespace

extern "C" {

const char* ddim_status_name(int32_t status) {
  switch (status) {
    case DDIM_OK: return "DDIM_OK";
    case DDIM_ERR_INVALID_ARGUMENT: return "DDIM_ERR_INVALID_ARGUMENT";
    case DDIM_ERR_NULL_POINTER: return "DDIM_ERR_NULL_POINTER";
    case DDIM_ERR_BUFFER_SIZE: return "DDIM_ERR_BUFFER_SIZE";
    case DDIM_ERR_IO: return "DDIM_ERR_IO";
    case DDIM_ERR_FORMAT: return "DDIM_ERR_FORMAT";
    case DDIM_ERR_DEVICE: return "DDIM_ERR_DEVICE";
    case DDIM_ERR_OUT_OF_MEMORY: return "DDIM_ERR_OUT_OF_MEMORY";
    case DDIM_ERR_INTERNAL: return "DDIM_ERR_INTERNAL";
    case DDIM_ERR_CANCELLED: return "DDIM_ERR_CANCELLED";
    case DDIM_ERR_NON_FINITE: return "DDIM_ERR_NON_FINITE";
    case DDIM_ERR_REENTRANT: return "DDIM_ERR_REENTRANT";
    case DDIM_ERR_DISTRIBUTED: return "DDIM_ERR_DISTRIBUTED";
    default: return "DDIM_UNKNOWN_STATUS";
  }
}

const char* ddim_last_error(void) { return last_error.c_str(); }

const char* ddim_version(void) { return ddim::kLibraryVersion; }

const char* ddim_torch_version(void) { return TORCH_VERSION; }

int32_t ddim_available_threads(void) {
  try {
    return ddim::available_threads();
  } catch (...) {
    return 1;
  }
}

ddim_status ddim_set_num_threads(int32_t threads) {
  return guarded([&] {
    const int32_t available = ddim::available_threads();
    // Thousands of threads took minutes to start and could hang libtorch's pool.
    require(threads <= ddim::kMaxThreadsPerCore * available, Status::InvalidArgument,
            "threads must be at most " + std::to_string(ddim::kMaxThreadsPerCore * available) + " (" +
                std::to_string(ddim::kMaxThreadsPerCore) + "x the " + std::to_string(available) +
                " available processors), got " + std::to_string(threads));
    torch::set_num_threads(threads > 0 ? threads : available);
  });
}

int32_t ddim_get_num_threads(void) {
  try {
    return static_cast<int32_t>(torch::get_num_threads());
  } catch (...) {
    return 1;
  }
}

ddim_status ddim_set_cpu_cache_limit(int64_t bytes) {
  return guarded([&] {
    require(bytes >= 0, Status::InvalidArgument, "the CPU cache limit must be >= 0 bytes, got " + std::to_string(bytes));
    ddim::set_cpu_cache_limit(bytes);
  });
}

ddim_status ddim_release_cpu_cache(void) {
  return guarded([] { ddim::release_cpu_cache(); });
}

ddim_status ddim_cpu_cache_stats_get(ddim_cpu_cache_stats* out) {
  return guarded([&] {
    require_pointer(out, "out");
    const auto stats = ddim::cpu_cache_stats();
    *out = {stats.cached_bytes, stats.limit_bytes, stats.hits, stats.misses};
  });
}

ddim_status ddim_check_pixels(const float* pixels, int64_t count) {
  return guarded([&] {
    require_pointer(pixels, "pixels");
    require(count >= 0, Status::BufferSize, "count must be >= 0");
    for (int64_t i = 0; i < count; ++i)
      if (!(pixels[i] >= 0.0f && pixels[i] <= 1.0f))  // true for NaN too
        fail(Status::InvalidArgument,
             "pixel " + std::to_string(i) + " is " + std::to_string(pixels[i]) + "; pixels must be finite and in [0, 1]");
  });
}

int32_t ddim_has_fused_network(void) { return ddim::fused_network_available() ? 1 : 0; }

int32_t ddim_has_fused_bfloat16(void) {
  try {
    return ddim::fused_bfloat16_native() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int32_t ddim_cuda_device_count(void) {
  try {
    return torch::cuda::is_available() ? static_cast<int32_t>(torch::cuda::device_count()) : 0;
  } catch (...) {
    return 0;
  }
}

void ddim_config_init(ddim_config* config) {
  if (config == nullptr) return;
  try {
    *config = config_to_c(ddim::ModelConfig{});
  } catch (...) {  // the defaults' vector could not be allocated: leave a config that fails validation
    *config = ddim_config{};
  }
}

ddim_status ddim_config_validate(const ddim_config* config) {
  return guarded([&] { config_from_c(config); });
}

void ddim_schedule_init(ddim_schedule* schedule) {
  if (schedule != nullptr) *schedule = schedule_to_c(ddim::ScheduleConfig{});
}

ddim_status ddim_schedule_validate(const ddim_schedule* schedule) {
  return guarded([&] { schedule_from_c(schedule); });
}

ddim_status ddim_noise_embedding(const ddim_config* config, const float* noise_variances, int64_t count,
                                 float* out_embedding, int64_t out_count) {
  return guarded([&] {
    const auto model_config = config_from_c(config);
    require_pointer(noise_variances, "noise_variances");
    require_pointer(out_embedding, "out_embedding");
    require(count >= 1, Status::InvalidArgument, "count must be >= 1, got " + std::to_string(count));
    require_count(out_count, checked_product({count, model_config.embedding_dim}, "out_embedding"), "out_embedding");
    const auto variances = torch::from_blob(const_cast<float*>(noise_variances), {count}, torch::kFloat);
    require(torch::isfinite(variances).all().item<bool>(), Status::InvalidArgument,
            "noise_variances contain NaN or infinite values");
    torch::NoGradGuard no_grad;
    const auto embedding = ddim::SinusoidalEmbedding(model_config.embedding_dim)->forward(variances).reshape({count, -1});
    std::memcpy(out_embedding, embedding.contiguous().data_ptr<float>(), static_cast<size_t>(out_count) * sizeof(float));
  });
}

ddim_status ddim_schedule_rates(const ddim_schedule* schedule, const float* t, int64_t count, float* signal_rates,
                                float* noise_rates) {
  return guarded([&] {
    const auto validated = schedule_from_c(schedule);
    require_pointer(t, "t");
    require_pointer(signal_rates, "signal_rates");
    require_pointer(noise_rates, "noise_rates");
    require(count >= 0, Status::BufferSize, "count must be >= 0");
    for (int64_t i = 0; i < count; ++i)
      require(t[i] >= 0.0f && t[i] <= 1.0f, Status::InvalidArgument,
              "t must lie in [0, 1], got " + std::to_string(t[i]) + " at index " + std::to_string(i));
    const auto times = torch::from_blob(const_cast<float*>(t), {count}, torch::kFloat).to(torch::kDouble);
    const auto rates = ddim::diffusion_rates(validated, times);
    const auto signal = rates.signal.to(torch::kFloat).contiguous();
    const auto noise = rates.noise.to(torch::kFloat).contiguous();
    std::memcpy(signal_rates, signal.data_ptr<float>(), count * sizeof(float));
    std::memcpy(noise_rates, noise.data_ptr<float>(), count * sizeof(float));
  });
}

ddim_status ddim_model_create(const ddim_config* config, int32_t device, uint64_t seed, ddim_model** out_model) {
  return guarded([&] {
    require_pointer(out_model, "out_model");
    *out_model = nullptr;
    const auto model_config = config_from_c(config);  // validated before any allocation
    *out_model = new_handle(std::make_unique<ddim::Model>(model_config, resolve_device(device), seed));
  });
}

ddim_status ddim_model_load(const char* path, int32_t device, ddim_model** out_model) {
  return guarded([&] {
    require_pointer(out_model, "out_model");
    *out_model = nullptr;
    require_pointer(path, "path");
    std::optional<ddim::CheckpointState> checkpoint;
    auto handle = std::make_unique<ddim_model>(ddim::load_model(path, resolve_device(device), &checkpoint));
    if (checkpoint) {
      handle->trainer = std::make_unique<ddim::Trainer>(*handle->model, checkpoint->config);
      handle->trainer->restore(checkpoint->steps, checkpoint->optimizer);
      handle->user_state = checkpoint->user_state;
    }
    *out_model = handle.release();
  });
}

ddim_status ddim_model_save(ddim_model* model, const char* path) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(path, "path");
    require(std::strlen(path) > 0, Status::InvalidArgument, "path is empty");
    ddim::save_model(m, path);
  });
}

void ddim_model_free(ddim_model* model) { free_handle(model); }

ddim_status ddim_model_config(ddim_model* model, ddim_config* out_config) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_config, "out_config");
    *out_config = config_to_c(m.config());
  });
}

ddim_status ddim_model_set_class_names(ddim_model* model, const char* names) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(names, "names");
    // Bounded before splitting: no valid list is longer.
    const size_t length = strnlen(names, (DDIM_MAX_CLASS_NAME_BYTES + 1) * DDIM_MAX_CLASSES + 1);
    require(length <= (DDIM_MAX_CLASS_NAME_BYTES + 1) * DDIM_MAX_CLASSES, Status::InvalidArgument, "names is too long");
    std::vector<std::string> list;
    if (length > 0) {
      std::string_view rest(names, length);
      for (size_t end; (end = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(end + 1))
        list.emplace_back(rest.substr(0, end));
      list.emplace_back(rest);
    }
    m.set_class_names(list);
  });
}

ddim_status ddim_model_class_names(ddim_model* model, char* buffer, int64_t capacity, int64_t* out_length) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_length, "out_length");
    std::string joined;
    for (const auto& name : m.config().class_names) joined += (joined.empty() ? "" : "\n") + name;
    copy_string(joined, buffer, capacity, out_length, "the class names");
  });
}

ddim_status ddim_model_parameter_count(ddim_model* model, int64_t* out_count) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_count, "out_count");
    *out_count = m.parameter_count();
  });
}

ddim_status ddim_model_device(ddim_model* model, int32_t* out_device) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_device, "out_device");
    *out_device = m.device().is_cuda() ? static_cast<int32_t>(m.device().index()) : DDIM_DEVICE_CPU;
  });
}

ddim_status ddim_model_has_ema(ddim_model* model, int32_t* out_has_ema) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_has_ema, "out_has_ema");
    *out_has_ema = m.ema().has_value() ? 1 : 0;
  });
}

ddim_status ddim_model_set_normalizer(ddim_model* model, const float* mean, const float* std, int64_t channels) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(mean, "mean");
    require_pointer(std, "std");
    require_count(channels, m.config().channels, "normaliser");
    m.set_normalizer(torch::from_blob(const_cast<float*>(mean), {channels}, torch::kFloat),
                     torch::from_blob(const_cast<float*>(std), {channels}, torch::kFloat));
  });
}

ddim_status ddim_model_normalizer(ddim_model* model, float* out_mean, float* out_std, int64_t channels) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_mean, "out_mean");
    require_pointer(out_std, "out_std");
    require_count(channels, m.config().channels, "normaliser");
    const auto mean = m.mean().to(torch::kCPU).contiguous();
    const auto std = m.std().to(torch::kCPU).contiguous();
    std::memcpy(out_mean, mean.data_ptr<float>(), channels * sizeof(float));
    std::memcpy(out_std, std.data_ptr<float>(), channels * sizeof(float));
  });
}

void ddim_sample_params_init(ddim_sample_params* params) {
  if (params == nullptr) return;
  const ddim::SampleRequest defaults;
  *params = ddim_sample_params{};
  params->count = static_cast<int32_t>(defaults.count);
  params->steps = static_cast<int32_t>(defaults.steps);
  params->seed = defaults.seed;
  params->use_ema = defaults.use_ema ? 1 : 0;
  params->sampler = enum_to_c(defaults.sampler);
  params->eta = defaults.eta;
  params->first_index = defaults.first_index;
  params->batch_size = static_cast<int32_t>(defaults.batch_size);
  params->micro_batch = static_cast<int32_t>(defaults.micro_batch);
  params->precision = enum_to_c(defaults.precision);
  params->network = enum_to_c(defaults.network);
  params->preview_every = static_cast<int32_t>(defaults.preview_every);
  params->guidance = defaults.guidance;
}

ddim_status ddim_sample(ddim_model* model, const ddim_sample_params* params, const float* noise, int64_t noise_count,
                        float* out_pixels, int64_t out_count) {
  return with_model(model, [&](ddim::Model& m) {
    const auto request = sample_request_from_c(params, m);
    const auto start = noise == nullptr ? torch::Tensor() : image_batch(m, noise, request.count, noise_count, "noise");
    write_images(ddim::sample(m, request, start), out_pixels, out_count, m, request.count);
  });
}

ddim_status ddim_sample_trajectory(ddim_model* model, const ddim_sample_params* params, const float* noise,
                                   int64_t noise_count, float* out_frames, int64_t out_count) {
  return with_model(model, [&](ddim::Model& m) {
    const auto request = sample_request_from_c(params, m);
    const auto start = noise == nullptr ? torch::Tensor() : image_batch(m, noise, request.count, noise_count, "noise");
    const int64_t frames = checked_product({request.count, request.steps + 1}, "out_frames");
    write_images(ddim::sample_trajectory(m, request, start).flatten(0, 1), out_frames, out_count, m, frames);
  });
}

ddim_status ddim_initial_noise(ddim_model* model, uint64_t seed, int64_t first_index, int32_t count, float* out_noise,
                               int64_t out_count) {
  return with_model(model,
                    [&](ddim::Model& m) { write_seed_noise(m.config(), seed, first_index, count, out_noise, out_count); });
}

ddim_status ddim_seed_noise(const ddim_config* config, uint64_t seed, int64_t first_index, int32_t count, float* out_noise,
                            int64_t out_count) {
  return guarded([&] { write_seed_noise(config_from_c(config), seed, first_index, count, out_noise, out_count); });
}

ddim_status ddim_invert(ddim_model* model, const ddim_sample_params* params, const float* pixels, int64_t pixel_count,
                        float* out_noise, int64_t out_count) {
  return with_model(model, [&](ddim::Model& m) {
    const auto request = sample_request_from_c(params, m);
    const auto images = image_batch(m, pixels, request.count, pixel_count, "pixels");
    write_images(ddim::invert(m, request, images), out_noise, out_count, m, request.count);
  });
}

ddim_status ddim_vary(ddim_model* model, const ddim_sample_params* params, double strength, const float* pixels,
                      int64_t pixel_count, float* out_pixels, int64_t out_count) {
  return with_model(model, [&](ddim::Model& m) {
    const auto request = sample_request_from_c(params, m);
    const auto images = image_batch(m, pixels, request.count, pixel_count, "pixels");
    write_images(ddim::vary(m, request, images, strength), out_pixels, out_count, m, request.count);
  });
}

ddim_status ddim_inpaint(ddim_model* model, const ddim_sample_params* params, const float* pixels, int64_t pixel_count,
                         const float* mask, int64_t mask_count, float* out_pixels, int64_t out_count) {
  return with_model(model, [&](ddim::Model& m) {
    const auto request = sample_request_from_c(params, m);
    const auto images = image_batch(m, pixels, request.count, pixel_count, "pixels");
    require_pointer(mask, "mask");
    const int64_t size = m.config().image_size, plane = size * size;
    const int64_t masks_for_all = checked_product({request.count, plane}, "mask");
    require(mask_count == plane || mask_count == masks_for_all, Status::BufferSize,
            "mask holds " + std::to_string(mask_count) + " floats, the call needs " + std::to_string(plane) +
                " (one mask for all images) or " + std::to_string(masks_for_all) + " (one per image)");
    const auto masks = torch::from_blob(const_cast<float*>(mask), {mask_count / plane, 1, size, size}, torch::kFloat);
    write_images(ddim::inpaint(m, request, images, masks), out_pixels, out_count, m, request.count);
  });
}

ddim_status ddim_predict(ddim_model* model, const ddim_sample_params* params, const float* noisy, int64_t noisy_count,
                         const float* t, int64_t t_count, float* out_noise, float* out_image, int64_t out_count) {
  return with_model(model, [&](ddim::Model& m) {
    const auto request = sample_request_from_c(params, m);
    const auto images = image_batch(m, noisy, request.count, noisy_count, "noisy");
    require_pointer(t, "t");
    require_count(t_count, request.count, "t");
    require_pointer(out_noise, "out_noise");
    require_pointer(out_image, "out_image");
    const auto& config = m.config();
    require_count(out_count, checked_product({request.count, config.channels, config.image_size, config.image_size}, "out_count"),
                  "each output buffer");
    const auto prediction = ddim::predict(m, request, images, torch::from_blob(const_cast<float*>(t), {t_count}, torch::kFloat));
    write_images(prediction.noise, out_noise, out_count, m, request.count);
    write_images(prediction.image, out_image, out_count, m, request.count);
  });
}

void ddim_train_params_init(ddim_train_params* params) {
  if (params != nullptr) *params = train_config_to_c(ddim::TrainConfig{});
}

ddim_status ddim_train_begin(ddim_model* model, const ddim_train_params* params) {
  return with_handle(model, [&](ddim_model& handle) {
    const auto config = train_config_from_c(params);
    if (handle.trainer) {
      handle.trainer->set_config(config);
    } else {
      handle.trainer = std::make_unique<ddim::Trainer>(*handle.model, config);
    }
  });
}

ddim_status ddim_train_step(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count,
                            float* out_loss) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(out_loss, "out_loss");
    require(handle.trainer != nullptr, Status::InvalidArgument, "training has not begun: call ddim_train_begin first");
    *out_loss = static_cast<float>(handle.trainer->step(pixel_batch(*handle.model, pixels, count, pixel_count)));
  });
}

ddim_status ddim_train_step_labeled(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count,
                                    const int32_t* labels, int64_t label_count, float* out_loss) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(out_loss, "out_loss");
    require(handle.trainer != nullptr, Status::InvalidArgument, "training has not begun: call ddim_train_begin first");
    const auto images = pixel_batch(*handle.model, pixels, count, pixel_count);
    *out_loss = static_cast<float>(handle.trainer->step(images, label_batch(labels, label_count, count)));
  });
}

void ddim_distributed_params_init(ddim_distributed_params* params) {
  if (params == nullptr) return;
  const ddim::DistributedConfig defaults;
  params->rank = defaults.rank;
  params->world_size = defaults.world_size;
  params->master_addr = "127.0.0.1";
  params->master_port = defaults.master_port;
  params->timeout_ms = static_cast<int32_t>(defaults.timeout.count());
}

int32_t ddim_has_distributed(void) { return ddim::has_process_group(torch::kCPU) ? 1 : 0; }

ddim_status ddim_train_join(ddim_model* model, const ddim_distributed_params* params) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(params, "params");
    require_pointer(params->master_addr, "params->master_addr");
    require(handle.trainer != nullptr, Status::InvalidArgument, "training has not begun: call ddim_train_begin first");
    ddim::DistributedConfig config;
    config.rank = params->rank;
    config.world_size = params->world_size;
    config.master_addr = std::string(params->master_addr, strnlen(params->master_addr, 256));
    config.master_port = params->master_port;
    config.timeout = std::chrono::milliseconds(params->timeout_ms);
    require(handle.trainer->group() == nullptr, Status::InvalidArgument, "this model already joined a process group");
    handle.trainer->join(std::make_unique<ddim::ProcessGroup>(config, handle.model->device()));
  });
}

ddim_status ddim_train_any_rank(ddim_model* model, int32_t flag, int32_t* out_any) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(out_any, "out_any");
    *out_any = handle.trainer ? (handle.trainer->any_rank(flag != 0) ? 1 : 0) : (flag != 0 ? 1 : 0);
  });
}

ddim_status ddim_distributed_stats_get(ddim_model* model, ddim_distributed_stats* out_stats) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(out_stats, "out_stats");
    const auto* group = handle.trainer ? handle.trainer->group() : nullptr;
    *out_stats = ddim_distributed_stats{};
    out_stats->world_size = 1;
    if (group == nullptr) return;
    out_stats->rank = group->rank();
    out_stats->world_size = group->world_size();
    out_stats->calls = group->stats().calls;
    out_stats->bytes = group->stats().bytes;
    out_stats->seconds = group->stats().seconds;
  });
}

ddim_status ddim_train_state(ddim_model* model, int32_t* out_active, ddim_train_params* out_params, int64_t* out_steps) {
  return with_handle(model, [&](ddim_model& handle) {
    if (out_active != nullptr) *out_active = handle.trainer ? 1 : 0;
    if (out_params != nullptr)
      *out_params = train_config_to_c(handle.trainer ? handle.trainer->config() : ddim::TrainConfig{});
    if (out_steps != nullptr) *out_steps = handle.trainer ? handle.trainer->steps() : 0;
  });
}

ddim_status ddim_evaluate(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count, uint64_t seed,
                          int32_t use_ema, float* out_noise_loss, float* out_image_loss) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_noise_loss, "out_noise_loss");
    require_pointer(out_image_loss, "out_image_loss");
    const auto losses = ddim::evaluate(m, m.network(use_ema != 0), pixel_batch(m, pixels, count, pixel_count), seed);
    *out_noise_loss = static_cast<float>(losses.noise);
    *out_image_loss = static_cast<float>(losses.image);
  });
}

ddim_status ddim_evaluate_labeled(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count,
                                  const int32_t* labels, int64_t label_count, uint64_t seed, int32_t use_ema,
                                  float* out_noise_loss, float* out_image_loss) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(out_noise_loss, "out_noise_loss");
    require_pointer(out_image_loss, "out_image_loss");
    const auto images = pixel_batch(m, pixels, count, pixel_count);
    const auto losses = ddim::evaluate(m, m.network(use_ema != 0), images, seed, label_batch(labels, label_count, count));
    *out_noise_loss = static_cast<float>(losses.noise);
    *out_image_loss = static_cast<float>(losses.image);
  });
}

ddim_status ddim_checkpoint_save(ddim_model* model, const char* path, const char* user_state) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(path, "path");
    require(handle.trainer != nullptr, Status::InvalidArgument, "no training state to checkpoint: call ddim_train_begin first");
    ddim::SaveOptions options;
    options.trainer = handle.trainer.get();
    options.user_state = user_state == nullptr ? "" : user_state;
    ddim::save_model(*handle.model, path, options);
  });
}

ddim_status ddim_checkpoint_user_state(ddim_model* model, char* buffer, int64_t capacity, int64_t* out_length) {
  return with_handle(model, [&](ddim_model& handle) {
    require_pointer(out_length, "out_length");
    copy_string(handle.user_state, buffer, capacity, out_length, "the state");
  });
}

ddim_status ddim_model_export(ddim_model* model, const char* path, int32_t flags) {
  return with_model(model, [&](ddim::Model& m) {
    require_pointer(path, "path");
    require((flags & ~(DDIM_EXPORT_EMA_WEIGHTS | DDIM_EXPORT_HALF)) == 0, Status::InvalidArgument,
            "unknown export flags " + std::to_string(flags));
    ddim::SaveOptions options;
    options.ema_as_weights = (flags & DDIM_EXPORT_EMA_WEIGHTS) != 0;
    options.half_precision = (flags & DDIM_EXPORT_HALF) != 0;
    ddim::save_model(m, path, options);
  });
}

ddim_status ddim_extractor_load(const char* path, int32_t device, ddim_extractor** out_extractor) {
  return guarded([&] {
    require_pointer(path, "path");
    require_pointer(out_extractor, "out_extractor");
    *out_extractor = nullptr;
    auto extractor = std::make_unique<ddim::FeatureExtractor>(path, resolve_device(device));
    auto* handle = new ddim_extractor();
    handle->extractor = std::move(extractor);
    *out_extractor = handle;
  });
}

void ddim_extractor_free(ddim_extractor* extractor) { free_handle(extractor); }

ddim_status ddim_extractor_info(ddim_extractor* extractor, int64_t* out_dimension, int32_t* out_input_size,
                                int32_t* out_input_channels, int32_t* out_standardised) {
  return with_extractor(extractor, [&](ddim::FeatureExtractor& e) {
    if (out_dimension != nullptr) *out_dimension = e.dimension();
    if (out_input_size != nullptr) *out_input_size = static_cast<int32_t>(e.spec().input_size);
    if (out_input_channels != nullptr) *out_input_channels = static_cast<int32_t>(e.spec().input_channels);
    if (out_standardised != nullptr) *out_standardised = e.spec().feature_mean.empty() ? 0 : 1;
  });
}

ddim_status ddim_extractor_features(ddim_extractor* extractor, const float* pixels, int64_t count, int32_t channels,
                                    int32_t height, int32_t width, int64_t pixel_count, float* out_features,
                                    int64_t out_count) {
  return with_extractor(extractor, [&](ddim::FeatureExtractor& e) {
    require_pointer(pixels, "pixels");
    require_pointer(out_features, "out_features");
    require(count >= 1 && channels >= 1 && channels <= 4 && height >= 1 && width >= 1, Status::InvalidArgument,
            "need count >= 1, channels 1..4 and a positive height and width");
    require_count(pixel_count, checked_product({count, channels, height, width}, "pixels"), "pixels");
    require_count(out_count, checked_product({count, e.dimension()}, "out_features"), "out_features");
    const auto images = torch::from_blob(const_cast<float*>(pixels), {count, channels, height, width}, torch::kFloat);
    const auto features = e.features(images).contiguous();
    std::memcpy(out_features, features.data_ptr<float>(), static_cast<size_t>(out_count) * sizeof(float));
  });
}

void ddim_kid_params_init(ddim_kid_params* params) {
  if (params == nullptr) return;
  const ddim::KidOptions defaults;
  params->subsets = static_cast<int32_t>(defaults.subsets);
  params->subset_size = static_cast<int32_t>(defaults.subset_size);
  params->seed = defaults.seed;
}

ddim_status ddim_kid(const float* real, int64_t real_count, const float* generated, int64_t generated_count,
                     int64_t dimension, const ddim_kid_params* params, ddim_kid_result* out_result) {
  return guarded([&] {
    require_pointer(real, "real");
    require_pointer(generated, "generated");
    require_pointer(params, "params");
    require_pointer(out_result, "out_result");
    require(real_count >= 0 && generated_count >= 0 && dimension >= 1, Status::InvalidArgument,
            "counts must be >= 0 and dimension >= 1");
    // The buffers' sizes come from the caller: refuse products that would wrap before libtorch views them.
    checked_product({std::max(real_count, generated_count), dimension, int64_t{sizeof(float)}}, "the feature sets");
    ddim::KidOptions options;
    options.subsets = params->subsets;
    options.subset_size = params->subset_size;
    options.seed = params->seed;
    const auto result = ddim::kernel_inception_distance(
        torch::from_blob(const_cast<float*>(real), {real_count, dimension}, torch::kFloat),
        torch::from_blob(const_cast<float*>(generated), {generated_count, dimension}, torch::kFloat), options);
    out_result->kid = result.mean;
    out_result->std = result.std;
    out_result->subsets = static_cast<int32_t>(result.subsets);
    out_result->subset_size = static_cast<int32_t>(result.subset_size);
  });
}

}  // extern "C"
