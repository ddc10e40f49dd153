// Sequence-AltUp (ops/seq_altup.h, models/altup.cpp) against our PyTorch reference
// (converters/altup_tools/model.py, fixtures/make_seq_fixtures.py): tiny random models with
// strides 2 to 5 on some or all layers, K = 1 and AltUp K = 2, widened and recycled, one with
// a mixture of experts. Prefill in one graph and in chunks that start between anchors, decode
// through the anchors' caches and states; and token-by-token decode equals prefill.
#include <cstring>
#include <fstream>

#include "engine/session.h"
#include "models/altup.h"
#include "tests/cli_test_util.h"
#include "tests/gguf_edit.h"
#include "tests/golden_util.h"

using namespace altup;

namespace {

std::string fixture(const std::string& name) { return std::string(ALTUP_FIXTURES_DIR) + "/" + name; }

// The logits of every token, fed in pieces of the sizes `pieces` cycles through.
std::vector<float> run(Session& s, const std::vector<int32_t>& tokens, const std::vector<size_t>& pieces) {
  const int64_t V = s.model().vocab_size();
  std::vector<float> out;
  for (size_t t = 0, i = 0; t < tokens.size(); ++i) {
    const size_t n = std::min(pieces[i % pieces.size()], tokens.size() - t);
    auto l = s.eval(
        {tokens.begin() + static_cast<std::ptrdiff_t>(t), tokens.begin() + static_cast<std::ptrdiff_t>(t + n)}, true);
    REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.error().message));
    out.insert(out.end(), *l, *l + static_cast<int64_t>(n) * V);
    t += n;
  }
  return out;
}

}  // namespace

TEST_CASE("every Sequence-AltUp model matches the PyTorch reference: prefill and 16 decode steps") {
  const auto cases = load_golden("seq_cases.txt", "seq_");
  REQUIRE(cases.size() == 4);
  for (const Golden& g : cases) {
    CAPTURE(g.name);
    check_golden(g, "seq_");
    for (int64_t chunk : {5, 3}) {  // chunks that start at every phase of the strides
      SessionOptions small;
      small.max_tokens = chunk;
      check_golden(g, "seq_", small);
    }
  }
}

TEST_CASE("the strides are read per layer") {
  auto f = GgufFile::open(fixture("seq_k1_s2_inner.gguf"));
  REQUIRE(f.ok());
  auto m = AltUpModel::load(**f, "altup");
  REQUIRE(m.ok());
  const DecoderSpec& spec = (*m)->spec();
  REQUIRE(spec.size() == 4);
  CHECK(spec[0].seq_stride == 1);
  CHECK(spec[1].seq_stride == 2);
  CHECK(spec[2].seq_stride == 2);
  CHECK(spec[3].seq_stride == 1);
  CHECK((*m)->period() == 2);
  // A strided layer's cache holds its anchors alone: half the slots of a full one.
  const auto states = (*m)->state_specs(64, 8);
  int seq_states = 0;
  for (const StateSpec& s : states) {
    if (s.name == "kcache-0") CHECK(s.shape[1] == 64);
    if (s.name == "kcache-1") CHECK(s.shape[1] == 32);
    if (s.name.rfind("seqstate-", 0) == 0) {
      ++seq_states;
      CHECK(s.shape[1] == 32);
    }
  }
  CHECK(seq_states == 2);
}

TEST_CASE("prefill equals feeding the tokens one at a time, and in pieces of any phase") {
  for (const Golden& g : load_golden("seq_cases.txt", "seq_")) {
    CAPTURE(g.name);
    const std::vector<int32_t> ids = golden_sequence(g);
    auto a = open_session(fixture("seq_" + g.name + ".gguf"));
    const std::vector<float> whole = run(*a, ids, {ids.size()});
    for (const std::vector<size_t>& pieces : std::vector<std::vector<size_t>>{{1}, {3, 1, 2}, {7}}) {
      auto b = open_session(fixture("seq_" + g.name + ".gguf"), 2);
      const std::vector<float> stepped = run(*b, ids, pieces);
      check_logits(stepped.data(), whole.data(), static_cast<int64_t>(whole.size()), "in pieces");
    }
  }
}

