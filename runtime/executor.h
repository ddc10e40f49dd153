// Executor: runs a planned graph's nodes in order. The arena is allocated once, when the
// executor is created; a run allocates nothing. Optional hooks see each node begin and end:
// the profiler and a tensor-dump debugger attach there, and with no hooks the cost is one
// null check per node.
//
// A Section's branches (runtime/graph.h) run at once: with n threads and b branches, the n
// threads split as evenly as they go into min(b, n) groups, and each group runs its branches'
// nodes in order; an op in a group of several threads forks a nested team. With one
// thread, or with hooks (whose callbacks expect one node at a time), the branches' nodes run
// in graph order on every thread instead.
#pragma once

#include <memory>
#include <vector>

#include "runtime/graph.h"
#include "runtime/planner.h"

namespace altup {

class ExecContext;

class ExecHooks {
 public:
  virtual ~ExecHooks() = default;
  // Once per run, before any node; the context has the run's inputs bound.
  virtual void on_run_begin(const Graph& graph, const ExecContext& ctx) {
    (void)graph;
    (void)ctx;
  }
  virtual void on_begin(const Node& node, size_t index) = 0;
  virtual void on_end(const Node& node, size_t index) = 0;
};

// What an op sees while it runs.
class ExecContext {
 public:
  const TensorView& tensor(TensorId t) const { return views_[t]; }
  const TensorView& input(const Node& n, size_t k) const { return views_[n.inputs[k]]; }
  const TensorView& output(const Node& n) const { return views_[n.output]; }
  int threads() const { return threads_; }  // this node's share: all of them, or its branch's group's
  const Graph& graph() const { return *graph_; }

 private:
  friend class Executor;
  const Graph* graph_ = nullptr;
  const TensorView* views_ = nullptr;  // the executor's, one per tensor
  int threads_ = 1;
};

class Executor {
 public:
  // Plans the graph's memory and allocates the arena.
  static Result<std::unique_ptr<Executor>> create(const Graph& graph);
  ~Executor();

  // Point an input or state tensor at caller memory (must match its declared shape and dtype).
  void bind_input(TensorId t, void* data);
  // Runs every node in order; stops at, and returns, the first op error. branches: whether
  // sections run their branches at once (else one node at a time, as without sections).
  Status run(int n_threads, ExecHooks* hooks = nullptr, bool branches = true);

  const TensorView& tensor(TensorId t) const { return views_[t]; }
  const MemoryPlan& plan() const { return plan_; }
  const Graph& graph() const { return *graph_; }

 private:
  Executor() = default;
  void refresh_views();
  void refresh(TensorId t);
  Status run_node(size_t k, ExecContext& ctx, ExecHooks* hooks);
  // A section's branches at once, on groups of the n threads.
  Status run_branches(size_t section, int n_threads);

  const Graph* graph_ = nullptr;
  MemoryPlan plan_;
  void* arena_ = nullptr;
  std::vector<void*> bound_;                     // per tensor: caller-bound memory for inputs
  std::vector<std::vector<TensorId>> views_of_;  // per tensor: the views that look into it
  std::vector<TensorView> views_;                // per tensor: where it is now
  ExecContext ctx_;
  // Per section, per branch: its nodes in order; and a status per branch for a run.
  std::vector<std::vector<std::vector<int>>> branch_nodes_;
  std::vector<Status> branch_status_;
};

}  // namespace altup
