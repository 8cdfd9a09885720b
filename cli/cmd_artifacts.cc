// boxcar artifacts: a job's artifacts as a table; --download DIR fetches every one to
// DIR/<path>, verifying its sha256, with a progress bar when stderr is a terminal, and
// recreates the job's links (each staying inside DIR) as links.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include <boost/json.hpp>

#include "base/link_target.h"
#include "base/safe_relative_path.h"
#include "base/sha256.h"
#include "base/terminal_escape.h"
#include "base/url.h"
#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/transfer_progress.h"
#include "cli/flags.h"

namespace boxcar::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct Listed {
  std::string path, sha256, step;
  uint64_t size = 0;
  std::string target;  // a link's target text; empty for a file
};

// A `.git` segment (any case: case-insensitive file systems): when DIR is a repository, a
// downloaded .git/config or hook is code that git runs on the next command.
bool inside_git_dir(const std::string& path) {
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string seg = path.substr(i, j - i);
    for (char& c : seg) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (seg == ".git") return true;
    i = j + 1;
  }
  return false;
}

std::string human(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  } else if (bytes < (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  }
  return buf;
}

// Downloads one artifact to `dest` (through a temporary file beside it), checking its sha256.
Status fetch(ApiClient& client, const std::string& job, const Listed& a, const fs::path& dest,
             TransferProgress& progress) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return Error{"cannot create " + dest.parent_path().string() + ": " + ec.message()};
  std::string tmp = dest.string() + ".part-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Error{"cannot write in " + dest.parent_path().string() + ": " + std::strerror(errno)};
  Sha256 hash;
  bool write_failed = false;
  auto got = client.download("/api/v1/jobs/" + job + "/artifacts/" + percent_encode(a.path, true),
                             [&](std::string_view data) {
                               hash.update(data);
                               for (size_t off = 0; off < data.size();) {
                                 ssize_t n = ::write(fd, data.data() + off, data.size() - off);
                                 if (n < 0 && errno == EINTR) continue;
                                 if (n < 0) {
                                   write_failed = true;
                                   return false;
                                 }
                                 off += static_cast<size_t>(n);
                               }
                               progress.add(data.size());
                               return true;
                             });
  ::close(fd);
  auto fail = [&](std::string why) -> Status {
    fs::remove(tmp, ec);
    return Error{std::move(why)};
  };
  if (!got) return fail(got.error().message);
  if (write_failed) return fail("cannot write " + dest.string());
  std::string digest = hash.hex();
  if (digest != a.sha256) {
    return fail(a.path + ": sha256 mismatch (got " + digest + ", the server lists " + a.sha256 + ")");
  }
  ::chmod(tmp.c_str(), 0644);
  fs::rename(tmp, dest, ec);
  if (ec) return fail("cannot move the download to " + dest.string() + ": " + ec.message());
  return {};
}

// The link of the set that `path` lies under ("p/q" for "p/q/r" when "p/q" is a link), or "".
// A step's artifacts are collected from real paths, so nothing lies under one of its links; a
// listing that says otherwise would have the download write through a link it just made, out
// of the directory, and is refused whole for that path.
std::string link_above(const std::string& path, const std::map<std::string, std::string>& links) {
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (links.count(path.substr(0, slash))) return path.substr(0, slash);
  }
  return "";
}

// Recreates link `path` -> `target` under `dir` (through a temporary name beside it) when the
// target, expanding the job's other links, stays inside `dir`: the listing comes from a
// server, and a link must not lead the next reader of `dir` out of it.
Status make_link(const fs::path& dir, const std::string& path, const std::string& target,
                 const std::map<std::string, std::string>& links) {
  std::string shown = "\"" + path + "\" -> \"" + target + "\"";
  if (!safe_relative_path(path) || inside_git_dir(path)) return Error{"refusing link " + shown + ": not a safe relative path"};
  LinkResolution end = resolve_in_set(path, [&links](const std::string& p) -> std::optional<std::string> {
    auto it = links.find(p);
    if (it == links.end()) return std::nullopt;
    return it->second;
  });
  if (!lexical_link_target(path, target) || !end.ok()) {
    return Error{"refusing link " + shown + ": it " + (end.ok() ? "leads out of " + dir.string() : end.error)};
  }
  fs::path dest = dir / path;
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return Error{"cannot create " + dest.parent_path().string() + ": " + ec.message()};
  fs::path tmp = dest.string() + ".link-" + std::to_string(::getpid());
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, dest, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return Error{"cannot make link " + shown + " in " + dir.string() + ": " + ec.message()};
  }
  return {};
}

}  // namespace

