#include "engine/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "runtime/planner.h"

#include "runtime/threading.h"

namespace altup {

Result<std::shared_ptr<const LoadedModel>> LoadedModel::load(const std::string& path, const SubmodelChoice& submodel) {
  auto file = GgufFile::open(path);
  if (!file) return file.error();
  return load(std::move(*file), submodel);
}

Result<std::shared_ptr<const LoadedModel>> LoadedModel::load(std::unique_ptr<GgufFile> file,
                                                             const SubmodelChoice& submodel) {
  auto m = std::make_shared<LoadedModel>();
  m->file = std::move(file);
  auto model = load_model(*m->file, submodel);
  if (!model) return model.error();
  m->model = std::move(*model);
  auto tok = Tokenizer::from_gguf(*m->file);
  if (!tok) return make_error("tokenizer: " + tok.error().message);
  m->tokenizer = std::move(*tok);
  if (m->tokenizer.vocab_size() != m->model->vocab_size())
    return make_error("the tokenizer has " + std::to_string(m->tokenizer.vocab_size()) + " tokens, the model " +
                      std::to_string(m->model->vocab_size()));
  return std::shared_ptr<const LoadedModel>(std::move(m));
}

Result<std::unique_ptr<Session>> Session::open(const std::string& path, const SessionOptions& options,
                                               const SubmodelChoice& submodel) {
  auto m = LoadedModel::load(path, submodel);
  if (!m) return m.error();
  return create(std::move(*m), options);
}

Result<std::unique_ptr<Session>> Session::open(std::unique_ptr<GgufFile> file, const SessionOptions& options,
                                               const SubmodelChoice& submodel) {
  auto m = LoadedModel::load(std::move(file), submodel);
  if (!m) return m.error();
  return create(std::move(*m), options);
}

Result<std::unique_ptr<Session>> Session::create(std::shared_ptr<const LoadedModel> model,
                                                 const SessionOptions& options) {
  if (!model) return make_error("no model");
  std::unique_ptr<Session> s(new Session());
  s->loaded_ = std::move(model);
  s->ctx_ = options.ctx > 0 ? options.ctx : s->model().context_length();
  if (s->ctx_ <= 0) return make_error("context length must be positive");
  if (options.max_tokens < 1 || options.max_tokens > kMaxGraphTokens)
    return make_error("tokens per graph must be in [1, " + std::to_string(kMaxGraphTokens) + "]");
  s->max_tokens_ = options.max_tokens;
  s->threads_ = options.threads > 0 ? options.threads : available_threads();
  s->tune_ = options.tune_decode_threads;
  s->tuner_ = ThreadTuner(s->threads_);
  s->branches_ = options.branches;
  if (const char* e = std::getenv("ALTUP_BRANCHES"); e && s->branches_ == SessionOptions::Branches::tuned) {
    if (std::strcmp(e, "0") == 0) s->branches_ = SessionOptions::Branches::never;
    if (std::strcmp(e, "1") == 0) s->branches_ = SessionOptions::Branches::always;
  }
  // The whole cache must fit in the memory available now, even though it is backed only as
  // tokens arrive: a run that would die of memory half-way is refused at the start.
  const uint64_t need = s->kv_cache_bytes(s->ctx_), have = available_memory_bytes();
  if (have > 0 && need > have) {
    const int64_t fits =
        static_cast<int64_t>(static_cast<double>(s->ctx_) * static_cast<double>(have) / static_cast<double>(need));
    return make_error("a context of " + std::to_string(s->ctx_) + " tokens needs " + std::to_string(need >> 20) +
                          " MiB of KV cache, but " + std::to_string(have >> 20) +
                          " MiB of memory are available (a context of at most about " + std::to_string(fits) +
                          " tokens fits: a smaller context length)",
                      ErrorKind::OutOfMemory);
  }
  for (const StateSpec& spec : s->model().state_specs(s->ctx_, s->max_tokens_)) {
    if (spec.rollback >= 0)
      s->max_rollback_ = s->max_rollback_ < 0 ? spec.rollback : std::min(s->max_rollback_, spec.rollback);
    auto z = ZeroPages::reserve(static_cast<uint64_t>(spec.shape.numel()) * sizeof(float));
    if (!z)
      return make_error(
          spec.name + " " + spec.shape.str() + ": " + z.error().message + " (try a smaller context length)",
          z.error().kind);
    s->states_.push_back(std::move(*z));
  }
  return s;
}

Result<Session::MemoryEstimate> Session::memory_estimate(int64_t ctx) const {
  MemoryEstimate m;
  m.weights_file = model().weight_bytes();
  m.row_lookup = model().row_lookup_bytes();
  m.weights_per_token = m.weights_file - std::min(m.row_lookup + model().unchosen_expert_bytes(), m.weights_file);
  m.weights_rewritten = model().rewritten_extra_bytes();
  m.kv_cache = kv_cache_bytes(ctx);
  m.prefill_tokens = std::min(ctx, max_tokens_);
  // A decode graph per phase (Model::period), all kept; a prefill chunk's from phase 0, which
  // holds the most Sequence-AltUp anchors.
  for (int64_t phase = 0; phase < model().period(); ++phase) {
    Graph g;
    model().build(g, 1, ctx, max_tokens_, /*all_logits=*/false, phase);
    auto plan = plan_memory(g);
    if (!plan) return plan.error();
    m.activations_decode += plan->arena_bytes;
  }
  Graph g;
  model().build(g, m.prefill_tokens, ctx, max_tokens_, /*all_logits=*/false);
  auto plan = plan_memory(g);
  if (!plan) return plan.error();
  m.activations_prefill = plan->arena_bytes;
  return m;
}

Status Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_)
    return make_error("cannot keep " + std::to_string(n) + " tokens: the sequence holds " + std::to_string(n_past_));
  if (max_rollback_ >= 0 && n_past_ - n > max_rollback_)
    return make_error("cannot take back " + std::to_string(n_past_ - n) +
                      " tokens: this model's sliding-window caches " + "keep only the last " +
                      std::to_string(max_rollback_) + " beyond their window (reset instead)");
  n_past_ = n;
  return {};
}

