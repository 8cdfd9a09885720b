// RegistryClient: the OCI distribution / Docker Registry HTTP API v2, as a puller needs it.
// Anonymous and bearer-token auth (the WWW-Authenticate challenge: realm, service, scope), basic
// auth from a Docker config.json; an image index or manifest list resolved to the linux/amd64
// manifest (variant aware); Docker v2 schema 2 and OCI manifests; blobs verified against their
// digest while they stream; redirects to blob storage followed; failed requests retried with
// backoff. https with the system's CAs; plain http only for a registry named as insecure.
//
// Blocking: every call runs on the caller's thread (the puller calls it from worker threads,
// several at once for one image's layers). Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "images/image.h"
#include "images/pull_stop.h"
#include "images/reference.h"

namespace boxcar::images {

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

// One platform's manifest.
struct Manifest {
  std::string digest;  // of the manifest bytes as served
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;  // base layer first
};

struct RegistryOptions {
  // Registries ("host:port", or "host" for port 80) reached over plain http instead of https.
  std::vector<std::string> insecure;
  // A Docker-format config.json with "auths" (basic credentials per registry). Empty:
  // $DOCKER_CONFIG/config.json, else ~/.docker/config.json, when they exist.
  std::filesystem::path auth_file;
  // A PEM bundle to trust instead of the system's CAs (tests; a private registry's CA).
  std::filesystem::path ca_file;
  // Per request: no progress for this long fails it. A whole pull is bounded by the PullStop
  // the caller passes (PullOptions::timeout), however slowly the bytes trickle.
  Millis timeout{60'000};
  int attempts = 4;              // tries per request on a network error, 429 or 5xx
  Millis backoff{500};           // before the second try; doubled each time after
  uint64_t max_manifest_bytes = 4 << 20;
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;  // "" matches any (amd64 has none; arm64 "v8")
  // Told why a request is tried again (a progress display's "retry" event); may be empty.
  // Called from the requesting thread.
  std::function<void(const std::string& why)> on_retry;
};

class RegistryClient {
 public:
  // An Error when the options are unusable (an unreadable auth file or CA bundle).
  static Result<std::unique_ptr<RegistryClient>> make(RegistryOptions options);
  virtual ~RegistryClient() = default;

  // The manifest to run: the reference's manifest, or its index/list's entry for the platform.
  // Errors say which image, which registry, and the registry's answer: unknown repository or
  // tag (not_found), credentials missing or refused (usage: the user must give or fix them),
  // no manifest for linux/amd64 (not_found; lists the platforms there are), registry
  // unreachable or failing (unavailable), plain http from a registry not named insecure (usage).
  // Every call ends early with stop_error() once `stop` says so (checked as data arrives,
  // between tries and at least every 100 ms while waiting).
  virtual Result<Manifest> resolve(const Reference& ref, const PullStop& stop = {}) = 0;

  // The image config blob of `manifest`, verified against its digest and parsed.
  virtual Result<ImageConfig> fetch_config(const Reference& ref, const Manifest& manifest,
                                           const PullStop& stop = {}) = 0;

  // Streams blob `blob` into `out` (a file opened for writing, positioned at 0), hashing as it
  // goes; retried from the start on failure (the file is truncated first). A digest or size
  // mismatch is an Error naming the digest (the caller removes the file). `progress` gets
  // (bytes so far, total) as data arrives; may be empty.
  virtual Status fetch_blob(const Reference& ref, const Descriptor& blob, int out,
                            const std::function<void(uint64_t, uint64_t)>& progress, const PullStop& stop = {}) = 0;
};

}  // namespace boxcar::images
