#include "testing/registry_server.h"

#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/random_token.h"
#include "base/sha256.h"
#include "testing/layer_tar.h"

namespace boxcar::testing {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// Runs argv to its end with stdout and stderr into `log`; the exit status, or -1.
int run(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

bool listening(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// The layer's tar through the store suite's builder (testing/layer_tar.h): one tar writer.
std::string write_tar(const TestLayer& layer, bool gzip) {
  LayerTar tar(gzip ? LayerTar::Compression::gzip : LayerTar::Compression::none);
  for (const auto& e : layer.entries) {
    switch (e.type) {
      case TarEntry::Type::file: tar.file(e.path, e.content, e.mode, e.uid, e.gid); break;
      case TarEntry::Type::dir: tar.dir(e.path, e.mode, e.uid, e.gid); break;
      case TarEntry::Type::symlink: tar.symlink(e.path, e.target); break;
      case TarEntry::Type::hardlink: tar.hardlink(e.path, e.target); break;
      case TarEntry::Type::char_device: tar.chardev(e.path, e.major, e.minor); break;
      case TarEntry::Type::fifo: tar.fifo(e.path); break;
    }
  }
  return tar.bytes();
}

std::string digest_of(const std::string& bytes) { return "sha256:" + sha256_hex(bytes); }

json::array strings(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

json::object descriptor(const std::string& media_type, const std::string& bytes) {
  return {{"mediaType", media_type}, {"digest", digest_of(bytes)}, {"size", bytes.size()}};
}

// Blobs of an image into `layout`; returns the manifest's bytes and fills `pushed`.
std::string write_image(const fs::path& layout, const TestImage& image, PushedImage& pushed) {
  auto blob = [&](const std::string& bytes) {
    write_file(layout / "blobs" / "sha256" / sha256_hex(bytes), bytes);
  };
  json::array layers;
  json::array diff_ids;
  pushed.layer_digests.clear();
  for (const auto& l : image.layers) {
    BuiltLayer built = build_layer(l);
    blob(built.bytes);
    layers.push_back(descriptor(built.media_type, built.bytes));
    diff_ids.emplace_back(built.diff_id);
    pushed.layer_digests.push_back(built.digest);
  }
  json::object config_obj{{"Env", strings(image.env)}};
  if (!image.user.empty()) config_obj["User"] = image.user;
  if (!image.entrypoint.empty()) config_obj["Entrypoint"] = strings(image.entrypoint);
  if (!image.cmd.empty()) config_obj["Cmd"] = strings(image.cmd);
  if (!image.working_dir.empty()) config_obj["WorkingDir"] = image.working_dir;
  json::object config{{"architecture", image.architecture},
                      {"os", image.os},
                      {"config", config_obj},
                      {"rootfs", json::object{{"type", "layers"}, {"diff_ids", diff_ids}}}};
  if (!image.variant.empty()) config["variant"] = image.variant;
  std::string config_bytes = json::serialize(config);
  blob(config_bytes);
  pushed.config_digest = digest_of(config_bytes);
  json::object manifest{{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                        {"config", descriptor("application/vnd.oci.image.config.v1+json", config_bytes)},
                        {"layers", layers}};
  std::string manifest_bytes = json::serialize(manifest);
  blob(manifest_bytes);
  return manifest_bytes;
}

void write_layout_index(const fs::path& layout, const std::string& media_type, const std::string& top,
                        const std::string& tag) {
  write_file(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  json::object entry = descriptor(media_type, top);
  entry["annotations"] = json::object{{"org.opencontainers.image.ref.name", tag}};
  write_file(layout / "index.json",
             json::serialize(json::object{{"schemaVersion", 2}, {"manifests", json::array{entry}}}));
}

std::string tag_of(const std::string& name_tag) {
  size_t colon = name_tag.rfind(':');
  return colon == std::string::npos ? "latest" : name_tag.substr(colon + 1);
}

}  // namespace

TarEntry TarEntry::file(std::string path, std::string content, mode_t mode, uid_t uid, gid_t gid) {
  TarEntry e;
  e.path = std::move(path);
  e.content = std::move(content);
  e.mode = mode;
  e.uid = uid;
  e.gid = gid;
  return e;
}
TarEntry TarEntry::dir(std::string path, mode_t mode, uid_t uid, gid_t gid) {
  TarEntry e = file(std::move(path), "", mode, uid, gid);
  e.type = Type::dir;
  return e;
}
TarEntry TarEntry::symlink(std::string path, std::string target) {
  TarEntry e = file(std::move(path), "", 0777);
  e.type = Type::symlink;
  e.target = std::move(target);
  return e;
}
TarEntry TarEntry::hardlink(std::string path, std::string target) {
  TarEntry e = file(std::move(path), "", 0644);
  e.type = Type::hardlink;
  e.target = std::move(target);
  return e;
}
TarEntry TarEntry::device(std::string path, unsigned major, unsigned minor) {
  TarEntry e = file(std::move(path), "", 0666);
  e.type = Type::char_device;
  e.major = major;
  e.minor = minor;
  return e;
}
TarEntry TarEntry::whiteout(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return file(dir + ".wh." + path.substr(slash == std::string::npos ? 0 : slash + 1), "", 0644);
}
TarEntry TarEntry::opaque(const std::string& dir) { return file(dir + "/.wh..wh..opq", "", 0644); }

BuiltLayer build_layer(const TestLayer& layer) {
  BuiltLayer out;
  std::string tar = write_tar(layer, false);
  out.diff_id = digest_of(tar);
  out.bytes = layer.gzip ? write_tar(layer, true) : std::move(tar);
  out.digest = digest_of(out.bytes);
  out.media_type = layer.gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar";
  return out;
}

TestLayer busybox_layer(const std::vector<std::string>& applets) {
  TestLayer layer;
  layer.entries.push_back(TarEntry::dir("bin"));
  layer.entries.push_back(TarEntry::file("bin/busybox", read_file("/bin/busybox"), 0755));
  for (const auto& a : applets) layer.entries.push_back(TarEntry::symlink("bin/" + a, "busybox"));
  layer.entries.push_back(TarEntry::dir("etc"));
  layer.entries.push_back(TarEntry::file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"));
  layer.entries.push_back(TarEntry::file("etc/group", "root:x:0:\nnogroup:x:65534:\n"));
  layer.entries.push_back(TarEntry::dir("tmp", 01777));
  layer.entries.push_back(TarEntry::dir("root", 0700));
  return layer;
}

Result<std::unique_ptr<RegistryServer>> RegistryServer::start(Options options) {
  std::unique_ptr<RegistryServer> r(new RegistryServer());
  r->options_ = std::move(options);
  std::string tmpl = "/tmp/boxcar-registry-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Error("mkdtemp failed");
  r->dir_ = tmpl;
  std::string auth;
  if (r->options_.token_auth) {
    auto t = RegistryTokenServer::start(r->dir_ / "token", r->options_.username, r->options_.password);
    if (!t) return t.error();
    r->tokens_ = std::move(*t);
    auth = "auth:\n  token:\n    realm: " + r->tokens_->realm() + "\n    service: " + RegistryTokenServer::kService +
           "\n    issuer: " + RegistryTokenServer::kIssuer + "\n    rootcertbundle: " + r->tokens_->ca_pem().string() + "\n";
  } else if (!r->options_.username.empty()) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    // Cost 4, the least bcrypt allows: these are throwaway test credentials.
    if (!crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt)) return Error("crypt_gensalt failed");
    crypt_data data{};
    const char* hash = crypt_r(r->options_.password.c_str(), salt, &data);
    if (!hash || hash[0] == '*') return Error("bcrypt failed");
    write_file(r->dir_ / "htpasswd", r->options_.username + ":" + hash + "\n");
    auth = "auth:\n  htpasswd:\n    realm: boxcar-test\n    path: " + (r->dir_ / "htpasswd").string() + "\n";
  }
  std::string tls;
  if (!r->options_.tls_cert.empty()) {
    tls = "  tls:\n    certificate: " + r->options_.tls_cert.string() + "\n    key: " + r->options_.tls_key.string() + "\n";
  }
  std::string last;
  for (int tries = 0; tries < 3; ++tries) {
    r->port_ = free_port();
    write_file(r->dir_ / "config.yml",
               "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n"
               "    rootdirectory: " + (r->dir_ / "storage").string() +
                   "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(r->port_) + "\n" + tls + auth);
    pid_t pid = ::fork();
    if (pid < 0) return Error("fork failed");
    if (pid == 0) {
      int fd = ::open((r->dir_ / "registry.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::string config = (r->dir_ / "config.yml").string();
      ::execl("/usr/bin/docker-registry", "docker-registry", "serve", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    r->pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        r->pid_ = -1;
        break;
      }
      if (listening(r->port_)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r->stop();
    last = read_file(r->dir_ / "registry.log");
  }
  return Error("docker-registry did not start: " + last);
}

RegistryServer::~RegistryServer() {
  stop();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

void RegistryServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string RegistryServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

Result<PushedImage> RegistryServer::push(const std::string& name_tag, const TestImage& image) {
  PushedImage pushed;
  fs::path layout = dir_ / "layouts" / random_token(8).value();
  std::string manifest = write_image(layout, image, pushed);
  pushed.manifest_digest = pushed.digest = digest_of(manifest);
  write_layout_index(layout, "application/vnd.oci.image.manifest.v1+json", manifest, tag_of(name_tag));
  auto done = push_layout(name_tag, layout, false);
  if (!done) return done.error();
  pushed.reference = done->reference;
  return pushed;
}

Result<PushedImage> RegistryServer::push_index(const std::string& name_tag, const std::vector<TestImage>& platforms) {
  PushedImage pushed;
  fs::path layout = dir_ / "layouts" / random_token(8).value();
  json::array manifests;
  for (size_t i = 0; i < platforms.size(); ++i) {
    PushedImage one;
    std::string manifest = write_image(layout, platforms[i], one);
    if (i == 0) {
      pushed = one;
      pushed.manifest_digest = digest_of(manifest);
    }
    json::object platform{{"os", platforms[i].os}, {"architecture", platforms[i].architecture}};
    if (!platforms[i].variant.empty()) platform["variant"] = platforms[i].variant;
    json::object entry = descriptor("application/vnd.oci.image.manifest.v1+json", manifest);
    entry["platform"] = platform;
    manifests.push_back(entry);
  }
  std::string index = json::serialize(json::object{
      {"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", manifests}});
  write_file(layout / "blobs" / "sha256" / sha256_hex(index), index);
  pushed.digest = digest_of(index);
  write_layout_index(layout, "application/vnd.oci.image.index.v1+json", index, tag_of(name_tag));
  auto done = push_layout(name_tag, layout, true);
  if (!done) return done.error();
  pushed.reference = done->reference;
  return pushed;
}

Result<PushedImage> RegistryServer::push_layout(const std::string& name_tag, const fs::path& layout, bool all) {
  std::string reference = address() + "/" + name_tag;
  std::vector<std::string> argv = {"/usr/bin/skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests",
                                   "--dest-tls-verify=false"};
  if (all) argv.push_back("--all");
  if (!options_.username.empty()) {
    argv.push_back("--dest-creds");
    argv.push_back(options_.username + ":" + options_.password);
  }
  argv.push_back("oci:" + layout.string() + ":" + tag_of(name_tag));
  argv.push_back("docker://" + reference);
  fs::path log = dir_ / "skopeo.log";
  if (run(argv, log) != 0) return Error("skopeo copy failed: " + read_file(log));
  PushedImage out;
  out.reference = reference;
  return out;
}

size_t RegistryServer::tokens_issued() const { return tokens_ ? tokens_->issued() : 0; }

size_t RegistryServer::blob_gets(const std::string& digest) const {
  std::istringstream log(access_log());
  size_t n = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.find("\"GET /v2/") != std::string::npos && line.find("/blobs/" + digest + " ") != std::string::npos &&
        line.find("\" 200 ") != std::string::npos) {
      ++n;
    }
  }
  return n;
}

std::string RegistryServer::access_log() const {
  std::istringstream log(read_file(dir_ / "registry.log"));
  std::string out;
  for (std::string line; std::getline(log, line);) {
    if (line.find("\" ") != std::string::npos && line.find(" HTTP/1.1\" ") != std::string::npos) out += line + "\n";
  }
  return out;
}

Status RegistryServer::corrupt_blob(const std::string& digest) {
  std::string hex = digest.substr(digest.find(':') + 1);
  fs::path data = dir_ / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex.substr(0, 2) / hex / "data";
  std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) return Error("no stored blob " + data.string());
  f.seekg(0, std::ios::end);
  auto size = f.tellg();
  if (size <= 0) return Error("empty blob");
  f.seekg(size / 2);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(size / 2);
  f.write(&c, 1);
  return {};
}

}  // namespace boxcar::testing
