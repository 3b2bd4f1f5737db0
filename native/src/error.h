// The one exception type the core throws on purpose, and why it was thrown. The C boundary
// (c_api.cpp) turns it, and anything libtorch throws, into a status code and a short message.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace ddim {

// Why a call failed. The numbers are the C ABI's status codes, so c_api.cpp translates with a
// cast, and its static_asserts check each pair.
enum class Status : int32_t {
  Ok = 0,  // never thrown
  InvalidArgument = 1,
  NullPointer = 2,
  BufferSize = 3,
  Io = 4,
  Format = 5,
  Device = 6,
  OutOfMemory = 7,
  Internal = 8,
  Cancelled = 9,
  NonFinite = 10,
  Reentrant = 11,
  Distributed = 12,
};

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

[[noreturn]] inline void fail(Status status, const std::string& message) { throw Error(status, message); }

inline void require(bool condition, Status status, const std::string& message) {
  if (!condition) fail(status, message);
}

// The product of non-negative sizes that come from a caller or a file, or `status` naming `what`
// when it overflows int64 (a wrapped product would pass a buffer check and then overrun it).
template <typename Sizes>
int64_t checked_product(const Sizes& factors, const std::string& what, Status status = Status::InvalidArgument) {
  int64_t product = 1;
  for (const int64_t factor : factors) {
    require(factor >= 0, status, what + " has a negative size");
    require(!__builtin_mul_overflow(product, factor, &product), status, what + " is too large (its size overflows)");
  }
  return product;
}

inline int64_t checked_product(std::initializer_list<int64_t> factors, const std::string& what,
                               Status status = Status::InvalidArgument) {
  return checked_product<std::initializer_list<int64_t>>(factors, what, status);
}

// Shortens a name taken from a file or a caller for an error message, so a hostile one can't
// flood it: at most 80 characters, control characters replaced.
inline std::string quoted(const std::string& name) {
  std::string shown;
  for (const char c : name.substr(0, 80)) shown += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return "'" + shown + (name.size() > 80 ? "...'" : "'");
}

}  // namespace ddim
