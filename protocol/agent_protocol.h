// The agent protocol's wire types: what an agent and the server say to each other over HTTP
// (JSON bodies). The only thing server/ and agent/ share, so an in-process agent talks to its
// server exactly as a remote one does. Paths (contract, DESIGN.md section 6):
//
//   POST /api/v1/agent/register               RegisterRequest -> 201 RegisterResponse
//        (authenticated by the server's shared registration token, `--agent-token`: the one
//        thing that token is good for. 409 when the name is taken: by an active agent, or by a
//        revoked one until an admin forgets it with `boxcar agent forget`.)
//   POST /api/v1/agent/claim                  ClaimRequest   -> 200 ClaimResponse | 204 (no work)
//   POST /api/v1/agent/jobs/{id}/heartbeat    HeartbeatRequest -> HeartbeatResponse
//   POST /api/v1/agent/jobs/{id}/logs         LogUpload      -> 200 {"stored": n}
//   POST /api/v1/agent/jobs/{id}/steps        StepUpdate     -> 200
//   POST /api/v1/agent/jobs/{id}/complete     CompleteRequest -> 200
//   POST /api/v1/agent/jobs/{id}/pipeline     PipelineReport -> 200
//        (once the agent parsed the job's pipeline: its name and [on] cancel_superseded,
//        which decide whether a newer push cancels the job)
//   POST /api/v1/agent/jobs/{id}/previews     PreviewSync    -> 200 PreviewSyncResponse
//        (every preview of the job the agent still serves; one it no longer lists is closed.
//        Accepted while the agent holds the lease, and after the job completed from the agent
//        that reported its previews, with the same lease token, which it keeps sending every
//        few seconds while any is open: the answer tells it when the user cancelled them.)
//   POST /api/v1/agent/jobs/{id}/secrets      SecretsRequest -> 200 SecretsResponse
//        (asked once, after the agent read the pipeline: the values of the secrets its steps
//        declare that the server keeps, the repository's own over a server-wide one; none for
//        a job from a fork's pull request. Only for the job's current lease.)
//   POST /api/v1/agent/jobs/{id}/artifacts?path=&sha256=&step=
//                                             the file's raw bytes -> 200 {"stored": bool}
//        (400 digest mismatch or bad path, 413 over a limit; stored by content, so a retry
//        is harmless)
//   POST /api/v1/agent/jobs/{id}/artifacts?path=&link=&step=
//                                             a symlink: `link` is its target text, read from
//        the link's directory; the body is ignored -> 200 {"stored": true} (400 when the target
//        is absolute or climbs above the job's artifacts)
//
// Auth. Every request but register carries `Authorization: Bearer <agent credential>`, the
// credential register returned (the agent keeps it in its data directory and reuses it); the
// server keeps only its sha256. A wrong, unknown or revoked credential gets 401. Who reports is
// the credential's agent: an "agent" field in a body is ignored. Each claim returns a fresh
// random lease token (JobSpec::lease_token); every /jobs/{id}/ request carries it as
// `X-Boxcar-Lease: <token>`. A 409 answer means the agent no longer holds the job's lease (it
// expired and the job was re-queued or claimed again, the job ended, or the job is another
// agent's): it must stop the job and forget it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "base/result.h"
#include "protocol/json_reader.h"

