#include "runtime/executor.h"

#include <omp.h>

#include <cstdlib>

#include "runtime/threading.h"

namespace altup {

// The graph must outlive the executor: nodes and tensor descriptions are not copied.
Result<std::unique_ptr<Executor>> Executor::create(const Graph& graph) {
  auto plan = plan_memory(graph);
  if (!plan) return plan.error();
  std::unique_ptr<Executor> ex(new Executor());
  ex->graph_ = &graph;
  ex->plan_ = std::move(*plan);
  if (ex->plan_.arena_bytes > 0) {
    ex->arena_ = std::aligned_alloc(64, ex->plan_.arena_bytes);  // arena_bytes is a multiple of 64
    if (!ex->arena_)
      return make_error("cannot allocate the activation arena (" + std::to_string(ex->plan_.arena_bytes) + " bytes)");
  }
  ex->bound_.assign(graph.tensors().size(), nullptr);
  for (size_t t = 0; t < graph.tensors().size(); ++t) ex->bound_[t] = graph.tensors()[t].data;
  ex->ctx_.graph_ = &graph;
  for (const Section& sec : graph.sections()) {
    std::vector<std::vector<int>> chains(static_cast<size_t>(sec.branches));
    for (int k = sec.first; k < sec.end; ++k) chains[static_cast<size_t>(graph.nodes()[k].branch)].push_back(k);
    ex->branch_status_.resize(std::max(ex->branch_status_.size(), chains.size()));
    ex->branch_nodes_.push_back(std::move(chains));
  }
  ex->views_of_.resize(graph.tensors().size());
  for (TensorId t = 0; t < static_cast<TensorId>(graph.tensors().size()); ++t)
    if (graph.tensors()[t].kind == TensorKind::View) ex->views_of_[graph.tensors()[t].view_of].push_back(t);
  ex->refresh_views();
  return ex;
}

Executor::~Executor() { std::free(arena_); }

void Executor::bind_input(TensorId t, void* data) {
  // Called for every decoded token: refresh the tensor and its views, not the whole graph.
  bound_[t] = data;
  refresh(t);
}

void Executor::refresh_views() {
  views_.resize(graph_->tensors().size());
  ctx_.views_ = views_.data();
  for (TensorId t = 0; t < static_cast<TensorId>(graph_->tensors().size()); ++t) {
    const TensorDesc& d = graph_->tensors()[t];
    if (d.kind != TensorKind::View) refresh(t);
  }
}

// Recompute t's view, then those of the views looking into it (recursively: views may nest).
void Executor::refresh(TensorId t) {
  {
    const TensorDesc& d = graph_->tensors()[t];
    void* data = nullptr;
    switch (d.kind) {
      case TensorKind::Input:
      case TensorKind::Weight:
      case TensorKind::State: data = bound_[t]; break;
      case TensorKind::Activation:
        if (plan_.offsets[t] != kNotInArena) data = static_cast<char*>(arena_) + plan_.offsets[t];
        break;
      case TensorKind::View:  // refreshed right after its base
        if (views_[d.view_of].data) data = static_cast<char*>(views_[d.view_of].data) + d.view_offset;
        break;
    }
    views_[t] = TensorView::contiguous(d.dtype, d.shape, data);
    if (d.row_stride) views_[t].stride_bytes[d.shape.ndim - 2] = static_cast<int64_t>(d.row_stride);
  }
  for (TensorId v : views_of_[t]) refresh(v);
}

Status Executor::run_node(size_t k, ExecContext& ctx, ExecHooks* hooks) {
  const Node& node = graph_->nodes()[k];
  if (hooks) hooks->on_begin(node, k);
  Status s = node.op->run(node, ctx);
  if (hooks) hooks->on_end(node, k);
  if (s.ok()) return s;
  std::string where = node.name + (node.layer >= 0 ? " (layer " + std::to_string(node.layer) + ")" : "");
  return make_error(where + ": " + s.error().message);
}

Status Executor::run_branches(size_t section, int n_threads) {
  const auto& chains = branch_nodes_[section];
  const int branches = static_cast<int>(chains.size());
  const int groups = std::min(branches, n_threads);
  if (n_threads > groups && omp_get_max_active_levels() < omp_get_level() + 2)
    omp_set_max_active_levels(omp_get_level() + 2);  // a group of several threads forks its own team
  for (int b = 0; b < branches; ++b) branch_status_[static_cast<size_t>(b)] = Status::success();
#pragma omp parallel num_threads(groups)
  {
    const int team = omp_get_num_threads();  // may be fewer than asked for: then a thread takes several groups
    for (int g = omp_get_thread_num(); g < groups; g += team) {
      ExecContext ctx = ctx_;
      ctx.threads_ = n_threads * (g + 1) / groups - n_threads * g / groups;
      set_compute_threads(ctx.threads_);  // for oneDNN, which asks OpenMP
      for (int b = g; b < branches; b += groups)
        for (int k : chains[static_cast<size_t>(b)]) {
          Status s = run_node(static_cast<size_t>(k), ctx, nullptr);
          if (!s.ok()) {
            branch_status_[static_cast<size_t>(b)] = std::move(s);
            break;
          }
        }
    }
  }
  for (int b = 0; b < branches; ++b)
    if (!branch_status_[static_cast<size_t>(b)].ok()) return branch_status_[static_cast<size_t>(b)];
  return {};
}

Status Executor::run(int n_threads, ExecHooks* hooks, bool branches) {
  ctx_.threads_ = n_threads < 1 ? 1 : n_threads;
  const auto& nodes = graph_->nodes();
  const auto& sections = graph_->sections();
  if (hooks) hooks->on_run_begin(*graph_, ctx_);
  size_t next = 0;  // the next section
  for (size_t k = 0; k < nodes.size();) {
    while (next < sections.size() && sections[next].end <= static_cast<int>(k)) ++next;
    if (next < sections.size() && branches && sections[next].first == static_cast<int>(k) && !hooks &&
        ctx_.threads_ > 1 && sections[next].branches > 1) {
      ALTUP_TRY(run_branches(next, ctx_.threads_));
      k = static_cast<size_t>(sections[next].end);
      continue;
    }
    ALTUP_TRY(run_node(k, ctx_, hooks));
    ++k;
  }
  return {};
}

}  // namespace altup
