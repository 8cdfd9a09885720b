#include "images/layer_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "base/private_dir.h"
#include "base/random_token.h"
#include "base/sha256.h"
#include "base/size.h"
#include "images/unpack.h"

namespace boxcar::images {

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view kSha256 = "sha256:";

Error sys_error(const std::string& what) {
  int err = errno;
  return Error{what + ": " + std::strerror(err), err};
}

// Opens (creating) the lock file `path` and flocks it with `op`. A holder of LOCK_EX may unlink
// the file (prune and remove() do, so locks/ does not grow forever); whoever waited on the
// unlinked inode then finds the path names another file, and tries again on that one.
unique_fd lock_file(const fs::path& path, int op) {
  for (;;) {
    unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return fd;
    int r;
    do r = ::flock(fd.get(), op);
    while (r != 0 && errno == EINTR);
    if (r != 0) return unique_fd();
    struct stat held {}, named {};
    if (::fstat(fd.get(), &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      return fd;
    }
  }
}

std::string unique_suffix() {
  auto t = random_token(8);
  if (!t.ok()) abort_without_randomness(t.error());
  return *t;
}

uint64_t read_size(const fs::path& layer_dir) {
  std::ifstream in(layer_dir / "size");
  uint64_t n = 0;
  in >> n;
  return n;
}

json::array to_json(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::vector<std::string> strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const json::value* v = o.if_contains(key); v && v->is_array()) {
    for (const auto& s : v->get_array()) {
      if (s.is_string()) out.emplace_back(s.get_string());
    }
  }
  return out;
}

std::string string_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// An image record as stored: its layers by digest, so the store's directory may move.
struct StoredRecord {
  PulledImage image;
  std::vector<std::string> layer_hex;
};

class FsLayerStore final : public LayerStore {
 public:
  explicit FsLayerStore(StoreOptions o)
      : o_(std::move(o)), layers_(o_.dir / "layers"), images_(o_.dir / "images"), locks_(o_.dir / "locks"),
        tmp_(o_.dir / "tmp") {}

  Status init();

  const StoreOptions& options() const override { return o_; }
  std::optional<PulledImage> find(const std::string& reference, ImageLease* lease) override;
  Result<fs::path> ensure_layer(const std::string& digest, const std::string& media_type,
                                const std::function<Status(int fd)>& download, ImageLease& lease, bool* cached,
                                const LayerLimits& limits) override;
  Status record(const PulledImage& image) override;
  ImageLease lease(const std::string& reference) override {
    return ImageLease(lock_file(image_lock(sha256_hex(reference)), LOCK_SH));
  }
  std::vector<ImageRecord> list() override;
  Status remove(const std::string& reference) override;
  Result<uint64_t> prune() override;
  Result<uint64_t> collect_garbage() override { return collect(""); }

 private:
  fs::path record_path(const std::string& ref_hex) const { return images_ / (ref_hex + ".json"); }
  fs::path image_lock(const std::string& ref_hex) const { return locks_ / ("image-" + ref_hex + ".lock"); }
  std::optional<StoredRecord> read_record(const fs::path& path) const;
  fs::path pin_path(const std::string& hex) const { return locks_ / (hex + ".pin"); }
  Status check_blob(const std::string& digest, const LayerLimits& limits) const;
  uint64_t usage() const;
  // Both with gc.lock held exclusively by the caller.
  uint64_t prune_locked();
  bool remove_record_locked(const std::string& ref_hex, const unique_fd& held);
  Result<uint64_t> collect(const std::string& spare_ref_hex);

  StoreOptions o_;
  fs::path layers_, images_, locks_, tmp_;
};

Status FsLayerStore::init() {
  for (const fs::path& d : {o_.dir, layers_, images_, locks_, tmp_}) {
    if (auto s = make_private_dir(d); !s.ok()) return s;
  }
  // What a dead process left: its lock is free, so nobody is working on it.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tmp_, ec)) {
    std::string name = e.path().filename();
    unique_fd lock;
    if (name.starts_with("layer-") && name.size() > 70) {
      lock = lock_file(locks_ / (name.substr(6, 64) + ".lock"), LOCK_EX | LOCK_NB);
    } else if (name.starts_with("image-") && name.size() > 70) {
      lock = lock_file(image_lock(name.substr(6, 64)), LOCK_EX | LOCK_NB);
    } else if (!name.starts_with("trash-")) {
      continue;  // not ours
    }
    // A trash entry is garbage whoever holds it: a concurrent removal of it is harmless.
    if (lock || name.starts_with("trash-")) fs::remove_all(e.path(), ec);
  }
  return {};
}

