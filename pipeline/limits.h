// Limits of a pipeline file: a repository is untrusted, so no file may make the parser or an
// agent use unbounded stack, memory or time. parse_pipeline checks every one of them.
#pragma once

#include <cstdint>
#include <cstddef>
#include <string_view>

#include "base/exec_limits.h"
#include "pipeline/pipeline.h"

namespace boxcar::pipeline {

// Defaults are generous for real projects (a large one has a few dozen steps, a few KiB of
// scripts and a nesting depth of 6) and small enough that the worst file costs an agent tens
// of MiB, not gigabytes. docs/pipeline.md ("Limits") lists them.
struct Limits {
  // The file itself. Scripts belong in the repository; run calls them.
  uint64_t file_bytes = 1 << 20;
  // Tables, arrays, inline tables and dotted-key parts nested in one another. toml++ bounds
  // only arrays and inline tables (TOML_MAX_NESTED_VALUES, 256), not `a.b.c...` keys or
  // `[a.b.c...]` headers, and every pass over the tree (its destructor, ours) recurses.
  int depth = 32;
  // Steps after matrix expansion: sandboxes one job may start. GitHub caps a matrix at 256.
  size_t expanded_steps = 1000;
  // Text the steps hold after matrix expansion and env layering (names, scripts, env, ...):
  // what a job costs in memory on the agent. 1,000 steps of 16 KiB each.
  uint64_t expanded_bytes = 16 << 20;
  // One env variable as NAME=value: a longer one could never reach a step (execve refuses it).
  uint64_t env_var_bytes = kMaxEnvVarBytes;
  // Variables of one step once [env] and [defaults].env are layered in.
  size_t env_vars = 1000;
};

// What one map or list entry costs beyond its text, so that a million tiny env entries count
// as what they weigh in memory.
inline constexpr uint64_t kEntryOverhead = 64;

// How deep a TOML text nests, by a scan that never recurses, so it is safe on any input.
// An upper bound on the depth of the tree toml++ builds: a `[a.b]` header counts two levels
// per part before the last (each may be the last table of an array of tables). Malformed
// text gets some answer; toml++ reports what is wrong with it afterwards.
struct NestingScan {
  int depth = 0;     // the deepest level seen (the root table is 0, `a = 1` is 1)
  SourcePos where;   // where it was first reached
};
// Stops at the first point deeper than `stop_above`.
NestingScan scan_nesting(std::string_view text, int stop_above);

// Bytes of one step's text (its strings, plus kEntryOverhead per entry), summed over every
// cell of its matrix with ${matrix.x} interpolated: what expand() will hold for it.
uint64_t expanded_bytes(const Step& step);

}  // namespace boxcar::pipeline
