// The weight list: every tensor a model needs, with its shape, the dtypes the runtime accepts
// for it, and whether it may be absent. One list drives loading (check the file against it,
// reporting every mismatch at once), binding (name -> view into the mapped file) and memory
// reporting.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/gguf.h"
#include "runtime/tensor.h"

namespace altup {

struct WeightSpec {
  std::string name;
  Shape shape;                  // row-major, as the model uses it
  std::vector<DType> accepted;  // dtypes the model's kernels take for this tensor
  bool required = true;
};

struct BoundWeights {
  std::map<std::string, TensorView, std::less<>> views;  // present tensors only
  std::vector<std::string> unused;                       // in the file, not in the list
  uint64_t total_bytes = 0;
  std::map<DType, uint64_t> bytes_by_dtype;

  const TensorView* find(std::string_view name) const {
    auto it = views.find(name);
    return it == views.end() ? nullptr : &it->second;
  }
};

// Check `file` against `specs` and bind every present tensor. Every problem is found; the
// error is one line with the first three and the count of the rest.
Result<BoundWeights> bind_weights(const GgufFile& file, const std::vector<WeightSpec>& specs);

}  // namespace altup
