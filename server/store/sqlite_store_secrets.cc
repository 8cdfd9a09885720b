// SqliteStore's secrets: ciphertexts by (scope, name), with a bound per scope.
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<SecretPut> SqliteStore::put_secret(const SecretRecord& secret, int max_per_scope) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  {
    SqliteQuery q(*this, "UPDATE secrets SET nonce = ?, ciphertext = ?, updated_at = ?"
                         " WHERE scope = ? AND name = ?");
    q.bind_blob(secret.nonce).bind_blob(secret.ciphertext).bind(secret.updated_at);
    BOXCAR_RETURN_IF_ERROR(q.bind(secret.scope).bind(secret.name).run());
    if (q.changes() == 1) {
      BOXCAR_RETURN_IF_ERROR(tx.commit());
      return SecretPut::updated;
    }
  }
  {
    SqliteQuery q(*this, "SELECT COUNT(*) FROM secrets WHERE scope = ?");
    auto row = q.bind(secret.scope).next();
    if (!row) return row.error();
    if (*row && q.i64(0) >= max_per_scope) return SecretPut::scope_full;
  }
  SqliteQuery q(*this, "INSERT INTO secrets (scope, name, nonce, ciphertext, created_at, updated_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)");
  q.bind(secret.scope).bind(secret.name).bind_blob(secret.nonce).bind_blob(secret.ciphertext);
  BOXCAR_RETURN_IF_ERROR(q.bind(secret.created_at).bind(secret.updated_at).run());
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return SecretPut::created;
}

Result<bool> SqliteStore::delete_secret(const std::string& scope, const std::string& name) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "DELETE FROM secrets WHERE scope = ? AND name = ?");
  BOXCAR_RETURN_IF_ERROR(q.bind(scope).bind(name).run());
  return q.changes() == 1;
}

Result<std::vector<SecretRecord>> SqliteStore::secrets(const std::string& scope) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "SELECT name, nonce, ciphertext, created_at, updated_at FROM secrets"
                       " WHERE scope = ? ORDER BY name");
  q.bind(scope);
  std::vector<SecretRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(SecretRecord{scope, q.text(0), q.text(1), q.text(2), q.i64(3), q.i64(4)});
  }
  return out;
}

}  // namespace boxcar::server
