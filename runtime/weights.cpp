#include "runtime/weights.h"

#include <algorithm>
#include <set>

namespace altup {

namespace {
std::string dtype_list(const std::vector<DType>& ds) {
  std::string s;
  for (DType d : ds) s += (s.empty() ? "" : ", ") + std::string(dtype_name(d));
  return s;
}
}  // namespace

Result<BoundWeights> bind_weights(const GgufFile& file, const std::vector<WeightSpec>& specs) {
  BoundWeights out;
  std::vector<std::string> problems;
  std::set<std::string, std::less<>> listed;
  for (const WeightSpec& spec : specs) {
    listed.insert(spec.name);
    const GgufTensorInfo* t = file.tensor(spec.name);
    if (!t) {
      if (spec.required) problems.push_back("missing tensor " + spec.name + " " + spec.shape.str());
      continue;
    }
    bool ok = true;
    if (t->shape != spec.shape) {
      problems.push_back(spec.name + ": shape " + t->shape.str() + ", expected " + spec.shape.str());
      ok = false;
    }
    bool accepted = false;
    for (DType d : spec.accepted) accepted |= d == t->dtype;
    if (!accepted) {
      problems.push_back(spec.name + ": dtype " + std::string(dtype_name(t->dtype)) +
                         " is not supported here (accepted: " + dtype_list(spec.accepted) + ")");
      ok = false;
    }
    if (!ok) continue;
    out.views.emplace(spec.name, t->view());
    out.total_bytes += t->nbytes;
    out.bytes_by_dtype[t->dtype] += t->nbytes;
  }
  for (const auto& t : file.tensors())
    if (!listed.count(t.name)) out.unused.push_back(t.name);
  if (!problems.empty()) {
    // One line: the first few problems, then how many more. A file made for other
    // hyper-parameters mismatches nearly every tensor, and the first ones say why.
    constexpr size_t kShown = 3;
    std::string msg = "the file does not match the model's weight list: ";
    for (size_t k = 0; k < std::min(kShown, problems.size()); ++k) msg += (k ? "; " : "") + problems[k];
    if (problems.size() > kShown) msg += " (and " + std::to_string(problems.size() - kShown) + " more)";
    return make_error(msg);
  }
  return out;
}

}  // namespace altup
