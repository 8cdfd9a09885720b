#include "git/checkout.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "base/private_dir.h"
#include "base/sha256.h"
#include "base/unique_fd.h"

namespace boxcar::git {

namespace fs = std::filesystem;

namespace {

template <typename T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using GitPtr = std::unique_ptr<T, GitDeleter<T, Free>>;
using RepoPtr = GitPtr<git_repository, git_repository_free>;
using RemotePtr = GitPtr<git_remote, git_remote_free>;
using ObjectPtr = GitPtr<git_object, git_object_free>;
using RefPtr = GitPtr<git_reference, git_reference_free>;

void init_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string git_message() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

// What the libgit2 callbacks need: credentials, and a way to stop a transfer.
struct Session {
  const CheckoutRequest* request = nullptr;
  int credential_tries = 0;
};

int credentials_cb(git_credential** out, const char* url, const char* user_from_url,
                   unsigned int allowed, void* payload) {
  auto* s = static_cast<Session*>(payload);
  // libgit2 asks again after a refused credential; give up instead of looping.
  if (++s->credential_tries > 2) {
    git_error_set_str(GIT_ERROR_NET, "authentication failed (check the token or ssh key)");
    return GIT_EAUTH;
  }
  const CheckoutRequest& r = *s->request;
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !r.ssh_key.empty()) {
    std::string pub = r.ssh_key.string() + ".pub";
    std::error_code ec;
    return git_credential_ssh_key_new(out, user_from_url ? user_from_url : "git",
                                      fs::exists(pub, ec) ? pub.c_str() : nullptr,
                                      r.ssh_key.c_str(), nullptr);
  }
  // The URL is the job's (or a submodule's, or a redirect's): the token goes to trusted hosts only.
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !r.token.empty() && url &&
      token_allowed(url, r.token_hosts)) {
    return git_credential_userpass_plaintext_new(out, "x-access-token", r.token.c_str());
  }
  return GIT_PASSTHROUGH;
}

int progress_cb(const git_indexer_progress*, void* payload) {
  auto* s = static_cast<Session*>(payload);
  if (s->request->cancelled && s->request->cancelled->load()) {
    git_error_set_str(GIT_ERROR_NET, "cancelled");
    return GIT_EUSER;
  }
  return 0;
}

git_remote_callbacks callbacks_for(Session& s) {
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.credentials = credentials_cb;
  cb.transfer_progress = progress_cb;
  cb.payload = &s;
  return cb;
}

bool cancelled(const CheckoutRequest& r) { return r.cancelled && r.cancelled->load(); }

