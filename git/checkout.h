// Checkout: a job's commit into its workspace, through a per-agent mirror cache (libgit2).
// Each repository is fetched into a bare mirror under <data dir>/mirrors/<sha256 of the URL>
// (+refs/*:refs/*; the first fetch is full, later ones only bring what is new, and none at all
// when the commit is already there), then cloned locally (copies: a step must not reach the
// mirror's files) into the workspace, the commit checked out and submodules initialised and
// updated. Blocking: run it off the io_context. Two checkouts of one repository by one agent
// take turns (flock on the mirror).
//
// A job names its repository, so it is not trusted: local paths and file:// URLs (for the
// repository and every submodule) are refused unless allow_local, and the token goes only to
// https:// URLs of token_hosts.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/url.h"

namespace boxcar::git {

struct CheckoutRequest {
  std::string url;                   // https://, ssh://, git@host:path, file:// or a local path
  std::string ref;                   // "main", "refs/heads/main", "v1.0", "refs/pull/7/head";
                                     // "" = the repository's default branch
  std::string commit;                // full or abbreviated sha; "" = the tip of ref
  std::filesystem::path data_dir;    // mirrors live in <data_dir>/mirrors/
  std::filesystem::path workspace;   // created; must not exist yet, or be empty
  std::string token;                 // https: sent as user "x-access-token", password token,
  std::vector<std::string> token_hosts;  // only to these hosts (see token_allowed)
  std::filesystem::path ssh_key;     // ssh: private key file (public key beside it, optional)
  bool submodules = true;
  bool allow_local = false;          // local paths and file:// URLs may be fetched
  const std::atomic<bool>* cancelled = nullptr;  // set: the transfer stops soon after
  // Set: asked of the URL and of every submodule's before it is fetched; its error stops the
  // checkout (the sandbox API's SSRF guard, git/url_guard.h). Runs on the checkout's thread.
  // It also refuses HTTP redirects to another host (every fetch, submodules included): the
  // guard sees only the URL asked for, and libgit2's default follows a first-request redirect
  // anywhere. (libgit2 1.5's GIT_REMOTE_REDIRECT_NONE still follows one to the same host.)
  std::function<Status(const std::string& url)> check_url;
  // Contact the remote even when the mirror has the commit already. The mirror is shared by
  // everyone on the agent: without a fetch, which authenticates, a caller that has no access
  // to a private repository would get its commits from the mirror (sandbox checkouts set it).
  // A failed fetch fails the checkout.
  bool always_fetch = false;
};

struct CheckoutResult {
  std::string commit;               // the full sha checked out
  std::string ref;                  // the full ref that was resolved, "" when only a commit
  std::filesystem::path mirror;
  bool fetched = false;             // false: the commit was in the mirror already
  size_t received_objects = 0;      // objects the fetch received (0: nothing new)
  size_t submodules = 0;            // submodules checked out, nested ones included
  // When the request named both a ref and a commit: "" if the commit is the ref's tip or one of
  // its ancestors (after a fetch), else why not ("commit abc123 is not on refs/heads/main of
  // URL"). Such a commit is checked out all the same; the caller decides what it may do (a job
  // then has no branch, so when.branch steps are skipped).
  std::string off_ref;
};

// Errors read like: "cannot fetch https://x/y.git: <libgit2's message>",
// "commit abc123 is not in https://x/y.git (fetched refs/*)",
// "ref \"feature/x\" is not in https://x/y.git (no branch or tag of that name)",
// "/srv/x.git is a local path or file:// URL: the agent fetches those only when started with
// --allow-local-repos" (or "submodule \"libs/x\" (/srv/x.git) is a local path ...").
// Their ErrorCode: invalid_input for what the request names wrongly (a ref or commit that is not
// there, a refused URL), unavailable when the fetch failed, internal otherwise.
Result<CheckoutResult> checkout(const CheckoutRequest& request);

// Where the mirror of `url` lives.
std::filesystem::path mirror_path(const std::filesystem::path& data_dir, const std::string& url);

// True when libgit2 would read `url` from this machine: file:, or a path (no ':' before any
// '/', as git decides between a path and host:path). Relative submodule URLs must be resolved
// against their parent's URL first (git_submodule_resolve_url).
bool is_local_url(std::string_view url);

// True when the token may be sent to `url`: its credential_host (base/url.h: https, no
// userinfo, a name or IPv4 host, a valid port) is one of `hosts`, compared case-insensitively.
bool token_allowed(std::string_view url, const std::vector<std::string>& hosts);


}  // namespace boxcar::git
