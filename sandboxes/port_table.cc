#include "sandboxes/port_table.h"

#include <fstream>
#include <sstream>
#include <system_error>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/json_file.h"

namespace boxcar::sandboxes {

const protocol::SandboxPort* PortTable::find(uint16_t port) const {
  auto it = ports_.find(port);
  return it == ports_.end() ? nullptr : &it->second;
}

bool PortTable::add(protocol::SandboxPort port) {
  uint16_t key = static_cast<uint16_t>(port.port);
  if (!ports_.count(key) && ports_.size() >= kMaxPorts) return false;
  ports_[key] = std::move(port);
  return true;
}

bool PortTable::remove(uint16_t port) { return ports_.erase(port) > 0; }

std::vector<protocol::SandboxPort> PortTable::list() const {
  std::vector<protocol::SandboxPort> out;
  for (const auto& [port, p] : ports_) out.push_back(p);
  return out;
}

std::vector<uint16_t> PortTable::ports() const {
  std::vector<uint16_t> out;
  for (const auto& [port, p] : ports_) out.push_back(port);
  return out;
}

Status PortTable::save(const std::filesystem::path& file) const {
  boost::json::array list;
  for (const auto& [port, p] : ports_) list.push_back(protocol::to_json(p));
  return write_json_file(file, list);
}

Status PortTable::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  auto v = protocol::parse_json(text.str());
  if (!v) return Error{file.string() + ": " + v.error().message};
  if (!v->is_array()) return Error{file.string() + ": not a JSON array"};
  for (const auto& item : v->as_array()) {
    protocol::SandboxPort p;
    protocol::JsonReader r(item);
    r.required("port", p.port).optional("name", p.name).optional("url", p.url);
    r.optional("path_url", p.path_url).optional("token", p.token);
    if (!r.ok()) return Error{file.string() + ": " + r.error().message};
    if (p.port < 1 || p.port > 65535) return Error{file.string() + ": port " + std::to_string(p.port) + " out of range"};
    if (!add(std::move(p))) break;
  }
  return {};
}

}  // namespace boxcar::sandboxes
