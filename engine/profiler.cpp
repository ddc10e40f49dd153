#include "engine/profiler.h"

#include "runtime/cycle_clock.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <tuple>

namespace altup {

namespace {
// Ticks of the cycle clock; converted to ns when reported, so recording stays cheap.
int64_t steady_ns() { return static_cast<int64_t>(cycle_ticks()); }
std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}
std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
}  // namespace

int64_t Profiler::now_ns() const { return steady_ns() - origin_ns_; }

void Profiler::set_phase(const std::string& phase) {
  if (origin_ns_ == 0) origin_ns_ = steady_ns();
  auto it = std::find(phases_.begin(), phases_.end(), phase);
  if (it == phases_.end()) {
    phases_.push_back(phase);
    it = phases_.end() - 1;
  }
  phase_ = static_cast<int>(it - phases_.begin());
}

void Profiler::on_run_begin(const Graph& graph, const ExecContext& ctx) {
  if (origin_ns_ == 0) origin_ns_ = steady_ns();
  // Work that depends on this run's inputs (attention's visible keys), every run.
  auto refresh_run_estimates = [&] {
    for (size_t k = 0; k < graph.nodes().size(); ++k) {
      const Node& n = graph.nodes()[k];
      if (n.op->work_of_run) n.op->work_of_run(n, ctx, &node_flops_[k], &node_bytes_[k]);
    }
  };
  if (&graph == graph_ && node_flops_.size() == graph.nodes().size()) {
    refresh_run_estimates();
    return;
  }
  // The other estimates depend only on the graph: computed once per graph, not per node run.
  graph_ = &graph;
  node_flops_.assign(graph.nodes().size(), 0.0);
  node_bytes_.assign(graph.nodes().size(), 0.0);
  node_name_.assign(graph.nodes().size(), 0);
  for (size_t k = 0; k < graph.nodes().size(); ++k) {
    const Node& n = graph.nodes()[k];
    if (n.op->flops) node_flops_[k] = n.op->flops(n, graph);
    if (n.op->bytes) node_bytes_[k] = n.op->bytes(n, graph);
    auto it = std::find(names_.begin(), names_.end(), n.name);
    if (it == names_.end()) it = names_.insert(names_.end(), n.name);
    node_name_[k] = static_cast<int>(it - names_.begin());
  }
  refresh_run_estimates();
  events_.reserve(events_.size() + 4 * graph.nodes().size());
}

void Profiler::on_begin(const Node&, size_t) { begin_ns_ = now_ns(); }

void Profiler::on_end(const Node& node, size_t index) {
  const int64_t end = now_ns();
  if (index >= node_name_.size()) return;  // a run whose graph was not announced
  events_.push_back({phase_, node_name_[index], node.op->name, node.layer, node.cost, begin_ns_, end,
                     node_flops_[index], node_bytes_[index]});
}

std::vector<Profiler::Row> Profiler::rows() const {
  std::map<std::tuple<int, int, std::string>, Row> agg;
  std::vector<double> phase_ms(phases_.size(), 0.0);
  for (const Event& e : events_) {
    const std::string& name = names_[static_cast<size_t>(e.name)];
    Row& r = agg[{e.phase, e.layer, name}];
    if (r.calls == 0) {
      r.phase = phases_[static_cast<size_t>(e.phase)];
      r.name = name;
      r.op = e.op;
      r.layer = e.layer;
      r.category = cost_name(e.cost);
    }
    const double ms = static_cast<double>(e.end_ns - e.begin_ns) * ns_per_tick() / 1e6;
    r.calls++;
    r.ms += ms;
    r.flops += e.flops;
    r.bytes += e.bytes;
    phase_ms[static_cast<size_t>(e.phase)] += ms;
  }
  std::vector<Row> out;
  for (auto& [key, r] : agg) {
    const double total = phase_ms[static_cast<size_t>(std::get<0>(key))];
    r.share = total > 0 ? r.ms / total : 0;
    out.push_back(r);
  }
  return out;
}