namespace boxcar::protocol {

// The header that carries a claim's lease token on every report for the job.
inline constexpr const char* kLeaseHeader = "X-Boxcar-Lease";

// The "step" of a job's own log lines (checkout, pipeline errors, notices, the server's notes),
// which clients show unlabelled. The server writes its notes with attempt 0, which no agent
// uses, so their sequence numbers never meet an agent's.
inline constexpr const char* kJobLogStep = "(job)";
// A claim answer also names its job and lease in headers (kJobHeader, kLeaseHeader), so an
// agent that cannot read or use the body can still fail that job instead of leaking its lease.
inline constexpr const char* kJobHeader = "X-Boxcar-Job";

// The largest answer an agent reads; a claim, which carries the job's env, is the largest.
inline constexpr size_t kMaxClaimBytes = 8 << 20;

// The largest body POST /api/v1/jobs accepts (413 above). A claim carries what was posted (a
// string serialized again is never longer than it was posted: JSON needs its escapes on the way
// in too) plus the server's few fields, so every job that can be queued can be claimed.
inline constexpr size_t kMaxJobBodyBytes = 1 << 20;
static_assert(kMaxJobBodyBytes + (64 << 10) <= kMaxClaimBytes);

struct RegisterRequest {
  std::string name;                   // unique among the server's agents
  std::vector<std::string> labels;
};

struct RegisterResponse {
  int64_t agent_id = 0;
  std::string name;
  std::string credential;             // "<agent id>.<64 hex digits>": shown once, never stored
};

struct ClaimRequest {
  std::vector<std::string> labels;    // a job's labels must all be among these
  int wait_ms = 25'000;               // long poll: how long the server may hold the request
};

struct JobSpec {
  int64_t id = 0;
  int attempt = 1;
  std::string repo, ref, commit, file, event;
  std::map<std::string, std::string> env;
  int64_t lease_ms = 60'000;           // heartbeat well within this (every lease/3)
  std::string lease_token;             // this claim's lease: sent as X-Boxcar-Lease
  bool fork = false;                   // a pull request from another repository (no secrets)
  // A re-run of failed steps (issue 15; docs/api.md "Re-runs"): the job it re-runs and that
  // job's steps' final states by name. The agent re-runs each step that did not succeed there
  // (or was not there) and what needs it, and reuses the others (protocol/rerun_protocol.h).
  std::optional<int64_t> rerun_of = {};
  std::map<std::string, std::string> previous_steps = {};
};

struct ClaimResponse {
  JobSpec job;
};

struct HeartbeatRequest {};

struct HeartbeatResponse {
  bool cancel = false;   // the user cancelled the job
  bool lost = false;     // the lease is gone (expired and re-queued): stop at once
};

// `data` is the chunk's bytes, whatever they are. On the wire it is "data" (a JSON string) when
// the bytes are valid UTF-8, else "data_base64", since JSON strings hold text: a step printing
// binary must not make the server refuse the batch.
struct LogChunkWire {
  std::string step;
  int attempt = 1;
  int64_t seq = 0;
  std::string data;
};

struct LogUpload {
  std::vector<LogChunkWire> chunks;
};

struct StepUpdate {
  std::string name;
  std::string state;                 // pending|running|success|failed|skipped|cancelled|timeout|oom|error
  std::optional<int> exit_code;
  std::optional<int64_t> started_at;   // unix ms
  std::optional<int64_t> finished_at;
  std::string reason;
  // A finished step: connections its egress policy refused (every attempt); absent: none.
  std::optional<int64_t> egress_refused;
  // The steps it waits for, expanded (matrix cells by their full names); at most kMaxStepNeeds.
  std::vector<std::string> needs;
};
inline constexpr size_t kMaxStepNeeds = 256;

// What the agent read in the job's pipeline file.
struct PipelineReport {
  std::string name;               // the file's `name` ("" when it has none); at most kMaxPipelineName
  bool cancel_superseded = true;  // [on] cancel_superseded
};
inline constexpr size_t kMaxPipelineName = 1024;

struct CompleteRequest {
  std::string state;   // success|failed|cancelled|error|skipped
  std::string reason;
};

// One open preview: port `port` of step `step`'s [[step.expose]] `name`.
struct PreviewWire {
  std::string step;
  std::string name;
  int port = 0;
  std::string url;       // Host form
  std::string path_url;  // path form
  std::optional<int64_t> expires_at;  // unix ms; none while the pipeline still runs
};

struct PreviewSync {
  std::vector<PreviewWire> previews;  // all the open ones; empty: every preview closed
};

struct PreviewSyncResponse {
  bool close = false;  // the user cancelled the job: close every preview now
};

// The secrets a job's steps declare, by name (at most kMaxSecretsAsked).
inline constexpr size_t kMaxSecretsAsked = 256;
struct SecretsRequest {
  std::vector<std::string> names;
};

struct SecretsResponse {
  std::map<std::string, std::string> secrets;  // name -> value, for the names the server keeps
  bool fork = false;                           // a fork's job: none were given
  std::vector<std::string> errors;             // kept values that could not be read, and why
};

boost::json::value to_json(const RegisterRequest&);
boost::json::value to_json(const RegisterResponse&);
boost::json::value to_json(const ClaimRequest&);
boost::json::value to_json(const JobSpec&);
boost::json::value to_json(const ClaimResponse&);
boost::json::value to_json(const HeartbeatRequest&);
boost::json::value to_json(const HeartbeatResponse&);
boost::json::value to_json(const LogChunkWire&);
boost::json::value to_json(const LogUpload&);
boost::json::value to_json(const StepUpdate&);
boost::json::value to_json(const CompleteRequest&);
boost::json::value to_json(const PipelineReport&);
boost::json::value to_json(const PreviewWire&);
boost::json::value to_json(const PreviewSync&);
boost::json::value to_json(const PreviewSyncResponse&);
boost::json::value to_json(const SecretsRequest&);
boost::json::value to_json(const SecretsResponse&);

// Parsing never throws: a missing or mistyped field is an Error naming it.
template <typename T>
Result<T> from_json(const boost::json::value& v);

template <> Result<RegisterRequest> from_json(const boost::json::value& v);
template <> Result<RegisterResponse> from_json(const boost::json::value& v);
template <> Result<ClaimRequest> from_json(const boost::json::value& v);
template <> Result<JobSpec> from_json(const boost::json::value& v);
template <> Result<ClaimResponse> from_json(const boost::json::value& v);
template <> Result<HeartbeatRequest> from_json(const boost::json::value& v);
template <> Result<HeartbeatResponse> from_json(const boost::json::value& v);
template <> Result<LogChunkWire> from_json(const boost::json::value& v);
template <> Result<LogUpload> from_json(const boost::json::value& v);
template <> Result<StepUpdate> from_json(const boost::json::value& v);
template <> Result<CompleteRequest> from_json(const boost::json::value& v);
template <> Result<PipelineReport> from_json(const boost::json::value& v);
template <> Result<PreviewWire> from_json(const boost::json::value& v);
template <> Result<PreviewSync> from_json(const boost::json::value& v);
template <> Result<PreviewSyncResponse> from_json(const boost::json::value& v);
template <> Result<SecretsRequest> from_json(const boost::json::value& v);
template <> Result<SecretsResponse> from_json(const boost::json::value& v);

// Body text -> T: a syntax error or a missing/mistyped field is an Error.
template <typename T>
Result<T> from_json_text(std::string_view text) {
  auto v = parse_json(text);
  if (!v) return v.error();
  return from_json<T>(*v);
}

// An agent name: 1-64 of [A-Za-z0-9._-], starting with a letter or digit (it is shown in
// listings and logs, so no spaces or control characters).
bool is_agent_name(const std::string& name);

}  // namespace boxcar::protocol
