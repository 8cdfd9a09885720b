// Checkout: a job's commit into its workspace, through a per-agent mirror cache (libgit2).
// Each repository is fetched into a bare mirror under <data dir>/mirrors/<sha256 of the URL>
// (+refs/*:refs/*; the first fetch is full, later ones only bring what is new, and none at all
// when the commit is already there), then cloned locally (hard links) into the workspace, the
// commit checked out and submodules initialised and updated. Blocking: run it off the
// io_context. Two checkouts of one repository by one agent take turns (flock on the mirror).
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <string>

#include "base/result.h"

namespace boxcar::agent {

struct CheckoutRequest {
  std::string url;                   // https://, ssh://, git@host:path, file:// or a local path
  std::string ref;                   // "main", "refs/heads/main", "v1.0", "refs/pull/7/head";
                                     // "" = the repository's default branch
  std::string commit;                // full or abbreviated sha; "" = the tip of ref
  std::filesystem::path data_dir;    // mirrors live in <data_dir>/mirrors/
  std::filesystem::path workspace;   // created; must not exist yet, or be empty
  std::string token;                 // https: sent as user "x-access-token", password token
  std::filesystem::path ssh_key;     // ssh: private key file (public key beside it, optional)
  bool submodules = true;
  const std::atomic<bool>* cancelled = nullptr;  // set: the transfer stops soon after
};

struct CheckoutResult {
  std::string commit;               // the full sha checked out
  std::string ref;                  // the full ref that was resolved, "" when only a commit
  std::filesystem::path mirror;
  bool fetched = false;             // false: the commit was in the mirror already
  size_t received_objects = 0;      // objects the fetch received (0: nothing new)
  size_t submodules = 0;            // submodules checked out, nested ones included
};

// Errors read like: "cannot fetch https://x/y.git: <libgit2's message>",
// "commit abc123 is not in https://x/y.git (fetched refs/*)",
// "ref \"feature/x\" is not in https://x/y.git (no branch or tag of that name)".
Result<CheckoutResult> checkout(const CheckoutRequest& request);

// Where the mirror of `url` lives.
std::filesystem::path mirror_path(const std::filesystem::path& data_dir, const std::string& url);

// `url` without a user or password in it, for messages and the workspace's origin.
std::string redact_url(const std::string& url);

}  // namespace boxcar::agent
