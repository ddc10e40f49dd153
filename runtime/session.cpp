#include "runtime/session.h"

#include "runtime/threading.h"

namespace altup {

Result<std::unique_ptr<Session>> Session::open(const std::string& path, const SessionOptions& options) {
  auto file = GgufFile::open(path);
  if (!file) return file.error();
  std::unique_ptr<Session> s(new Session());
  s->file_ = std::move(*file);
  auto model = load_model(*s->file_);
  if (!model) return model.error();
  s->model_ = std::move(*model);
  auto tok = Tokenizer::from_gguf(*s->file_);
  if (!tok) return make_error("tokenizer: " + tok.error().message);
  s->tokenizer_ = std::move(*tok);
  if (s->tokenizer_.vocab_size() != s->model_->vocab_size())
    return make_error("the tokenizer has " + std::to_string(s->tokenizer_.vocab_size()) + " tokens, the model " +
                      std::to_string(s->model_->vocab_size()));
  s->ctx_ = options.ctx > 0 ? options.ctx : s->model_->context_length();
  if (s->ctx_ <= 0) return make_error("context length must be positive");
  s->threads_ = options.threads > 0 ? options.threads : available_threads();
  for (const StateSpec& spec : s->model_->state_specs(s->ctx_)) {
    try {
      s->states_.emplace_back(static_cast<size_t>(spec.shape.numel()), 0.0f);
    } catch (const std::bad_alloc&) {
      return make_error("not enough memory for " + spec.name + " " + spec.shape.str() + " (try a smaller --ctx)");
    }
  }
  return s;
}

Result<Session::Forward*> Session::forward_for(int64_t T, bool all_logits) {
  // Single-token decode reuses one graph and executor for the whole generation; anything
  // else gets a graph built for its length (replacing the previous prefill graph).
  const bool is_decode = T == 1 && !all_logits;
  std::unique_ptr<Forward>& slot = is_decode ? decode_ : prefill_;
  if (slot && slot->T == T && slot->all_logits == all_logits) return slot.get();
  auto f = std::make_unique<Forward>();
  f->T = T;
  f->all_logits = all_logits;
  f->io = model_->build(f->graph, T, ctx_, all_logits);
  auto ex = Executor::create(f->graph);
  if (!ex) return make_error("building the forward graph: " + ex.error().message);
  f->exec = std::move(*ex);
  for (size_t k = 0; k < f->io.states.size(); ++k) f->exec->bind_input(f->io.states[k], states_[k].data());
  slot = std::move(f);
  return slot.get();
}

Result<const float*> Session::eval(const std::vector<int32_t>& tokens, bool all_logits) {
  const auto T = static_cast<int64_t>(tokens.size());
  if (T == 0) return make_error("nothing to evaluate: no tokens");
  if (n_past_ + T > ctx_)
    return make_error(std::to_string(n_past_ + T) + " tokens do not fit the context of " + std::to_string(ctx_) +
                      " (a longer --ctx, up to the model's " + std::to_string(model_->context_length()) +
                      ", or a shorter prompt)");
  for (int32_t t : tokens)
    if (t < 0 || t >= model_->vocab_size())
      return make_error("token id " + std::to_string(t) + " is outside the vocabulary");
  auto f = forward_for(T, all_logits);
  if (!f) return f.error();
  ids_.assign(tokens.begin(), tokens.end());
  pos_.resize(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos_[static_cast<size_t>(t)] = static_cast<int32_t>(n_past_ + t);
  Executor& ex = *(*f)->exec;
  ex.bind_input((*f)->io.ids, ids_.data());
  ex.bind_input((*f)->io.pos, pos_.data());
  last_graph_ = &(*f)->graph;
  ALTUP_TRY(ex.run(threads_, hooks_));
  n_past_ += T;
  return static_cast<const float*>(ex.tensor((*f)->io.logits).data);
}

}  // namespace altup
