// The graph ops (OpDefs) as a model uses them: each runs inside an Executor with 1 and 2
// threads (sizes large enough to be split), keeps the determinism contract, matches
// the scalar reference, and turns wrong shapes or dtypes into errors naming the node.
#include <cstring>
#include <functional>

#include "ops/altup_mix.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/elementwise.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/sparsity.h"
#include "runtime/executor.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

constexpr int64_t T = 64, D = 512;  // 32768 elements: above the threading threshold

std::vector<float> rnd(int64_t n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  std::mt19937 rng(seed);
  fill(v.data(), n, rng);
  return v;
}

// Runs a graph built by `build` with 1 thread, 2 threads and 2 threads again; returns the
// 1-thread output after checking the determinism contract (op_test_util.h): a repeat gives the
// same bits, and 2 threads agree with 1 bit for bit unless the graph goes through oneDNN.
std::vector<float> run_both(const std::function<TensorId(Graph&)>& build,
                            const std::function<void(Executor&)>& bind = {}, bool via_onednn = false) {
  std::vector<float> outs[3];
  for (int run = 0; run < 3; ++run) {
    const int threads = run == 0 ? 1 : 2;
    Graph g;
    const TensorId out = build(g);
    g.mark_output(out);
    auto ex = Executor::create(g);
    REQUIRE_MESSAGE(ex.ok(), (ex.ok() ? "" : ex.error().message));
    if (bind) bind(**ex);
    Status s = (*ex)->run(threads);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
    const TensorView& v = (*ex)->tensor(out);
    outs[run].assign(v.as<float>(), v.as<float>() + v.numel());
  }
  REQUIRE(outs[0].size() == outs[1].size());
  REQUIRE(outs[1].size() == outs[2].size());
  CHECK_MESSAGE(std::memcmp(outs[1].data(), outs[2].data(), outs[1].size() * 4) == 0,
                "the same graph run twice with the same threads must give the same bits");
  check_thread_agreement(outs[0].data(), outs[1].data(), static_cast<int64_t>(outs[0].size()), via_onednn,
                         "graph output");
  return outs[0];
}

TensorView f32(std::vector<float>& v, const Shape& s) { return TensorView::contiguous(DType::F32, s, v.data()); }

}  // namespace