std::optional<StoredRecord> FsLayerStore::read_record(const fs::path& path) const {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  StoredRecord r;
  r.image.reference = string_of(o, "reference");
  r.image.digest = string_of(o, "digest");
  for (const auto& d : strings(o, "layers")) {
    if (!d.starts_with(kSha256) || !is_sha256_hex(d.substr(kSha256.size()))) return std::nullopt;
    r.layer_hex.push_back(d.substr(kSha256.size()));
    r.image.layers.push_back(layers_ / r.layer_hex.back() / "fs");
  }
  if (const json::value* c = o.if_contains("config"); c && c->is_object()) {
    const json::object& co = c->get_object();
    r.image.config.env = strings(co, "env");
    r.image.config.user = string_of(co, "user");
    r.image.config.entrypoint = strings(co, "entrypoint");
    r.image.config.cmd = strings(co, "cmd");
    r.image.config.working_dir = string_of(co, "working_dir");
  }
  if (const json::value* s = o.if_contains("size"); s && s->is_uint64()) r.image.size = s->get_uint64();
  if (const json::value* s = o.if_contains("size"); s && s->is_int64()) r.image.size = s->get_int64();
  return r;
}

// Before any byte of a blob is fetched: a manifest may declare any size (a 2 TB layer), and the
// download goes to tmp/ on the store's disk.
Status FsLayerStore::check_blob(const std::string& digest, const LayerLimits& limits) const {
  if (limits.blob_size == 0) return {};
  if (limits.blob_size > o_.max_bytes) {
    return Error{"layer " + digest + " is " + format_size(limits.blob_size) + " compressed, more than the image " +
                     "cache's size cap (" + format_size(o_.max_bytes) + "); the image is refused: raise the cap or " +
                     "use a smaller image",
                 0, ErrorCode::limit_exceeded, "image_cache_size"};
  }
  struct statvfs vfs {};
  if (::statvfs(tmp_.c_str(), &vfs) == 0) {
    uint64_t free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (free < limits.blob_size) {
      return Error{"layer " + digest + " needs " + format_size(limits.blob_size) + " to download, but the disk of " +
                       "the image cache at " + o_.dir.string() + " has " + format_size(free) + " free: free space " +
                       "there or put the image cache on a larger disk",
                   0, ErrorCode::unavailable};
    }
  }
  return {};
}

uint64_t FsLayerStore::usage() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(layers_, ec)) total += read_size(e.path());
  return total;
}

