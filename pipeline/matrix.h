// Matrix expansion: the cartesian product of a step's axes and ${matrix.x} interpolation.
#pragma once

#include <cstddef>
#include <map>
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

}  // namespace boxcar::pipeline