int cmd_artifacts(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--download", true, false, ""},
                                                        {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("artifacts", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar artifacts [--server URL] [--token-file F] [--ca-file PEM] [--download DIR] JOB\n%s%s", kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  if (flags->positional.size() != 1) return usage_error("artifacts", "needs exactly one JOB id");
  const std::string& job = flags->positional[0];
  auto client = api_client_for(*flags, "artifacts");
  if (!client) return usage_error("artifacts", client.error().message);
  auto reply = client->request("GET", "/api/v1/jobs/" + job + "/artifacts");
  if (!reply) {
    std::fprintf(stderr, "boxcar artifacts: %s\n", reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "boxcar artifacts: job %s: %s\n", job.c_str(), error_text(*reply).c_str());
    return exit_code_of_status(reply->status);
  }
  std::vector<Listed> items;
  boost::system::error_code ec;
  json::value body = json::parse(reply->body, ec);
  if (ec || !body.is_object() || !body.as_object().contains("artifacts")) {
    std::fprintf(stderr, "boxcar artifacts: the server's answer is not an artifact list\n");
    return kExitInfra;
  }
  for (const auto& v : body.at("artifacts").as_array()) {
    const auto& o = v.as_object();
    auto str = [&](const char* k) {
      return o.contains(k) && o.at(k).is_string() ? std::string(o.at(k).as_string()) : std::string();
    };
    Listed a{str("path"), str("sha256"), str("step"), 0, str("target")};
    if (o.contains("size") && o.at("size").is_number()) a.size = o.at("size").to_number<uint64_t>();
    items.push_back(std::move(a));
  }

  auto dir = flags->get("--download");
  if (!dir) {
    if (items.empty()) {
      std::printf("job %s has no artifacts\n", job.c_str());
      return kExitOk;
    }
    // Paths, names and hashes come from a job: shown escaped, never as terminal controls.
    std::printf("%-48s  %10s  %-12s  %s\n", "PATH", "SIZE", "SHA-256", "STEP");
    for (const auto& a : items) {
      std::string name = a.target.empty() ? a.path : a.path + " -> " + a.target;
      std::printf("%-48s  %10s  %-12s  %s\n", escape_for_terminal(name).c_str(),
                  human(a.size).c_str(), escape_for_terminal(a.sha256.substr(0, 12)).c_str(),
                  escape_for_terminal(a.step).c_str());
    }
    return kExitOk;
  }

  uint64_t total = 0;
  for (const auto& a : items) total += a.target.empty() ? a.size : 0;
  std::map<std::string, std::string> links;  // made after the files, once all are known
  for (const auto& a : items) {
    if (!a.target.empty()) links[a.path] = a.target;
  }
  TransferProgress progress(total, ::isatty(STDERR_FILENO) == 1);
  int failures = 0;
  for (const auto& a : items) {
    if (std::string above = link_above(a.path, links); !above.empty()) {
      std::fprintf(stderr, "boxcar artifacts: refusing \"%s\": it lies under the link \"%s\"\n",
                   escape_for_terminal(a.path).c_str(), escape_for_terminal(above).c_str());
      ++failures;
      continue;
    }
    if (!a.target.empty()) continue;
    if (!safe_relative_path(a.path) || !is_sha256_hex(a.sha256)) {
      std::fprintf(stderr, "boxcar artifacts: refusing \"%s\": not a safe relative path\n",
                   escape_for_terminal(a.path).c_str());
      ++failures;
      continue;
    }
    if (inside_git_dir(a.path)) {
      std::fprintf(stderr, "boxcar artifacts: refusing \"%s\": a file inside .git could make git "
                           "run commands when %s is a repository\n",
                   escape_for_terminal(a.path).c_str(), dir->c_str());
      ++failures;
      continue;
    }
    auto done = fetch(*client, job, a, fs::path(*dir) / a.path, progress);
    if (!done) {
      std::fprintf(stderr, "%sboxcar artifacts: %s\n", ::isatty(STDERR_FILENO) ? "\n" : "",
                   escape_for_terminal(done.error().message).c_str());
      ++failures;
    }
  }
  for (const auto& [path, target] : links) {
    if (!link_above(path, links).empty()) continue;  // refused above
    auto made = make_link(fs::path(*dir), path, target, links);
    if (!made) {
      std::fprintf(stderr, "boxcar artifacts: %s\n", escape_for_terminal(made.error().message).c_str());
      ++failures;
    }
  }
  progress.finish();
  std::printf("%zu of %zu artifacts (%s) in %s\n", items.size() - failures, items.size(),
              human(total).c_str(), dir->c_str());
  return failures == 0 ? kExitOk : kExitInfra;
}

}  // namespace boxcar::cli
