// Per-node timing through the executor's hooks: where the time goes, layer by layer and op
// by op, prefill and decode apart, with AltUp's parts (predict, correct, spread, collapse,
// and Gemma 3n's router / stream projections / PLE when present) named as such.
// Off (no hooks) it costs nothing; on, two cycle-counter reads and one append per node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/executor.h"

namespace altup {

class Profiler : public ExecHooks {
 public:
  // Everything recorded from now on belongs to this phase ("prefill", "decode", ...).
  void set_phase(const std::string& phase);

  void on_run_begin(const Graph& graph, const ExecContext& ctx) override;
  void on_begin(const Node& node, size_t index) override;
  void on_end(const Node& node, size_t index) override;

  // One timed node. Plain data, so recording allocates nothing but the vector's growth.
  struct Event {
    int phase;       // index into phases()
    int name;        // index into names(): the node name, e.g. "attn_q"
    const char* op;  // the op's name, e.g. "matmul" (static storage)
    int layer;
    Cost cost;                 // what the model said the node is (runtime/graph.h)
    int64_t begin_ns, end_ns;  // cycle-clock ticks since the profiler started (ns_per_tick() converts)
    double flops, bytes;       // the op's own estimates (0 if it has none)
  };
  const std::vector<Event>& events() const { return events_; }
  const std::vector<std::string>& phases() const { return phases_; }
  const std::vector<std::string>& names() const { return names_; }

  // Aggregate rows: one per (phase, layer, node name).
  struct Row {
    std::string phase, name, op, category;
    int layer = -1;
    int64_t calls = 0;
    double ms = 0, share = 0, flops = 0, bytes = 0;  // share: of its phase's total
    double gflops() const { return ms > 0 ? flops / (ms * 1e6) : 0; }
    double gbs() const { return ms > 0 ? bytes / (ms * 1e6) : 0; }
  };
  std::vector<Row> rows() const;
  double total_ms(const std::string& phase) const;

  // The stack each layer belongs to (StagFormer; indexed by layer): the table then adds a row
  // per stack. Empty, or every layer in stack 0: no such rows.
  void set_stacks(std::vector<int> stack_of_layer) { stacks_ = std::move(stack_of_layer); }

  // Outputs.
  std::string table() const;         // terminal: per layer by category, then per op, per phase
  std::string csv() const;           // every row
  std::string json() const;          // every row, plus totals
  std::string chrome_trace() const;  // Trace Event Format ("X" events), opens in Perfetto

 private:
  int64_t now_ns() const;
  std::vector<std::string> phases_{"run"};
  int phase_ = 0;
  std::vector<Event> events_;
  std::vector<int> stacks_;
  const Graph* graph_ = nullptr;
  std::vector<double> node_flops_, node_bytes_;  // estimates for graph_'s nodes
  std::vector<int> node_name_;                   // index into names_ for graph_'s nodes
  std::vector<std::string> names_;
  int64_t begin_ns_ = 0;
  int64_t origin_ns_ = 0;
};

}  // namespace altup
