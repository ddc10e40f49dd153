// The mixture-of-experts FFN (ops/moe.h): the routing against its definition computed
// directly (softmax over every expert, top k, renormalised); the op on every kernel table and
// weight type against the double-precision reference, at awkward sizes and misaligned starts;
// 1 and 2 threads alike; and only the chosen experts read (the others poisoned with NaN).
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/moe.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

std::vector<uint8_t> random_experts(DType dt, int64_t E, int64_t N, int64_t K, std::mt19937& rng) {
  if (traits(dt).block_elems > 1) return random_quant_rows(dt, E * N, K, rng, 0.05f);
  std::vector<float> f(static_cast<size_t>(E * N * K));
  fill(f.data(), E * N * K, rng, -0.5f, 0.5f);
  std::vector<uint8_t> w(static_cast<size_t>(*tensor_bytes(dt, {E * N, K})));
  if (w.empty()) return w;
  if (dt == DType::F32) {
    std::memcpy(w.data(), f.data(), w.size());
  } else {
    const auto h = to_half(f.data(), E * N * K, dt == DType::BF16);
    std::memcpy(w.data(), h.data(), w.size());
  }
  return w;
}

}  // namespace

TEST_CASE("routing: the top k of the softmax, renormalised; the lower index first among equals") {
  std::mt19937 rng(5);
  for (int64_t E : {1, 2, 8, 60})
    for (int64_t k : {int64_t{1}, int64_t{2}, E}) {
      if (k > E) continue;
      const int64_t T = 9;
      std::vector<float> logits(static_cast<size_t>(T * E));
      fill(logits.data(), T * E, rng, -4, 4);
      if (E > 2) logits[1] = logits[2] = 9.0f;  // a tie at the top of token 0
      std::vector<int32_t> ids(static_cast<size_t>(T * k));
      std::vector<float> gates(ids.size());
      ops::moe_route(logits.data(), T, E, k, ids.data(), gates.data());
      for (int64_t t = 0; t < T; ++t) {
        const float* r = &logits[static_cast<size_t>(t * E)];
        double z = 0;
        for (int64_t e = 0; e < E; ++e) z += std::exp(static_cast<double>(r[e]));
        std::vector<bool> taken(static_cast<size_t>(E), false);
        double kept = 0;
        for (int64_t j = 0; j < k; ++j) {  // the largest not yet taken, lowest index on ties
          int64_t best = -1;
          for (int64_t e = 0; e < E; ++e)
            if (!taken[static_cast<size_t>(e)] && (best < 0 || r[e] > r[best])) best = e;
          taken[static_cast<size_t>(best)] = true;
          CHECK(ids[static_cast<size_t>(t * k + j)] == best);
          kept += std::exp(static_cast<double>(r[best])) / z;
        }
        for (int64_t j = 0; j < k; ++j) {
          const double p = std::exp(static_cast<double>(r[ids[static_cast<size_t>(t * k + j)]])) / z;
          CHECK(gates[static_cast<size_t>(t * k + j)] == doctest::Approx(p / kept).epsilon(1e-6));
        }
      }
      if (E > 2 && k >= 2) CHECK((ids[0] == 1 && ids[1] == 2));
    }
}

