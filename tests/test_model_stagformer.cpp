// StagFormer (models/stagformer.h) against our PyTorch reference (converters/altup_tools/
// stagformer.py, fixtures/make_stagformer_fixtures.py): tiny random models of 2 and 3 stacks,
// separate and shared weights, full and windowed cross-attention (window 1 checked against
// its linear-map form), and one stack. Then the equivalences the design rests on: prefill
// equals token-by-token decode, the concurrent decode step equals the stacks one after the
// other bit for bit, and one stack is the plain decoder.
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <set>

#include "engine/session.h"
#include "models/stagformer.h"
#include "tests/cli_test_util.h"
#include "tests/gguf_edit.h"
#include "tests/golden_util.h"

using namespace altup;

namespace {

std::string fixture(const std::string& name) { return std::string(ALTUP_FIXTURES_DIR) + "/" + name; }

// ALTUP_STAGGER=0 for the scope: decode steps run the stacks one after the other.
struct Sequential {
  Sequential() { setenv("ALTUP_STAGGER", "0", 1); }
  ~Sequential() { unsetenv("ALTUP_STAGGER"); }
};

// The logits of `tokens`: a prefill of the first `prefill` of them, then one at a time.
std::vector<float> run(Session& s, const std::vector<int32_t>& tokens, size_t prefill) {
  const int64_t V = s.model().vocab_size();
  std::vector<float> out;
  auto first = s.eval({tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(prefill)}, true);
  REQUIRE(first.ok());
  out.insert(out.end(), *first, *first + static_cast<int64_t>(prefill) * V);
  for (size_t t = prefill; t < tokens.size(); ++t) {
    auto l = s.eval({tokens[t]});
    REQUIRE(l.ok());
    out.insert(out.end(), *l, *l + V);
  }
  return out;
}

}  // namespace

TEST_CASE("every StagFormer variant matches the PyTorch reference: prefill and 16 decode steps") {
  for (const Golden& g : load_golden("stagformer_cases.txt", "stagformer_")) {
    CAPTURE(g.name);
    check_golden(g, "stagformer_");
    SessionOptions small;  // 8-token graphs: chunked prefill, windows as rings
    small.max_tokens = 8;
    check_golden(g, "stagformer_", small);
    const Sequential seq;  // and with the stacks of each decode step one after the other
    check_golden(g, "stagformer_");
  }
}

TEST_CASE("the model describes its stacks") {
  auto f = GgufFile::open(fixture("stagformer_p3_shared_w3_tied_geglu.gguf"));
  REQUIRE(f.ok());
  auto m = StagFormerModel::load(**f);
  REQUIRE(m.ok());
  const StagFormerHParams& hp = (*m)->hparams();
  CHECK(hp.stacks == 3);
  CHECK(hp.depth == 2);
  CHECK(hp.shared);
  CHECK(hp.cross_window == 3);
  REQUIRE((*m)->spec().size() == 6);
  for (int64_t l = 0; l < 6; ++l) {
    CHECK((*m)->spec()[l].stack == l / 2);
    CHECK((*m)->spec()[l].weights == l % 2);  // shared: every stack reads blk.0-1
    CHECK((*m)->spec()[l].cross == (l >= 2));
  }
  CHECK((*m)->concurrent());
}

TEST_CASE("prefill of a sequence equals feeding it a token at a time") {
  for (const Golden& g : load_golden("stagformer_cases.txt", "stagformer_")) {
    CAPTURE(g.name);
    const std::vector<int32_t> ids = golden_sequence(g);
    auto a = open_session(fixture("stagformer_" + g.name + ".gguf"));
    const std::vector<float> whole = run(*a, ids, ids.size());
    auto b = open_session(fixture("stagformer_" + g.name + ".gguf"));
    const std::vector<float> stepped = run(*b, ids, 1);
    check_logits(stepped.data(), whole.data(), static_cast<int64_t>(whole.size()), "token by token");
  }
}

