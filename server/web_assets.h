// The web UI's static files: its stylesheet and the job page's script, served from this
// binary under /assets/ (the pages' Content-Security-Policy admits only these, so no inline
// script or style is needed anywhere).
#pragma once

#include <string_view>

#include "http/http_server.h"

namespace boxcar::server {

constexpr std::string_view kStylesheetPath = "/assets/boxcar.css";
constexpr std::string_view kJobScriptPath = "/assets/job.js";

void add_web_asset_routes(Router& router);

}  // namespace boxcar::server
