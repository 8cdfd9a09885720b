#include "agent/local/run_directory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "agent/log_file_name.h"
#include "base/beneath.h"
#include "base/random_token.h"

namespace boxcar::agent {

Result<RunDirectory> RunDirectory::create(const std::filesystem::path& workspace) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  auto suffix = random_token(2);
  if (!suffix) return suffix.error();

  RunDirectory dir;
  dir.id_ = std::string(stamp) + "-" + *suffix;
  dir.root_ = workspace / ".boxcar" / "runs" / dir.id_;
  // Made one level at a time beneath the workspace, refusing symlinks: a `.boxcar` link
  // committed to the repository, or planted by a step of an earlier run, must not move the
  // logs and summary out of the workspace. artifacts/ is made by the scheduler, and only for a
  // pipeline that declares some.
  auto make_beneath = [](int parent, const std::string& name) {
    if (parent < 0 || (::mkdirat(parent, name.c_str(), 0755) != 0 && errno != EEXIST)) return unique_fd();
    return open_beneath(parent, name, O_PATH | O_DIRECTORY);
  };
  unique_fd ws(::open(workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  unique_fd boxcar = make_beneath(ws.get(), ".boxcar");
  unique_fd runs = make_beneath(boxcar.get(), "runs");
  unique_fd root = make_beneath(runs.get(), dir.id_);
  unique_fd logs = make_beneath(root.get(), "logs");
  if (!logs) {
    int err = errno;
    return Error{"cannot create run directory " + dir.root_.string() + ": " + std::strerror(err) +
                     (err == ELOOP || err == ENOTDIR ? " (.boxcar or a directory in it is a symlink or a file: remove it)" : ""),
                 err};
  }
  // Held for summary.json: steps can rename the directory or plant links in it later.
  dir.root_fd_ = std::make_shared<unique_fd>(std::move(root));
  std::error_code ec;
  dir.root_ = std::filesystem::canonical(dir.root_, ec);
  if (ec) return Error{"cannot resolve run directory: " + ec.message(), ec.value()};
  return dir;
}

std::filesystem::path RunDirectory::log_file(std::string_view step_name, int attempt) const {
  return logs() / log_file_name(step_name, attempt);
}

Status RunDirectory::write_summary(bool success, const std::vector<StepSummary>& steps,
                                   Millis duration) const {
  boost::json::array arr;
  for (const auto& s : steps) {
    arr.push_back(boost::json::object{
        {"name", s.name},
        {"status", pipeline::to_string(s.state)},
        {"duration_ms", s.duration.count()},
        {"reason", s.reason},
        {"exit_code", s.exit_code},
        {"attempts", s.attempts},
        {"allow_failure", s.allow_failure},
    });
  }
  boost::json::object doc{{"id", id_},
                          {"status", success ? "success" : "failed"},
                          {"duration_ms", duration.count()},
                          {"steps", std::move(arr)}};
  std::string text = boost::json::serialize(doc) + "\n";
  std::string where = (root_ / "summary.json").string();
  unique_fd out = create_fresh(root_fd_->get(), "summary.json");
  if (!out) return Error{"cannot write " + where + ": " + std::strerror(errno), errno};
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(out.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error{"cannot write " + where + ": " + std::strerror(errno), errno};
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace boxcar::agent