uint64_t Session::kv_cache_bytes(int64_t ctx) const {
  uint64_t bytes = 0;
  for (const StateSpec& spec : model().state_specs(ctx, max_tokens_))
    bytes += static_cast<uint64_t>(spec.shape.numel()) * 4;
  return bytes;
}

Result<Session::Forward*> Session::forward_for(int64_t T, bool all_logits) {
  // Single-token decode reuses one graph and executor for the whole generation (one per phase
  // of a model with Sequence-AltUp layers: which of them run depends on the position); anything
  // else gets a graph built for its length (replacing the previous prefill graph).
  const bool is_decode = T == 1 && !all_logits;
  const int64_t phase = n_past_ % model().period();
  if (is_decode && decode_.size() != static_cast<size_t>(model().period()))
    decode_.resize(static_cast<size_t>(model().period()));
  std::unique_ptr<Forward>& slot = is_decode ? decode_[static_cast<size_t>(phase)] : prefill_;
  if (slot && slot->T == T && slot->all_logits == all_logits && slot->phase == phase) return slot.get();
  auto f = std::make_unique<Forward>();
  f->T = T;
  f->all_logits = all_logits;
  f->phase = phase;
  f->io = model().build(f->graph, T, ctx_, max_tokens_, all_logits, phase);
  auto ex = Executor::create(f->graph);
  if (!ex) return make_error("building the forward graph: " + ex.error().message);
  f->exec = std::move(*ex);
  for (size_t k = 0; k < f->io.states.size(); ++k) f->exec->bind_input(f->io.states[k], states_[k].floats());
  slot = std::move(f);
  return slot.get();
}

