// A caching CPU allocator for libtorch, so that sampling and training reuse their activations'
// memory step after step instead of having the OS unmap and fault it in again.
//
// Why: a U-Net step allocates and frees the same few hundred large tensors every time. glibc hands
// blocks above its mmap threshold straight back to the kernel, so every step page-faults ~100 MB
// of fresh zeroed pages; on a VM that costs more than the arithmetic (10x on training here). This
// allocator keeps freed large blocks, by exact size, up to a byte limit, and hands them out again.
// Small blocks (below kMinCachedBytes) go to malloc as before. Nothing here changes results: the
// same tensors get the same values whatever memory they live in.
#pragma once

#include <cstdint>

namespace ddim {

struct CpuCacheStats {
  int64_t cached_bytes = 0;  // freed blocks held for reuse
  int64_t limit_bytes = 0;   // at most this many; 0 = caching off
  int64_t hits = 0;          // allocations served from the cache
  int64_t misses = 0;        // large allocations that went to the OS
};

// Blocks smaller than this are not cached: malloc keeps those in its own bins anyway.
constexpr int64_t kMinCachedBytes = 256 * 1024;
// The default limit on cached bytes.
constexpr int64_t kDefaultCpuCacheBytes = int64_t{1} << 30;

// Makes the caching allocator libtorch's CPU allocator (once per process; later calls do nothing).
// Tensors allocated before keep their own deleters, so installing late is safe.
void install_caching_cpu_allocator();

// Keeps at most `bytes` of freed blocks (>= 0; 0 turns caching off). Frees what no longer fits.
void set_cpu_cache_limit(int64_t bytes);

// Returns every cached block to the OS (the cache stays on and refills as tensors are freed).
void release_cpu_cache();

CpuCacheStats cpu_cache_stats();

// Tests only: the next `count` insertions into the cache's bookkeeping throw std::bad_alloc.
void fail_cpu_cache_bookkeeping_for_testing(int count);

}  // namespace ddim