TEST_CASE("rmsnorm, add (broadcast), glu, softmax, softcap, gaussian top-k nodes") {
  auto x = rnd(T * D, 1), u = rnd(T * D, 2), w = rnd(D, 3);
  std::vector<float> want(static_cast<size_t>(T * D));
  const ops::RmsNormParams eps{1e-6f};
  auto y = run_both([&](Graph& g) {
    return g.add_node(&ops::kRmsNorm, {g.add_weight("x", f32(x, {T, D})), g.add_weight("w", f32(w, {D}))}, "norm", 0,
                      DType::F32, {T, D}, eps);
  });
  for (int64_t t = 0; t < T; ++t) ops::ref::rmsnorm(&x[t * D], w.data(), &want[t * D], D, 1e-6f);
  check_close(y.data(), want.data(), T * D, 1e-5f, 1e-6f, "rmsnorm node");

  // Per-head: [T, 8, 64] with a [64] weight.
  auto wh = rnd(64, 4);
  y = run_both([&](Graph& g) {
    return g.add_node(&ops::kRmsNorm, {g.add_weight("x", f32(x, {T, 8, 64})), g.add_weight("w", f32(wh, {64}))},
                      "qnorm", 0, DType::F32, {T, 8, 64}, eps);
  });
  for (int64_t r = 0; r < T * 8; ++r) ops::ref::rmsnorm(&x[r * 64], wh.data(), &want[r * 64], 64, 1e-6f);
  check_close(y.data(), want.data(), T * D, 1e-5f, 1e-6f, "per-head rmsnorm node");

  auto bias = rnd(D, 5);
  y = run_both([&](Graph& g) {
    return g.add_node(&ops::kAdd, {g.add_weight("x", f32(x, {T, D})), g.add_weight("b", f32(bias, {D}))}, "add", 0,
                      DType::F32, {T, D});
  });
  for (int64_t t = 0; t < T; ++t) ops::ref::add(&x[t * D], bias.data(), &want[t * D], D);
  check_close(y.data(), want.data(), T * D, 0, 0, "broadcast add node");

  const ops::ActParams act{ops::Act::GeluTanh};
  y = run_both([&](Graph& g) {
    return g.add_node(&ops::kGlu, {g.add_weight("g", f32(x, {T, D})), g.add_weight("u", f32(u, {T, D}))}, "glu", 0,
                      DType::F32, {T, D}, act);
  });
  ops::ref::glu(ops::Act::GeluTanh, x.data(), u.data(), want.data(), T * D);
  check_close(y.data(), want.data(), T * D, 2e-6f, 6e-6f, "glu node");

  y = run_both([&](Graph& g) {
    return g.add_node(&ops::kSoftmax, {g.add_weight("x", f32(x, {T, D}))}, "softmax", 0, DType::F32, {T, D});
  });
  for (int64_t t = 0; t < T; ++t) ops::ref::softmax(&x[t * D], &want[t * D], D);
  check_close(y.data(), want.data(), T * D, 1e-5f, 1e-9f, "softmax node");

  const ops::SoftcapParams cap{30.0f};
  y = run_both([&](Graph& g) {
    return g.add_node(&ops::kSoftcap, {g.add_weight("x", f32(x, {T, D}))}, "softcap", 0, DType::F32, {T, D}, cap);
  });
  ops::ref::softcap(x.data(), 30.0f, want.data(), T * D);
  check_close(y.data(), want.data(), T * D, 2e-6f, 2e-6f, "softcap node");

  const ops::GaussianTopKParams p95{0.95f};
  y = run_both([&](Graph& g) {
    return g.add_node(&ops::kGaussianTopK, {g.add_weight("x", f32(x, {T, D}))}, "sparsity", 0, DType::F32, {T, D}, p95);
  });
  for (int64_t t = 0; t < T; ++t)
    ops::ref::gaussian_topk(&x[t * D], &want[t * D], D, static_cast<float>(ops::icdf_normal(0.95)));
  check_close(y.data(), want.data(), T * D, 1e-4f, 1e-4f, "gaussian top-k node");
}

