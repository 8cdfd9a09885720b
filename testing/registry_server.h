// RegistryServer (tests only): Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a
// free port and scratch storage, optionally behind htpasswd basic auth, stopped when destroyed;
// and test images built here (tar layers written with testing/layer_tar.h, an image config, a manifest,
// optionally a multi-platform index) pushed to it with skopeo. Shared by the registry, store,
// executor and engine suites.
//
//   auto registry = RegistryServer::start();
//   TestImage image;
//   image.layers.push_back(busybox_layer());
//   auto pushed = registry->push("app:1", image);   // pushed->reference: "127.0.0.1:PORT/app:1"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "testing/registry_token_server.h"

namespace boxcar::testing {

// One entry of a test layer, written as given: hostile paths ("../x", "/abs") included.
struct TarEntry {
  enum class Type { file, dir, symlink, hardlink, char_device, fifo };
  Type type = Type::file;
  std::string path;
  std::string content;  // file
  std::string target;   // symlink target, or the path a hardlink names
  mode_t mode = 0644;   // permission bits, setuid/setgid/sticky included
  uid_t uid = 0;
  gid_t gid = 0;
  unsigned major = 0, minor = 0;  // devices

  static TarEntry file(std::string path, std::string content, mode_t mode = 0644, uid_t uid = 0, gid_t gid = 0);
  static TarEntry dir(std::string path, mode_t mode = 0755, uid_t uid = 0, gid_t gid = 0);
  static TarEntry symlink(std::string path, std::string target);
  static TarEntry hardlink(std::string path, std::string target);
  static TarEntry device(std::string path, unsigned major, unsigned minor);  // a char device
  static TarEntry whiteout(const std::string& path);  // "a/b" -> "a/.wh.b": b deleted
  static TarEntry opaque(const std::string& dir);     // "a" -> "a/.wh..wh..opq": a's lower content hidden
};

struct TestLayer {
  std::vector<TarEntry> entries;
  bool gzip = true;
};

// A layer blob: its bytes as pushed and what a manifest says of it.
struct BuiltLayer {
  std::string bytes;
  std::string digest;     // "sha256:<hex>" of `bytes`
  std::string diff_id;    // "sha256:<hex>" of the uncompressed tar
  std::string media_type; // application/vnd.oci.image.layer.v1.tar(+gzip)
};
BuiltLayer build_layer(const TestLayer& layer);

// /bin/busybox (from busybox-static) with `applets` as symlinks to it in /bin, plus /tmp,
// /etc/passwd (root, nobody) and /etc/group.
TestLayer busybox_layer(const std::vector<std::string>& applets = {"sh", "ls", "cat", "id", "echo", "env", "pwd",
                                                                   "httpd", "nc", "wget", "sleep", "true", "false",
                                                                   "stat", "test", "mkdir", "touch", "rm"});

struct TestImage {
  std::vector<TestLayer> layers;
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin"};
  std::string user;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;
};

struct PushedImage {
  std::string reference;  // "127.0.0.1:PORT/NAME:TAG"
  std::string digest;     // of what the tag names: the manifest, or the index
  // Of the (first platform's) image manifest:
  std::string manifest_digest;
  std::string config_digest;
  std::vector<std::string> layer_digests;  // base first
};

class RegistryServer {
 public:
  struct Options {
    std::string username;  // set: htpasswd auth (bcrypt) with this user and password
    std::string password;
    // Bearer tokens instead (`auth: token`) from a token service the fixture runs
    // (registry_token_server.h); it checks username/password when they are set.
    bool token_auth = false;
    // Set: https with this certificate and key (e.g. from testing/test_ca.h) instead of http.
    std::filesystem::path tls_cert, tls_key;

    static Options htpasswd(std::string user, std::string password) {
      Options o;
      o.username = std::move(user);
      o.password = std::move(password);
      return o;
    }
  };
  // Error when docker-registry cannot be started or does not listen within 30 s.
  static Result<std::unique_ptr<RegistryServer>> start(Options options);
  static Result<std::unique_ptr<RegistryServer>> start() { return start(Options{}); }
  ~RegistryServer();

  std::string address() const;  // "127.0.0.1:PORT"
  const std::filesystem::path& dir() const { return dir_; }

  // Builds `image` as an OCI layout and pushes it as NAME:TAG ("app:1", "team/app:1").
  Result<PushedImage> push(const std::string& name_tag, const TestImage& image);
  // A multi-platform image: an OCI index of one manifest per entry, pushed with --all.
  Result<PushedImage> push_index(const std::string& name_tag, const std::vector<TestImage>& platforms);

  // How many GETs of blob `digest` the registry answered with 200 (its access log).
  size_t blob_gets(const std::string& digest) const;
  // How many tokens the token service handed out (token_auth).
  size_t tokens_issued() const;
  // Every access log line (for a failing test's message).
  std::string access_log() const;
  // Changes one byte of the stored blob, size kept: the registry serves bad content.
  Status corrupt_blob(const std::string& digest);
  // Stops the registry now (a registry that is down); the destructor does it too.
  void stop();

 private:
  RegistryServer() = default;
  Result<PushedImage> push_layout(const std::string& name_tag, const std::filesystem::path& layout, bool all);

  std::filesystem::path dir_;  // scratch: config, storage/, log, layouts
  int port_ = 0;
  pid_t pid_ = -1;
  Options options_;
  std::unique_ptr<RegistryTokenServer> tokens_;
};

}  // namespace boxcar::testing
