// The "gemma3n" model end to end against Hugging Face transformers
// (fixtures/make_gemma3n_fixtures.py): three tiny random Gemma 3n text models that differ in
// width, K (4, 2, 4), active stream, per-layer FFN widths, sparse layers, a sliding window
// shorter than the 64-token prompt, 2-3 KV-shared layers, head size != hidden / heads, and
// the checkpoint's dtype (f32, bf16 in two shards, f16) and layout (multimodal, text-only),
// each converted by our converter. Logits of every prompt position and of 16 greedy decode
// steps through the KV cache agree within 1e-4 x max|logit|, with 1 and 2 threads.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/gemma3n.h"
#include "runtime/gguf.h"
#include "engine/session.h"
#include "tests/gguf_edit.h"
#include "tests/golden_util.h"

using namespace altup;

namespace {
std::vector<Golden> load() { return load_golden("gemma3n_cases.txt", "gemma3n_"); }
std::string path(const Golden& g) { return std::string(ALTUP_FIXTURES_DIR) + "/gemma3n_" + g.name + ".gguf"; }
}  // namespace

TEST_CASE("gemma3n: prefill and decode match transformers for every configuration") {
  const auto cases = load();
  REQUIRE(cases.size() == 3);
  for (const Golden& g : cases) check_golden(g, "gemma3n_");
}

TEST_CASE("gemma3n: sliding-window layers keep rings (window + graph size), and still match transformers") {
  // Graphs of at most 8 tokens: the sliding layers' caches become rings of window + 8 slots
  // (24 to 40 of 256), the 64-token prompt goes in as 8 chunks, and decoding wraps around.
  SessionOptions small;
  small.max_tokens = 8;
  for (const Golden& g : load()) {
    check_golden(g, "gemma3n_", small);
    auto s = Session::open(path(g), small);
    REQUIRE(s.ok());
    CHECK((*s)->max_rollback() == 8);
    CHECK((*s)->kv_cache_bytes(256) < Session::open(path(g)).value()->kv_cache_bytes(256));
    REQUIRE((*s)->eval(g.prompt).ok());
    CHECK((*s)->truncate(56).ok());  // 8 back: the ring still holds what position 56 needs
    CHECK((*s)->n_past() == 56);
    const Status too_far = (*s)->truncate(40);
    REQUIRE_FALSE(too_far.ok());
    CHECK(too_far.error().message.find("cannot take back 16 tokens") != std::string::npos);
    CHECK((*s)->n_past() == 56);
    // After a truncation the logits are those of the prompt's prefix.
    auto l = (*s)->eval({g.prompt[56]});
    REQUIRE(l.ok());
    check_logits(*l, g.prefill.data() + 56 * g.vocab, g.vocab, "after truncate " + g.name);
  }
}

