// The decoder skeleton (models/decoder.h) and its per-layer spec (models/spec.h): the spec's
// checks, the cache layout it derives (a cache per own-cache layer, rings for windows), and
// the "altup" model on rings against the PyTorch reference.
#include <algorithm>

#include "models/altup.h"
#include "models/decoder.h"
#include "engine/session.h"
#include "tests/golden_util.h"
#include "tests/op_test_util.h"

using namespace altup;

namespace {
DecoderSpec plain(int n) {
  DecoderSpec s;
  s.file_layers = n;
  for (int i = 0; i < n; ++i) {
    LayerSpec l;
    l.weights = i;
    l.ffn = l.ffn_in_file = 16;
    s.layers.push_back(l);
  }
  return s;
}

std::string error_of(const DecoderSpec& s) {
  const Status st = s.check();
  return st.ok() ? "" : st.error().message;
}
}  // namespace

TEST_CASE("a spec is checked once: each inconsistency is one message") {
  CHECK(error_of(plain(4)) == "");
  CHECK(error_of(DecoderSpec{}) == "the model has no layers");

  DecoderSpec s = plain(4);
  s.layers[2].weights = 9;
  CHECK(error_of(s).find("layer 2 reads blk.9.* but the file holds layers 0..3") != std::string::npos);
  s = plain(4);
  s.layers[3].weights = 1;
  CHECK(error_of(s).find("which an earlier layer of its stack reads too") != std::string::npos);
  s.layers[2].stack = s.layers[3].stack = 1;  // another stack may run the same weights (shared StagFormer)
  s.layers[3].weights = 0;
  CHECK(error_of(s) == "");
  s.layers[3].weights = 2;  // but not twice within its own
  CHECK(error_of(s).find("layer 3 reads blk.2.*, which an earlier layer of its stack reads too") != std::string::npos);
  s = plain(4);
  s.layers[1].cross = true;  // cross-attention needs a stack before
  CHECK(error_of(s).find("layer 1 cross-attends but is in the first stack") != std::string::npos);
  s = plain(4);
  s.layers[1].ffn = 0;
  CHECK(error_of(s).find("layer 1 has an FFN width below 1") != std::string::npos);
  s = plain(4);
  s.layers[1].sparsity = 0.9f;  // a sparsity without the sparse kind
  CHECK(error_of(s).find("sparse FFN") != std::string::npos);
  s.layers[1].ffn_kind = FfnKind::sparse_gated;
  CHECK(error_of(s) == "");
  s = plain(4);
  s.layers[2].attention = AttentionKind::shared_cache;
  s.layers[2].kv_source = 3;  // a later layer
  CHECK(error_of(s).find("not an earlier layer") != std::string::npos);
  s.layers[2].kv_source = 0;
  s.layers[0].window = 8;  // a sliding source for a full layer
  CHECK(error_of(s).find("shares the K / V of layer 0 (window 8)") != std::string::npos);
  s.layers[2].window = 8;
  CHECK(error_of(s) == "");
  s.layers[3].attention = AttentionKind::shared_cache;
  s.layers[3].kv_source = 2;  // a layer that has no cache of its own
  CHECK(error_of(s).find("which has no cache") != std::string::npos);
  s = plain(4);
  s.layers[1].kv_source = 0;  // own cache, yet a source
  CHECK(error_of(s).find("names a K / V source") != std::string::npos);
}

TEST_CASE("a spec need not run 0..L-1: owners, the last cache writer") {
  DecoderSpec s = plain(6);
  std::reverse(s.layers.begin(), s.layers.end());  // blk.5 first
  s.layers.erase(s.layers.begin() + 1);            // blk.4 skipped
  CHECK(error_of(s) == "");
  s.layers[3].attention = s.layers[4].attention = AttentionKind::shared_cache;
  s.layers[3].kv_source = s.layers[4].kv_source = 1;
  CHECK(error_of(s) == "");
  CHECK(s.cache_owner(4) == 1);
  CHECK(s.cache_owner(2) == 2);
  CHECK(s.last_cache_writer() == 2);
}

TEST_CASE("the altup sliding-window model keeps rings and still matches the reference") {
  const auto cases = load_golden("model_cases.txt", "model_");
  const auto it =
      std::find_if(cases.begin(), cases.end(), [](const Golden& g) { return g.name == "k2_sliding_window"; });
  REQUIRE(it != cases.end());
  SessionOptions opt;
  opt.max_tokens = 4;  // window 8 + 4 slots, fewer than the context: every layer's cache is a ring
  auto s = Session::open(std::string(ALTUP_FIXTURES_DIR) + "/model_k2_sliding_window.gguf", opt);
  REQUIRE(s.ok());
  const auto specs = (*s)->model().state_specs((*s)->ctx(), opt.max_tokens);
  REQUIRE(!specs.empty());
  for (const StateSpec& st : specs) {
    CHECK(st.shape[1] == 12);
    CHECK(st.rollback == 4);
  }
  check_golden(*it, "model_", opt);
}

namespace {
// The categories node names stand for (the profiler read them from the names before nodes
// carried one): a model that forgets to say what a node is shows up here as "other".
std::string category_by_name(const std::string& n) {
  auto starts = [&](const char* p) { return n.rfind(p, 0) == 0; };
  if (starts("altup_router")) return "router";
  if (starts("altup_stream")) return "streams";
  if (starts("altup_predict")) return "predict";
  if (starts("altup_correct")) return "correct";
  if (starts("ple")) return "ple";
  if (starts("laurel")) return "laurel";
  if (starts("altup") || starts("ring") || n == "copy_block") return "altup";
  if (starts("attn") || starts("rope") || starts("query") || n == "k_store" || n == "v_store" || n == "attention")
    return "attention";
  if (starts("ffn")) return "ffn";
  if (starts("embed")) return "embedding";
  if (starts("output")) return "output";
  return "other";
}
}  // namespace

TEST_CASE("every node carries the cost category its model gave it") {
  const std::string dir = ALTUP_FIXTURES_DIR;
  for (const std::string& path : {dir + "/../../demo/kjv-altup-k2.gguf", dir + "/model_llama_dense.gguf",
                                  dir + "/model_k1_dense.gguf", dir + "/gemma3n_k4_multimodal_f32.gguf"}) {
    CAPTURE(path);
    auto loaded = LoadedModel::load(path);
    REQUIRE(loaded.ok());
    for (const bool all : {true, false})
      for (const int64_t T : {1, 7}) {
        Graph g;
        (void)(*loaded)->model->build(g, T, 64, 64, all);
        for (const Node& n : g.nodes()) {
          CAPTURE(n.name);
          CHECK(std::string(cost_name(n.cost)) == category_by_name(n.name));
        }
      }
  }
}
