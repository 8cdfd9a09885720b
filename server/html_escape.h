// HTML escaping for server-rendered pages: text and attribute values from the store (a
// status's description, a forge's error) are shown as text, never as markup.
#pragma once

#include <string>
#include <string_view>

namespace boxcar::server {

// & < > " ' as entities: safe in element content and in quoted attribute values.
std::string html_escape(std::string_view text);

}  // namespace boxcar::server