Result<const float*> Session::eval(const std::vector<int32_t>& tokens, bool all_logits) {
  const auto T = static_cast<int64_t>(tokens.size());
  if (T == 0) return make_error("nothing to evaluate: no tokens");
  if (n_past_ + T > ctx_)
    return make_error(std::to_string(n_past_ + T) + " tokens do not fit the context of " + std::to_string(ctx_) +
                          " (a longer context length, up to the model's " + std::to_string(model().context_length()) +
                          ", or a shorter prompt)",
                      ErrorKind::ContextFull);
  for (int32_t t : tokens)
    if (t < 0 || t >= model().vocab_size())
      return make_error("token id " + std::to_string(t) + " is outside the vocabulary", ErrorKind::TokenOutOfRange);
  if (T <= max_tokens_) return eval_chunk(tokens.data(), T, all_logits);
  // A long prompt: chunk after chunk through the cache, as one prefill would see it.
  const int64_t V = model().vocab_size();
  if (all_logits) {
    try {
      chunked_logits_.resize(static_cast<size_t>(T * V));
    } catch (const std::bad_alloc&) {
      return make_error("not enough memory for the logits of " + std::to_string(T) + " positions",
                        ErrorKind::OutOfMemory);
    }
  }
  const int64_t start = n_past_;
  const float* last = nullptr;
  for (int64_t t0 = 0; t0 < T; t0 += max_tokens_) {
    const int64_t n = std::min(max_tokens_, T - t0);
    auto l = eval_chunk(tokens.data() + t0, n, all_logits);
    if (!l) {
      // All or nothing: the sequence is as it was before this call, unless sliding-window
      // rings have already overwritten keys it needs; then it starts over, and says so.
      if (max_rollback_ >= 0 && n_past_ - start > max_rollback_) {
        n_past_ = 0;
        return make_error(l.error().message + " (the sequence was reset: its sliding-window caches had moved on)",
                          l.error().kind);
      }
      n_past_ = start;
      return l.error();
    }
    last = *l;
    if (all_logits) std::copy_n(last, n * V, chunked_logits_.data() + t0 * V);
  }
  return all_logits ? chunked_logits_.data() : last;
}

bool Session::decode_branches() const {
  using B = SessionOptions::Branches;
  if (!decode_has_sections_ || branches_ == B::never || decode_threads() < 2) return false;
  return branches_ == B::always || !tune_ || tuner_.best().branches;
}

Result<const float*> Session::eval_chunk(const int32_t* tokens, int64_t T, bool all_logits) {
  auto f = forward_for(T, all_logits);
  if (!f) return f.error();
  ids_.assign(tokens, tokens + T);
  pos_.resize(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos_[static_cast<size_t>(t)] = static_cast<int32_t>(n_past_ + t);
  Executor& ex = *(*f)->exec;
  ex.bind_input((*f)->io.ids, ids_.data());
  ex.bind_input((*f)->io.pos, pos_.data());
  last_graph_ = &(*f)->graph;
  // A decode step's output is the same on any number of threads: it runs on the count that
  // measures fastest. Prefill uses them all (oneDNN's products round by thread count).
  // The same holds for running a decode graph's branches at once or not.
  using B = SessionOptions::Branches;
  if (T == 1) decode_has_sections_ = !(*f)->graph.sections().empty();
  if (T == 1 && tune_) {
    const bool choose = decode_has_sections_ && branches_ == B::tuned;
    if (tuner_.tries_branches() != choose) tuner_ = ThreadTuner(threads_, choose);
    const StepPlan plan = tuner_.next();
    const auto t0 = std::chrono::steady_clock::now();
    ALTUP_TRY(ex.run(plan.threads, hooks_, branches_ == B::tuned ? plan.branches : branches_ == B::always));
    tuner_.record(plan, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } else {
    ALTUP_TRY(ex.run(threads_, hooks_, branches_ != B::never));
  }
  const auto* logits = static_cast<const float*>(ex.tensor((*f)->io.logits).data);
  // NaN or Inf logits mean the numbers overflowed (or the weights hold them): an error that
  // names the position, never a token sampled from garbage.
  const int64_t V = model().vocab_size(), rows = all_logits ? T : 1;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t v = 0; v < V; ++v)
      if (!std::isfinite(logits[r * V + v]))
        return make_error("the logits at position " + std::to_string(n_past_ + (all_logits ? r : T - 1)) +
                              " are not finite (" + (std::isnan(logits[r * V + v]) ? "NaN" : "Inf") + " for token " +
                              std::to_string(v) + "): the model's weights or activations overflow",
                          ErrorKind::NonFinite);
  n_past_ += T;
  return logits;
}

}  // namespace altup
