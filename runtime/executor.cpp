#include "runtime/executor.h"

#include <cstdlib>

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
  ctx_.views_.resize(graph_->tensors().size());
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
        if (ctx_.views_[d.view_of].data) data = static_cast<char*>(ctx_.views_[d.view_of].data) + d.view_offset;
        break;
    }
    ctx_.views_[t] = TensorView::contiguous(d.dtype, d.shape, data);
    if (d.row_stride) ctx_.views_[t].stride_bytes[d.shape.ndim - 2] = static_cast<int64_t>(d.row_stride);
  }
  for (TensorId v : views_of_[t]) refresh(v);
}

Status Executor::run(int n_threads, ExecHooks* hooks) {
  ctx_.threads_ = n_threads < 1 ? 1 : n_threads;
  const auto& nodes = graph_->nodes();
  if (hooks) hooks->on_run_begin(*graph_, ctx_);
  for (size_t k = 0; k < nodes.size(); ++k) {
    const Node& node = nodes[k];
    if (hooks) hooks->on_begin(node, k);
    Status s = node.op->run(node, ctx_);
    if (hooks) hooks->on_end(node, k);
    if (!s.ok()) {
      std::string where = node.name + (node.layer >= 0 ? " (layer " + std::to_string(node.layer) + ")" : "");
      return make_error(where + ": " + s.error().message);
    }
  }
  return {};
}

}  // namespace altup
