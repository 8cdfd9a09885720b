// Exit codes (DESIGN.md section 5, contract) and the one table that maps an Error's code to
// them; also where a library Error's subject becomes the flag a user should reach for.
#pragma once

#include <string>

#include "base/result.h"

namespace boxcar::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the pipeline (or job) failed
inline constexpr int kExitUsage = 2;        // bad input: usage, an invalid pipeline, a missing file
inline constexpr int kExitInfra = 3;        // a sandbox, store or server could not be had
inline constexpr int kExitInterrupted = 130;

// The exit code for an error of this kind.
int exit_code(ErrorCode code);
inline int exit_code(const Error& error) { return exit_code(error.code); }

// The exit code for a server's error answer: 5xx is the server's fault, any other the request's.
inline int exit_code_of_status(int http_status) { return http_status >= 500 ? kExitInfra : kExitUsage; }

// The flag that sets an Error's subject ("max_memory" -> "--max-memory"); "" for none.
std::string flag_of(const std::string& subject);

// The error's message plus what only the CLI knows: the flag to use. A limit gets "(raise it
// with --max-memory)", any other error about a setting is prefixed with its flag.
std::string describe(const Error& error);

// Prints "boxcar <command>: <message>" to stderr and returns kExitUsage.
int usage_error(const std::string& command, const std::string& message);

// Prints "boxcar <command>: <describe(error)>" to stderr and returns exit_code(error).
int report(const std::string& command, const Error& error);

}  // namespace boxcar::cli