TEST_CASE("taking tokens back and feeding others continues from the right anchor") {
  const Golden g = load_golden("seq_cases.txt", "seq_").at(1);  // stride 3 on every layer
  const std::vector<int32_t> ids = golden_sequence(g);
  auto ref = open_session(fixture("seq_" + g.name + ".gguf"));
  const std::vector<float> want = run(*ref, ids, {ids.size()});
  auto s = open_session(fixture("seq_" + g.name + ".gguf"));
  std::vector<int32_t> other = ids;
  for (size_t t = 10; t < other.size(); ++t) other[t] = (other[t] + 7) % 320;
  run(*s, other, {4});                 // the anchors past 10 now hold other tokens' states
  for (int64_t keep : {10, 11, 12}) {  // an anchor (9, 12) or between them
    CAPTURE(keep);
    REQUIRE(s->truncate(keep).ok());
    const std::vector<int32_t> rest(ids.begin() + keep, ids.end());
    const std::vector<float> got = run(*s, rest, {2, 1});
    const int64_t V = s->model().vocab_size();
    check_logits(got.data(), want.data() + keep * V, static_cast<int64_t>(got.size()), "after truncate");
    REQUIRE(s->truncate(keep).ok());
    run(*s, std::vector<int32_t>(other.begin() + keep, other.end()), {5});
  }
}

TEST_CASE("Q8_0: near the reference, and prefill equals decode") {
  // Q8_0 rounds a width of 32 coarsely: the float reference is 4.3% of max|logit| away at
  // worst on this model, so 6% here; what the strided layers compute is checked at f32 above.
  const Golden g = load_golden("seq_cases.txt", "seq_").at(0);
  check_golden(g, "seq_", {}, {}, "seq_" + g.name + "_q8_0.gguf", 6e-2f, /*reference_tokens=*/true);
  const std::vector<int32_t> ids = golden_sequence(g);
  auto a = open_session(fixture("seq_" + g.name + "_q8_0.gguf"));
  const std::vector<float> whole = run(*a, ids, {ids.size()});
  auto b = open_session(fixture("seq_" + g.name + "_q8_0.gguf"));
  const std::vector<float> stepped = run(*b, ids, {1});
  // A prefill's products may take kernels that keep the activations in f32 (oneDNN on some
  // tables) where a decode step quantizes them to 8 bits: 3% of max|logit| (1.7% seen).
  check_logits(stepped.data(), whole.data(), static_cast<int64_t>(whole.size()), "Q8_0 token by token", 3e-2f);
}

TEST_CASE("stride 1 on every layer is the dense model, bit for bit") {
  // The same file with its strides set to 1 (and so without the coefficients) against the
  // file without the key: every layer runs on every token either way.
  auto file = GgufFile::open(fixture("seq_k1_s2_inner.gguf"));
  REQUIRE(file.ok());
  test::TempDir dir;
  auto write = [&](bool with_key) {
    test::EditableGguf e = test::EditableGguf::from(**file);
    test::Bytes b;
    b.put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(4);
    for (int i = 0; i < 4; ++i) b.put<int32_t>(1);
    if (with_key)
      e.set_raw("altup.sequence.stride", b.bytes());
    else
      e.erase("altup.sequence.stride");
    for (int l : {1, 2}) e.erase_tensor("blk." + std::to_string(l) + ".seq_coef.weight");
    const std::string path = dir.path + (with_key ? "/ones.gguf" : "/dense.gguf");
    const auto bytes = e.write();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  };
  const Golden g = load_golden("seq_cases.txt", "seq_").at(0);
  const std::vector<int32_t> ids = golden_sequence(g);
  auto ones = open_session(write(true), 1, 5), dense = open_session(write(false), 1, 5);
  REQUIRE(ones->model().period() == 1);
  const std::vector<float> a = run(*ones, ids, {3, 1}), b = run(*dense, ids, {3, 1});
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}