TEST_CASE("moe_ffn matches the reference on every table and weight type, at awkward sizes") {
  std::mt19937 rng(17);
  for (DType dt : computable_dtypes()) {
    const int64_t b = traits(dt).block_elems;
    const std::vector<std::pair<int64_t, int64_t>> dims =
        b == 1 ? std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {7, 33}, {33, 17}}
               : std::vector<std::pair<int64_t, int64_t>>{{b, b}, {2 * b, b}};
    for (auto [d, F] : dims)
      for (auto [E, k] : {std::pair<int64_t, int64_t>{1, 1}, {4, 2}, {5, 3}}) {
        const auto gate = random_experts(dt, E, F, d, rng), up = random_experts(dt, E, F, d, rng),
                   down = random_experts(dt, E, d, F, rng);
        const TensorView g = TensorView::contiguous(dt, {E, F, d}, const_cast<uint8_t*>(gate.data())),
                         u = TensorView::contiguous(dt, {E, F, d}, const_cast<uint8_t*>(up.data())),
                         w = TensorView::contiguous(dt, {E, d, F}, const_cast<uint8_t*>(down.data()));
        for (int64_t T : {0, 1, 2, 13}) {
          const int off = T % 2 ? 3 : 0;  // misaligned starts on half the cases
          Buf x(T * d, off);
          fill(x.data(), T * d, rng);
          std::vector<float> logits(static_cast<size_t>(T * E));
          fill(logits.data(), T * E, rng, -2, 2);
          const ops::MoeParams p{k, T % 3 ? ops::Act::Silu : ops::Act::GeluTanh};
          std::vector<float> want(static_cast<size_t>(T * d));
          ops::ref::moe_ffn(x.data(), T, logits.data(), g, u, w, p, want.data());
          float scale = 1e-3f;
          for (float v : want) scale = std::max(scale, std::fabs(v));
          // f32 weights: rounding; half weights may meet half activations; the quantized GEMV
          // rounds activations to 8 bits, twice on the way (x, then the hidden units), and the
          // random K-quant blocks' sums cancel: a few percent of the largest output.
          const float tol = scale * (dt == DType::F32 ? 1e-5f : b == 1 ? 1e-2f : 6e-2f);
          for (const ops::Kernels* table : all_tables()) {
            CAPTURE(dtype_name(dt));
            CAPTURE(d);
            CAPTURE(F);
            CAPTURE(E);
            CAPTURE(T);
            CAPTURE(table->isa);
            std::vector<float> one(want.size(), 7.0f), two(want.size(), 7.0f);
            REQUIRE(ops::moe_ffn(x.data(), T, logits.data(), g, u, w, p, one.data(), 1, table).ok());
            REQUIRE(ops::moe_ffn(x.data(), T, logits.data(), g, u, w, p, two.data(), 2, table).ok());
            float worst = 0;
            for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(one[i] - want[i]));
            CHECK(worst <= tol);
            CHECK((want.empty() || std::memcmp(one.data(), two.data(), want.size() * 4) == 0));
          }
        }
      }
  }
}

TEST_CASE("a token reads only the experts it chose") {
  std::mt19937 rng(3);
  const int64_t E = 6, d = 16, F = 24;
  auto gate = random_experts(DType::F32, E, F, d, rng), up = random_experts(DType::F32, E, F, d, rng),
       down = random_experts(DType::F32, E, d, F, rng);
  std::vector<float> x(static_cast<size_t>(d));
  fill(x.data(), d, rng);
  std::vector<float> logits = {0, 3, 0, 0, 2, 0};  // experts 1 and 4
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t e : {0, 2, 3, 5}) {
    std::fill_n(reinterpret_cast<float*>(gate.data()) + e * F * d, F * d, nan);
    std::fill_n(reinterpret_cast<float*>(down.data()) + e * d * F, d * F, nan);
  }
  const TensorView g = TensorView::contiguous(DType::F32, {E, F, d}, gate.data()),
                   u = TensorView::contiguous(DType::F32, {E, F, d}, up.data()),
                   w = TensorView::contiguous(DType::F32, {E, d, F}, down.data());
  std::vector<float> y(static_cast<size_t>(d));
  REQUIRE(ops::moe_ffn(x.data(), 1, logits.data(), g, u, w, {2, ops::Act::Silu}, y.data(), 2).ok());
  for (float v : y) CHECK(std::isfinite(v));
  // And refused: more experts used than there are, shapes that do not fit.
  CHECK_FALSE(ops::moe_ffn(x.data(), 1, logits.data(), g, u, w, {7, ops::Act::Silu}, y.data(), 1).ok());
  const TensorView bad = TensorView::contiguous(DType::F32, {E, d, F + 1}, down.data());
  CHECK_FALSE(ops::moe_ffn(x.data(), 1, logits.data(), g, u, bad, {2, ops::Act::Silu}, y.data(), 1).ok());
}
