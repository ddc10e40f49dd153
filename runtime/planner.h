// Memory planner: every activation gets a fixed offset in one arena, chosen from tensor
// lifetimes, so that running the graph allocates nothing. Two tensors share bytes only if
// no node needs both alive at once.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/graph.h"

namespace altup {

constexpr uint64_t kNotInArena = UINT64_MAX;

struct Lifetime {
  int first = -1;  // index of the first node that touches the tensor (-1: never touched)
  int last = -1;   // index of the last node that touches it (nodes.size() for outputs)
};

struct MemoryPlan {
  std::vector<uint64_t> offsets;    // per tensor: byte offset in the arena, or kNotInArena
  std::vector<uint64_t> sizes;      // per tensor: bytes it occupies (0 if not in the arena)
  std::vector<Lifetime> lifetimes;  // per tensor (views: their root's lifetime is extended)
  uint64_t arena_bytes = 0;
  uint64_t lower_bound = 0;  // max over nodes of the bytes live at that node
};

// Lifetimes of arena tensors (activations; a view's uses count for its root). A tensor a
// node of a Section touches lives across the whole section, whose branches run at once.
std::vector<Lifetime> tensor_lifetimes(const Graph& graph);

// Place activations: greedy by size (largest first, each in the best-fitting gap among the
// already placed tensors whose lifetimes intersect its own). `alignment` is a power of two.
Result<MemoryPlan> plan_memory(const Graph& graph, uint64_t alignment = 64);

}  // namespace altup
