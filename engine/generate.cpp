#include "engine/generate.h"

#include <algorithm>
#include <chrono>

namespace altup {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::length: return "length";
    case StopReason::end_of_sequence: return "end of sequence";
    case StopReason::end_of_turn: return "end of turn";
    case StopReason::context_full: return "context full";
    case StopReason::caller: return "stopped";
  }
  return "?";
}

Result<Generation> generate(Session& s, Sampler& sampler, const float* logits, std::vector<int32_t>& history,
                            const GenerateOptions& o, Tokenizer::Stream& stream, const TokenSink& on_token) {
  using clock = std::chrono::steady_clock;
  Generation r;
  const auto t0 = clock::now();
  while (r.tokens < o.max_tokens) {
    const int32_t next = sampler.sample(logits, history);
    history.push_back(next);
    ++r.tokens;
    if (std::find(o.stop_ids.begin(), o.stop_ids.end(), next) != o.stop_ids.end()) {
      r.stop = next == s.tokenizer().eos() ? StopReason::end_of_sequence : StopReason::end_of_turn;
      break;
    }
    const bool go_on = on_token(next, stream.push(next));
    const bool full = s.n_past() >= s.ctx();
    if (!go_on)
      r.stop = StopReason::caller;
    else if (full && r.tokens < o.max_tokens)
      r.stop = StopReason::context_full;
    const bool last = !go_on || full || r.tokens == o.max_tokens;
    if (full || (last && !o.feed_last)) {
      r.unfed = next;
      break;
    }
    auto l = s.eval({next});
    if (!l) {
      Error e = l.error();  // its kind kept (a caller may classify it)
      e.message = "decode step " + std::to_string(r.tokens) + ": " + e.message;
      return e;
    }
    logits = *l;
    if (last) break;
  }
  r.logits = logits;
  r.decode_s = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

}  // namespace altup
