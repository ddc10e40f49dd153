// The "altup" model end to end against the PyTorch reference (fixtures/make_model_fixtures.py):
// tiny random models for K = 1, 2, 3, alternating and fixed blocks, widened and recycled
// embeddings, tied / concatenated outputs, GeGLU, a sliding window and a mixture of experts,
// each converted by the real converter, and dense models (one with experts) written as
// llama.cpp's "llama" architecture. The prompt is prefilled in one pass
// (logits of every position), then 16 tokens are decoded one at a time through the KV cache; logits must agree within
// 1e-4 x max|logit| and the greedy continuation must be identical.
#include <cstring>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "ops/attention.h"
#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif
#include "engine/session.h"
#include "tests/golden_util.h"
#include "tests/op_test_util.h"

using namespace altup;

std::vector<Golden> load() { return load_golden("model_cases.txt", "model_"); }

TEST_CASE("prefill and decode match the PyTorch reference for every configuration") {
  const auto cases = load();
  REQUIRE(cases.size() == 11);
  for (const Golden& g : cases) check_golden(g, "model_");
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

#if defined(ALTUP_HAVE_ONEDNN)
TEST_CASE("a prompt of a length not seen before creates no oneDNN primitive, and its logits are right") {
  const auto cases = load();
  const Golden& g = cases[1];
  REQUIRE(g.prompt_len >= ops::kMinTileQueries);  // one length takes the tiled attention path
  SessionOptions opt;
  opt.threads = 2;
  auto s = Session::open(std::string(ALTUP_FIXTURES_DIR) + "/model_" + g.name + ".gguf", opt);
  REQUIRE(s.ok());
  // The first prefill meets every weight shape, and makes (or finds) their primitives.
  REQUIRE((*s)->eval(std::vector<int32_t>(g.prompt.begin(), g.prompt.begin() + 20), true).ok());
  const int64_t before = ops::dnnl_primitives_created();
  for (int64_t n : {int64_t{27}, int64_t{9}, g.prompt_len, int64_t{13}}) {
    CAPTURE(n);
    (*s)->reset();
    auto l = (*s)->eval(std::vector<int32_t>(g.prompt.begin(), g.prompt.begin() + n), true);
    REQUIRE(l.ok());
    check_logits(*l, g.prefill.data(), n * g.vocab, "prefill of a new length");  // the prompt's first n rows
  }
  CHECK(ops::dnnl_primitives_created() - before == 0);
}
#endif

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

TEST_CASE("a prefill that wants the last logits only runs the last layer past its k and v on one token") {
  // Whether the skip happens (check_golden checks its logits and the caches it leaves): the
  // last layer's k and v still cover every token, its q, FFN, predict and correct one row.
  for (const Golden& g : load()) {
    CAPTURE(g.name);
    auto f = GgufFile::open(std::string(ALTUP_FIXTURES_DIR) + "/model_" + g.name + ".gguf");
    REQUIRE(f.ok());
    auto m = load_model(**f);
    REQUIRE(m.ok());
    const int64_t T = 24;
    for (bool all : {true, false}) {
      Graph graph;
      (*m)->build(graph, T, 64, 64, all);
      int last = -1;
      for (const Node& n : graph.nodes()) last = std::max(last, n.layer);
      int64_t k_rows = 0, q_rows = 0, ffn_rows = 0, earlier_ffn = 0;
      for (const Node& n : graph.nodes()) {
        const int64_t rows = graph.tensor(n.output).shape.rows();
        if (n.layer == last && n.name == "attn_k") k_rows = rows;
        if (n.layer == last && n.name == "attn_q") q_rows = rows;
        const bool ffn = n.name == "ffn_gate" || n.name == "ffn_router";  // dense, or a mixture of experts
        if (n.layer == last && ffn) ffn_rows = rows;
        if (n.layer == 0 && ffn && last > 0) earlier_ffn = rows;
      }
      CHECK(k_rows == T);
      CHECK(q_rows == (all ? T : 1));
      CHECK(ffn_rows == (all ? T : 1));
      if (last > 0) CHECK(earlier_ffn == T);
    }
  }
}
