// Shared helpers for the native tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"

// DDIM_UNDER_ASAN: built with AddressSanitizer (gcc says so one way, clang another).
#if defined(__SANITIZE_ADDRESS__)
#define DDIM_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DDIM_UNDER_ASAN 1
#endif
#endif

namespace ddim::testing {

// A model small enough to sample in milliseconds.
inline ModelConfig tiny_config() {
  ModelConfig config;
  config.channels = 1;
  config.image_size = 16;
  config.widths = {8, 16};
  config.block_depth = 1;
  config.embedding_dim = 8;
  return config;
}

// A fresh, empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ddim-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file split into its JSON header and data, and joined back.
struct Parts {
  nlohmann::json header;
  std::vector<uint8_t> data;
};

inline Parts split(const std::vector<uint8_t>& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return {nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + n), {bytes.begin() + 8 + n, bytes.end()}};
}

inline std::vector<uint8_t> join(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  std::copy(header.begin(), header.end(), bytes.begin() + 8);
  std::copy(data.begin(), data.end(), bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
  return bytes;
}

inline std::vector<uint8_t> join(const Parts& parts) { return join(parts.header.dump(), parts.data); }

}  // namespace ddim::testing
