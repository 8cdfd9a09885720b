#include "cli/serve_queue_flags.h"

#include <charconv>
#include <optional>
#include <string>

#include "base/duration.h"
#include "base/size.h"

namespace boxcar::cli {

const char* const kServeQueueUsage =
    "  --max-attempts N: a job whose agent is lost (its lease expires) N times ends as an error\n"
    "  (default 3)\n"
    "  --job-retention DURATION: finished jobs, their logs and artifacts, and webhook deliveries\n"
    "  older than this are deleted, like 90d, 720h; 0 or off keeps them forever (default 90d)\n"
    "  --max-job-log SIZE: bytes of log kept per job; the rest is dropped, and the log and the\n"
    "  job say so (default 64MiB)\n"
    "  --max-followers-per-job N, --max-followers-per-client N: live log followers (logs -f)\n"
    "  this server holds at once, per job and per client address; more get 429 (defaults 100, 20)\n"
    "  --max-secrets-per-scope N: secrets kept server-wide, and per repository (default 100)\n"
    "  --max-sandboxes N, --max-sandboxes-per-token N: sandboxes of the sandbox API this server\n"
    "  holds at once, and per API token (a token's max_sandboxes in --api-tokens overrides the\n"
    "  latter); one more gets 429 limit_reached (defaults 1000, 100)\n"
    "  --sandbox-max-ttl DURATION: the longest ttl_ms a sandbox may ask for, and its default,\n"
    "  like 24h or 7d; 0 or off lets a sandbox ask for no TTL (default 24h)\n"
  "  --sandbox-lost-after DURATION: an agent whose sandbox sync is older than this is lost: its\n"
  "  sandboxes read lost and answer 503 until it is back (default 15s, 3 syncs of 5 s; keep it\n"
  "  at least 3 times the agents' --sandbox-sync-interval; from 1s to 1h)\n"
    "  --keep-superseded-on-default: a push to a repository's default branch does not cancel\n"
    "  the older jobs of that branch (by default every push cancels the queued and running jobs\n"
    "  of older pushes to its ref; a pipeline can opt out with [on] cancel_superseded = false)\n";

namespace {

std::optional<int64_t> parse_count(const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    return std::nullopt;
  }
  return v;
}

// "90d", "720h", "30m", "1h30m"; "0" or "off": forever (0).
std::optional<int64_t> parse_retention(const std::string& text) {
  if (text == "0" || text == "off") return 0;
  if (text.size() > 1 && text.back() == 'd') {
    auto days = parse_count(text.substr(0, text.size() - 1), 1, 100 * 365);
    if (!days) return std::nullopt;
    return *days * 24 * 3600 * 1000;
  }
  auto d = parse_duration(text);
  if (!d || *d < Millis(1000)) return std::nullopt;
  return d->count();
}

}  // namespace

std::vector<FlagSpec> serve_queue_flag_specs() {
  return {{"--max-attempts", true, false, ""},
          {"--job-retention", true, false, ""},
          {"--max-job-log", true, false, ""},
          {"--max-followers-per-job", true, false, ""},
          {"--max-followers-per-client", true, false, ""},
          {"--max-secrets-per-scope", true, false, ""},
          {"--max-sandboxes", true, false, ""},
          {"--max-sandboxes-per-token", true, false, ""},
          {"--sandbox-max-ttl", true, false, ""},
          {"--sandbox-lost-after", true, false, ""},
          {"--keep-superseded-on-default", false, false, ""}};
}

Status apply_serve_queue_flags(const ParsedFlags& flags, server::ServerConfig& options) {
  if (flags.has("--keep-superseded-on-default")) options.keep_superseded_on_default = true;
  if (auto v = flags.get("--max-secrets-per-scope")) {
    auto n = parse_count(*v, 1, 10'000);
    if (!n) return Error{"--max-secrets-per-scope must be a number from 1 to 10000 (like 100), not \"" + *v + "\""};
    options.max_secrets_per_scope = static_cast<int>(*n);
  }
  if (auto v = flags.get("--max-attempts")) {
    auto n = parse_count(*v, 1, 100);
    if (!n) return Error{"--max-attempts must be a number from 1 to 100 (like 3), not \"" + *v + "\""};
    options.max_attempts = static_cast<int>(*n);
  }
  if (auto v = flags.get("--job-retention")) {
    auto ms = parse_retention(*v);
    if (!ms) {
      return Error{"--job-retention must be a duration of at least 1s (like 90d, 720h or 30m), "
                   "or 0 or off to keep jobs forever, not \"" + *v + "\""};
    }
    options.job_retention_ms = *ms;
  }
  if (auto v = flags.get("--max-job-log")) {
    auto n = parse_size(*v);
    if (!n || *n < 1024 || *n > (uint64_t{1} << 40)) {
      return Error{"--max-job-log must be a size from 1KiB to 1TiB (like 64MiB), not \"" + *v + "\""};
    }
    options.max_job_log = static_cast<int64_t>(*n);
  }
  for (auto [flag, cap] : {std::pair{"--max-followers-per-job", &options.max_followers_per_job},
                           std::pair{"--max-followers-per-client", &options.max_followers_per_client}}) {
    if (auto v = flags.get(flag)) {
      auto n = parse_count(*v, 1, 100'000);
      if (!n) return Error{std::string(flag) + " must be a number from 1 to 100000 (like 20), not \"" + *v + "\""};
      *cap = static_cast<int>(*n);
    }
  }
  for (auto [flag, cap] : {std::pair{"--max-sandboxes", &options.max_sandboxes},
                           std::pair{"--max-sandboxes-per-token", &options.max_sandboxes_per_token}}) {
    if (auto v = flags.get(flag)) {
      auto n = parse_count(*v, 0, 1'000'000);
      if (!n) return Error{std::string(flag) + " must be a number from 0 to 1000000 (like 100), not \"" + *v + "\""};
      *cap = *n;
    }
  }
  if (auto v = flags.get("--sandbox-max-ttl")) {
    auto ms = parse_retention(*v);
    if (!ms) {
      return Error{"--sandbox-max-ttl must be a duration of at least 1s (like 24h or 7d), or 0 or "
                   "off for no cap, not \"" + *v + "\""};
    }
    options.sandbox_max_ttl_ms = *ms;
  }
  if (auto v = flags.get("--sandbox-lost-after")) {
    auto d = parse_duration(*v);
    if (!d || *d < Millis(1000) || *d > Millis(3'600'000)) {
      return Error{"--sandbox-lost-after must be a duration from 1s to 1h (like 15s), not \"" + *v + "\""};
    }
    options.sandbox_lost_after_ms = d->count();
  }
  return {};
}

}  // namespace boxcar::cli
