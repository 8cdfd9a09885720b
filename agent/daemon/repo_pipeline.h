// The pipeline file of a checked-out commit, read within the file limit and parsed so that
// no parser bug can take the agent down: a repository is untrusted, and the agent that parses
// it may be the one inside `boxcar serve`.
//
// The parse runs first in a forked child with its own limits (a stack of its own, memory above
// what the agent already uses, CPU time, and a wall-clock kill). Only once the child finished
// does the agent parse the same text itself, on a stack as large as the child's: the parse is
// a pure function of the text, so what finished there within those limits finishes here too.
// (Parsing twice, a few milliseconds for the largest file, spares a second encoding of every
// Pipeline field that would have to be kept in step with the parser.)
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/duration.h"
#include "base/result.h"
#include "pipeline/load.h"

namespace boxcar::agent {

// The child's limits. A real pipeline needs well under 1% of each; the heaviest file the
// default pipeline::Limits allow (1 MiB of `x = [1,1,...]`, half a million values) took 0.4 s
// of CPU and 110 MiB here.
struct ParserLimits {
  uint64_t stack_bytes = 8 << 20;
  // Writable memory beyond what the agent maps (RLIMIT_DATA): free heap the agent keeps
  // mapped is not counted, so the child may use that on top.
  uint64_t memory_bytes = 512 << 20;
  int cpu_seconds = 10;
  Millis wall{30'000};  // killed past this, however it spends its time
};

// Parses `text` as pipeline::parse_pipeline does, in a child first (see above). An Error
// when the child did not finish: it crashed (a signal), ran out of memory, CPU or time, or
// `cancelled` was set; the message says which, with the limits, in one line. Blocks the
// calling thread until then: call it off the io_context.
Result<pipeline::LoadResult> parse_in_child(std::string_view text, const std::string& file,
                                            const pipeline::Limits& limits,
                                            const ParserLimits& parser,
                                            const std::atomic<bool>* cancelled = nullptr);

struct RepoPipeline {
  std::string name;  // as messages show it: ".boxcar.toml", or the job's `file`
  std::string text;
  pipeline::LoadResult loaded;  // the pipeline, or its file:line:col errors
};

// The pipeline file of the checkout in `workspace`: the job's `file` when it names one (inside
// the repository, no symlink followed out of it), else .boxcar.toml, then boxcar.toml; read
// (refused past limits.file_bytes) and parsed with parse_in_child. An Error: no such file, or
// the parser failed. Blocks, as parse_in_child does.
Result<RepoPipeline> load_repo_pipeline(const std::filesystem::path& workspace,
                                        const std::string& file, const std::string& commit,
                                        const pipeline::Limits& limits,
                                        const ParserLimits& parser,
                                        const std::atomic<bool>* cancelled);

}  // namespace boxcar::agent
