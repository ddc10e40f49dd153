// The shared model blocks (models/blocks.*) built with the graph builder: the attention block
// against the scalar reference, with its own cache and as a KV-shared layer reading an earlier
// layer's cache; the gated FFN with and without Gaussian top-k sparsity.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "models/blocks.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/rope.h"
#include "ops/sparsity.h"
#include "runtime/executor.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

constexpr int64_t T = 7, d = 32, H = 4, Hkv = 2, hd = 8, F = 48;

struct Weights {
  std::map<std::string, std::vector<float>> data;
  std::map<std::string, TensorView> views;
  std::map<std::string, std::string> names;
  WeightRef add(const std::string& name, int64_t rows, int64_t cols, std::mt19937& rng) {
    auto& v = data[name];
    v.resize(static_cast<size_t>(rows * cols));
    fill(v.data(), rows * cols, rng, -0.3f, 0.3f);
    views[name] = TensorView::contiguous(DType::F32, {rows, cols}, v.data());
    names[name] = name;
    return {&names[name], &views[name]};
  }
};

// y = x Wᵀ for x [T, K], W [N, K].
std::vector<float> project(const std::vector<float>& x, const TensorView& w) {
  std::vector<float> y(static_cast<size_t>(T * w.rows()));
  for (int64_t t = 0; t < T; ++t) ops::ref::gemv(w, x.data() + t * w.cols(), y.data() + t * w.rows());
  return y;
}

void rope_all(std::vector<float>& x, int64_t heads) {
  std::vector<float> cs(hd);
  for (int64_t t = 0; t < T; ++t) {
    ops::rope_angles(t, 10000.0f, hd, cs.data(), cs.data() + hd / 2);
    for (int64_t h = 0; h < heads; ++h)
      ops::ref::rope_neox(&x[(t * heads + h) * hd], cs.data(), cs.data() + hd / 2, hd);
  }
}

}  // namespace

TEST_CASE("attention block: own cache, and a KV-shared layer attending over its source's cache") {
  std::mt19937 rng(31);
  Weights w;
  const AttentionWeights l0{w.add("q0", H * hd, d, rng),
                            w.add("k0", Hkv * hd, d, rng),
                            w.add("v0", Hkv * hd, d, rng),
                            w.add("o0", d, H * hd, rng),
                            {},
                            {}};
  const AttentionWeights l1{w.add("q1", H * hd, d, rng),
                            w.add("k1", Hkv * hd, d, rng),
                            w.add("v1", Hkv * hd, d, rng),
                            w.add("o1", d, H * hd, rng),
                            {},
                            {}};
  std::vector<float> x0(T * d), x1(T * d);
  fill(x0.data(), T * d, rng);
  fill(x1.data(), T * d, rng);
  const AttentionShape shape{H, Hkv, hd, 1.0f / std::sqrt(float(hd)), false, false, 1e-6f};
  LayerSpec own, shared;
  shared.attention = AttentionKind::shared_cache;
  shared.kv_source = 0;

  Graph g;
  Builder b(g);
  const TensorId pos = b.input("pos", DType::I32, {T});
  const KvCache c0{b.state("k0", {Hkv, T, hd}), b.state("v0", {Hkv, T, hd})};
  const TensorId in0 = g.add_weight("x0", TensorView::contiguous(DType::F32, {T, d}, x0.data()));
  const TensorId in1 = g.add_weight("x1", TensorView::contiguous(DType::F32, {T, d}, x1.data()));
  b.layer(0);
  const TensorId y0 = attention_block(b, in0, l0, shape, own, pos, c0);
  b.layer(1);
  const TensorId y1 = attention_block(b, in1, l1, shape, shared, pos, c0);  // layer 1 reads layer 0's K / V
  b.output(y0);
  b.output(y1);
  size_t kv_nodes = 0;
  for (const Node& n : g.nodes()) kv_nodes += n.layer == 1 && (n.name == "attn_k" || n.name == "k_store");
  CHECK(kv_nodes == 0);  // the shared layer computes and stores no K / V

  auto ex = Executor::create(g);
  REQUIRE_MESSAGE(ex.ok(), (ex.ok() ? "" : ex.error().message));
  std::vector<int32_t> positions(T);
  for (int64_t t = 0; t < T; ++t) positions[t] = static_cast<int32_t>(t);
  std::vector<float> kc(Hkv * T * hd), vc(Hkv * T * hd);
  (*ex)->bind_input(pos, positions.data());
  (*ex)->bind_input(c0.k, kc.data());
  (*ex)->bind_input(c0.v, vc.data());
  REQUIRE((*ex)->run(1).ok());

  // Reference: layer 0's K / V from x0; both layers' queries attend over them.
  auto k = project(x0, w.views["k0"]), v = project(x0, w.views["v0"]);
  rope_all(k, Hkv);
  ops::AttentionShape s;
  s.n_heads = H;
  s.n_kv_heads = Hkv;
  s.head_dim = hd;
  s.ctx = T;
  s.scale = shape.scale;
  std::vector<float> kref(Hkv * T * hd), vref(Hkv * T * hd);
  REQUIRE(ops::kv_store(s, k.data(), positions.data(), T, kref.data()).ok());
  REQUIRE(ops::kv_store(s, v.data(), positions.data(), T, vref.data()).ok());
  for (int layer = 0; layer < 2; ++layer) {
    auto q = project(layer ? x1 : x0, w.views[layer ? "q1" : "q0"]);
    rope_all(q, H);
    std::vector<float> att(T * H * hd);
    ops::ref::attention(s, q.data(), kref.data(), vref.data(), positions.data(), T, att.data());
    const auto want = project(att, w.views[layer ? "o1" : "o0"]);
    const TensorView& got = (*ex)->tensor(layer ? y1 : y0);
    check_close(got.as<float>(), want.data(), T * d, 1e-4f, 1e-5f, "attention block layer " + std::to_string(layer));
  }
}

TEST_CASE("gated FFN block, with and without Gaussian top-k on the gate") {
  std::mt19937 rng(32);
  Weights w;
  const WeightRef gate = w.add("gate", F, d, rng), up = w.add("up", F, d, rng), down = w.add("down", d, F, rng);
  std::vector<float> x(T * d);
  fill(x.data(), T * d, rng);
  for (float sparsity : {0.0f, 0.95f}) {
    CAPTURE(sparsity);
    LayerSpec cfg;
    cfg.sparsity = sparsity;
    cfg.ffn_kind = sparsity > 0 ? FfnKind::sparse_gated : FfnKind::gated;
    Graph g;
    Builder b(g);
    const TensorId in = g.add_weight("x", TensorView::contiguous(DType::F32, {T, d}, x.data()));
    const TensorId y = gated_ffn(b, in, gate, up, down, ops::Act::GeluTanh, cfg);
    b.output(y);
    auto ex = Executor::create(g);
    REQUIRE(ex.ok());
    REQUIRE((*ex)->run(1).ok());
    auto gv = project(x, w.views["gate"]);
    const auto uv = project(x, w.views["up"]);
    if (sparsity > 0)
      for (int64_t t = 0; t < T; ++t)
        ops::ref::gaussian_topk(&gv[t * F], &gv[t * F], F, static_cast<float>(ops::icdf_normal(sparsity)));
    std::vector<float> act(T * F);
    ops::ref::glu(ops::Act::GeluTanh, gv.data(), uv.data(), act.data(), T * F);
    const auto want = project(act, w.views["down"]);
    check_close((*ex)->tensor(y).as<float>(), want.data(), T * d, 1e-4f, 1e-5f, "gated ffn");
  }
}
