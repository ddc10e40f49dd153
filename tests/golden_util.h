// Golden model tests: fixtures written by a reference implementation (PyTorch for "altup",
// transformers for "gemma3n"): a prompt, the logits of every position, then greedy decode
// steps through the KV cache, each with its logits. <prefix><name>.gguf / .bin per case, listed
// in an index file ("name vocab prompt_len decode_len" per line).
#pragma once

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/session.h"
#include "tests/op_test_util.h"

namespace altup {

struct Golden {
  std::string name;
  int64_t vocab = 0, prompt_len = 0, decode_len = 0;
  std::vector<int32_t> prompt, tokens;
  std::vector<float> prefill, decode;  // [prompt_len, V], [decode_len, V]
};

inline std::vector<Golden> load_golden(const std::string& index, const std::string& prefix) {
  std::ifstream idx(std::string(ALTUP_FIXTURES_DIR) + "/" + index);
  REQUIRE(idx.good());
  std::vector<Golden> out;
  std::string line;
  while (std::getline(idx, line)) {
    Golden g;
    std::istringstream(line) >> g.name >> g.vocab >> g.prompt_len >> g.decode_len;
    std::ifstream bin(std::string(ALTUP_FIXTURES_DIR) + "/" + prefix + g.name + ".bin", std::ios::binary);
    REQUIRE(bin.good());
    auto read = [&](auto& v, int64_t n) {
      v.resize(static_cast<size_t>(n));
      bin.read(reinterpret_cast<char*>(v.data()), n * 4);
      REQUIRE(bin.good());
    };
    read(g.prompt, g.prompt_len);
    read(g.prefill, g.prompt_len * g.vocab);
    read(g.tokens, g.decode_len);
    read(g.decode, g.decode_len * g.vocab);
    out.push_back(std::move(g));
  }
  return out;
}

inline float max_abs(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

inline void check_logits(const float* got, const float* want, int64_t n, const std::string& what,
                         float rel_tol = 1e-4f) {
  const float tol = rel_tol * max_abs(want, n);
  float worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  CAPTURE(what);
  CAPTURE(worst);
  CAPTURE(tol);
  CHECK(worst <= tol);
}

// Prefill the prompt in one pass, then decode greedily through the KV cache with 1 and 2
// threads: logits within 1e-4 x max|logit|, identical tokens. Twice: with every position's
// logits, and with the last position's only (the graph that skips what no logit needs, as
// generation prefills), whose decode steps then check the caches that prefill left.
// `base`: options beyond the thread count (tests pass small graphs to exercise chunking).
// `file` (default <prefix><name>.gguf; in the fixtures unless absolute) opened as the sub-model `submodel` names.
// rel_tol: the tolerance as a fraction of max|logit|.
// reference_tokens: each decode step is fed the reference's greedy token rather than ours (a
// quantized file, whose rounding may flip a near tie), and the choices are not compared.
inline void check_golden(const Golden& g, const std::string& prefix, SessionOptions base = {},
                         const SubmodelChoice& submodel = {}, const std::string& file = "", float rel_tol = 1e-4f,
                         bool reference_tokens = false) {
  for (bool all_logits : {true, false})
    for (int threads : {1, 2}) {
      const std::string at = g.name + " threads=" + std::to_string(threads) +
                             " graph<=" + std::to_string(base.max_tokens) + (all_logits ? " all" : " last") + " logits";
      SessionOptions opt = base;
      opt.threads = threads;
      const std::string name = file.empty() ? prefix + g.name + ".gguf" : file;
      auto s = Session::open(name[0] == '/' ? name : std::string(ALTUP_FIXTURES_DIR) + "/" + name, opt, submodel);
      REQUIRE_MESSAGE(s.ok(), at << ": " << (s.ok() ? "" : s.error().message));
      Session& sess = **s;
      REQUIRE(sess.model().vocab_size() == g.vocab);
      auto logits = sess.eval(g.prompt, all_logits);
      REQUIRE_MESSAGE(logits.ok(), (logits.ok() ? "" : logits.error().message));
      // The last position's logits, where each call leaves them.
      const float* last = *logits + (all_logits ? (g.prompt_len - 1) * g.vocab : 0);
      if (all_logits)
        check_logits(*logits, g.prefill.data(), g.prompt_len * g.vocab, "prefill " + at, rel_tol);
      else
        check_logits(last, g.prefill.data() + (g.prompt_len - 1) * g.vocab, g.vocab, "prefill " + at, rel_tol);
      // Greedy decoding through the KV cache: the first step's token comes from the prefill.
      int32_t next = static_cast<int32_t>(std::max_element(last, last + g.vocab) - last);
      for (int64_t step = 0; step < g.decode_len; ++step) {
        CAPTURE(step);
        if (step > 0) {
          auto l = sess.eval({next});
          REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.error().message));
          check_logits(*l, g.decode.data() + step * g.vocab, g.vocab, "decode " + at, rel_tol);
          next = static_cast<int32_t>(std::max_element(*l, *l + g.vocab) - *l);
        } else {
          check_logits(last, g.decode.data(), g.vocab, "decode step 0 " + at, rel_tol);
        }
        if (reference_tokens)
          next = g.tokens[static_cast<size_t>(step)];
        else
          REQUIRE(next == g.tokens[static_cast<size_t>(step)]);
      }
    }
}

// A session on `path` with a fixed thread count (decode not tuned) and graphs of at most
// max_tokens tokens.
inline std::unique_ptr<Session> open_session(const std::string& path, int threads = 1,
                                             int64_t max_tokens = kMaxGraphTokens) {
  SessionOptions opt;
  opt.threads = threads;
  opt.tune_decode_threads = false;
  opt.max_tokens = max_tokens;
  auto s = Session::open(path, opt);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(*s);
}

// The case's prompt followed by its greedy tokens but the last: every token whose logits the
// case holds, in order.
inline std::vector<int32_t> golden_sequence(const Golden& g) {
  std::vector<int32_t> ids = g.prompt;
  ids.insert(ids.end(), g.tokens.begin(), g.tokens.end() - 1);
  return ids;
}

}  // namespace altup
