// Executor: runs a planned graph's nodes in order. The arena is allocated once, when the
// executor is created; a run allocates nothing. Optional hooks see each node begin and end:
// the profiler and a tensor-dump debugger attach there, and with no hooks the cost is one
// null check per node.
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
  int threads() const { return threads_; }
  const Graph& graph() const { return *graph_; }

 private:
  friend class Executor;
  const Graph* graph_ = nullptr;
  std::vector<TensorView> views_;
  int threads_ = 1;
};

class Executor {
 public:
  // Plans the graph's memory and allocates the arena.
  static Result<std::unique_ptr<Executor>> create(const Graph& graph);
  ~Executor();

  // Point an input or state tensor at caller memory (must match its declared shape and dtype).
  void bind_input(TensorId t, void* data);
  // Runs every node in order; stops at, and returns, the first op error.
  Status run(int n_threads, ExecHooks* hooks = nullptr);

  const TensorView& tensor(TensorId t) const { return ctx_.views_[t]; }
  const MemoryPlan& plan() const { return plan_; }
  const Graph& graph() const { return *graph_; }

 private:
  Executor() = default;
  void refresh_views();
  void refresh(TensorId t);

  const Graph* graph_ = nullptr;
  MemoryPlan plan_;
  void* arena_ = nullptr;
  std::vector<void*> bound_;                     // per tensor: caller-bound memory for inputs
  std::vector<std::vector<TensorId>> views_of_;  // per tensor: the views that look into it
  ExecContext ctx_;
};

}  // namespace altup