TEST_CASE("embedding, matmul, rope, kv_store + attention, AltUp predict / correct nodes") {
  auto table = rnd(300 * D, 6);
  std::vector<int32_t> ids(T), pos(T);
  for (int64_t t = 0; t < T; ++t) {
    ids[t] = static_cast<int32_t>((t * 37) % 300);
    pos[t] = static_cast<int32_t>(t);
  }
  TensorId ids_id = -1, pos_id = -1;
  auto bind = [&](Executor& ex) {
    ex.bind_input(ids_id, ids.data());
    if (pos_id >= 0) ex.bind_input(pos_id, pos.data());
  };
  const ops::EmbeddingParams scale{2.0f};
  const ops::ScaleParams twice{2.0f};
  auto y = run_both(
      [&](Graph& g) {
        ids_id = g.add_input("ids", DType::I32, {T});
        return g.add_node(&ops::kEmbedding, {g.add_weight("table", f32(table, {300, D})), ids_id}, "embed", -1,
                          DType::F32, {T, D}, scale);
      },
      bind);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) REQUIRE(y[t * D + i] == 2.0f * table[ids[t] * D + i]);

  auto x = rnd(T * D, 7), w = rnd(96 * D, 8);
  y = run_both(
      [&](Graph& g) {
        return g.add_node(&ops::kMatMul, {g.add_weight("x", f32(x, {T, D})), g.add_weight("w", f32(w, {96, D}))},
                          "proj", 0, DType::F32, {T, 96});
      },
      {}, /*via_onednn=*/kHaveOneDnn);  // T = 64 tokens: oneDNN's product where built in
  std::vector<float> want(static_cast<size_t>(T * 96));
  for (int64_t t = 0; t < T; ++t) ops::ref::gemv(f32(w, {96, D}), &x[t * D], &want[t * 96]);
  check_close(y.data(), want.data(), T * 96, 1e-4f, 1e-4f, "matmul node");

  // RoPE on [T, 8, 64] at positions 0..T-1, theta 1e4.
  const ops::RopeParams theta{10000.0f, false};
  y = run_both(
      [&](Graph& g) {
        pos_id = g.add_input("pos", DType::I32, {T});
        return g.add_node(&ops::kRope, {g.add_weight("q", f32(x, {T, 8, 64})), pos_id}, "rope", 0, DType::F32,
                          {T, 8, 64}, theta);
      },
      bind);
  want.assign(x.begin(), x.end());
  std::vector<float> cs(64);
  for (int64_t t = 0; t < T; ++t) {
    ops::rope_angles(t, 10000.0f, 64, cs.data(), cs.data() + 32);
    for (int64_t h = 0; h < 8; ++h) ops::ref::rope_neox(&want[(t * 8 + h) * 64], cs.data(), cs.data() + 32, 64);
  }
  check_close(y.data(), want.data(), T * D, 1e-6f, 1e-6f, "rope node");

  // Store K and V for T tokens into caches (state), then attend: [T, 8 heads, 64], 2 KV heads.
  auto q = rnd(T * 8 * 64, 9), k = rnd(T * 2 * 64, 10), v = rnd(T * 2 * 64, 11);
  std::vector<float> kc(2 * T * 64), vc(2 * T * 64);
  TensorId kc_id = -1, vc_id = -1;
  const ops::AttentionParams attn{0.125f, 16};  // sliding window 16
  y = run_both(
      [&](Graph& g) {
        pos_id = g.add_input("pos", DType::I32, {T});
        kc_id = g.add_state("kcache", DType::F32, {2, T, 64});
        vc_id = g.add_state("vcache", DType::F32, {2, T, 64});
        g.add_node_into(&ops::kKvStore, {g.add_weight("k", f32(k, {T, 2, 64})), pos_id}, kc_id, "k_store", 0);
        g.add_node_into(&ops::kKvStore, {g.add_weight("v", f32(v, {T, 2, 64})), pos_id}, vc_id, "v_store", 0);
        return g.add_node(&ops::kAttention, {g.add_weight("q", f32(q, {T, 8, 64})), kc_id, vc_id, pos_id}, "attn", 0,
                          DType::F32, {T, 8, 64}, attn);
      },
      [&](Executor& ex) {
        bind(ex);
        ex.bind_input(kc_id, kc.data());
        ex.bind_input(vc_id, vc.data());
      },
      /*via_onednn=*/false);  // prefill attention runs our own tiles
  ops::AttentionShape s;
  s.n_heads = 8;
  s.n_kv_heads = 2;
  s.head_dim = 64;
  s.ctx = T;
  s.scale = 0.125f;
  s.window = 16;
  std::vector<float> kref(kc.size()), vref(vc.size());
  REQUIRE(ops::kv_store(s, k.data(), pos.data(), T, kref.data()).ok());
  REQUIRE(ops::kv_store(s, v.data(), pos.data(), T, vref.data()).ok());
  CHECK(kref == kc);
  want.resize(q.size());
  ops::ref::attention(s, q.data(), kref.data(), vref.data(), pos.data(), T, want.data());
  check_close(y.data(), want.data(), T * D, 1e-5f, 1e-5f, "attention node");

  // AltUp on a ring of K = 3 blocks of [T, D], predicted in place into a view of the ring.
  auto ring = rnd(3 * T * D, 12), pm = rnd(9, 13), gv = rnd(3, 14), yv = rnd(T * D, 15);
  const ops::AltupCorrectParams active{1};
  y = run_both([&](Graph& g) {
    const TensorId r = g.add_node(&ops::kScale, {g.add_weight("ring0", f32(ring, {3, T, D}))}, "copy", -1, DType::F32,
                                  {3, T, D}, twice);
    const TensorId pred = g.add_view("pred", r, 0, DType::F32, {3, T, D});
    g.add_node_into(&ops::kAltupPredict, {r, g.add_weight("p", f32(pm, {3, 3}))}, pred, "predict", 0);
    const TensorId corr = g.add_view("corr", r, 0, DType::F32, {3, T, D});
    g.add_node_into(&ops::kAltupCorrect, {pred, g.add_weight("y", f32(yv, {T, D})), g.add_weight("g", f32(gv, {3}))},
                    corr, "correct", 0, active);
    const ops::ScaleParams one{1.0f};
    return g.add_node(&ops::kScale, {corr}, "out", 0, DType::F32, {3, T, D}, one);
  });
  std::vector<float> r2(ring.size());
  for (size_t i = 0; i < ring.size(); ++i) r2[i] = 2.0f * ring[i];
  REQUIRE(ops::altup_predict(r2.data(), r2.data(), pm.data(), false, 3, T, D, 1, &ops::scalar_kernels()).ok());
  REQUIRE(ops::altup_correct(r2.data(), yv.data(), gv.data(), false, 3, 1, T, D, 1, &ops::scalar_kernels()).ok());
  check_close(y.data(), r2.data(), 3 * T * D, 1e-5f, 1e-5f, "altup nodes");
}

