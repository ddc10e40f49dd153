// The weight list: a file that matches binds every tensor; a file that does not is reported
// on one line: the first three mismatches and how many more.
#include <doctest/doctest.h>

#include "runtime/weights.h"

using namespace altup;

namespace {
const std::vector<DType> kFloat = {DType::F32, DType::F16, DType::BF16};
const std::vector<DType> kAny = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

std::vector<WeightSpec> llama_like_specs() {
  return {
      {"token_embd.weight", {262, 64}, kAny, true},  {"blk.0.attn_norm.weight", {64}, kFloat, true},
      {"blk.0.attn_q.weight", {64, 64}, kAny, true}, {"blk.0.attn_k.weight", {32, 64}, kAny, true},
      {"blk.0.attn_v.weight", {32, 64}, kAny, true}, {"blk.0.attn_output.weight", {64, 64}, kAny, true},
      {"blk.0.ffn_norm.weight", {64}, kFloat, true}, {"blk.0.ffn_gate.weight", {96, 64}, kAny, true},
      {"blk.0.ffn_up.weight", {96, 64}, kAny, true}, {"blk.0.ffn_down.weight", {64, 96}, kAny, true},
      {"output_norm.weight", {64}, kFloat, true},    {"output.weight", {262, 64}, kAny, false},
      {"rope_freqs.weight", {16}, kFloat, false},  // optional and absent
  };
}
}  // namespace

TEST_CASE("a matching file binds every present tensor and counts its bytes") {
  auto f = GgufFile::open(ALTUP_FIXTURES_DIR "/llama_like.gguf");
  REQUIRE(f.ok());
  auto w = bind_weights(**f, llama_like_specs());
  REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.error().message));
  CHECK(w->views.size() == 12);
  CHECK(w->unused.empty());
  CHECK(w->find("rope_freqs.weight") == nullptr);
  const TensorView* q = w->find("blk.0.attn_q.weight");
  REQUIRE(q);
  CHECK(q->dtype == DType::Q8_0);
  uint64_t sum = 0;
  for (const auto& t : (*f)->tensors()) sum += t.nbytes;
  CHECK(w->total_bytes == sum);
  CHECK(w->bytes_by_dtype.at(DType::Q4_0) == 2 * 96 * 2 * 18);
}

TEST_CASE("every mismatch is reported at once") {
  auto f = GgufFile::open(ALTUP_FIXTURES_DIR "/llama_like.gguf");
  REQUIRE(f.ok());
  auto specs = llama_like_specs();
  specs[2].shape = {64, 128};                                      // wrong shape
  specs[7].accepted = {DType::F32};                                // q4_0 not accepted
  specs.push_back({"blk.1.attn_q.weight", {64, 64}, kAny, true});  // missing
  specs.erase(specs.begin() + 3);                                  // attn_k no longer listed: unused
  auto w = bind_weights(**f, specs);
  REQUIRE_FALSE(w.ok());
  const std::string& m = w.error().message;
  CHECK(m.find('\n') == std::string::npos);
  CHECK(m.find("blk.0.attn_q.weight: shape [64, 64], expected [64, 128]") != std::string::npos);
  CHECK(m.find("blk.0.ffn_gate.weight: dtype Q4_0 is not supported here (accepted: F32)") != std::string::npos);
  CHECK(m.find("missing tensor blk.1.attn_q.weight [64, 64]") != std::string::npos);

  specs.push_back({"blk.2.attn_q.weight", {64, 64}, kAny, true});  // a fourth: counted, not listed
  w = bind_weights(**f, specs);
  REQUIRE_FALSE(w.ok());
  CHECK(w.error().message.find("(and 1 more)") != std::string::npos);
  CHECK(w.error().message.find("blk.2.attn_q") == std::string::npos);

  specs = llama_like_specs();
  specs.erase(specs.begin() + 3);
  auto ok = bind_weights(**f, specs);
  REQUIRE(ok.ok());
  REQUIRE(ok->unused.size() == 1);
  CHECK(ok->unused[0] == "blk.0.attn_k.weight");
}