// With an SSRF guard no redirect is followed: the guard judged only the URL it was shown.
// UNSPECIFIED (0) would read http.followRedirects, which defaults to the first request.
git_remote_redirect_t redirects_for(const CheckoutRequest& r) {
  return r.check_url ? GIT_REMOTE_REDIRECT_NONE : static_cast<git_remote_redirect_t>(0);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string local_refusal(const std::string& what) {
  return what + " is a local path or file:// URL: the agent fetches those only when started "
                "with --allow-local-repos";
}


bool hex_sha(const std::string& s) {
  return s.size() >= 4 && s.size() <= 40 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

// Opens the mirror, or creates it (bare, origin fetching +refs/*:refs/*).
Result<RepoPtr> open_mirror(const fs::path& dir, const std::string& url) {
  git_repository* raw = nullptr;
  std::error_code ec;
  if (fs::exists(dir / "HEAD", ec) && git_repository_open_bare(&raw, dir.c_str()) == 0) {
    RepoPtr repo(raw);
    git_remote* remote = nullptr;
    if (git_remote_lookup(&remote, repo.get(), "origin") == 0) {
      git_remote_free(remote);
      return repo;
    }
  }
  fs::remove_all(dir, ec);  // missing or broken: start over
  if (git_repository_init(&raw, dir.c_str(), 1) != 0) {
    return Error{"cannot create the mirror " + dir.string() + ": " + git_message()};
  }
  RepoPtr repo(raw);
  git_remote* remote = nullptr;
  if (git_remote_create_with_fetchspec(&remote, repo.get(), "origin", url.c_str(),
                                       "+refs/*:refs/*") != 0) {
    return Error{"cannot set up the mirror of " + redact_url(url) + ": " + git_message()};
  }
  git_remote_free(remote);
  return repo;
}

// Fetches every ref into the mirror. Sets `default_ref` to the remote's HEAD branch if known.
Status fetch_mirror(git_repository* repo, const CheckoutRequest& r, Session& s,
                    CheckoutResult& out, std::string& default_ref) {
  const std::string shown = redact_url(r.url);
  git_remote* raw = nullptr;
  if (git_remote_lookup(&raw, repo, "origin") != 0) return Error{"cannot fetch " + shown + ": " + git_message(), 0, ErrorCode::unavailable};
  RemotePtr remote(raw);
  git_remote_callbacks cb = callbacks_for(s);
  auto fail = [&]() -> Status {
    if (cancelled(r)) return Error{"checkout of " + shown + " cancelled"};
    return Error{"cannot fetch " + shown + ": " + git_message(), 0, ErrorCode::unavailable};
  };
  git_remote_connect_options co = GIT_REMOTE_CONNECT_OPTIONS_INIT;
  co.callbacks = cb;
  co.follow_redirects = redirects_for(r);
  if (git_remote_connect_ext(remote.get(), GIT_DIRECTION_FETCH, &co) != 0) return fail();
  git_buf head = GIT_BUF_INIT;
  if (git_remote_default_branch(&head, remote.get()) == 0) default_ref.assign(head.ptr, head.size);
  git_buf_dispose(&head);
  git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
  fo.callbacks = cb;
  fo.follow_redirects = redirects_for(r);  // git_remote_download re-applies the fetch options
  fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;  // the refspec brings refs/tags/* already
  if (git_remote_download(remote.get(), nullptr, &fo) != 0) return fail();
  out.fetched = true;
  out.received_objects = git_remote_stats(remote.get())->received_objects;
  if (git_remote_update_tips(remote.get(), &cb, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "boxcar fetch") != 0 ||
      git_remote_prune(remote.get(), &cb) != 0) {
    return fail();
  }
  git_remote_disconnect(remote.get());
  return {};
}

Result<git_oid> peel_commit(git_repository* repo, const std::string& spec) {
  git_object* raw = nullptr;
  if (git_revparse_single(&raw, repo, spec.c_str()) != 0) return Error{git_message()};
  ObjectPtr obj(raw);
  git_object* commit = nullptr;
  if (git_object_peel(&commit, obj.get(), GIT_OBJECT_COMMIT) != 0) return Error{git_message()};
  git_oid oid = *git_object_id(commit);
  git_object_free(commit);
  return oid;
}

// The full ref name `ref` means in the mirror: itself when it starts with refs/, else a
// branch, then a tag.
std::string find_ref(git_repository* repo, const std::string& ref) {
  std::vector<std::string> candidates;
  if (ref.rfind("refs/", 0) == 0) {
    candidates = {ref};
  } else {
    candidates = {"refs/heads/" + ref, "refs/tags/" + ref, "refs/" + ref};
  }
  for (const auto& c : candidates) {
    git_reference* raw = nullptr;
    if (git_reference_lookup(&raw, repo, c.c_str()) == 0) {
      git_reference_free(raw);
      return c;
    }
  }
  return "";
}

// The URL git_submodule_update will fetch `sm` from: it initialises the submodule (copying
// its .gitmodules URL, relative ones resolved against the parent's origin, into the parent's
// config) and then reads that entry back, as git_submodule_update itself does.
Result<std::string> submodule_fetch_url(git_submodule* sm) {
  if (git_submodule_init(sm, 0) != 0) return Error{git_message()};
  git_config* raw = nullptr;
  if (git_repository_config_snapshot(&raw, git_submodule_owner(sm)) != 0) return Error{git_message()};
  GitPtr<git_config, git_config_free> config(raw);
  std::string key = std::string("submodule.") + git_submodule_name(sm) + ".url";
  const char* url = nullptr;
  if (git_config_get_string(&url, config.get(), key.c_str()) != 0) return Error{git_message()};
  return std::string(url);
}

struct SubmoduleWalk {
  Session* session;
  size_t count = 0;
  int depth = 0;
  std::string error;
};

int update_submodule(git_submodule* sm, const char* name, void* payload);

Status update_submodules(git_repository* repo, SubmoduleWalk& walk) {
  if (git_submodule_foreach(repo, update_submodule, &walk) != 0) {
    return Error{walk.error.empty() ? "submodules: " + git_message() : walk.error};
  }
  return {};
}

int update_submodule(git_submodule* sm, const char* name, void* payload) {
  auto* walk = static_cast<SubmoduleWalk*>(payload);
  const CheckoutRequest& request = *walk->session->request;
  if (!request.allow_local || request.check_url) {
    auto url = submodule_fetch_url(sm);
    if (!url.ok()) {
      walk->error = std::string("submodule \"") + name + "\": " + url.error().message;
      return -1;
    }
    if (!request.allow_local && is_local_url(*url)) {
      walk->error = local_refusal(std::string("submodule \"") + name + "\" (" + redact_url(*url) + ")");
      return -1;
    }
    if (request.check_url && !is_local_url(*url)) {
      if (Status st = request.check_url(*url); !st.ok()) {
        walk->error = std::string("submodule \"") + name + "\": " + st.error().message;
        return -1;
      }
    }
  }
  git_submodule_update_options opts = GIT_SUBMODULE_UPDATE_OPTIONS_INIT;
  opts.fetch_opts.callbacks = callbacks_for(*walk->session);
  opts.fetch_opts.follow_redirects = redirects_for(request);
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_submodule_update(sm, 1, &opts) != 0) {
    const char* url = git_submodule_url(sm);
    walk->error = std::string("submodule \"") + name + "\" (" + redact_url(url ? url : "?") +
                  "): " + git_message();
    return -1;
  }
  ++walk->count;
  if (walk->depth >= 8) return 0;
  git_repository* sub = nullptr;
  if (git_submodule_open(&sub, sm) != 0) return 0;
  RepoPtr subrepo(sub);
  SubmoduleWalk nested{walk->session, 0, walk->depth + 1, ""};
  if (!update_submodules(subrepo.get(), nested).ok()) {
    walk->error = nested.error.empty() ? git_message() : nested.error;
    return -1;
  }
  walk->count += nested.count;
  return 0;
}

// "" when `oid` is the tip of `ref` or reachable from it, else why not.
std::string off_ref_reason(git_repository* repo, const std::string& ref, const git_oid& oid,
                           const std::string& asked, const std::string& shown) {
  std::string commit = std::string(git_oid_tostr_s(&oid)).substr(0, 12);
  if (ref.empty()) return "ref \"" + asked + "\" is not in " + shown + ", so commit " + commit + " is on no branch of it";
  auto tip = peel_commit(repo, ref);
  if (!tip.ok()) return "ref " + ref + " of " + shown + " is not a commit";
  if (git_oid_equal(&*tip, &oid) || git_graph_descendant_of(repo, &*tip, &oid) == 1) return "";
  return "commit " + commit + " is not on " + ref + " of " + shown;
}

// Clones the mirror into the workspace (no network) and checks `oid` out. Copies, not hard
// links: a step owns the workspace's files and could otherwise rewrite the mirror's packs.
Status populate_workspace(const fs::path& mirror, const CheckoutRequest& r, const git_oid& oid,
                          const std::string& ref, Session& s, CheckoutResult& out) {
  std::error_code ec;
  fs::create_directories(r.workspace.parent_path(), ec);
  git_clone_options co = GIT_CLONE_OPTIONS_INIT;
  co.local = GIT_CLONE_LOCAL_NO_LINKS;
  co.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
  co.fetch_opts.callbacks = callbacks_for(s);
  co.fetch_opts.follow_redirects = redirects_for(r);  // a local clone, but no redirect either way
  git_repository* raw = nullptr;
  if (git_clone(&raw, mirror.c_str(), r.workspace.c_str(), &co) != 0) {
    return Error{"cannot create the workspace " + r.workspace.string() + ": " + git_message()};
  }
  RepoPtr repo(raw);
  // origin is the real URL, so that relative submodule URLs and a step's `git` see it.
  git_remote_set_url(repo.get(), "origin", redact_url(r.url).c_str());
  git_object* commit = nullptr;
  if (git_object_lookup(&commit, repo.get(), &oid, GIT_OBJECT_COMMIT) != 0) {
    return Error{"workspace: " + git_message()};
  }
  ObjectPtr commit_obj(commit);
  git_checkout_options chk = GIT_CHECKOUT_OPTIONS_INIT;
  chk.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_checkout_tree(repo.get(), commit, &chk) != 0 ||
      git_repository_set_head_detached(repo.get(), &oid) != 0) {
    return Error{"cannot check out " + std::string(git_oid_tostr_s(&oid)) + ": " + git_message()};
  }
  // On a branch, leave HEAD on a local branch of that name, as a developer's clone would.
  if (ref.rfind("refs/heads/", 0) == 0) {
    git_reference* branch = nullptr;
    std::string short_name = ref.substr(11);
    if (git_branch_create(&branch, repo.get(), short_name.c_str(),
                          reinterpret_cast<git_commit*>(commit), 1) == 0) {
      git_reference_free(branch);
      git_repository_set_head(repo.get(), ref.c_str());
    }
  }
  if (r.submodules) {
    SubmoduleWalk walk{&s, 0, 0, ""};
    if (Status st = update_submodules(repo.get(), walk); !st.ok()) return st;
    out.submodules = walk.count;
  }
  return {};
}

}  // namespace

