// Matrix expansion: the cartesian product of a step's axes and ${matrix.x} interpolation.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/pipeline.h"

namespace boxcar::pipeline {

using MatrixValues = std::map<std::string, std::string>;  // axis -> value

// Most combinations one step's matrix may have.
inline constexpr size_t kMaxMatrixCombinations = 256;

// One `${matrix.NAME}` in a text.
struct MatrixRef {
  std::string axis;
  size_t offset = 0;  // of the `$`
  size_t length = 0;  // of the whole reference
};

// Every ${matrix.NAME} in `text`, in order. Other ${...} are shell variables, not references.
std::vector<MatrixRef> find_matrix_refs(std::string_view text);

// `text` with every ${matrix.NAME} removed.
std::string strip_matrix_refs(std::string_view text);

// `text` with ${matrix.NAME} replaced by its value; references to other axes stay as written.
std::string interpolate(std::string_view text, const MatrixValues& values);

// Number of combinations (1 for no matrix), saturating above kMaxMatrixCombinations + 1.
size_t combination_count(const std::map<std::string, std::vector<std::string>>& matrix);

// Every combination: axes in alphabetical order, values in file order, the last axis varying
// fastest. One empty combination for a step without a matrix.
std::vector<MatrixValues> combinations(const std::map<std::string, std::vector<std::string>>& matrix);

// The name of one expansion: the interpolated name when it refers to the matrix, else
// `base (a=1, b=x)`; the base name when there is no matrix.
std::string expansion_name(const std::string& base, const MatrixValues& values);

// `needs = ["build (cc=gcc, opt=O2)"]`: a step's name and the matrix values its cells must
// have (some of the axes, values as they are after expansion: `1`, `true`).
struct CellSelector {
  std::string base;
  MatrixValues values;
};

// "base (a=x, b=y)" taken apart; nullopt when `need` does not have that form (no " (", no
// closing ")", or a pair without "=").
std::optional<CellSelector> parse_cell_selector(std::string_view need);

// Which expansions of `step` (indices into combinations(step.matrix)) a `needs` entry names:
// every one for the step's own name, the one whose expanded name it is, or those whose values
// match a selector on the step's name. Empty when it names none of them.
std::vector<size_t> cells_named(const Step& step, std::string_view need);

// The step (an index into `steps`) whose expansions a `needs` entry names, with those cells;
// nullopt when it names none. `by_name`: each step's name to its index.
struct NeedTarget {
  size_t step = 0;
  std::vector<size_t> cells;
};
std::optional<NeedTarget> resolve_need(const std::vector<Step>& steps,
                                       const std::map<std::string, size_t>& by_name,
                                       std::string_view need);

}  // namespace boxcar::pipeline
