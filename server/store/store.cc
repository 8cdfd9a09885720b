#include "server/store/store.h"

#include "server/store/postgres_store.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<std::unique_ptr<Store>> open_store(const std::string& url) {
  if (url.rfind("sqlite:", 0) == 0) {
    std::string path = url.substr(7);
    // sqlite:///abs/path and sqlite://rel/path read as URLs; sqlite:PATH is the documented form.
    if (path.rfind("//", 0) == 0) path = path.substr(2);
    auto store = SqliteStore::open(path);
    if (!store) return Error{store.error().message, store.error().err, ErrorCode::unavailable};
    return std::unique_ptr<Store>(std::move(*store));
  }
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0) {
    auto store = PostgresStore::open(url);
    if (!store) return Error{store.error().message, store.error().err, ErrorCode::unavailable};
    return std::unique_ptr<Store>(std::move(*store));
  }
  return Error{"unknown store URL \"" + url + "\": use sqlite:PATH or postgres://...", 0,
               ErrorCode::usage, "db"};
}

}  // namespace boxcar::server