fs::path mirror_path(const fs::path& data_dir, const std::string& url) {
  return data_dir / "mirrors" / sha256_hex(url);
}

bool is_local_url(std::string_view url) {
  if (starts_with_ci(url, "file:")) return true;
  size_t colon = url.find(':');
  return colon == std::string_view::npos || url.substr(0, colon).find('/') != std::string_view::npos;
}

bool token_allowed(std::string_view url, const std::vector<std::string>& hosts) {
  auto host = credential_host(url);
  if (!host) return false;
  for (const auto& h : hosts) {
    if (iequals(h, *host)) return true;
  }
  return false;
}

Result<CheckoutResult> checkout(const CheckoutRequest& r) {
  init_libgit2();
  const std::string shown = redact_url(r.url);
  if (!r.commit.empty() && !hex_sha(r.commit)) {
    return Error{"commit \"" + r.commit + "\" is not a hexadecimal sha", 0, ErrorCode::invalid_input, "commit"};
  }
  if (!r.allow_local && is_local_url(r.url)) return Error{local_refusal(shown), 0, ErrorCode::invalid_input, "url"};
  if (r.check_url && !is_local_url(r.url)) {
    if (Status st = r.check_url(r.url); !st.ok()) return st.error();
  }
  CheckoutResult out;
  out.mirror = mirror_path(r.data_dir, r.url);
  if (Status st = make_private_dir(out.mirror.parent_path()); !st.ok()) return st.error();

  std::string lock_path = out.mirror.string() + ".lock";
  unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX) != 0) {
    return Error{"cannot lock " + lock_path + ": " + std::strerror(errno), errno};
  }

  auto mirror = open_mirror(out.mirror, r.url);
  if (!mirror.ok()) return mirror.error();
  git_repository* repo = mirror->get();
  Session session{&r, 0};

  // A known commit needs no fetch at all (unless the caller must prove access: always_fetch);
  // anything else does.
  bool have = false;
  if (r.commit.size() == 40 && !r.always_fetch) have = peel_commit(repo, r.commit).ok();
  std::string default_ref;
  if (!have) {
    if (Status st = fetch_mirror(repo, r, session, out, default_ref); !st.ok()) return st.error();
  }
  if (cancelled(r)) return Error{"checkout of " + shown + " cancelled"};

  std::string ref = r.ref;
  if (ref.empty() && r.commit.empty()) {
    ref = default_ref;
    for (const char* guess : {"refs/heads/main", "refs/heads/master"}) {
      if (ref.empty() && !find_ref(repo, guess).empty()) ref = guess;
    }
    if (ref.empty()) return Error{shown + " has no default branch: give a ref or a commit", 0, ErrorCode::invalid_input, "ref"};
  }
  if (!ref.empty()) {
    out.ref = find_ref(repo, ref);
    if (out.ref.empty() && r.commit.empty()) {
      return Error{"ref \"" + ref + "\" is not in " + shown + " (no branch or tag of that name)", 0,
                   ErrorCode::invalid_input, "ref"};
    }
  }
  git_oid oid;
  if (!r.commit.empty()) {
    auto c = peel_commit(repo, r.commit);
    if (!c.ok()) return Error{"commit " + r.commit + " is not in " + shown + " (fetched refs/*)", 0, ErrorCode::invalid_input, "commit"};
    oid = *c;
  } else {
    auto c = peel_commit(repo, out.ref);
    if (!c.ok()) {
      return Error{"ref " + out.ref + " of " + shown + " is not a commit: " + c.error().message, 0, ErrorCode::invalid_input, "ref"};
    }
    oid = *c;
  }
  out.commit = git_oid_tostr_s(&oid);
  // A job may name any commit with any ref: whether the commit belongs to the ref is checked,
  // not assumed (a fork's commit, fetched as refs/pull/N/head, submitted with ref "main").
  if (!r.ref.empty() && !r.commit.empty()) {
    out.off_ref = off_ref_reason(repo, out.ref, oid, r.ref, shown);
    if (!out.off_ref.empty() && have) {  // the mirror's ref may be older than the commit
      if (Status st = fetch_mirror(repo, r, session, out, default_ref); !st.ok()) return st.error();
      out.ref = find_ref(repo, r.ref);
      out.off_ref = off_ref_reason(repo, out.ref, oid, r.ref, shown);
    }
  }
  if (Status st = populate_workspace(out.mirror, r, oid, out.ref, session, out); !st.ok()) {
    return st.error();
  }
  return out;
}

}  // namespace boxcar::git