TEST_CASE("Gemma 3n's nodes: per-token predict (P + I) and correct (g + 1), swap_axes01, slice_axis1, short tables") {
  // Predict / correct with coefficients per token, as the router makes them.
  constexpr int K = 4;
  auto ring = rnd(K * T * D, 21), pm = rnd(T * K * K, 22), gv = rnd(T * K, 23), yv = rnd(T * D, 24);
  for (int active : {0, 2}) {
    CAPTURE(active);
    auto y = run_both([&](Graph& g) {
      const ops::ScaleParams one{1.0f};
      const TensorId r = g.add_node(&ops::kScale, {g.add_weight("ring0", f32(ring, {K, T, D}))}, "copy", -1, DType::F32,
                                    {K, T, D}, one);
      const TensorId pred = g.add_view("pred", r, 0, DType::F32, {K, T, D});
      g.add_node_into(&ops::kAltupPredict, {r, g.add_weight("p", f32(pm, {T, K, K}))}, pred, "predict", 0,
                      ops::AltupPredictParams{true});
      const TensorId corr = g.add_view("corr", r, 0, DType::F32, {K, T, D});
      g.add_node_into(&ops::kAltupCorrect,
                      {pred, g.add_weight("y", f32(yv, {T, D})), g.add_weight("g", f32(gv, {T, K}))}, corr, "correct",
                      0, ops::AltupCorrectParams{active, 1.0f});
      return g.add_node(&ops::kScale, {corr}, "out", 0, DType::F32, {K, T, D}, one);
    });
    // The definition, written out: P_i = X_i + sum_c P[t][i][c] X_c; X_i = P_i + (1 + g_i)(y - P_a).
    std::vector<float> want(ring.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < D; ++j) {
        float pr[K];
        for (int i = 0; i < K; ++i) {
          double acc = ring[(i * T + t) * D + j];
          for (int c = 0; c < K; ++c) acc += double(pm[(t * K + i) * K + c]) * ring[(c * T + t) * D + j];
          pr[i] = static_cast<float>(acc);
        }
        for (int i = 0; i < K; ++i)
          want[(i * T + t) * D + j] = pr[i] + (1.0f + gv[t * K + i]) * (yv[t * D + j] - pr[active]);
      }
    check_close(y.data(), want.data(), K * T * D, 1e-4f, 1e-4f, "per-token predict + correct");
  }

  // swap_axes01 against its reference, threaded and not, at awkward sizes.
  for (int64_t A : {0, 1, 3, 7})
    for (int64_t B : {1, 2, 65})
      for (int64_t C : {1, 5, 256}) {
        auto x = rnd(A * B * C, 25);
        std::vector<float> got(x.size()), want(x.size());
        ops::ref::swap_axes01(x.data(), want.data(), A, B, C);
        ops::swap_axes01(x.data(), got.data(), A, B, C, 2);
        CHECK(got == want);
      }
  // slice_axis1 against its reference, threaded and not, at awkward sizes and offsets.
  for (int64_t A : {0, 1, 3, 7})
    for (int64_t B : {1, 2, 65})
      for (int64_t C : {1, 5, 256})
        for (int64_t start : {int64_t{0}, B / 2, B - 1}) {
          const int64_t n = B - start;
          auto x = rnd(A * B * C, 28);
          std::vector<float> got(static_cast<size_t>(A * n * C)), want(got.size());
          ops::ref::slice_axis1(x.data(), want.data(), A, B, C, start, n);
          ops::slice_axis1(x.data(), got.data(), A, B, C, start, n, 2);
          CHECK(got == want);
        }
  {
    auto r = rnd(3 * T * 64, 29);
    auto sl = run_both([&](Graph& g) {
      return g.add_node(&ops::kSliceAxis1, {g.add_weight("ring", f32(r, {3, T, 64}))}, "slice", 0, DType::F32,
                        {3, 1, 64}, ops::SliceParams{T - 1});
    });
    for (int64_t k = 0; k < 3; ++k)
      for (int64_t c = 0; c < 64; ++c) CHECK(sl[k * 64 + c] == r[(k * T + T - 1) * 64 + c]);
    // Rows past the end are an error that names the node, not a read out of bounds.
    Graph g;
    g.mark_output(g.add_node(&ops::kSliceAxis1, {g.add_weight("ring", f32(r, {3, T, 64}))}, "ring_last_token", 5,
                             DType::F32, {3, 2, 64}, ops::SliceParams{T - 1}));
    auto ex = Executor::create(g);
    REQUIRE(ex.ok());
    const Status s = (*ex)->run(1);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("ring_last_token (layer 5): slice_axis1: rows [" + std::to_string(T - 1) + ", " +
                                 std::to_string(T + 1) + ")") == 0);
  }
  auto x = rnd(T * 6 * 64, 26);
  auto sw = run_both([&](Graph& g) {
    return g.add_node(&ops::kSwapAxes01, {g.add_weight("x", f32(x, {T, 6, 64}))}, "swap", 0, DType::F32, {6, T, 64});
  });
  for (int64_t t = 0; t < T; ++t)
    for (int64_t l = 0; l < 6; ++l) CHECK(sw[(l * T + t) * 64 + 5] == x[(t * 6 + l) * 64 + 5]);

  // An embedding table shorter than the vocabulary: ids past it read row 0.
  auto table = rnd(5 * 8, 27);
  std::vector<int32_t> ids = {4, 5, 9, 0};
  Graph g;
  const TensorId idt = g.add_input("ids", DType::I32, {4});
  const TensorId e = g.add_node(&ops::kEmbedding, {g.add_weight("tab", f32(table, {5, 8})), idt}, "emb", 0, DType::F32,
                                {4, 8}, ops::EmbeddingParams{2.0f, 10});
  g.mark_output(e);
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  (*ex)->bind_input(idt, ids.data());
  REQUIRE((*ex)->run(1).ok());
  const float* out = (*ex)->tensor(e).as<float>();
  CHECK(out[0 * 8 + 3] == 2.0f * table[4 * 8 + 3]);
  CHECK(out[1 * 8 + 3] == 2.0f * table[3]);  // id 5: past the table
  CHECK(out[2 * 8 + 7] == 2.0f * table[7]);  // id 9: the last id the vocabulary has
  ids[2] = 10;                               // past the vocabulary: an error
  const Status s = (*ex)->run(1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("token id 10 is outside the vocabulary [0, 10)") != std::string::npos);

  // One token's [1, D] row times a [D] weight: broadcast, as for T tokens.
  auto a = rnd(D, 28), w = rnd(D, 29);
  auto m = run_both([&](Graph& g) {
    return g.add_node(&ops::kMul, {g.add_weight("a", f32(a, {1, D})), g.add_weight("w", f32(w, {D}))}, "mul", 0,
                      DType::F32, {1, D});
  });
  for (int64_t i = 0; i < D; i += 97) CHECK(m[i] == a[i] * w[i]);
}