TEST_CASE("a decode step with the stacks together gives the bits of the stacks one after the other") {
  // Shared weights: f32 and Q8_0 products of 1 and of 3 rows take the GEMV, whose rows do not
  // depend on each other. Separate weights: the stacks run as branches on groups of threads (3
  // threads: groups of 1 and 2; 4: two of 2, each product forking its own team), and no op's
  // result depends on how many threads compute it.
  for (const char* file :
       {"stagformer_p2_shared.gguf", "stagformer_p2_shared_q8_0.gguf", "stagformer_p3_shared_w3_tied_geglu.gguf",
        "stagformer_p2_shared_w1.gguf", "stagformer_p2_separate.gguf", "stagformer_p2_separate_w5.gguf",
        "stagformer_p3_separate.gguf"})
    for (int threads : {1, 2, 3, 4}) {
      CAPTURE(file);
      CAPTURE(threads);
      const Golden g = load_golden("stagformer_cases.txt", "stagformer_").at(1);  // any tokens of the vocabulary
      const std::vector<int32_t> ids = golden_sequence(g);
      auto together = open_session(fixture(file), threads, 8);
      REQUIRE(dynamic_cast<const StagFormerModel&>(together->model()).concurrent());
      const std::vector<float> a = run(*together, ids, 5);
      std::vector<float> b;
      {
        const Sequential seq;
        auto apart = open_session(fixture(file), threads, 8);
        REQUIRE_FALSE(dynamic_cast<const StagFormerModel&>(apart->model()).concurrent());
        b = run(*apart, ids, 5);
      }
      REQUIRE(a.size() == b.size());
      CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("with separate weights a decode step is one section with a branch per stack; prefill has none") {
  for (const char* file : {"stagformer_p2_separate.gguf", "stagformer_p3_separate.gguf", "stagformer_p2_shared.gguf"}) {
    CAPTURE(file);
    auto f = GgufFile::open(fixture(file));
    REQUIRE(f.ok());
    auto m = StagFormerModel::load(**f);
    REQUIRE(m.ok());
    Graph decode, prefill;
    (void)(*m)->build(decode, 1, 64, 8, false);
    (void)(*m)->build(prefill, 8, 64, 8, false);
    REQUIRE(decode.validate().ok());
    CHECK(prefill.sections().empty());
    if ((*m)->hparams().shared) {
      CHECK(decode.sections().empty());  // one p-row pass instead
      continue;
    }
    REQUIRE(decode.sections().size() == 1);
    const Section& sec = decode.sections()[0];
    CHECK(sec.branches == (*m)->hparams().stacks);
    // Every layer's nodes are in the branch of its stack, but the memory its cross-attention
    // reads: the previous stack's branch makes it, and only its stores come after the section.
    for (int k = sec.first; k < sec.end; ++k) {
      const Node& n = decode.nodes()[static_cast<size_t>(k)];
      CHECK(n.branch == (*m)->spec()[n.layer].stack - (n.cost == Cost::memory ? 1 : 0));
    }
    int stores = 0;
    for (size_t k = static_cast<size_t>(sec.end); k < decode.nodes().size(); ++k) {
      const Node& n = decode.nodes()[k];
      if (n.cost == Cost::memory) CHECK(n.op->name == std::string("kv_store"));
      stores += n.cost == Cost::memory;
    }
    CHECK(stores == 2 * ((*m)->hparams().stacks - 1) * (*m)->hparams().depth);
    (*m)->set_concurrent(false);
    Graph apart;
    (void)(*m)->build(apart, 1, 64, 8, false);
    CHECK(apart.sections().empty());
  }
}

TEST_CASE("tuned decode steps try the stacks as branches and not, with the same bits; ALTUP_BRANCHES pins it") {
  const Golden g = load_golden("stagformer_cases.txt", "stagformer_").at(1);
  const std::vector<int32_t> ids = golden_sequence(g);
  const std::string file = fixture("stagformer_p2_separate.gguf");
  std::vector<float> apart;
  {
    const Sequential seq;
    apart = run(*open_session(file, 2, 8), ids, 5);
  }
  SessionOptions tuned;
  tuned.threads = 2;
  tuned.max_tokens = 8;
  auto s = Session::open(file, tuned);
  REQUIRE(s.ok());
  const std::vector<float> a = run(**s, ids, 5);  // 11 steps: past the warm-up of (2, at once), (2, not), (1)
  REQUIRE(a.size() == apart.size());
  CHECK(std::memcmp(a.data(), apart.data(), a.size() * sizeof(float)) == 0);

  auto pinned = [&](const char* env, const char* path) {
    if (env) setenv("ALTUP_BRANCHES", env, 1);
    auto p = open_session(path, 2, 8);  // decode on both threads, not tuned
    unsetenv("ALTUP_BRANCHES");
    run(*p, ids, 5);
    return p->decode_branches();
  };
  CHECK(pinned(nullptr, file.c_str()));
  CHECK(pinned("1", file.c_str()));
  CHECK_FALSE(pinned("0", file.c_str()));
  CHECK_FALSE(pinned("1", fixture("stagformer_p2_shared.gguf").c_str()));  // one p-row pass: no branches
}

TEST_CASE("one stack is the plain decoder: the same weights as an altup K = 1 file give the same bits") {
  const Golden g = load_golden("stagformer_cases.txt", "stagformer_").back();
  REQUIRE(g.name == "p1");
  const std::vector<int32_t> ids = golden_sequence(g);
  // Without its coefficients (predict [[1]], correct [1]) a K = 1 file runs its layers plainly,
  // as a StagFormer's stack does; with them x + 1·(y - x) would round differently.
  auto file = GgufFile::open(fixture("stagformer_p1_as_altup.gguf"));
  REQUIRE(file.ok());
  test::EditableGguf e = test::EditableGguf::from(**file);
  for (int l = 0; l < 3; ++l)
    for (const char* t : {"altup_predict_coef.weight", "altup_correct_coef.weight"})
      e.erase_tensor("blk." + std::to_string(l) + "." + t);
  test::TempDir dir;
  const std::string path = dir.path + "/plain.gguf";
  const auto bytes = e.write();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  auto stag = open_session(fixture("stagformer_p1.gguf"));
  auto plain = open_session(path);
  REQUIRE(plain->model().arch() == "altup");
  const std::vector<float> a = run(*stag, ids, 7), b = run(*plain, ids, 7);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("a StagFormer refuses a sub-model choice with one clear error") {
  SubmodelChoice c;
  c.ffn_widths = "24";
  auto s = Session::open(fixture("stagformer_p2_shared.gguf"), {}, c);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("a StagFormer has no sub-models") != std::string::npos);
}

TEST_CASE("the shipped StagFormer generates, with its stacks together or apart alike") {
  const std::string demo = std::string(ALTUP_FIXTURES_DIR) + "/../../demo/kjv-stagformer-2x3-shared.gguf";
  auto file = GgufFile::open(demo);
  REQUIRE(file.ok());
  auto m = StagFormerModel::load(**file);
  REQUIRE(m.ok());
  CHECK((*m)->hparams().stacks == 2);
  CHECK((*m)->hparams().shared);
  // Greedy tokens from the same prompt: the p-row decode step and the stacks one after the
  // other choose the same ones (f16 weights: the 2-row products may round differently, the
  // choices must not differ on this prompt).
  auto tokens = [&](bool together) {
    std::unique_ptr<Sequential> seq;
    if (!together) seq = std::make_unique<Sequential>();
    auto s = open_session(demo, 1);
    std::vector<int32_t> ids = {1, 100, 200, 300};
    auto l = s->eval(ids);
    REQUIRE(l.ok());
    for (int step = 0; step < 24; ++step) {
      const int64_t V = s->model().vocab_size();
      const int32_t next = static_cast<int32_t>(std::max_element(*l, *l + V) - *l);
      ids.push_back(next);
      l = s->eval({next});
      REQUIRE(l.ok());
    }
    return ids;
  };
  const auto a = tokens(true), b = tokens(false);
  CHECK(a == b);
  CHECK(std::set<int32_t>(a.begin() + 4, a.end()).size() > 3);  // not one token repeated
}
