#include "executors/native/watch_wire.h"

#include "executors/native/control_channel.h"

namespace boxcar::executors::native {

std::string encode_watch_request(const WatchRequest& request) {
  return Writer(Msg::watch).str(request.path).u64(request.recursive ? 1 : 0).data();
}

bool decode_watch_request(std::string_view body, WatchRequest& request) {
  if (body.empty() || body[0] != static_cast<char>(Msg::watch)) return false;
  Reader r(body);
  request.path = r.str();
  uint64_t recursive = r.u64();
  request.recursive = recursive == 1;
  return r.ok() && recursive <= 1 && !request.path.empty() && request.path[0] == '/' &&
         request.path.size() <= 4096 && request.path.find('\0') == std::string::npos;
}

std::string watch_record(char type, uint8_t flags, std::string_view payload) {
  if (payload.size() > kMaxWatchPayload) payload = payload.substr(0, kMaxWatchPayload);
  std::string out;
  out.reserve(kWatchHeader + payload.size());
  out.push_back(type);
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>(payload.size() & 0xff));
  out.push_back(static_cast<char>(payload.size() >> 8));
  out.append(payload);
  return out;
}

bool valid_relative_path(std::string_view rel) {
  if (rel.empty()) return true;
  if (rel.size() > 4096 || rel.front() == '/' || rel.back() == '/') return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    std::string_view seg = rel.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == ".." || seg.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace boxcar::executors::native
