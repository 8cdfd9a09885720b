#include "executors/native/layered_mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "executors/native/control_channel.h"
#include "executors/native/mounts.h"
#include "executors/native/overlay.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

static_assert(kMaxLayeredLowers + 1 <= static_cast<size_t>(kMaxMessageFds),
              "a layered directory's mounts travel in one control record");

namespace {

Error layer_error(const std::string& what, const fs::path& path, int err) {
  return Error{"layered directory: " + what + " " + path.string() + ": " + std::strerror(err), err};
}

// upper/ is the overlay's root: it shows the owner and mode of the directory it layers (the
// checkout's root), not the agent's.
Status make_layer_dirs(const LayeredDir& d) {
  struct stat base{};
  base.st_mode = S_IFDIR | 0755;
  if (!d.lowers.empty() && ::stat(d.lowers.back().c_str(), &base) != 0) {
    return layer_error("lower", d.lowers.back(), errno);
  }
  fs::path upper = d.layer / "upper", work = d.layer / "work";
  for (const fs::path& p : {upper, work}) {
    if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) return layer_error("creating", p, errno);
  }
  if (::chown(upper.c_str(), base.st_uid, base.st_gid) != 0 || ::chmod(upper.c_str(), base.st_mode & 07777) != 0) {
    return layer_error("setting up", upper, errno);
  }
  return {};
}

// Where pid 1 stacks the `index`th layered directory, `lowers` lowers deep, in a root at `root`.
LayeredMount place(const std::string& root, size_t index, const std::string& target, size_t lowers) {
  LayeredMount m;
  m.staging = root + "/tmp/.boxcar-layered-" + std::to_string(index);
  m.layer_point = m.staging + "/L";
  for (size_t k = 0; k < lowers; ++k) m.lower_points.push_back(m.staging + "/" + std::to_string(k));
  m.target = root + target;
  return m;
}

}  // namespace

Result<std::vector<LayeredMount>> prepare_layered(const std::vector<LayeredDir>& dirs, int userns,
                                                  const std::string& root) {
  std::vector<LayeredMount> out;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const LayeredDir& d = dirs[i];
    if (d.lowers.size() > kMaxLayeredLowers) {
      return Error{"layered directory " + d.target + ": " + std::to_string(d.lowers.size()) +
                       " lower layers, more than the " + std::to_string(kMaxLayeredLowers) +
                       " a step may stack (a chain of `needs` this deep: shorten it, or let a step need fewer)",
                   E2BIG};
    }
    if (Status made = make_layer_dirs(d); !made) return made.error();
    LayeredMount m = place(root, i, d.target, d.lowers.size());
    auto layer = idmapped_mount(d.layer, userns);
    if (!layer) return layer.error();
    m.layer = std::move(*layer);
    for (const auto& lower : d.lowers) {
      auto mnt = idmapped_mount(lower, userns);
      if (!mnt) return mnt.error();
      m.lowers.push_back(std::move(*mnt));
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<int> layered_fds(const LayeredMount& mount) {
  std::vector<int> fds{mount.layer.get()};
  for (const auto& l : mount.lowers) fds.push_back(l.get());
  return fds;
}

std::vector<int> layered_fds(const std::vector<LayeredMount>& mounts) {
  std::vector<int> fds;
  for (const auto& m : mounts) {
    for (int fd : layered_fds(m)) fds.push_back(fd);
  }
  return fds;
}

std::string layered_message(const LayeredDir& dir) {
  return Writer(Msg::layered).str(dir.target).u64(dir.lowers.size()).data();
}

Failure receive_layered(int ctl, const std::string& root, std::vector<LayeredMount>& mounts, std::string& hostname) {
  for (;;) {
    std::string body;
    std::vector<int> fds;
    int rc = recv_message(ctl, body, fds);
    std::vector<unique_fd> owned;
    for (int fd : fds) owned.emplace_back(fd);
    if (rc != 0) return fail("step hand-over", rc < 0 ? EPIPE : rc);
    Reader r(body);
    if (static_cast<Msg>(body[0]) == Msg::configure) {
      hostname = r.str();
      return r.ok() ? ok() : fail("step hand-over", EPROTO);
    }
    std::string target = r.str();
    uint64_t lowers = r.u64();
    // One record per directory, its layer and every lower attached (kMaxLayeredLowers fits).
    if (static_cast<Msg>(body[0]) != Msg::layered || !r.ok() || target.empty() || target[0] != '/' ||
        lowers > kMaxLayeredLowers || owned.size() != lowers + 1) {
      return fail("step hand-over", EPROTO);
    }
    LayeredMount m = place(root, mounts.size(), target, lowers);
    m.layer = std::move(owned[0]);
    for (size_t k = 1; k < owned.size(); ++k) m.lowers.push_back(std::move(owned[k]));
    mounts.push_back(std::move(m));
  }
}

bool layers_workspace(const std::vector<LayeredDir>& dirs) {
  for (const auto& d : dirs) {
    if (d.target == "/workspace") return true;
  }
  return false;
}

Failure mount_layered(const std::vector<LayeredMount>& mounts) {
  for (const LayeredMount& m : mounts) {
    if (::mkdir(m.staging.c_str(), 0700) != 0) return fail("layered directory staging");
    if (::mkdir(m.layer_point.c_str(), 0700) != 0) return fail("layered directory staging");
    BOXCAR_TRY(attach(m.layer.get(), m.layer_point.c_str(), "layered directory mount"));
    std::vector<std::string> lowers;
    for (size_t k = 0; k < m.lowers.size(); ++k) {
      const char* point = m.lower_points[k].c_str();
      if (::mkdir(point, 0700) != 0) return fail("layered directory staging");
      BOXCAR_TRY(attach(m.lowers[k].get(), point, "layered directory mount"));
      // Nothing below may change through the overlay's lower: read-only as well.
      BOXCAR_TRY(set_attr(point, MOUNT_ATTR_RDONLY, false, "layered directory mount"));
      lowers.push_back(m.lower_points[k]);
    }
    if (lowers.empty()) {  // overlayfs needs one lower: an empty one (a cache not restored)
      lowers.push_back(m.staging + "/E");
      if (::mkdir(lowers.back().c_str(), 0700) != 0) return fail("layered directory staging");
    }
    auto overlay = mount_overlay(lowers, m.layer_point + "/upper", m.layer_point + "/work",
                                 OverlayOptions{.what = "layered directory", .userxattr = true});
    if (!overlay) return fail("layered directory overlay", overlay.error().err);
    if (::mkdir(m.target.c_str(), 0755) != 0 && errno != EEXIST) return fail("layered directory target");
    BOXCAR_TRY(attach(overlay->get(), m.target.c_str(), "layered directory overlay"));
    // The overlay holds its layers by itself: the step never sees where they came from.
    for (const std::string& point : m.lower_points) {
      if (::umount2(point.c_str(), MNT_DETACH) != 0) return fail("layered directory staging");
    }
    if (::umount2(m.layer_point.c_str(), MNT_DETACH) != 0) return fail("layered directory staging");
    for (const std::string& point : m.lower_points) ::rmdir(point.c_str());
    ::rmdir(m.layer_point.c_str());
    if (m.lowers.empty()) ::rmdir((m.staging + "/E").c_str());
    if (::rmdir(m.staging.c_str()) != 0) return fail("layered directory staging");
  }
  return ok();
}

}  // namespace boxcar::executors::native
