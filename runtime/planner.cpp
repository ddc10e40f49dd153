#include "runtime/planner.h"

#include <algorithm>
#include <numeric>

namespace altup {

std::vector<Lifetime> tensor_lifetimes(const Graph& graph) {
  const auto& tensors = graph.tensors();
  const auto& nodes = graph.nodes();
  std::vector<Lifetime> life(tensors.size());
  auto touch = [&](TensorId t, int at) {
    const TensorId r = graph.root_of(t);
    if (tensors[r].kind != TensorKind::Activation) return;
    Lifetime& l = life[r];
    if (l.first < 0 || at < l.first) l.first = at;
    l.last = std::max(l.last, at);
  };
  for (int k = 0; k < static_cast<int>(nodes.size()); ++k) {
    for (TensorId in : nodes[k].inputs) touch(in, k);
    touch(nodes[k].output, k);
  }
  // The nodes of a section run at once: whatever one of them touches is alive for all of them.
  for (const Section& sec : graph.sections())
    for (int k = sec.first; k < sec.end; ++k) {
      for (TensorId in : nodes[k].inputs) touch(in, sec.first), touch(in, sec.end - 1);
      touch(nodes[k].output, sec.first), touch(nodes[k].output, sec.end - 1);
    }
  const int end = static_cast<int>(nodes.size());
  for (TensorId t = 0; t < static_cast<TensorId>(tensors.size()); ++t)
    if (tensors[t].is_output) touch(t, end);
  return life;
}

Result<MemoryPlan> plan_memory(const Graph& graph, uint64_t alignment) {
  ALTUP_TRY(graph.validate());
  const auto& tensors = graph.tensors();
  MemoryPlan plan;
  plan.lifetimes = tensor_lifetimes(graph);
  plan.offsets.assign(tensors.size(), kNotInArena);
  plan.sizes.assign(tensors.size(), 0);

  std::vector<TensorId> order;
  for (TensorId t = 0; t < static_cast<TensorId>(tensors.size()); ++t) {
    if (tensors[t].kind != TensorKind::Activation || plan.lifetimes[t].first < 0) continue;
    auto bytes = tensor_bytes(tensors[t].dtype, tensors[t].shape);
    if (!bytes) return make_error("activation " + tensors[t].name + ": " + bytes.error().message);
    plan.sizes[t] = (*bytes + alignment - 1) & ~(alignment - 1);
    order.push_back(t);
  }
  std::stable_sort(order.begin(), order.end(), [&](TensorId a, TensorId b) {
    if (plan.sizes[a] != plan.sizes[b]) return plan.sizes[a] > plan.sizes[b];
    return plan.lifetimes[a].first < plan.lifetimes[b].first;
  });

  auto overlaps = [&](TensorId a, TensorId b) {
    const Lifetime &x = plan.lifetimes[a], &y = plan.lifetimes[b];
    return x.first <= y.last && y.first <= x.last;
  };
  std::vector<TensorId> placed;
  for (TensorId t : order) {
    // Occupied ranges of the placed tensors alive at the same time, by offset.
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    for (TensorId p : placed)
      if (overlaps(t, p)) busy.emplace_back(plan.offsets[p], plan.offsets[p] + plan.sizes[p]);
    std::sort(busy.begin(), busy.end());
    uint64_t best = kNotInArena, best_gap = UINT64_MAX, cursor = 0;
    for (const auto& [lo, hi] : busy) {
      if (lo > cursor && lo - cursor >= plan.sizes[t] && lo - cursor < best_gap) {
        best = cursor;
        best_gap = lo - cursor;
      }
      cursor = std::max(cursor, hi);
    }
    plan.offsets[t] = best != kNotInArena ? best : cursor;
    plan.arena_bytes = std::max(plan.arena_bytes, plan.offsets[t] + plan.sizes[t]);
    placed.push_back(t);
  }

  // The bytes live at each node bound any placement from below; tests compare against it.
  for (int k = 0; k < static_cast<int>(graph.nodes().size()) + 1; ++k) {
    uint64_t live = 0;
    for (TensorId t : placed)
      if (plan.lifetimes[t].first <= k && k <= plan.lifetimes[t].last) live += plan.sizes[t];
    plan.lower_bound = std::max(plan.lower_bound, live);
  }
  return plan;
}

}  // namespace altup