TEST_CASE("wrong shapes and dtypes become errors that name the node") {
  auto x = rnd(T * D, 1), w = rnd(D + 1, 2);
  Graph g;
  g.mark_output(g.add_node(&ops::kRmsNorm, {g.add_weight("x", f32(x, {T, D})), g.add_weight("w", f32(w, {D + 1}))},
                           "attn_norm", 4, DType::F32, {T, D}));
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  Status s = (*ex)->run(1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "attn_norm (layer 4): weight [513] does not match rows of 512");

  Graph g2;
  std::vector<int32_t> ids = {5};
  const TensorId id = g2.add_input("ids", DType::I32, {1});
  g2.mark_output(
      g2.add_node(&ops::kEmbedding, {g2.add_weight("t", f32(x, {T, D})), id}, "embed", -1, DType::F32, {1, D}));
  auto ex2 = Executor::create(g2);
  REQUIRE(ex2.ok());
  ids[0] = 64;
  (*ex2)->bind_input(id, ids.data());
  s = (*ex2)->run(1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "embed: token id 64 is outside the vocabulary [0, 64)");
}

TEST_CASE("a node carrying another op's parameters is an error, not a misread") {
  auto x = rnd(T * D, 1);
  Graph g;
  // RoPE parameters on an RMSNorm node: the float would be read as eps if params were slots.
  g.mark_output(g.add_node(&ops::kRmsNorm, {g.add_weight("x", f32(x, {T, D}))}, "attn_norm", 2, DType::F32, {T, D},
                           ops::RopeParams{10000.0f, false}));
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  Status s = (*ex)->run(1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("does not carry this op's parameters") != std::string::npos);
}

