// "Did you mean": the closest known word to a misspelt one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boxcar {

// Optimal-string-alignment edit distance (insertions, deletions, substitutions, transpositions).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo
// (distance at most max(1, word.size() / 3)). Ties go to the earlier candidate.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace boxcar
