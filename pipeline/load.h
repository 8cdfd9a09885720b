// Parsing and validating a pipeline file: text in, a Pipeline value or every error out.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/limits.h"
#include "pipeline/pipeline.h"

namespace boxcar::pipeline {

// One problem in a pipeline file, pointing at where it is.
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;  // e.g. `step "test": unknown key "neds" (did you mean "needs"?)`

  // "file:line:col: error: message" (":line:col" left out when unknown).
  std::string to_string() const;
};

struct LoadResult {
  std::optional<Pipeline> pipeline;  // set only when `errors` is empty
  std::vector<Diagnostic> errors;    // every error found, in file order
};

// Parses TOML text and validates it against the format of DESIGN.md section 3: unknown keys,
// types, names, durations, sizes, needs (unknown names with "did you mean", cycles with their
// path), matrix references, defaults, env layering, and `limits` (size and nesting depth are
// checked before toml++ sees the text). Pure: no I/O. `file` is used in messages.
//
// Every matrix expansion is checked as the agent will see it: its workdir, and its image (and
// each service's) through `image_check`, which returns why a reference is refused or "" (the
// grammar of image references lives in images/, which this folder does not depend on); none =
// any reference without whitespace is taken.
using ImageCheck = std::function<std::string(std::string_view image)>;
LoadResult parse_pipeline(std::string_view text, const std::string& file,
                          const Limits& limits = {}, const ImageCheck& image_check = {});

// Expands matrices and resolves needs to indices. Requires a pipeline from parse_pipeline.
ExpandedPipeline expand(const Pipeline& pipeline);

// Renders errors ninja-style: each diagnostic, then the offending source line and a caret.
std::string render_diagnostics(const std::vector<Diagnostic>& errors, std::string_view text);

}  // namespace boxcar::pipeline