double Profiler::total_ms(const std::string& phase) const {
  double t = 0;
  for (const Event& e : events_)
    if (phases_[static_cast<size_t>(e.phase)] == phase)
      t += static_cast<double>(e.end_ns - e.begin_ns) * ns_per_tick() / 1e6;
  return t;
}

std::string Profiler::table() const {
  const auto all = rows();
  std::string out;
  for (const std::string& phase : phases_) {
    std::vector<Row> rs;
    for (const Row& r : all)
      if (r.phase == phase) rs.push_back(r);
    if (rs.empty()) continue;
    const double total = total_ms(phase);
    int64_t runs = 0;
    for (const Row& r : rs)
      if (r.name == "embed") runs = std::max(runs, r.calls);
    out += "== " + phase + ": " + fmt("%.3f", total) + " ms in ops over " + std::to_string(runs) + " run(s)\n";
    // Per layer, by category (the node's Cost, set by the model that built it).
    std::map<int, std::map<std::string, double>> by_layer;
    for (const Row& r : rs) by_layer[r.layer][r.category] += r.ms;
    // Columns with time in this phase only: the "altup" model has no router, PLE or LAuReL.
    std::vector<const char*> cols;
    for (const Cost cost : kAllCosts)
      for (const auto& [layer, cats] : by_layer)
        if (cats.count(cost_name(cost))) {
          cols.push_back(cost_name(cost));
          break;
        }
    out += "  layer ";
    for (const char* c : cols) {
      char h[32];
      std::snprintf(h, sizeof h, "%11s", c);
      out += h;
    }
    out += "   total ms  share\n";
    std::map<std::string, double> col_total;
    for (auto& [layer, cats] : by_layer) {
      out += layer < 0 ? "      - " : fmt("  %5.0f ", layer);
      double t = 0;
      for (const char* c : cols) {
        out += fmt("%11.3f", cats[c]);
        t += cats[c];
        col_total[c] += cats[c];
      }
      out += fmt("%11.3f", t) + fmt("%6.1f%%\n", total > 0 ? 100 * t / total : 0);
    }
    out += "    all ";
    for (const char* c : cols) out += fmt("%11.3f", col_total[c]);
    out += fmt("%11.3f", total) + "  100.0%\n";
    out += "    share ";
    for (const char* c : cols) out += fmt("%10.1f%%", total > 0 ? 100 * col_total[c] / total : 0);
    out += "\n";
    // Per stack, when the layers form several (nodes outside the layers belong to none).
    std::map<int, std::map<std::string, double>> by_stack;
    for (auto& [layer, cats] : by_layer)
      if (layer >= 0 && static_cast<size_t>(layer) < stacks_.size())
        for (auto& [c, ms] : cats) by_stack[stacks_[static_cast<size_t>(layer)]][c] += ms;
    if (by_stack.size() > 1)
      for (auto& [stack, cats] : by_stack) {
        char label[24];
        std::snprintf(label, sizeof label, "  stack %-2d", stack);
        out += label;
        double t = 0;
        for (const char* c : cols) {
          out += fmt("%11.3f", cats[c]);
          t += cats[c];
        }
        out += fmt("%11.3f", t) + fmt("%6.1f%%\n", total > 0 ? 100 * t / total : 0);
      }
    // Per op (node name), over all layers. A name can run different ops in different layers
    // (Gemma 3n's ffn_up: matmul_masked on sparse layers, matmul elsewhere): each is listed.
    std::map<std::string, Row> by_op;
    for (const Row& r : rs) {
      Row& o = by_op[r.name];
      o.name = r.name;
      if (o.op.empty())
        o.op = r.op;
      else if (("/" + o.op + "/").find("/" + r.op + "/") == std::string::npos)
        o.op += "/" + r.op;
      o.calls += r.calls;
      o.ms += r.ms;
      o.flops += r.flops;
      o.bytes += r.bytes;
    }
    std::vector<Row> ops;
    for (auto& [k, r] : by_op) ops.push_back(r);
    std::sort(ops.begin(), ops.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
    out += "  node                 op                     calls    total ms   share   GFLOP/s      GB/s\n";
    for (const Row& r : ops) {
      char line[200];
      std::snprintf(line, sizeof line, "  %-20s %-22s %6lld %11.3f %6.1f%% %9.2f %9.2f\n", r.name.c_str(), r.op.c_str(),
                    static_cast<long long>(r.calls), r.ms, total > 0 ? 100 * r.ms / total : 0, r.gflops(), r.gbs());
      out += line;
    }
  }
  return out;
}

std::string Profiler::csv() const {
  // flop and bytes are the rows' estimated work, totals over all calls: they do not depend on the
  // clock, so they stay meaningful for an op too quick to time (total_ms 0, rates 0).
  std::string out = "phase,layer,node,op,category,calls,total_ms,share,gflops,gbs,flop,bytes\n";
  for (const Row& r : rows()) {
    char line[320];
    std::snprintf(line, sizeof line, "%s,%d,%s,%s,%s,%lld,%.6f,%.6f,%.4f,%.4f,%.0f,%.0f\n", r.phase.c_str(), r.layer,
                  r.name.c_str(), r.op.c_str(), r.category.c_str(), static_cast<long long>(r.calls), r.ms, r.share,
                  r.gflops(), r.gbs(), r.flops, r.bytes);
    out += line;
  }
  return out;
}

std::string Profiler::json() const {
  std::string out = "{\n  \"phases\": {";
  bool first = true;
  for (const std::string& p : phases_) {
    const double t = total_ms(p);
    if (t == 0) continue;
    out += std::string(first ? "" : ", ") + "\"" + json_escape(p) + "\": {\"total_ms\": " + fmt("%.6f", t) + "}";
    first = false;
  }
  out += "},\n  \"rows\": [\n";
  const auto rs = rows();
  for (size_t i = 0; i < rs.size(); ++i) {
    const Row& r = rs[i];
    char line[448];
    std::snprintf(line, sizeof line,
                  "    {\"phase\": \"%s\", \"layer\": %d, \"node\": \"%s\", \"op\": \"%s\", \"category\": \"%s\", "
                  "\"calls\": %lld, \"total_ms\": %.6f, \"share\": %.6f, \"gflops\": %.4f, \"gbs\": %.4f, "
                  "\"flop\": %.0f, \"bytes\": %.0f}%s\n",
                  json_escape(r.phase).c_str(), r.layer, json_escape(r.name).c_str(), json_escape(r.op).c_str(),
                  r.category.c_str(), static_cast<long long>(r.calls), r.ms, r.share, r.gflops(), r.gbs(), r.flops,
                  r.bytes, i + 1 < rs.size() ? "," : "");
    out += line;
  }
  return out + "  ]\n}\n";
}

std::string Profiler::chrome_trace() const {
  // Complete ("X") events in microseconds, one process, the executor's thread; metadata
  // events name them. Perfetto and chrome://tracing open this as it is.
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  out += "  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": 1, \"args\": {\"name\": \"altup\"}},\n";
  out += "  {\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": 1, \"args\": {\"name\": \"executor\"}}";
  const double tick_us = ns_per_tick() / 1e3;
  for (const Event& e : events_) {
    char line[512];
    std::snprintf(
        line, sizeof line,
        ",\n  {\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": 1, \"tid\": 1, "
        "\"args\": {\"op\": \"%s\", \"layer\": %d, \"phase\": \"%s\", \"category\": \"%s\"}}",
        json_escape(names_[static_cast<size_t>(e.name)]).c_str(),
        json_escape(phases_[static_cast<size_t>(e.phase)]).c_str(), static_cast<double>(e.begin_ns) * tick_us,
        static_cast<double>(e.end_ns - e.begin_ns) * tick_us, json_escape(e.op).c_str(), e.layer,
        json_escape(phases_[static_cast<size_t>(e.phase)]).c_str(), cost_name(e.cost));
    out += line;
  }
  return out + "\n]}\n";
}

}  // namespace altup
