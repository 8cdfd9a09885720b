// Migration 10: the forge statuses' outbox and the triggers that fill it. A trigger rather than
// an insert beside each UPDATE: enqueue, record_final, claim, expire_leases, request_cancel,
// complete and revoke all change jobs.state, on two backends, and a status must never be
// forgotten by one of them nor written outside the state change's transaction.
#include <string>

#include "server/store/migrations.h"

namespace boxcar::server {
namespace {

// A job whose statuses can go somewhere (ForgeLink::can_post_status, and a commit to post on).
// Whether this server holds a token for the forge is the sender's business: it marks the row
// failed, saying so, and the job page shows why its forge shows nothing.
constexpr const char* kLinked =
    "NEW.forge <> '' AND NEW.forge_repo <> '' AND NEW.commit_sha <> ''"
    " AND (NEW.forge = 'github' OR NEW.forge_api <> '')";

// The state as the forge takes it. GitHub and Gitea have no "running" and no "cancelled":
// a running job is pending, a cancelled one an error (with its reason).
constexpr const char* kForgeState =
    "CASE NEW.state"
    " WHEN 'queued' THEN 'pending'"
    " WHEN 'running' THEN CASE WHEN NEW.forge = 'gitlab' THEN 'running' ELSE 'pending' END"
    " WHEN 'success' THEN 'success'"
    " WHEN 'failed' THEN CASE WHEN NEW.forge = 'gitlab' THEN 'failed' ELSE 'failure' END"
    " WHEN 'cancelled' THEN CASE WHEN NEW.forge = 'gitlab' THEN 'canceled' ELSE 'error' END"
    " WHEN 'skipped' THEN CASE WHEN NEW.forge = 'gitlab' THEN 'skipped' ELSE 'success' END"
    " ELSE CASE WHEN NEW.forge = 'gitlab' THEN 'failed' ELSE 'error' END END";

// Short (forges cap it: GitHub at 140 characters): the state and, once final, the reason.
constexpr const char* kDescription =
    "substr(CASE NEW.state"
    " WHEN 'queued' THEN CASE WHEN NEW.attempt > 1"
    "  THEN 'Queued again: its agent was lost (attempt ' || CAST(NEW.attempt AS TEXT) || ')'"
    "  ELSE 'Queued' END"
    " WHEN 'running' THEN CASE WHEN NEW.agent <> '' THEN 'Running on ' || NEW.agent"
    "  ELSE 'Running' END"
    " WHEN 'success' THEN 'Succeeded'"
    " WHEN 'failed' THEN 'Failed'"
    " WHEN 'cancelled' THEN 'Cancelled'"
    " WHEN 'skipped' THEN 'Skipped'"
    " ELSE 'Error' END"
    " || CASE WHEN NEW.reason <> '' AND NEW.state NOT IN ('queued', 'running', 'success')"
    "  THEN ': ' || NEW.reason ELSE '' END, 1, 140)";

// The job's older undelivered statuses are superseded: only its newest one goes, so a forge
// never ends on "pending" after "success".
std::string trigger_body(const char* now) {
  return std::string("UPDATE forge_statuses SET result = 'superseded', next_attempt_at = NULL"
                     " WHERE job_id = NEW.id AND result = 'queued';"
                     " INSERT INTO forge_statuses (job_id, state, description, created_at,"
                     " next_attempt_at) VALUES (NEW.id, ") +
         kForgeState + ", " + kDescription + ", " + now + ", " + now + ");";
}

constexpr const char* kSqliteNow = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
constexpr const char* kPostgresNow = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

}  // namespace

Migration forge_status_migration() {
  Migration m{10, "forge statuses outbox", {}};
  m.statements = {
      // claim_token and claimed_until: the server delivering a row holds it for a short while,
      // so servers sharing a database send each row once, and a job's next row waits for it.
      "CREATE TABLE forge_statuses ("
      " id {{id}},"
      " job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
      " state TEXT NOT NULL,"
      " description TEXT NOT NULL DEFAULT '',"
      " created_at BIGINT NOT NULL,"
      " attempts INTEGER NOT NULL DEFAULT 0,"
      " next_attempt_at BIGINT,"
      " delivered_at BIGINT,"
      " result TEXT NOT NULL DEFAULT 'queued',"
      " last_error TEXT NOT NULL DEFAULT '',"
      " last_http_status INTEGER NOT NULL DEFAULT 0,"
      " claim_token TEXT NOT NULL DEFAULT '',"
      " claimed_until BIGINT)",
      "CREATE INDEX forge_statuses_job ON forge_statuses (job_id, id)",
      "CREATE INDEX forge_statuses_due ON forge_statuses (next_attempt_at) WHERE result = 'queued'",
  };
  std::string linked = kLinked;
  m.sqlite_only = {
      "CREATE TRIGGER jobs_forge_status_insert AFTER INSERT ON jobs FOR EACH ROW WHEN " + linked +
          " BEGIN " + trigger_body(kSqliteNow) + " END",
      "CREATE TRIGGER jobs_forge_status_update AFTER UPDATE OF state ON jobs FOR EACH ROW"
      " WHEN NEW.state <> OLD.state AND " + linked + " BEGIN " + trigger_body(kSqliteNow) + " END",
  };
  m.postgres_only = {
      "CREATE FUNCTION jobs_forge_status() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
          trigger_body(kPostgresNow) + " RETURN NULL; END $$",
      "CREATE TRIGGER jobs_forge_status_insert AFTER INSERT ON jobs FOR EACH ROW WHEN (" + linked +
          ") EXECUTE FUNCTION jobs_forge_status()",
      "CREATE TRIGGER jobs_forge_status_update AFTER UPDATE OF state ON jobs FOR EACH ROW"
      " WHEN (NEW.state <> OLD.state AND " + linked + ") EXECUTE FUNCTION jobs_forge_status()",
  };
  return m;
}

}  // namespace boxcar::server
