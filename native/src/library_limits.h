// The library's limits: a larger value from a caller is Status::InvalidArgument, from a file
// Status::Format, refused before anything is allocated. include/ddim.h publishes each as a
// DDIM_MAX_* constant; c_api.cpp checks that they agree.
#pragma once

#include <cstdint>

namespace ddim {

inline constexpr int64_t kMaxWidths = 8;                        // U-Net resolutions of one model
inline constexpr int64_t kMaxParameters = int64_t{1} << 28;     // trainable parameters (1 GiB in float32)
inline constexpr int64_t kMaxSteps = 10000;                     // sampling steps per call
inline constexpr int64_t kMaxMicroBatch = 4096;                 // images per network evaluation
inline constexpr int64_t kMaxEta = 1;                           // DDIM's eta: 1 is the DDPM posterior's variance
inline constexpr int64_t kMaxFirstIndex = int64_t{1} << 62;     // leaves first_index + count far from overflow
inline constexpr int64_t kMaxThreadsPerCore = 4;                // intra-op threads per hardware thread
inline constexpr int64_t kMaxHeaderBytes = int64_t{16} << 20;   // the JSON header of a model file (16 MiB)
inline constexpr int kMaxJsonDepth = 32;                        // nesting of arrays and objects in a model file's JSON
inline constexpr int64_t kMaxClasses = 4096;                    // classes of a class-conditional model
inline constexpr int64_t kMaxClassNameBytes = 64;               // UTF-8 bytes of one class name
inline constexpr double kMaxGuidance = 100;                     // classifier-free guidance weight

}  // namespace ddim
