// `boxcar sandbox git ID URL`: a repository checked out into the sandbox's /workspace by its
// agent (POST /git/checkout, SANDBOXES.md §2.6). The token is read from stdin, never from the
// command line, where other users of the machine could see it (ps).
#include <boost/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "base/terminal_escape.h"
#include "cli/exit_codes.h"
#include "cli/sandbox_verbs.h"

namespace boxcar::cli {

int sandbox_git(SandboxCall& c) {
  client::GitCheckoutOptions o;
  o.url = c.operands[1];
  o.ref = c.flags.get("--ref").value_or("");
  o.commit = c.flags.get("--commit").value_or("");
  o.dir = c.flags.get("--dir").value_or("");
  o.replace = c.flags.has("--replace");
  if (c.flags.has("--timeout")) {
    auto t = duration_flag(c, "--timeout");
    if (!t) return c.fail(t.error());
    o.timeout_ms = t->count();
  }
  if (c.flags.has("--token-stdin")) {
    std::string token((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty()) return c.usage("--token-stdin: stdin held no token (pipe it in: echo $TOKEN | boxcar sandbox git ...)");
    o.token = std::move(token);
  }
  auto answer = c.api->git_checkout(c.operands[0], o);
  if (!answer) return c.fail(answer.error());
  if (c.json) {
    c.print_json(*answer);
  } else {
    auto text = [&](const char* key) {
      auto* v = answer->if_contains(key);
      return v && v->is_string() ? escape_for_terminal(std::string(v->as_string())) : std::string();
    };
    std::printf("%s at %s (%s)\n", text("dir").c_str(), text("commit").c_str(), text("ref").c_str());
  }
  return kExitOk;
}

}  // namespace boxcar::cli
