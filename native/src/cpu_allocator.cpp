#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace ddim {
namespace {

// c10's CPU alignment (gAlignment): vectorised kernels and oneDNN expect it.
constexpr size_t kAlignment = 64;
constexpr size_t kPage = 4096;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  static CachingCpuAllocator& instance() {
    // Never destroyed: tensors freed during static destruction still call release().
    static auto* allocator = new CachingCpuAllocator();
    return *allocator;
  }

  // libtorch 1.x declares allocate() const and 2.x non-const; defining both (without `override`)
  // overrides whichever the headers declare.
  c10::DataPtr allocate(size_t bytes) const { return instance().make_data_ptr(bytes); }
  c10::DataPtr allocate(size_t bytes) { return make_data_ptr(bytes); }
  // Pure virtual in libtorch 2.x, absent in 1.x.
  void copy_data(void* destination, const void* source, size_t bytes) const { std::memcpy(destination, source, bytes); }
  // Non-null, so that raw_allocate()/raw_deallocate() work: oneDNN's buffers inside libtorch use them.
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void set_limit(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    trim_locked(limit_);
  }

  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    trim_locked(0);
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_bytes_, limit_, hits_, misses_};
  }

 private:
  c10::DataPtr make_data_ptr(size_t bytes) {
    void* data = obtain(bytes);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  static size_t bucket_of(size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

  void* obtain(size_t bytes) {
    if (bytes == 0) bytes = 1;  // a distinct pointer, as malloc(0) may not give one
    if (bytes > std::numeric_limits<size_t>::max() - kPage) throw std::bad_alloc();  // rounding up must not wrap
    const bool cacheable = static_cast<int64_t>(bytes) >= kMinCachedBytes;
    const size_t size = cacheable ? bucket_of(bytes) : bytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto free_blocks = free_.find(size);
      if (free_blocks != free_.end() && !free_blocks->second.empty()) {
        void* block = free_blocks->second.back();
        note_live_locked(block, size);  // first: when it throws, the block stays cached
        free_blocks->second.pop_back();
        cached_bytes_ -= static_cast<int64_t>(size);
        ++hits_;
        return block;
      }
      ++misses_;
    }
    void* block = nullptr;
    if (posix_memalign(&block, kAlignment, size) != 0 || block == nullptr) throw std::bad_alloc();
    if (cacheable) {
      try {
        std::lock_guard<std::mutex> lock(mutex_);
        note_live_locked(block, size);
      } catch (...) {
        std::free(block);
        throw;
      }
    }
    return block;
  }

  static void release(void* block) { instance().give_back(block); }

  void give_back(void* block) {
    if (block == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto live = live_.find(block);
      if (live != live_.end()) {
        const size_t size = live->second;
        live_.erase(live);
        if (cached_bytes_ + static_cast<int64_t>(size) <= limit_) {
          try {  // a deleter must not throw: a block the cache cannot record is freed instead
            fail_if_asked();
            free_[size].push_back(block);
            cached_bytes_ += static_cast<int64_t>(size);
            return;
          } catch (const std::bad_alloc&) {
          }
        }
      }
    }
    std::free(block);
  }

  void note_live_locked(void* block, size_t size) {
    fail_if_asked();
    live_[block] = size;
  }

  // The test hook's failures (fail_cpu_cache_bookkeeping_for_testing), as a full heap would throw them.
  static void fail_if_asked() {
    if (failing_bookkeeping.load(std::memory_order_relaxed) > 0 && failing_bookkeeping.fetch_sub(1) > 0) throw std::bad_alloc();
  }

 public:
  static inline std::atomic<int> failing_bookkeeping{0};

 private:
  // Frees cached blocks, largest sizes first, until at most `bytes` remain.
  void trim_locked(int64_t bytes) {
    std::vector<size_t> sizes;
    for (const auto& [size, blocks] : free_)
      if (!blocks.empty()) sizes.push_back(size);
    std::sort(sizes.rbegin(), sizes.rend());
    for (const size_t size : sizes) {
      auto& blocks = free_[size];
      while (cached_bytes_ > bytes && !blocks.empty()) {
        std::free(blocks.back());
        blocks.pop_back();
        cached_bytes_ -= static_cast<int64_t>(size);
      }
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> freed blocks
  std::unordered_map<void*, size_t> live_;                // cacheable blocks in use -> bucket size
  int64_t cached_bytes_ = 0;
  int64_t limit_ = kDefaultCpuCacheBytes;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace

void install_caching_cpu_allocator() {
  static std::once_flag installed;
  // Priority above c10's default (0), so that the default's registration order cannot undo it.
  std::call_once(installed, [] { c10::SetCPUAllocator(&CachingCpuAllocator::instance(), 1); });
}

void set_cpu_cache_limit(int64_t bytes) { CachingCpuAllocator::instance().set_limit(bytes); }

void release_cpu_cache() { CachingCpuAllocator::instance().release_all(); }

CpuCacheStats cpu_cache_stats() { return CachingCpuAllocator::instance().stats(); }

void fail_cpu_cache_bookkeeping_for_testing(int count) { CachingCpuAllocator::failing_bookkeeping.store(count); }

}  // namespace ddim
