#include "cli/generate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "cli/util.h"

namespace altup::cli {

void SamplingOptions::add_to(std::vector<Option>& o) {
  o.push_back(real(nullptr, "--temp", &temp, 0, 100, "T", "temperature; 0 = greedy (default 0.8)"));
  o.push_back(
      integer(nullptr, "--top-k", &top_k, 0, 1 << 30, "K", "keep the K most likely tokens; 0 = off (default 40)"));
  o.push_back(real(nullptr, "--top-p", &top_p, 0, 1, "P",
                   "keep the most likely tokens up to probability P;\n1 = off (default 0.95)", /*open_min=*/true));
  o.push_back(real(nullptr, "--min-p", &min_p, 0, 1, "P",
                   "drop tokens below P x the most likely one; 0 = off\n(default 0.05)"));
  o.push_back(real(nullptr, "--repeat-penalty", &repeat_penalty, 0.01, 100, "R",
                   "penalty for the last --repeat-last-n tokens; 1 = off\n(default 1.1)"));
  o.push_back(integer(nullptr, "--repeat-last-n", &repeat_last_n, 0, 1 << 30, "N", "(default 64)"));
  o.push_back(integer(nullptr, "--seed", &seed, 0, 1ll << 62, "S", "random seed (default: a random one)"));
  o.back().given = &seed_given;
}

SamplerParams SamplingOptions::params() const {
  SamplerParams sp;
  sp.temperature = static_cast<float>(temp);
  sp.top_k = static_cast<int>(top_k);
  sp.top_p = static_cast<float>(top_p);
  sp.min_p = static_cast<float>(min_p);
  sp.repeat_penalty = static_cast<float>(repeat_penalty);
  sp.repeat_last_n = static_cast<int>(repeat_last_n);
  sp.seed = seed_given ? static_cast<uint64_t>(seed) : std::random_device{}();
  return sp;
}

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
