// Integer fields of the JSON that model files, checkpoints and extractor specs carry. nlohmann's
// get<int64_t>() converts any JSON number: 2.5 silently becomes 2 and 1e300 is undefined behaviour
// (a float-to-integer overflow). These accept only a JSON integer that fits the field's type and
// otherwise throw FORMAT naming the field; callers add where the field lives (file, object), and the
// config's validate() the ranges that make sense.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.h"

namespace ddim {

// `value` as an int64, or FORMAT naming `field` (what the field may hold is the config's validate()).
inline int64_t json_integer(const nlohmann::json& value, const std::string& field) {
  if (!value.is_number_integer()) fail(Status::Format, field + " must be an integer, got " + value.dump());
  // A JSON integer above INT64_MAX is stored unsigned: compare it as such, never through a narrowing cast.
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail(Status::Format, field + " must lie in [" + std::to_string(std::numeric_limits<int64_t>::min()) + ", " +
                             std::to_string(std::numeric_limits<int64_t>::max()) + "], got " + value.dump());
  return value.get<int64_t>();
}

// The integer `object[field]`; FORMAT when missing or not an int64.
inline int64_t json_integer_field(const nlohmann::json& object, const std::string& field) {
  if (!object.is_object() || !object.contains(field)) fail(Status::Format, field + " is missing");
  return json_integer(object.at(field), field);
}

// The integer `object[field]`, or `fallback` when the field is absent (older files).
inline int64_t json_integer_field_or(const nlohmann::json& object, const std::string& field, int64_t fallback) {
  return object.is_object() && object.contains(field) ? json_integer(object.at(field), field) : fallback;
}

// The unsigned integer `object[field]` (any value of uint64, e.g. a seed); FORMAT otherwise.
inline uint64_t json_unsigned_field(const nlohmann::json& object, const std::string& field) {
  if (!object.is_object() || !object.contains(field)) fail(Status::Format, field + " is missing");
  const auto& value = object.at(field);
  if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0))
    fail(Status::Format, field + " must be an integer in [0, 2^64), got " + value.dump());
  return value.get<uint64_t>();
}

// The array of integers `object[field]`, at most `max_count` of them.
inline std::vector<int64_t> json_integer_array_field(const nlohmann::json& object, const std::string& field, size_t max_count) {
  if (!object.is_object() || !object.contains(field)) fail(Status::Format, field + " is missing");
  const auto& array = object.at(field);
  if (!array.is_array()) fail(Status::Format, field + " must be an array of integers");
  if (array.size() > max_count)
    fail(Status::Format, field + " has " + std::to_string(array.size()) + " entries, at most " + std::to_string(max_count));
  std::vector<int64_t> values;
  for (const auto& value : array) values.push_back(json_integer(value, field + "[" + std::to_string(values.size()) + "]"));
  return values;
}

}  // namespace ddim
