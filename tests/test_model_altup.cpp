// The "altup" model end to end against the PyTorch reference (fixtures/make_model_fixtures.py):
// tiny random models for K = 1, 2, 3, alternating and fixed blocks, widened and recycled
// embeddings, tied / concatenated outputs, GeGLU and a sliding window, each converted by the
// real converter, and a dense model written as llama.cpp's "llama" architecture. The prompt is prefilled in one pass
// (logits of every position), then 16 tokens are decoded one at a time through the KV cache; logits must agree within
// 1e-4 x max|logit| and the greedy continuation must be identical.
#include <cstring>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "runtime/session.h"
#include "tests/op_test_util.h"

using namespace altup;

namespace {

struct Golden {
  std::string name;
  int64_t vocab = 0, prompt_len = 0, decode_len = 0;
  std::vector<int32_t> prompt, tokens;
  std::vector<float> prefill, decode;  // [prompt_len, V], [decode_len, V]
};

std::vector<Golden> load() {
  std::ifstream idx(ALTUP_FIXTURES_DIR "/model_cases.txt");
  REQUIRE(idx.good());
  std::vector<Golden> out;
  std::string line;
  while (std::getline(idx, line)) {
    Golden g;
    std::istringstream(line) >> g.name >> g.vocab >> g.prompt_len >> g.decode_len;
    std::ifstream bin(std::string(ALTUP_FIXTURES_DIR) + "/model_" + g.name + ".bin", std::ios::binary);
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

float max_abs(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void check_logits(const float* got, const float* want, int64_t n, const std::string& what) {
  const float tol = 1e-4f * max_abs(want, n);
  float worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  CAPTURE(what);
  CAPTURE(worst);
  CAPTURE(tol);
  CHECK(worst <= tol);
}

}  // namespace

TEST_CASE("prefill and decode match the PyTorch reference for every configuration") {
  const auto cases = load();
  REQUIRE(cases.size() == 8);
  for (const Golden& g : cases) {
    for (int threads : {1, 2}) {
      const std::string at = g.name + " threads=" + std::to_string(threads);
      SessionOptions opt;
      opt.threads = threads;
      auto s = Session::open(std::string(ALTUP_FIXTURES_DIR) + "/model_" + g.name + ".gguf", opt);
      REQUIRE_MESSAGE(s.ok(), at << ": " << (s.ok() ? "" : s.error().message));
      Session& sess = **s;
      REQUIRE(sess.model().vocab_size() == g.vocab);
      auto logits = sess.eval(g.prompt, /*all_logits=*/true);
      REQUIRE_MESSAGE(logits.ok(), (logits.ok() ? "" : logits.error().message));
      check_logits(*logits, g.prefill.data(), g.prompt_len * g.vocab, "prefill " + at);
      // Greedy decoding through the KV cache: the first step's token comes from the prefill.
      const float* last = *logits + (g.prompt_len - 1) * g.vocab;
      int32_t next = static_cast<int32_t>(std::max_element(last, last + g.vocab) - last);
      for (int64_t step = 0; step < g.decode_len; ++step) {
        CAPTURE(step);
        if (step > 0) {
          auto l = sess.eval({next});
          REQUIRE(l.ok());
          check_logits(*l, g.decode.data() + step * g.vocab, g.vocab, "decode " + at);
          next = static_cast<int32_t>(std::max_element(*l, *l + g.vocab) - *l);
        } else {
          check_logits(last, g.decode.data(), g.vocab, "decode step 0 " + at);
        }
        REQUIRE(next == g.tokens[static_cast<size_t>(step)]);
      }
    }
  }
}

TEST_CASE("determinism: the same model, prompt and threads give the same bits run after run") {
  const auto cases = load();
  for (const Golden& g : cases) {
    std::vector<float> runs[2];
    for (auto& out : runs) {
      SessionOptions opt;
      opt.threads = 2;
      auto s = Session::open(std::string(ALTUP_FIXTURES_DIR) + "/model_" + g.name + ".gguf", opt);
      REQUIRE(s.ok());
      auto logits = (*s)->eval(g.prompt, /*all_logits=*/true);
      REQUIRE(logits.ok());
      out.assign(*logits, *logits + g.prompt_len * g.vocab);
      auto l = (*s)->eval({g.tokens[0]});  // and one decode step through the cache
      REQUIRE(l.ok());
      out.insert(out.end(), *l, *l + g.vocab);
    }
    CAPTURE(g.name);
    CHECK(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * 4) == 0);
  }
}

TEST_CASE("a prompt split into chunks gives the same logits as one prefill") {
  const auto cases = load();
  const Golden& g = cases[1];
  auto s = Session::open(std::string(ALTUP_FIXTURES_DIR) + "/model_" + g.name + ".gguf");
  REQUIRE(s.ok());
  std::vector<int32_t> a(g.prompt.begin(), g.prompt.begin() + 20), b(g.prompt.begin() + 20, g.prompt.end());
  REQUIRE((*s)->eval(a, true).ok());
  auto l = (*s)->eval(b, true);
  REQUIRE(l.ok());
  check_logits(*l, g.prefill.data() + 20 * g.vocab, 12 * g.vocab, "chunked prefill");
}

TEST_CASE("sessions refuse what does not fit: long prompts, bad ids, unknown architectures") {
  const auto cases = load();
  SessionOptions opt;
  opt.ctx = 16;
  auto s = Session::open(std::string(ALTUP_FIXTURES_DIR) + "/model_" + cases[0].name + ".gguf", opt);
  REQUIRE(s.ok());
  auto r = (*s)->eval(cases[0].prompt);  // 32 tokens into a context of 16
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("32 tokens do not fit the context of 16") != std::string::npos);
  r = (*s)->eval({-1});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "token id -1 is outside the vocabulary");
  CHECK((*s)->n_past() == 0);

  // A llama file with Q8_0 and Q4_0 matrices (written by the gguf package) loads and runs.
  auto llama = Session::open(ALTUP_FIXTURES_DIR "/llama_like.gguf");
  REQUIRE_MESSAGE(llama.ok(), (llama.ok() ? "" : llama.error().message));
  auto lg = (*llama)->eval({1, 2, 3});
  REQUIRE_MESSAGE(lg.ok(), (lg.ok() ? "" : lg.error().message));
  auto other = Session::open(ALTUP_FIXTURES_DIR "/all_types.gguf");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().message.find("unknown architecture 'test'") != std::string::npos);
}