TEST_CASE("a lagged attention node attends as its query's position minus the lag, and gives 0 before any key") {
  // StagFormer's cross-attention: lag 1 reads strictly earlier positions. Rows 0 .. lag-1 see
  // nothing; the others equal the reference at their lagged positions, on the tiled (T = 64) and
  // row (a decode step) paths, with and without a window.
  constexpr int64_t Tq = 64, H = 4, Hkv = 2, hd = 32;
  auto q = rnd(Tq * H * hd, 21), kc = rnd(Hkv * Tq * hd, 22), vc = rnd(Hkv * Tq * hd, 23);
  for (int64_t lag : {1, 3})
    for (int64_t window : {0, 5})
      for (int64_t first : {int64_t{0}, Tq - 1}) {  // a prefill from 0, a decode step at the end
        CAPTURE(lag);
        CAPTURE(window);
        CAPTURE(first);
        const int64_t n = Tq - first;
        std::vector<int32_t> pos(static_cast<size_t>(n));
        for (int64_t t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(first + t);
        ops::AttentionParams p{0.2f, window};
        p.lag = lag;
        TensorId pos_id = -1, kc_id = -1, vc_id = -1;
        const auto y = run_both(
            [&](Graph& g) {
              pos_id = g.add_input("pos", DType::I32, {n});
              kc_id = g.add_state("kcache", DType::F32, {Hkv, Tq, hd});
              vc_id = g.add_state("vcache", DType::F32, {Hkv, Tq, hd});
              return g.add_node(&ops::kAttention, {g.add_weight("q", f32(q, {n, H, hd})), kc_id, vc_id, pos_id}, "attn",
                                0, DType::F32, {n, H, hd}, p);
            },
            [&](Executor& ex) {
              ex.bind_input(pos_id, pos.data());
              ex.bind_input(kc_id, kc.data());
              ex.bind_input(vc_id, vc.data());
            });
        ops::AttentionShape s;
        s.n_heads = H;
        s.n_kv_heads = Hkv;
        s.head_dim = hd;
        s.ctx = Tq;
        s.scale = 0.2f;
        s.window = window;
        std::vector<float> want(static_cast<size_t>(n * H * hd), 0.0f);
        for (int64_t t = 0; t < n; ++t) {
          const int32_t at = static_cast<int32_t>(pos[static_cast<size_t>(t)] - lag);
          if (at >= 0)
            ops::ref::attention(s, &q[static_cast<size_t>(t * H * hd)], kc.data(), vc.data(), &at, 1,
                                &want[static_cast<size_t>(t * H * hd)]);
        }
        check_close(y.data(), want.data(), n * H * hd, 1e-5f, 1e-5f, "lagged attention node");
        for (int64_t t = 0; t < n; ++t)
          if (pos[static_cast<size_t>(t)] < lag)
            for (int64_t i = 0; i < H * hd; ++i) REQUIRE(y[static_cast<size_t>(t * H * hd + i)] == 0.0f);
      }
}