TEST_CASE("gemma3n: the file's numbers are read as transformers' config states them") {
  const auto cases = load();
  auto f = GgufFile::open(path(cases[0]));  // k4_multimodal_f32
  REQUIRE(f.ok());
  auto hp = Gemma3nHParams::from_gguf(**f);
  REQUIRE_MESSAGE(hp.ok(), (hp.ok() ? "" : hp.error().message));
  CHECK(hp->K == 4);
  CHECK(hp->sizes.head_dim == 16);
  CHECK(hp->ple == 8);
  CHECK(hp->laurel_rank == 8);
  CHECK(hp->ple_rows == hp->sizes.vocab);  // padded by the converter with row 0
  // layer_types [S, S, F, S, S, F] with the last two sharing: 4 (sliding) reads 3, 5 (full) reads 2.
  REQUIRE(hp->spec.layers.size() == 6);
  CHECK(hp->spec.layers[4].kv_source == 3);
  CHECK(hp->spec.layers[5].kv_source == 2);
  CHECK(hp->spec.layers[0].window == 16);
  CHECK(hp->spec.layers[2].window == 0);
  CHECK(hp->spec.layers[3].ffn == 128);
  CHECK(hp->spec.layers[0].sparsity == doctest::Approx(0.95).epsilon(1e-6));
  CHECK(hp->spec.layers[1].sparsity == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(hp->spec.layers[2].sparsity == 0.0f);
}

TEST_CASE("gemma3n: shared-KV layers allocate no cache") {
  const auto cases = load();
  for (const Golden& g : cases) {
    auto f = GgufFile::open(path(g));
    REQUIRE(f.ok());
    auto m = Gemma3nModel::load(**f);
    REQUIRE(m.ok());
    int64_t shared = 0;
    for (const LayerSpec& c : (*m)->hparams().spec.layers) shared += c.attention == AttentionKind::shared_cache;
    CAPTURE(g.name);
    CHECK(shared >= 2);
    CHECK(static_cast<int64_t>((*m)->state_specs(64, 64).size()) == 2 * ((*m)->hparams().sizes.n_layers - shared));
  }
}

TEST_CASE("gemma3n: the memory estimate leaves the per-layer table out of what a decode step reads") {
  const auto cases = load();
  SessionOptions opt;
  opt.ctx = 200;
  auto s = Session::open(path(cases[0]), opt);
  REQUIRE(s.ok());
  auto m = (*s)->memory_estimate(200);
  REQUIRE(m.ok());
  const GgufTensorInfo* ple = (*s)->file().tensor("per_layer_token_embd.weight");
  REQUIRE(ple);
  CHECK(m->row_lookup == ple->nbytes);
  CHECK(m->weights_per_token == (*s)->model().weight_bytes() - ple->nbytes);
  // 4 layers of 6 keep K and V: 2 KV heads x 16 x 200 positions x 4 bytes, twice.
  CHECK(m->kv_cache == 4u * 2 * (2 * 16 * 200 * 4));
  CHECK(m->activations_decode > 0);
  CHECK(m->activations_prefill > m->activations_decode);
  CHECK(m->prefill_tokens == 200);
}

TEST_CASE("gemma3n: a prefill that wants the last logits only runs the layers past the last cache write on one token") {
  // Whether the skip happens at all (the golden tests check that its logits and caches are
  // right): in the last-logits graph, the last cache-writing layer still projects k and v for
  // every token, but its q, FFN and everything after, in every later layer, has one row.
  for (const Golden& g : load()) {
    CAPTURE(g.name);
    auto f = GgufFile::open(path(g));
    REQUIRE(f.ok());
    auto m = Gemma3nModel::load(**f);
    REQUIRE(m.ok());
    const auto& layers = (*m)->hparams().spec.layers;
    int last_writer = 0;
    for (size_t l = 0; l < layers.size(); ++l)
      if (layers[l].kv_source < 0) last_writer = static_cast<int>(l);
    REQUIRE(last_writer + 1 < static_cast<int>(layers.size()));  // the fixtures share K / V at the end
    const int64_t T = 24;
    for (bool all : {true, false}) {
      Graph graph;
      (*m)->build(graph, T, 64, 64, all);
      int64_t ffn_rows = 0, kv_rows = 0, later = 0;
      for (const Node& n : graph.nodes()) {
        const int64_t rows = graph.tensor(n.output).shape.rows();
        if (n.layer == last_writer && n.name == "attn_k") kv_rows = rows;
        if (n.layer == last_writer && n.name == "ffn_gate") ffn_rows = rows;
        if (n.layer > last_writer && n.name == "ffn_gate") later += rows;
      }
      CHECK(kv_rows == T);
      CHECK(ffn_rows == (all ? T : 1));
      CHECK(later == (all ? T : 1) * (static_cast<int64_t>(layers.size()) - 1 - last_writer));
    }
  }
}

TEST_CASE("gemma3n: the last-logits prefill agrees with the full one whichever layer writes the last cache") {
  // No golden file for these: the fixture with its K / V sharing changed (0 shared layers: the
  // cut falls in the last layer; 1; 3: an earlier one), each prefilled both ways. The last
  // logits, then four decode steps from the caches each way leaves, must agree.
  const auto cases = load();
  const Golden& g = cases[0];
  auto f = GgufFile::open(path(g));
  REQUIRE(f.ok());
  for (uint32_t shared : {0u, 1u, 3u}) {
    CAPTURE(shared);
    test::EditableGguf e = test::EditableGguf::from(**f);
    e.set_u32("gemma3n.attention.shared_kv_layers", shared);
    const std::vector<uint8_t> bytes = e.write();
    std::vector<float> logits[2];  // [1 + 4 steps, V] per way
    for (bool all : {true, false}) {
      auto file = GgufFile::parse(bytes);
      REQUIRE(file.ok());
      SessionOptions opt;
      opt.threads = 2;
      auto s = Session::open(std::move(*file), opt);
      REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
      auto l = (*s)->eval(g.prompt, all);
      REQUIRE(l.ok());
      std::vector<float>& out = logits[all ? 0 : 1];
      const float* last = *l + (all ? (g.prompt_len - 1) * g.vocab : 0);
      out.assign(last, last + g.vocab);
      for (int step = 0; step < 4; ++step) {
        auto d = (*s)->eval({g.tokens[static_cast<size_t>(step)]});
        REQUIRE(d.ok());
        out.insert(out.end(), *d, *d + g.vocab);
      }
    }
    check_logits(logits[1].data(), logits[0].data(), 5 * g.vocab, "last-logits vs full prefill");
  }
}

TEST_CASE("gemma3n: a Q8_0 down weight on a sparse layer is read transposed, exactly as its decoded values") {
  // Two copies of a fixture: in one, the down weight of each layer with 95% sparsity is
  // quantized to Q8_0; in the other it holds those blocks' decoded values as F32. The int8-and-scales transpose
  // adds exactly the decoded values (ops/matmul_sparse.h) and everything else is the same
  // f32, so every logit must have the same bits, prefill and decode. The dense Q8_0 product
  // (8-bit activations) would not give them.
  const auto cases = load();
  for (const Golden& g : cases) {
    CAPTURE(g.name);
    auto f = GgufFile::open(path(g));
    REQUIRE(f.ok());
    auto m = Gemma3nModel::load(**f);
    REQUIRE(m.ok());
    test::EditableGguf q8 = test::EditableGguf::from(**f), f32 = q8;
    int sparse_layers = 0;
    int64_t rewritten = 0;
    for (size_t l = 0; l < (*m)->hparams().spec.layers.size(); ++l) {
      // Layers that keep ~5% (sparsity 0.95), well below the int8 form's prefill threshold
      // (12%), so both copies take the sparse path; the others keep their F32 down in both.
      if (!((*m)->hparams().spec.layers[l].sparsity >= 0.95f - 1e-6f)) continue;
      ++sparse_layers;
      const std::string name = "blk." + std::to_string(l) + ".ffn_down.weight";
      test::EditableGguf::Tensor* tq = q8.tensor(name);
      test::EditableGguf::Tensor* tf = f32.tensor(name);
      REQUIRE(tq);
      REQUIRE(tq->dtype == DType::F32);
      const int64_t F = static_cast<int64_t>(tq->ne[0]), D = static_cast<int64_t>(tq->ne[1]);
      REQUIRE(F % 32 == 0);
      const auto* w = reinterpret_cast<const float*>(tq->data.data());
      std::vector<uint8_t> blocks(static_cast<size_t>(D * (F / 32)) * sizeof(BlockQ8_0));
      auto* out = reinterpret_cast<float*>(tf->data.data());
      for (int64_t b = 0; b < D * (F / 32); ++b) {  // amax / 127 scales, rounded values
        const float* x = w + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        BlockQ8_0 blk;
        blk.d = fp32_to_fp16(amax / 127.0f);
        const float d = fp16_to_fp32(blk.d);
        for (int j = 0; j < 32; ++j) {
          blk.qs[j] = static_cast<int8_t>(d > 0 ? std::clamp(std::nearbyint(x[j] / d), -127.0f, 127.0f) : 0.0f);
          out[b * 32 + j] = d * static_cast<float>(blk.qs[j]);  // the decoded value, as gguf decodes it
        }
        std::memcpy(blocks.data() + b * sizeof(BlockQ8_0), &blk, sizeof blk);
      }
      tq->dtype = DType::Q8_0;
      tq->data = std::move(blocks);
      // Resident beyond the file: int8 values and f32 scales in place of the Q8_0 blocks.
      rewritten += F * D + 4 * (F / 32) * D - (F / 32) * D * static_cast<int64_t>(sizeof(BlockQ8_0));
    }
    REQUIRE(sparse_layers >= 1);
    std::vector<float> logits[2];
    for (int which = 0; which < 2; ++which) {
      auto file = GgufFile::parse((which == 0 ? q8 : f32).write());
      REQUIRE(file.ok());
      SessionOptions opt;
      opt.threads = 2;
      auto s = Session::open(std::move(*file), opt);
      REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
      // The memory estimate counts the rewritten copies (the f32 transposes take the file's size).
      auto mem = (*s)->memory_estimate(64);
      REQUIRE(mem.ok());
      CHECK(mem->weights_rewritten == (which == 0 ? rewritten : 0));
      for (bool all : {true, false}) {
        (*s)->reset();
        auto l = (*s)->eval(g.prompt, all);
        REQUIRE(l.ok());
        logits[which].insert(logits[which].end(), *l, *l + (all ? g.prompt_len : 1) * g.vocab);
        for (int step = 0; step < 3; ++step) {
          auto d = (*s)->eval({g.tokens[static_cast<size_t>(step)]});
          REQUIRE(d.ok());
          logits[which].insert(logits[which].end(), *d, *d + g.vocab);
        }
      }
    }
    REQUIRE(logits[0].size() == logits[1].size());
    CHECK(std::memcmp(logits[0].data(), logits[1].data(), logits[0].size() * sizeof(float)) == 0);
  }
}
