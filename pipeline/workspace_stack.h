// Workspace stack: whose outputs a step's /workspace shows, in the order they are stacked
// (DESIGN.md section 3). Pure: the engine's WorkspaceLayers mounts it, `boxcar plan` prints it.
#pragma once

#include <cstddef>
#include <vector>

#include "pipeline/pipeline.h"

namespace boxcar::pipeline {

// The steps whose layers step `step` sees below its own, HIGHEST first (the checkout, below
// them all, is not listed): for each step it needs, in the order of its `needs` (a matrix step's
// expansions in expansion order), later ones above earlier ones, that step over its own stack.
// So where two needed steps wrote the same path, the one named later in `needs` wins, and a
// step sees what its needs saw. A step reached twice keeps its lowest place: every layer stays
// above the layers it was made on (in a diamond, both sides' writes are above their base).
std::vector<size_t> workspace_stack(const ExpandedPipeline& pipeline, size_t step);

}  // namespace boxcar::pipeline
