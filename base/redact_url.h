// A URL as it may be shown: without the credentials someone put in it.
#pragma once

#include <string>

namespace boxcar {

// "https://user:token@host/x.git" -> "https://host/x.git"; anything without userinfo (paths,
// scp-style "git@host:x") is returned as it is.
std::string redact_url(const std::string& url);

}  // namespace boxcar