std::optional<PulledImage> FsLayerStore::find(const std::string& reference, ImageLease* lease) {
  fs::path path = record_path(sha256_hex(reference));
  auto r = read_record(path);
  if (!r || r->image.reference != reference) return std::nullopt;
  ImageLease pins;
  for (size_t i = 0; i < r->image.layers.size(); ++i) {
    // Pinned before looking, as ensure_layer does: a prune holding the pin finishes first.
    if (lease) {
      unique_fd pin = lock_file(pin_path(r->layer_hex[i]), LOCK_SH);
      if (!pin) return std::nullopt;
      pins.add_pin(std::move(pin));
    }
    struct stat st {};
    const auto& layer = r->image.layers[i];
    if (::lstat(layer.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  }
  if (lease) lease->take_pins(std::move(pins));
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // last use: now
  return std::move(r->image);
}

Result<fs::path> FsLayerStore::ensure_layer(const std::string& digest, const std::string& media_type,
                                            const std::function<Status(int fd)>& download, ImageLease& lease,
                                            bool* cached, const LayerLimits& limits) {
  if (!digest.starts_with(kSha256) || !is_sha256_hex(digest.substr(kSha256.size()))) {
    return Error{"layer digest \"" + digest + "\" is not sha256:<64 lowercase hex>", 0, ErrorCode::invalid_input};
  }
  const std::string hex = digest.substr(kSha256.size());
  const fs::path final_dir = layers_ / hex;
  // Pinned before looking: a prune that already holds the pin finishes removing first.
  unique_fd pin_fd = lock_file(pin_path(hex), LOCK_SH);
  if (!pin_fd) return sys_error("cannot lock " + pin_path(hex).string());
  auto present = [&] {
    struct stat st {};
    return ::lstat(final_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  };
  // A layer already there costs the image its size all the same: the image must fit the cap.
  auto reuse = [&]() -> Result<fs::path> {
    if (limits.image_bytes) {
      uint64_t size = read_size(final_dir);
      uint64_t total = limits.image_bytes->fetch_add(size) + size;
      if (total > o_.max_bytes) {
        return Error{"layer " + digest + ": the image unpacks to more than " + format_size(o_.max_bytes) +
                         " (the image cache's size cap); the image is refused: raise the cap or use a smaller image",
                     0, ErrorCode::limit_exceeded, "image_cache_size"};
      }
    }
    lease.add_pin(std::move(pin_fd));
    return final_dir / "fs";
  };
  if (cached) *cached = true;
  if (present()) return reuse();
  if (auto s = check_blob(digest, limits); !s.ok()) return s.error();
  unique_fd lock = lock_file(locks_ / (hex + ".lock"), LOCK_EX);
  if (!lock) return sys_error("cannot lock " + (locks_ / (hex + ".lock")).string());
  if (present()) return reuse();  // another thread or process made it while we waited
  if (cached) *cached = false;
  const fs::path work = tmp_ / ("layer-" + hex + "-" + unique_suffix());
  if (::mkdir(work.c_str(), 0700) != 0) return sys_error("cannot create " + work.string());
  auto fail = [&](Error e) {
    std::error_code ec;
    fs::remove_all(work, ec);
    return e;
  };
  unique_fd blob(::open((work / "blob").c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!blob) return fail(sys_error("cannot create " + (work / "blob").string()));
  if (auto s = download(blob.get()); !s.ok()) return fail(s.error());
  UnpackOptions uo;
  uo.id_base = o_.id_base;
  uo.id_count = o_.id_count;
  uo.max_bytes = o_.max_bytes;
  uo.image_bytes = limits.image_bytes;
  uo.stop = limits.stop;
  auto stats = unpack_layer(blob.get(), media_type, work / "fs", uo);
  if (!stats.ok()) {
    Error e = stats.error();
    e.message = "layer " + digest + ": " + e.message;
    return fail(e);
  }
  blob.reset();
  ::unlink((work / "blob").c_str());
  {
    std::ofstream out(work / "size");
    out << stats->bytes << "\n";
    if (!out.flush()) return fail(Error{"cannot write " + (work / "size").string()});
  }
  // The commit point: a layer directory either is complete or is not there.
  if (::rename(work.c_str(), final_dir.c_str()) != 0) {
    return fail(sys_error("cannot move a layer into " + final_dir.string()));
  }
  lease.add_pin(std::move(pin_fd));
  return final_dir / "fs";
}

Status FsLayerStore::record(const PulledImage& image) {
  if (image.reference.empty()) return Error{"an image record needs a reference", 0, ErrorCode::invalid_input};
  const std::string ref_hex = sha256_hex(image.reference);
  json::array layers;
  uint64_t size = 0;
  {
    unique_fd gc = lock_file(locks_ / "gc.lock", LOCK_SH);  // no prune between the check and the record
    for (const auto& layer : image.layers) {
      fs::path dir = layer.parent_path();
      std::string hex = dir.filename();
      struct stat st {};
      if (layer.filename() != "fs" || dir.parent_path() != layers_ || !is_sha256_hex(hex) ||
          ::lstat(layer.c_str(), &st) != 0) {
        return Error{"image " + image.reference + ": layer " + layer.string() + " is not in the image cache at " +
                         o_.dir.string(),
                     0, ErrorCode::not_found};
      }
      size += read_size(dir);
      layers.emplace_back(std::string(kSha256) + hex);
    }
    json::object o;
    o["reference"] = image.reference;
    o["digest"] = image.digest;
    o["layers"] = std::move(layers);
    o["config"] = json::object{{"env", to_json(image.config.env)},
                               {"user", image.config.user},
                               {"entrypoint", to_json(image.config.entrypoint)},
                               {"cmd", to_json(image.config.cmd)},
                               {"working_dir", image.config.working_dir}};
    o["size"] = size;
    // Written aside and renamed: a reader sees the old record or the new one, never half.
    unique_fd writing = lock_file(image_lock(ref_hex), LOCK_SH);
    fs::path tmp = tmp_ / ("image-" + ref_hex + "-" + unique_suffix());
    {
      std::ofstream out(tmp);
      out << json::serialize(o) << "\n";
      if (!out.flush()) {
        std::error_code ec;
        fs::remove(tmp, ec);
        return Error{"cannot write " + tmp.string()};
      }
    }
    if (::rename(tmp.c_str(), record_path(ref_hex).c_str()) != 0) {
      Error e = sys_error("cannot record image " + image.reference);
      ::unlink(tmp.c_str());
      return e;
    }
  }
  if (usage() > o_.max_bytes) {
    auto freed = collect(ref_hex);
    if (!freed.ok()) return freed.error();
  }
  return {};
}

std::vector<ImageRecord> FsLayerStore::list() {
  std::vector<ImageRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(images_, ec)) {
    if (e.path().extension() != ".json") continue;
    auto r = read_record(e.path());
    struct stat st {};
    if (!r || ::stat(e.path().c_str(), &st) != 0) continue;
    out.push_back(ImageRecord{std::move(r->image), st.st_mtim.tv_sec});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.image.reference < b.image.reference; });
  return out;
}

bool FsLayerStore::remove_record_locked(const std::string& ref_hex, const unique_fd& held) {
  if (!held) return false;
  bool removed = ::unlink(record_path(ref_hex).c_str()) == 0;
  ::unlink(image_lock(ref_hex).c_str());  // held exclusively: see lock_file
  return removed;
}

Status FsLayerStore::remove(const std::string& reference) {
  const std::string ref_hex = sha256_hex(reference);
  struct stat st {};
  if (::stat(record_path(ref_hex).c_str(), &st) != 0) {
    return Error{"image " + reference + " is not in the image cache at " + o_.dir.string(), 0, ErrorCode::not_found};
  }
  unique_fd held = lock_file(image_lock(ref_hex), LOCK_EX | LOCK_NB);
  if (!held) {
    return Error{"image " + reference + " is in use by a running step; remove it once the step has ended", 0,
                 ErrorCode::conflict};
  }
  if (!remove_record_locked(ref_hex, held)) return sys_error("cannot remove the record of image " + reference);
  return {};
}

uint64_t FsLayerStore::prune_locked() {
  std::set<std::string> referenced;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(images_, ec)) {
    if (e.path().extension() != ".json") continue;
    if (auto r = read_record(e.path())) referenced.insert(r->layer_hex.begin(), r->layer_hex.end());
  }
  uint64_t freed = 0;
  for (const auto& e : fs::directory_iterator(layers_, ec)) {
    std::string hex = e.path().filename();
    if (!is_sha256_hex(hex) || referenced.count(hex)) continue;
    unique_fd pinned = lock_file(pin_path(hex), LOCK_EX | LOCK_NB);
    if (!pinned) continue;  // a pull in progress or a running step's lease uses it
    uint64_t size = read_size(e.path());
    // Out of layers/ in one rename first, so a half-removed layer is never found.
    fs::path trash = tmp_ / ("trash-" + unique_suffix());
    if (::rename(e.path().c_str(), trash.c_str()) != 0) continue;
    fs::remove_all(trash, ec);
    ::unlink(pin_path(hex).c_str());
    ::unlink((locks_ / (hex + ".lock")).c_str());  // only taken while the layer was absent
    freed += size;
  }
  return freed;
}

Result<uint64_t> FsLayerStore::prune() {
  unique_fd gc = lock_file(locks_ / "gc.lock", LOCK_EX);
  if (!gc) return sys_error("cannot lock " + (locks_ / "gc.lock").string());
  return prune_locked();
}

Result<uint64_t> FsLayerStore::collect(const std::string& spare_ref_hex) {
  unique_fd gc = lock_file(locks_ / "gc.lock", LOCK_EX);
  if (!gc) return sys_error("cannot lock " + (locks_ / "gc.lock").string());
  uint64_t freed = 0;
  while (usage() > o_.max_bytes) {
    std::vector<ImageRecord> records = list();
    std::stable_sort(records.begin(), records.end(),
                     [](const auto& a, const auto& b) { return a.last_used < b.last_used; });
    bool removed = false;
    for (const auto& r : records) {
      std::string ref_hex = sha256_hex(r.image.reference);
      if (ref_hex == spare_ref_hex) continue;
      unique_fd held = lock_file(image_lock(ref_hex), LOCK_EX | LOCK_NB);
      if (remove_record_locked(ref_hex, held)) {
        removed = true;
        break;
      }
    }
    freed += prune_locked();
    if (!removed) break;  // every image left is leased (or spared): over the cap until they end
  }
  return freed;
}

}  // namespace

Result<std::unique_ptr<LayerStore>> LayerStore::open(StoreOptions options) {
  if (options.dir.empty()) return Error{"the image cache needs a directory", 0, ErrorCode::usage, "image_cache"};
  if (options.id_count == 0) return Error{"the image cache needs a non-empty id range", 0, ErrorCode::usage};
  auto store = std::make_unique<FsLayerStore>(std::move(options));
  if (auto s = store->init(); !s.ok()) return s.error();
  return std::unique_ptr<LayerStore>(std::move(store));
}

}  // namespace boxcar::images
