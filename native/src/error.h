// The one exception type the core throws on purpose. The C boundary (c_api.cpp) turns it, and
// anything libtorch throws, into a ddim_status and a short message.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "ddim.h"

namespace ddim {

class Error : public std::runtime_error {
 public:
  Error(ddim_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  ddim_status status() const { return status_; }

 private:
  ddim_status status_;
};

[[noreturn]] inline void fail(ddim_status status, const std::string& message) { throw Error(status, message); }

inline void require(bool condition, ddim_status status, const std::string& message) {
  if (!condition) fail(status, message);
}

// The product of non-negative sizes that come from a caller or a file, or `status` naming `what`
// when it overflows int64 (a wrapped product would pass a buffer check and then overrun it).
template <typename Sizes>
int64_t checked_product(const Sizes& factors, const std::string& what, ddim_status status = DDIM_ERR_INVALID_ARGUMENT) {
  int64_t product = 1;
  for (const int64_t factor : factors) {
    require(factor >= 0, status, what + " has a negative size");
    require(!__builtin_mul_overflow(product, factor, &product), status, what + " is too large (its size overflows)");
  }
  return product;
}

inline int64_t checked_product(std::initializer_list<int64_t> factors, const std::string& what,
                               ddim_status status = DDIM_ERR_INVALID_ARGUMENT) {
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
