#include "agent/daemon/agent_credential.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "protocol/json_reader.h"

namespace boxcar::agent {

namespace fs = std::filesystem;
namespace json = boost::json;

fs::path credential_path(const fs::path& data_dir) { return data_dir / "agent-credential.json"; }

Result<std::optional<AgentCredential>> load_credential(const fs::path& data_dir,
                                                       const std::string& server) {
  fs::path path = credential_path(data_dir);
  std::error_code ec;
  if (!fs::exists(path, ec) && !ec) return std::optional<AgentCredential>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path.string()};
  std::stringstream text;
  text << in.rdbuf();
  auto v = protocol::parse_json(text.str());
  if (!v) return Error{path.string() + ": " + v.error().message + " (remove it to register again)"};
  AgentCredential c;
  protocol::JsonReader r(*v);
  r.required("server", c.server).required("agent_id", c.agent_id).required("name", c.name);
  r.required("credential", c.credential);
  if (!r.ok()) return Error{path.string() + ": " + r.error().message + " (remove it to register again)"};
  if (c.server != server) return std::optional<AgentCredential>();
  return std::optional<AgentCredential>(std::move(c));
}

Status save_credential(const fs::path& data_dir, const AgentCredential& c) {
  fs::path path = credential_path(data_dir);
  fs::path tmp = path;
  tmp += ".tmp";
  std::string text = json::serialize(json::object{{"server", c.server},
                                                  {"agent_id", c.agent_id},
                                                  {"name", c.name},
                                                  {"credential", c.credential}}) + "\n";
  ::unlink(tmp.c_str());  // a leftover of a crash: O_EXCL below must create a fresh file
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error{"cannot create " + tmp.string() + ": " + std::strerror(errno), errno};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    return Error{"cannot write " + path.string() + ": " + std::strerror(err), err};
  }
  return {};
}

void forget_credential(const fs::path& data_dir) { ::unlink(credential_path(data_dir).c_str()); }

}  // namespace boxcar::agent
