// Reading fields of an API answer: a missing field or one of another type reads as empty, so a
// server newer than this client (fields added, some left null) is still understood.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

namespace boxcar::client {

inline std::string text_field(const boost::json::object& o, const char* key) {
  auto* p = o.if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

inline std::optional<int64_t> int_field(const boost::json::object& o, const char* key) {
  auto* p = o.if_contains(key);
  if (!p) return std::nullopt;
  if (p->is_int64()) return p->as_int64();
  if (p->is_uint64() && p->as_uint64() <= INT64_MAX) return static_cast<int64_t>(p->as_uint64());
  if (p->is_double()) return static_cast<int64_t>(p->as_double());
  return std::nullopt;
}

inline bool bool_field(const boost::json::object& o, const char* key) {
  auto* p = o.if_contains(key);
  return p && p->is_bool() && p->as_bool();
}

inline double number_field(const boost::json::object& o, const char* key) {
  auto* p = o.if_contains(key);
  if (!p) return 0;
  if (p->is_double()) return p->as_double();
  if (p->is_int64()) return static_cast<double>(p->as_int64());
  if (p->is_uint64()) return static_cast<double>(p->as_uint64());
  return 0;
}

}  // namespace boxcar::client
