// engine/generate.h, the one generation loop: what is emitted, fed and left unfed, and why it
// stops, on the demo model with greedy sampling.
#include <string>
#include <vector>

#include "engine/generate.h"
#include "tests/op_test_util.h"

using namespace altup;

namespace {
const std::string kDemo = std::string(ALTUP_FIXTURES_DIR) + "/../../demo/kjv-altup-k2.gguf";

struct Run {
  std::vector<int32_t> emitted;
  Generation g;
  int64_t n_past = 0;
};

Run greedy(const GenerateOptions& o, int64_t ctx = 0, int stop_after = -1) {
  SessionOptions so;
  so.threads = 1;
  so.ctx = ctx;
  auto s = Session::open(kDemo, so);
  REQUIRE(s.ok());
  SamplerParams sp;
  sp.temperature = 0;
  Sampler sampler(sp, static_cast<int32_t>((*s)->model().vocab_size()));
  std::vector<int32_t> history = (*s)->tokenizer().encode("And God said", true);
  auto logits = (*s)->eval(history);
  REQUIRE(logits.ok());
  Tokenizer::Stream stream((*s)->tokenizer());
  Run r;
  auto g = generate(**s, sampler, *logits, history, o, stream, [&](int32_t id, const std::string&) {
    r.emitted.push_back(id);
    return stop_after < 0 || static_cast<int>(r.emitted.size()) < stop_after;
  });
  REQUIRE(g.ok());
  r.g = *g;
  r.n_past = (*s)->n_past();
  return r;
}
}  // namespace

TEST_CASE("length: every token emitted; the last fed or left unfed as asked") {
  GenerateOptions o;
  o.max_tokens = 6;
  const Run fed = greedy(o);
  CHECK(fed.g.stop == StopReason::length);
  CHECK(fed.emitted.size() == 6);
  CHECK(fed.g.unfed == -1);
  o.feed_last = false;
  const Run unfed = greedy(o);
  CHECK(unfed.emitted == fed.emitted);
  CHECK(unfed.g.unfed == fed.emitted.back());
  CHECK(unfed.n_past == fed.n_past - 1);
}

TEST_CASE("a stop token is neither emitted nor fed; the caller can stop; a full context stops") {
  GenerateOptions o;
  o.max_tokens = 6;
  const Run plain = greedy(o);
  o.stop_ids = {plain.emitted[3]};  // the fourth token's id stops the reply where it first appears
  const Run stopped = greedy(o);
  size_t first = 0;
  while (plain.emitted[first] != plain.emitted[3]) ++first;
  CHECK(stopped.emitted == std::vector<int32_t>(plain.emitted.begin(), plain.emitted.begin() + first));
  CHECK(stopped.g.stop == StopReason::end_of_turn);  // (not the end-of-sequence token)
  CHECK(stopped.g.tokens == static_cast<int64_t>(first) + 1);

  o.stop_ids.clear();
  const Run caller = greedy(o, 0, 2);
  CHECK(caller.g.stop == StopReason::caller);
  CHECK(caller.emitted.size() == 2);

  o.max_tokens = 100;
  const Run full = greedy(o, 8);  // the prompt (3 or 4 tokens) leaves room for a few
  CHECK(full.g.stop == StopReason::context_full);
  CHECK(full.n_past == 8);
  CHECK(full.g.unfed == full.emitted.back());
}
