#include "sandboxes/port_table.h"

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

}  // namespace boxcar::sandboxes
