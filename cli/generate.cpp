#include "cli/generate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli/util.h"

namespace altup::cli {

Reply generate(Session& s, Sampler& sampler, const float* logits, std::vector<int32_t>& history, long long max_tokens,
               const std::vector<int32_t>& stop_ids, Tokenizer::Stream& stream, const char* command) {
  using clock = std::chrono::steady_clock;
  Reply r;
  const auto t0 = clock::now();
  while (r.tokens < max_tokens) {
    const int32_t next = sampler.sample(logits, history);
    history.push_back(next);
    ++r.tokens;
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
      r.stop = next == s.tokenizer().eos() ? "end of sequence" : "end of turn";
      r.stopped_at_token = true;
      break;
    }
    std::fputs(stream.push(next).c_str(), stdout);
    if (!stdout_ok(command)) {  // (it flushes: the text appears as it is made)
      r.ok = false;
      break;
    }
    if (r.tokens == max_tokens || s.n_past() >= s.ctx()) {
      if (r.tokens != max_tokens) r.stop = "context full";
      r.unfed = next;
      break;
    }
    auto l = s.eval({next});
    if (!l) {
      std::fprintf(stderr, "\naltup %s: error: decode step %lld: %s\n", command, r.tokens, l.error().message.c_str());
      r.ok = false;
      break;
    }
    logits = *l;
  }
  r.decode_s = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

}  // namespace altup::cli
