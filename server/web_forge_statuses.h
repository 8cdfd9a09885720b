// A job's commit statuses as the web UI's job page and the job's JSON show them: what was sent
// to the forge, whether it arrived, and if not, why (a bad token, a forge that was down).
#pragma once

#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "server/store/store.h"

namespace boxcar::server {

// "<h2>Commit statuses</h2>" and a table, oldest first, every value escaped; "" with none.
std::string forge_statuses_html(const std::vector<ForgeStatusRecord>& statuses);

// [{state, description, result, attempts, last_error, last_http_status, created_at,
//   delivered_at}], oldest first: the job JSON's "statuses".
boost::json::value forge_statuses_json(const std::vector<ForgeStatusRecord>& statuses);

}  // namespace boxcar::server
