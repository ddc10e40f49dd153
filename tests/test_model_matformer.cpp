// MatFormer sub-models chosen at load (models/submodel.h) against Hugging Face transformers
// (fixtures/make_matformer_fixtures.py): a tiny Gemma 3n with E4B's structure (35 layers, the
// period-5 pattern, a 15-layer shared-KV tail, 10 sparse layers), loaded whole and as
// sub-models — E2B (a skipped block of the shared tail, half widths), E2.98B-layer (a mix of
// widths, no skip), a hand-made skip-and-widths mix, and every layer at its stored width —
// each compared with transformers run on the checkpoint sliced by the rules. Then the rules'
// refusals, the parameter count, and that skipped layers are never read.
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "models/gemma3n.h"
#include "models/submodel.h"
#include "engine/session.h"
#include "tests/cli_test_util.h"
#include "tests/gguf_edit.h"
#include "tests/golden_util.h"

using namespace altup;

namespace {
const std::string kModel = std::string(ALTUP_FIXTURES_DIR) + "/matformer_e4b_tiny.gguf";

struct Case {
  Golden golden;
  SubmodelChoice choice;
};

std::vector<Case> load_cases(const std::string& index = "matformer_cases.txt",
                             const std::string& prefix = "matformer_") {
  std::vector<Golden> golden = load_golden(index, prefix);
  std::ifstream idx(std::string(ALTUP_FIXTURES_DIR) + "/" + index);
  std::vector<Case> out;
  std::string line, skip;
  for (size_t i = 0; std::getline(idx, line) && i < golden.size(); ++i) {
    std::istringstream in(line);
    Case c{golden[i], {}};
    in >> skip >> skip >> skip >> skip >> c.choice.name >> c.choice.skip_layers >> c.choice.ffn_widths;
    for (std::string* f : {&c.choice.name, &c.choice.skip_layers, &c.choice.ffn_widths})
      if (*f == "-") f->clear();
    out.push_back(std::move(c));
  }
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string error_of(const SubmodelChoice& c, const std::string& file = kModel) {
  auto s = Session::open(file, {}, c);
  return s.ok() ? "" : s.error().message;
}

std::vector<float> logits_of(const std::string& file, const SubmodelChoice& c, const std::vector<int32_t>& ids) {
  auto s = Session::open(file, {}, c);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  auto l = (*s)->eval(ids, true);
  REQUIRE(l.ok());
  return std::vector<float>(*l, *l + ids.size() * static_cast<size_t>((*s)->model().vocab_size()));
}
}  // namespace

// The golden logits are transformers' float64 ones. 35 random layers amplify rounding: on this
// model transformers' own float32 prefill strays from them by up to 2.1e-4 x max|logit|, the
// runtime by up to 6.3e-4 over prefill and decode on the AVX-512, AVX2 and SSE4.2 tables; a
// wrong layer, width or table slice moves them by more than max|logit|.
constexpr float kTol = 2e-3f;

TEST_CASE("matformer: each sub-model matches transformers on the sliced checkpoint") {
  const auto cases = load_cases();
  REQUIRE(cases.size() == 4);
  SessionOptions small;  // E2B also through rings and chunks: graphs of at most 8 tokens
  small.max_tokens = 8;
  for (const Case& c : cases) {
    CAPTURE(c.golden.name);
    check_golden(c.golden, "matformer_", {}, c.choice, "matformer_e4b_tiny.gguf", kTol);
    if (c.golden.name == "e2b") check_golden(c.golden, "matformer_", small, c.choice, "matformer_e4b_tiny.gguf", kTol);
  }
}

TEST_CASE("matformer: the \"altup\" architecture's sub-models match the PyTorch reference") {
  // A K = 2 model with 64-wide FFNs: all layers at 8, a per-layer mix, a skipped layer (the
  // kept ones keep their active blocks). Our reference is the authority for "altup".
  const auto cases = load_cases("matformer_altup_cases.txt", "matformer_altup_");
  REQUIRE(cases.size() == 3);
  for (const Case& c : cases) {
    CAPTURE(c.golden.name);
    check_golden(c.golden, "matformer_altup_", {}, c.choice, "matformer_altup.gguf");
  }
}

TEST_CASE("matformer: every layer at its stored width is the whole model, bit for bit") {
  const std::vector<int32_t> ids = {5, 77, 123, 9, 200, 31, 64, 250, 7, 18, 99, 140};
  const auto whole = logits_of(kModel, {}, ids);
  CHECK(logits_of(kModel, {"", "", "128"}, ids) == whole);
  CHECK(logits_of(kModel, {"E4B", "", ""}, ids) == whole);
  CHECK(logits_of(kModel, {}, ids) != logits_of(kModel, {"", "", "96"}, ids));  // a narrower one is not
}

TEST_CASE("matformer: the selection follows the rules, derived from the file") {
  auto f = GgufFile::open(kModel);
  REQUIRE(f.ok());
  auto hp = Gemma3nHParams::from_gguf(**f);
  REQUIRE(hp.ok());
  const DecoderSpec& full = hp->spec;
  REQUIRE(full.size() == 35);
  // E2B: skip 20-24 (five of the 15 shared layers): 30 layers, 10 shared, reading the producers 18 / 19.
  auto e2b = select_submodel(full, {"E2B", "", ""});
  REQUIRE_MESSAGE(e2b.ok(), (e2b.ok() ? "" : e2b.error().message));
  REQUIRE(e2b->size() == 30);
  int shared = 0;
  for (int64_t i = 0; i < e2b->size(); ++i) {
    const LayerSpec& l = (*e2b)[i];
    CHECK(l.ffn == 64);
    CHECK(l.ffn_in_file == 128);
    CHECK(l.weights == (i < 20 ? i : i + 5));   // kept layers keep their index in the file
    CHECK(l.window == full[l.weights].window);  // layer types filtered by kept index
    CHECK(l.sparsity == full[l.weights].sparsity);
    if (l.attention == AttentionKind::shared_cache) {
      ++shared;
      CHECK(l.kv_source == (l.window > 0 ? 18 : 19));
    }
  }
  CHECK(shared == 10);
  // A layer-level mix: the published kept indices at 128, the rest at 64.
  auto mix = select_submodel(full, {"E2.98B-layer", "", ""});
  REQUIRE(mix.ok());
  for (int64_t i = 0; i < 35; ++i) CHECK((*mix)[i].ffn == ((i >= 15 && i <= 24) || i >= 30 ? 128 : 64));
  // One width for all; a list per kept layer.
  auto one = select_submodel(full, {"", "0-2", "32"});
  REQUIRE(one.ok());
  CHECK(one->size() == 32);
  CHECK((*one)[0].weights == 3);
  CHECK((*one)[31].ffn == 32);
}

TEST_CASE("matformer: every bad choice is one clear error") {
  const std::vector<std::pair<SubmodelChoice, std::string>> bad = {
      {{"E9B", "", ""}, "--submodel: unknown configuration 'E9B' (known: E4B, E2B,"},
      {{"E2B", "1", ""}, "give it alone"},
      {{"", "18", ""}, "layer 18 cannot be skipped: it computes the K / V cache that layer 20"},
      {{"", "19", ""}, "layer 19 cannot be skipped"},
      {{"", "35", ""}, "--skip-layers: layer 35 is out of range: the model has layers 0..34"},
      {{"", "4-2", ""}, "'4-2' is not a layer index or a range"},
      {{"", "x", ""}, "'x' is not a layer index"},
      {{"", "0-17,20-34", ""}, ""},  // leaves 18 and 19: allowed (checked below)
      {{"", "", "64,64"}, "--ffn-widths has 2 widths for 35 kept layers"},
      {{"", "", "256"}, "--ffn-widths: kept layer 0 (file layer 0) stores 128 FFN units; 256 is more"},
      {{"", "", "0"}, "'0' is not a positive width"},
      {{"", "", "64,"}, "'' is not a positive width"},
  };
  for (const auto& [choice, want] : bad) {
    const std::string got = error_of(choice);
    CAPTURE(choice.describe());
    CAPTURE(got);
    if (want.empty())
      CHECK(got.empty());
    else
      CHECK(got.find(want) != std::string::npos);
    CHECK(got.find('\n') == std::string::npos);
  }
  // A published configuration needs its layer count: the gemma3n fixtures have 5 to 7 layers.
  const std::string other = std::string(ALTUP_FIXTURES_DIR) + "/gemma3n_k4_multimodal_f32.gguf";
  CHECK(error_of({"E2B", "", ""}, other).find("--submodel E2B is defined for a 35-layer model") != std::string::npos);
  // Any architecture with FFNs takes widths and skips; too many is refused the same way.
  const std::string altup = std::string(ALTUP_FIXTURES_DIR) + "/model_k2_alternating_widened.gguf";
  CHECK(error_of({"", "", "8"}, altup).empty());
  CHECK(error_of({"", "0", ""}, altup).empty());
  CHECK(error_of({"", "", "100000"}, altup).find("is more") != std::string::npos);
}

TEST_CASE("matformer: a width that splits a quantization block names the layer") {
  // The fixture's ffn_down of layer 7 as Q8_0 (blocks of 32): 64 of 128 columns is a whole
  // number of blocks, 48 is not.
  auto f = GgufFile::open(kModel);
  REQUIRE(f.ok());
  auto e = test::EditableGguf::from(**f);
  e.retype("blk.7.ffn_down.weight", DType::Q8_0, {128, 32});
  const test::TempDir dir;
  const std::string path = dir.path + "/q8.gguf";
  write_file(path, e.write());
  CHECK(error_of({"", "", "64"}, path).empty());
  const std::string err = error_of({"", "", "48"}, path);
  CHECK(err.find("layer 7 (blk.7): an FFN width of 48 splits the Q8_0 blocks of blk.7.ffn_down.weight") !=
        std::string::npos);
}

TEST_CASE("matformer: a skipped layer's bytes are never read") {
  // The fixture with every weight of layers 20-24 made NaN: E2B, which skips them, still
  // matches transformers; the whole model no longer computes.
  auto f = GgufFile::open(kModel);
  REQUIRE(f.ok());
  auto e = test::EditableGguf::from(**f);
  int poisoned = 0;
  for (auto& t : e.tensors) {
    const std::string& n = t.name;
    if (n.size() < 7 || n.compare(0, 5, "blk.2") != 0 || n[5] < '0' || n[5] > '4' || n[6] != '.') continue;
    const uint32_t nan32 = 0x7fc00000u;
    const uint16_t nan16 = 0x7e00u;
    for (size_t i = 0; t.dtype == DType::F32 && i + 4 <= t.data.size(); i += 4) std::memcpy(&t.data[i], &nan32, 4);
    for (size_t i = 0; t.dtype == DType::F16 && i + 2 <= t.data.size(); i += 2) std::memcpy(&t.data[i], &nan16, 2);
    ++poisoned;
  }
  CHECK(poisoned >= 5 * 20);
  const test::TempDir dir;
  const std::string path = dir.path + "/nan.gguf";
  write_file(path, e.write());
  for (const Case& c : load_cases())
    if (c.golden.name == "e2b") check_golden(c.golden, "matformer_", {}, c.choice, path, kTol);
  auto whole = Session::open(path);  // refused at load (NaN coefficients) or at the first step
  CHECK((!whole.ok() || !(*whole)->eval({5, 6, 7}).ok()));
}

TEST_CASE("matformer: every command takes the sub-model options; a bad one is one line and exit 1") {
  const test::TempDir dir;
  const std::string m = "-m '" + kModel + "' ";
  const std::vector<std::string> bad = {"--submodel E9B",     "--skip-layers 18", "--skip-layers 40",
                                        "--ffn-widths 64,64", "--ffn-widths 999", "--submodel E2B --ffn-widths 64"};
  const std::vector<std::string> commands = {"run -n 1 -p hi ",
                                             "chat ",
                                             "eval -p hi --logits-out '" + dir.path + "/l.npy' ",
                                             "perplexity -f /dev/null ",
                                             "bench -p 4 -n 2 -r 1 ",
                                             "profile --decode 2 ",
                                             "info "};
  // Every bad choice through `run`, and one through every other command (each launch is slow
  // under an emulator).
  for (size_t i = 0; i < bad.size() + commands.size() - 1; ++i) {
    const std::string& cmd = i < bad.size() ? commands[0] : commands[i - bad.size() + 1];
    const std::string& b = bad[i < bad.size() ? i : i % bad.size()];
    const test::Run r = test::run_altup(dir, cmd + m + b + " </dev/null");
    CAPTURE(cmd + b);
    CAPTURE(r.err);
    CHECK(r.status == 1);
    CHECK(test::count_lines(r.err) == 1);
  }
  // And a good one runs: the same greedy text as the sliced model's golden file's first tokens.
  const test::Run ok = test::run_altup(dir, "run " + m + "--submodel E2B -n 4 -p hi --temp 0");
  CHECK(ok.status == 0);
  const test::Run info = test::run_altup(dir, "info " + m + "--submodel E2B --no-tensors");
  CHECK(info.status == 0);
  CHECK(info.out.find("E2B: 30 of 35 layers, FFN widths 64 x30") != std::string::npos);
}

TEST_CASE("matformer: effective parameters follow the MatFormer count") {
  // Per kept layer: attention (q, k, v, o; q / k norms), LAuReL, the per-layer gate and
  // projection, the AltUp router and coefficients, eight H-wide norms and scales, and 3·H·m
  // for the FFN; plus the stream projections, the per-layer projection rows of the kept
  // layers and two norms. Token tables are not counted. (E4B's numbers: docs/matformer.md.)
  const int64_t H = 32, q = 2 * 16, kv = 1 * 16, hd = 16, r = 4, P = 8, K = 4;
  const int64_t per_layer = 2 * H * q + 2 * H * kv + 2 * hd + 2 * H * r + 2 * P * H + K * H + K * K * K + K * K + 8 * H;
  auto count = [&](int64_t layers, int64_t sum_m) {
    return layers * per_layer + 3 * H * sum_m + 2 * (K - 1) * H * H + layers * P * H + H + P;
  };
  auto params = [&](const SubmodelChoice& c) {
    auto s = Session::open(kModel, {}, c);
    REQUIRE(s.ok());
    return static_cast<int64_t>((*s)->model().effective_parameters());
  };
  CHECK(params({}) == count(35, 35 * 128));
  CHECK(params({"E2B", "", ""}) == count(30, 30 * 64));
  CHECK(params({"E2.98B-layer", "", ""}) == count(35, 15 * 128 + 20 * 64));
}

TEST_CASE("matformer: a prefix of every weight type runs as the same weights stored narrower, bit for bit") {
  // The "altup" fixture (d = 32, 3 layers) rebuilt with FFNs 512 wide in each type: gate / up
  // [512, 32] f32, down [32, 512] in the type under test, random but finite. Loaded with
  // --ffn-widths 256, it must compute exactly what a file storing only the first 256 units
  // computes; a width that splits the down projection's blocks is refused.
  auto f = GgufFile::open(std::string(ALTUP_FIXTURES_DIR) + "/model_k2_alternating_widened.gguf");
  REQUIRE(f.ok());
  const int64_t d = 32, F = 512, m = 256;
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    CAPTURE(dtype_name(t));
    uint32_t seed = 12345;
    auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
    auto wide = test::EditableGguf::from(**f);
    wide.set_u32("altup.feed_forward_length", static_cast<uint32_t>(F));
    for (int l = 0; l < 3; ++l) {
      for (const char* name : {"ffn_gate.weight", "ffn_up.weight"}) {
        wide.retype(blk(l, name), DType::F32, {static_cast<uint64_t>(d), static_cast<uint64_t>(F)});
        auto& data = std::find_if(wide.tensors.begin(), wide.tensors.end(), [&](const auto& x) {
                       return x.name == blk(l, name);
                     })->data;
        for (size_t i = 0; i + 4 <= data.size(); i += 4) {
          const float v = (static_cast<float>(next() >> 8) / 16777216.0f - 0.5f) * 0.3f;
          std::memcpy(&data[i], &v, 4);
        }
      }
      wide.retype(blk(l, "ffn_down.weight"), t, {static_cast<uint64_t>(F), static_cast<uint64_t>(d)});
      auto& down = std::find_if(wide.tensors.begin(), wide.tensors.end(), [&](const auto& x) {
                     return x.name == blk(l, "ffn_down.weight");
                   })->data;
      // Random bytes, then every f16 / bf16 value (or block scale) made a small finite number.
      for (auto& b : down) b = static_cast<uint8_t>(next() >> 24);
      const auto& tr = traits(t);
      const uint16_t small = t == DType::BF16 ? 0x3c00 : 0x2000;  // bf16 0.0078, f16 0.0078
      for (size_t blk0 = 0; blk0 < down.size(); blk0 += tr.block_bytes) {
        std::vector<size_t> at;  // offsets of the 16-bit floats in one block
        if (t == DType::F16 || t == DType::BF16) at = {0};
        if (t == DType::Q8_0 || t == DType::Q4_0) at = {0};
        if (t == DType::Q4_K || t == DType::Q5_K) at = {0, 2};
        if (t == DType::Q6_K) at = {208};
        for (size_t o : at) std::memcpy(&down[blk0 + o], &small, 2);
      }
      if (t == DType::F32)
        for (size_t i = 0; i + 4 <= down.size(); i += 4) {
          const float v = (static_cast<float>(next() >> 8) / 16777216.0f - 0.5f) * 0.1f;
          std::memcpy(&down[i], &v, 4);
        }
    }
    // The same weights stored narrower: gate / up's first m rows, down's first m of every row.
    auto narrow = wide;
    narrow.set_u32("altup.feed_forward_length", static_cast<uint32_t>(m));
    const uint64_t row_wide = *row_bytes(t, F), row_narrow = *row_bytes(t, m);
    for (auto& x : narrow.tensors) {
      if (x.name.find("ffn_gate") != std::string::npos || x.name.find("ffn_up") != std::string::npos) {
        x.data.resize(static_cast<size_t>(m * d * 4));
        x.ne = {static_cast<uint64_t>(d), static_cast<uint64_t>(m)};
      } else if (x.name.find("ffn_down") != std::string::npos) {
        std::vector<uint8_t> cut;
        for (int64_t r = 0; r < d; ++r)
          cut.insert(cut.end(), x.data.begin() + static_cast<int64_t>(r * row_wide),
                     x.data.begin() + static_cast<int64_t>(r * row_wide + row_narrow));
        x.data = cut;
        x.ne = {static_cast<uint64_t>(m), static_cast<uint64_t>(d)};
      }
    }
    const test::TempDir dir;
    write_file(dir.path + "/wide.gguf", wide.write());
    write_file(dir.path + "/narrow.gguf", narrow.write());
    const std::vector<int32_t> ids = {1, 5, 9, 2, 7, 3, 11, 4};
    const auto sliced = logits_of(dir.path + "/wide.gguf", {"", "", std::to_string(m)}, ids);
    CHECK(sliced == logits_of(dir.path + "/narrow.gguf", {}, ids));
    CHECK(sliced != logits_of(dir.path + "/wide.gguf", {}, ids));
    const int64_t block = traits(t).block_elems;
    if (block > 1) {
      const std::string err = error_of({"", "", std::to_string(m + block / 2)}, dir.path + "/wide.gguf");
      CHECK(err.find("layer 0 (blk.0): an FFN width of " + std::to_string(m + block / 2) + " splits the " +
                     std::string(dtype_name(t)) + " blocks") != std::string::npos);
    }
  }
}
