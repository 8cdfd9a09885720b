// How a job list's ref filter matches stored refs: webhooks store "refs/heads/main", the API
// whatever was submitted ("main" or the full form), so a filter matches both spellings.
#pragma once

#include <string>

namespace boxcar::server {

struct RefForms {
  std::string full;        // "refs/heads/main" ("" when the filter is empty)
  std::string short_name;  // "main"; a tag or any other full ref keeps its full form
};

inline RefForms ref_forms(const std::string& ref) {
  constexpr std::string_view kHeads = "refs/heads/";
  if (ref.empty()) return {};
  if (ref.rfind(kHeads, 0) == 0) return {ref, ref.substr(kHeads.size())};
  if (ref.rfind("refs/", 0) == 0) return {ref, ref};
  return {std::string(kHeads) + ref, ref};
}

}  // namespace boxcar::server
