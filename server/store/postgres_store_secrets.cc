// PostgresStore's secrets: ciphertexts by (scope, name), with a bound per scope.
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

Result<SecretPut> PostgresStore::put_secret(const SecretRecord& secret, int max_per_scope) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  // Replicas adding to one scope at once take turns, so the bound holds.
  BOXCAR_RETURN_IF_ERROR(s->query("SELECT pg_advisory_xact_lock(hashtext($1))", "secrets:" + secret.scope));
  auto updated = s->query("UPDATE secrets SET nonce = $1, ciphertext = $2, updated_at = $3"
                          " WHERE scope = $4 AND name = $5",
                          Bytes{secret.nonce}, Bytes{secret.ciphertext}, secret.updated_at,
                          secret.scope, secret.name);
  if (!updated) return updated.error();
  if (updated->affected() == 1) {
    BOXCAR_RETURN_IF_ERROR(tx.commit());
    return SecretPut::updated;
  }
  auto count = s->query("SELECT COUNT(*) FROM secrets WHERE scope = $1", secret.scope);
  if (!count) return count.error();
  if (count->i64(0, 0) >= max_per_scope) return SecretPut::scope_full;
  BOXCAR_RETURN_IF_ERROR(s->query(
      "INSERT INTO secrets (scope, name, nonce, ciphertext, created_at, updated_at)"
      " VALUES ($1, $2, $3, $4, $5, $6)",
      secret.scope, secret.name, Bytes{secret.nonce}, Bytes{secret.ciphertext}, secret.created_at,
      secret.updated_at));
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return SecretPut::created;
}

Result<bool> PostgresStore::delete_secret(const std::string& scope, const std::string& name) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query("DELETE FROM secrets WHERE scope = $1 AND name = $2", scope, name);
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<std::vector<SecretRecord>> PostgresStore::secrets(const std::string& scope) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query("SELECT name, nonce, ciphertext, created_at, updated_at FROM secrets"
                       " WHERE scope = $1 ORDER BY name",
                       scope);
  if (!rows) return rows.error();
  std::vector<SecretRecord> out;
  for (int i = 0; i < rows->size(); ++i) {
    out.push_back(SecretRecord{scope, rows->text(i, 0), rows->bytes(i, 1), rows->bytes(i, 2),
                               rows->i64(i, 3), rows->i64(i, 4)});
  }
  return out;
}

}  // namespace boxcar::server
