// The sparse FFN products (Gemma 3n's sparse layers): the masked up projection
// (ops/matmul_masked.h) on every weight type and table, whose kept entries must carry the
// GEMV's bits; the transposition of the down weight, exact; the sparse-input down projection
// (ops/matmul_sparse.h) on every table against the double-precision reference; and the
// switch to the dense products above the density threshold.
#include <array>
#include <cstring>

#include "ops/matmul.h"
#include "ops/matmul_masked.h"
#include "ops/matmul_sparse.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

// A mask of M x N entries, each kept (a positive value, as Gaussian top-k leaves) with
// probability p.
std::vector<float> random_mask(int64_t n, double p, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> mask(static_cast<size_t>(n));
  for (auto& v : mask) v = u(rng) < p ? static_cast<float>(0.1 + u(rng)) : 0.0f;
  return mask;
}

// Weights of type dt: random floats for f32 / f16 / bf16, random blocks for the rest.
std::vector<uint8_t> random_weights(DType dt, int64_t N, int64_t K, std::mt19937& rng) {
  if (traits(dt).block_elems > 1) return random_quant_rows(dt, N, K, rng, 0.02f);
  std::vector<float> f(static_cast<size_t>(N * K));
  fill(f.data(), N * K, rng, -1, 1);
  std::vector<uint8_t> w(static_cast<size_t>(*tensor_bytes(dt, {N, K})));
  if (w.empty()) return w;  // memcpy may not see the null data of empty vectors
  if (dt == DType::F32) {
    std::memcpy(w.data(), f.data(), w.size());
  } else {
    const auto h = to_half(f.data(), N * K, dt == DType::BF16);
    std::memcpy(w.data(), h.data(), w.size());
  }
  return w;
}

std::vector<int64_t> widths(DType dt) {
  const int64_t b = traits(dt).block_elems;
  return b == 1 ? std::vector<int64_t>{1, 7, 33, 130} : std::vector<int64_t>{b, 3 * b};
}

// max over tokens and rows of sum_k |W[r, k] x[m, k]|: the scale of a product's rounding.
float abs_product_bound(const TensorView& w, const float* x, int64_t M) {
  const int64_t N = w.rows(), K = w.cols();
  std::vector<float> row(static_cast<size_t>(K));
  double bound = 0;
  for (int64_t r = 0; r < N; ++r) {
    (void)dequantize_row(w.dtype, w.row<const uint8_t>(r), row.data(), static_cast<uint64_t>(K));
    for (int64_t m = 0; m < M; ++m) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += std::fabs(static_cast<double>(row[k]) * x[m * K + k]);
      bound = std::max(bound, s);
    }
  }
  return static_cast<float>(bound);
}

// The same bytes (empty vectors included: memcmp may not see their null data).
bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// Whether the density of non-zero values in v[0, n) is above a path's threshold.
bool above(const float* v, int64_t n, double threshold) {
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) kept += v[i] != 0.0f;
  return static_cast<double>(kept) > threshold * static_cast<double>(n);
}

}  // namespace

TEST_CASE("masked matmul: kept entries carry the GEMV's bits, the rest are zero, on every table and weight type") {
  std::mt19937 rng(41);
  for (DType dt : computable_dtypes())
    for (int64_t K : widths(dt))
      for (int64_t N : {0, 1, 5, 70}) {
        const auto wbytes = random_weights(dt, N, K, rng);
        const TensorView w = TensorView::contiguous(dt, {N, K}, const_cast<uint8_t*>(wbytes.data()));
        for (int64_t M : {1, 4, 9})
          for (double p : {0.0, 0.05, 0.5, 1.0}) {
            const int off = M % 2 ? 3 : 0;  // misaligned starts on half the cases
            Buf x(M * K, off);
            fill(x.data(), M * K, rng);
            const auto mask = random_mask(M * N, p, rng);
            const float bound = abs_product_bound(w, x.data(), M);
            const std::string at = std::string(dtype_name(dt)) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                                   " K=" + std::to_string(K) + " p=" + std::to_string(p) +
                                   " offset=" + std::to_string(off);
            for (const ops::Kernels* k : all_tables()) {
              const std::string where = at + " " + k->isa;
              std::vector<float> gemv(static_cast<size_t>(M * N)), one(gemv.size(), 7.0f), two(gemv.size(), 7.0f);
              REQUIRE(ops::matmul(x.data(), M, w, gemv.data(), 1, ops::MatmulPath::gemv, k).ok());
              REQUIRE(ops::matmul_masked(x.data(), M, w, mask.data(), one.data(), 1, ops::SparsePath::sparse, k).ok());
              REQUIRE(ops::matmul_masked(x.data(), M, w, mask.data(), two.data(), 2, ops::SparsePath::sparse, k).ok());
              for (int64_t i = 0; i < M * N; ++i) {
                const float want = mask[static_cast<size_t>(i)] != 0.0f ? gemv[static_cast<size_t>(i)] : 0.0f;
                if (!same_bits(one[static_cast<size_t>(i)], want) || !same_bits(two[static_cast<size_t>(i)], want)) {
                  FAIL_CHECK(where << ": entry " << i << " is " << one[static_cast<size_t>(i)] << " / "
                                   << two[static_cast<size_t>(i)] << " (1 / 2 threads), want " << want);
                  break;
                }
              }
              // The path chosen by density: below the threshold the same bits; above it the
              // dense product, masked, within rounding of them.
              std::vector<float> chosen(gemv.size(), 7.0f), dense(gemv.size(), 7.0f);
              REQUIRE(ops::matmul_masked(x.data(), M, w, mask.data(), chosen.data(), 2, ops::SparsePath::automatic, k)
                          .ok());
              REQUIRE(ops::matmul_masked(x.data(), M, w, mask.data(), dense.data(), 2, ops::SparsePath::dense, k).ok());
              // The dense product may be oneDNN's on f32 activations where the GEMV rounds
              // them to 8 bits (quantized weights), or oneDNN's bf16 product where the GEMV
              // keeps them f32: then they agree to that rounding.
              const bool bf16x = dt == DType::BF16 && bf16_native_at(M);
              const float rel = traits(dt).block_elems == 1 ? (bf16x ? 1.0f / 256 : 1e-5f) : 1e-2f;
              const float tol = rel * bound + 1e-6f;
              check_close(chosen.data(), one.data(), M * N, 0, tol, "chosen path " + where);
              check_close(dense.data(), one.data(), M * N, 0, tol, "dense path " + where);
              if (!above(mask.data(), M * N, ops::kMaskedDenseAbove))
                CHECK_MESSAGE(same_floats(chosen, one),
                              where << ": at this density the sparse path must be the one taken");
              for (int64_t i = 0; i < M * N; ++i)
                if (mask[static_cast<size_t>(i)] == 0.0f && dense[static_cast<size_t>(i)] != 0.0f) {
                  FAIL_CHECK(where << ": the dense path left masked entry " << i << " at "
                                   << dense[static_cast<size_t>(i)]);
                  break;
                }
            }
            // Against the double-precision reference on the plain types (the quantized ones
            // round the activations to 8 bits first; their GEMVs are checked elsewhere).
            if (traits(dt).block_elems == 1) {
              std::vector<float> want(static_cast<size_t>(M * N)), got(want.size());
              ops::ref::matmul_masked(x.data(), M, w, mask.data(), want.data());
              REQUIRE(ops::matmul_masked(x.data(), M, w, mask.data(), got.data(), 2, ops::SparsePath::sparse).ok());
              check_close(got.data(), want.data(), M * N, 1e-5f, 1e-5f * static_cast<float>(K), "reference " + at);
            }
          }
      }
}

TEST_CASE("masked matmul: refuses what matmul refuses; M = 0 and N = 0 write nothing") {
  std::vector<uint8_t> q(66 * 2);
  const TensorView bad = TensorView::contiguous(DType::IQ2_XXS, {2, 256}, q.data());
  std::vector<float> x(256), mask(2, 1.0f), y(2, 7.0f);
  auto s = ops::matmul_masked(x.data(), 1, bad, mask.data(), y.data(), 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("no kernel for IQ2_XXS") != std::string::npos);
  std::vector<uint8_t> q8(34 * 2);
  const TensorView ragged = TensorView::contiguous(DType::Q8_0, {1, 48}, q8.data());
  s = ops::matmul_masked(x.data(), 1, ragged, mask.data(), y.data(), 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("whole blocks of 32") != std::string::npos);
  std::vector<float> wf(2 * 4, 1.0f);
  const TensorView w = TensorView::contiguous(DType::F32, {2, 4}, wf.data());
  REQUIRE(ops::matmul_masked(x.data(), 0, w, mask.data(), y.data(), 1).ok());
  CHECK(y[0] == 7.0f);
}

TEST_CASE("transpose_weight is exact for f32, f16 and bf16, at any shape and thread count") {
  std::mt19937 rng(42);
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (auto [D, F] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 9}, {7, 1}, {63, 65}, {130, 200}})
      for (int threads : {1, 2}) {
        const auto w = random_weights(dt, D, F, rng);
        const size_t es = dt == DType::F32 ? 4 : 2;
        std::vector<uint8_t> wt(w.size(), 0xAB);
        REQUIRE(ops::transpose_weight(TensorView::contiguous(dt, {D, F}, const_cast<uint8_t*>(w.data())), wt.data(),
                                      threads)
                    .ok());
        bool same = true;
        for (int64_t d = 0; d < D && same; ++d)
          for (int64_t f = 0; f < F && same; ++f)
            same =
                std::memcmp(&wt[static_cast<size_t>(f * D + d) * es], &w[static_cast<size_t>(d * F + f) * es], es) == 0;
        CHECK_MESSAGE(same, dtype_name(dt) << " " << D << "x" << F << " threads=" << threads);
      }
  std::vector<uint8_t> q(34);
  auto s = ops::transpose_weight(TensorView::contiguous(DType::Q8_0, {1, 32}, q.data()), q.data(), 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("f32 / f16 / bf16") != std::string::npos);
}

TEST_CASE(
    "sparse-input matmul on the transposed weight matches the reference on every table; dense above the threshold") {
  std::mt19937 rng(43);
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t D : {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 2100})  // 2100: two column blocks of 2048
      for (int64_t F : {1, 9, 100})
        for (int64_t M : {1, 5, 40}) {  // 40: two token blocks of 32
          const auto wb = random_weights(dt, D, F, rng);
          std::vector<uint8_t> wtb(wb.size());
          const TensorView w = TensorView::contiguous(dt, {D, F}, const_cast<uint8_t*>(wb.data()));
          REQUIRE(ops::transpose_weight(w, wtb.data(), 2).ok());
          const TensorView wt = TensorView::contiguous(dt, {F, D}, wtb.data());
          for (double p : {0.0, 0.05, 0.3, 1.0})
            for (int off : {0, 1}) {
              Buf x(M * F, off);
              const auto keep = random_mask(M * F, p, rng);
              fill(x.data(), M * F, rng);
              for (int64_t i = 0; i < M * F; ++i)
                if (keep[static_cast<size_t>(i)] == 0.0f) x[i] = i % 2 ? 0.0f : -0.0f;
              std::vector<float> want(static_cast<size_t>(M * D));
              ops::ref::matmul_sparse(x.data(), M, wt, want.data());
              // The dense product of bf16 weights may be oneDNN's bf16 one (x rounded to bf16).
              std::vector<float> want_dense = want;
              if (dt == DType::BF16 && bf16_native_at(M)) {
                ops::ref::matmul_sparse(rounded_to_bf16(x.data(), M * F).data(), M, wt, want_dense.data());
              }
              const float atol = 1e-5f * static_cast<float>(F) * 3.0f;
              const std::string at = std::string(dtype_name(dt)) + " M=" + std::to_string(M) +
                                     " D=" + std::to_string(D) + " F=" + std::to_string(F) + " p=" + std::to_string(p) +
                                     " offset=" + std::to_string(off);
              for (const ops::Kernels* k : all_tables()) {
                const std::string where = at + " " + k->isa;
                std::vector<float> one(want.size(), 7.0f), two(want.size(), 7.0f), chosen(want.size(), 7.0f),
                    dense(want.size(), 7.0f);
                REQUIRE(ops::matmul_sparse(x.data(), M, w, wt, one.data(), 1, ops::SparsePath::sparse, k).ok());
                REQUIRE(ops::matmul_sparse(x.data(), M, w, wt, two.data(), 2, ops::SparsePath::sparse, k).ok());
                REQUIRE(ops::matmul_sparse(x.data(), M, w, wt, chosen.data(), 2, ops::SparsePath::automatic, k).ok());
                REQUIRE(ops::matmul_sparse(x.data(), M, w, wt, dense.data(), 2, ops::SparsePath::dense, k).ok());
                check_close(one.data(), want.data(), M * D, 1e-5f, atol, "sparse path " + where);
                check_thread_agreement(one.data(), two.data(), M * D, false, "sparse path " + where);
                check_close(dense.data(), want_dense.data(), M * D, 1e-5f, atol, "dense path " + where);
                const bool sparse_taken = same_floats(chosen, two);
                if (above(x.data(), M * F, ops::kSparseDenseAbove))
                  CHECK_MESSAGE(same_floats(chosen, dense),
                                where << ": above the threshold the dense product is taken");
                else
                  CHECK_MESSAGE(sparse_taken, where << ": at this density the sparse path is taken");
              }
            }
        }
}

TEST_CASE("sparse-input matmul refuses a transposed weight that does not fit") {
  std::vector<float> wf(6, 1.0f), wtf(6, 1.0f), x(3, 1.0f), y(2);
  std::vector<uint16_t> wh(6);
  const TensorView w = TensorView::contiguous(DType::F32, {2, 3}, wf.data());
  for (const TensorView& wt : {TensorView::contiguous(DType::F32, {2, 3}, wtf.data()),    // not transposed
                               TensorView::contiguous(DType::F16, {3, 2}, wh.data())}) {  // another dtype
    auto s = ops::matmul_sparse(x.data(), 1, w, wt, y.data(), 1);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find(
              "is not the f32 / f16 / bf16 transpose, or the int8 transpose and scales (and offsets), of") !=
          std::string::npos);
  }
}

TEST_CASE("quantized down weights transpose into int8 values and scales whose products are the decoded values") {
  std::mt19937 rng(44);
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::IQ4_NL, DType::Q6_K, DType::Q4_K, DType::Q5_K}) {
    const int64_t B = ops::sparse_scale_block(dt);
    REQUIRE(B > 0);
    for (int64_t D : {1, 3, 65, 130})
      for (int64_t F : {int64_t{256}, int64_t{512}}) {
        auto wb = random_quant_rows(dt, D, F, rng, 0.02f);
        const TensorView w = TensorView::contiguous(dt, {D, F}, wb.data());
        std::vector<int8_t> qt[2];
        std::vector<float> st[2];
        for (int threads : {1, 2}) {
          qt[threads - 1].assign(static_cast<size_t>(F * D), 0);
          st[threads - 1].assign(static_cast<size_t>(F / B * D * (ops::sparse_has_offsets(dt) ? 2 : 1)), 0.0f);
          REQUIRE(ops::transpose_weight_q(w, qt[threads - 1].data(), st[threads - 1].data(), threads).ok());
        }
        CHECK(qt[0] == qt[1]);
        CHECK(st[0] == st[1]);
        std::vector<float> row(static_cast<size_t>(F));
        bool exact = true;
        for (int64_t d = 0; d < D; ++d) {
          REQUIRE(dequantize_row(dt, w.row<const uint8_t>(d), row.data(), static_cast<uint64_t>(F)).ok());
          for (int64_t f = 0; f < F; ++f) {
            float v =
                st[0][static_cast<size_t>(f / B * D + d)] * static_cast<float>(qt[0][static_cast<size_t>(f * D + d)]);
            if (ops::sparse_has_offsets(dt)) v -= st[0][static_cast<size_t>((F / B + f / B) * D + d)];
            exact = exact && v == row[static_cast<size_t>(f)];
          }
        }
        CHECK_MESSAGE(exact, dtype_name(dt) << " " << D << "x" << F);
      }
  }
  // Adversarial blocks: all-zero scale, the largest fp16 scale, subnormal scales, every
  // integer at both ends. The products are still exactly the decoded values.
  std::vector<uint8_t> wb(2 * 2 * sizeof(BlockQ8_0));
  for (int b = 0; b < 4; ++b) {
    BlockQ8_0 blk;
    blk.d = std::array<uint16_t, 4>{0x0000, 0x7bff, 0x0001, 0x03ff}[static_cast<size_t>(b)];
    for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<int8_t>(j % 2 ? -128 : 127);
    std::memcpy(wb.data() + b * sizeof(BlockQ8_0), &blk, sizeof blk);
  }
  std::vector<int8_t> qt(128);
  std::vector<float> st(4), row(64);
  const TensorView adv = TensorView::contiguous(DType::Q8_0, {2, 64}, wb.data());
  REQUIRE(ops::transpose_weight_q(adv, qt.data(), st.data(), 1).ok());
  for (int64_t d = 0; d < 2; ++d) {
    REQUIRE(dequantize_row(DType::Q8_0, adv.row<const uint8_t>(d), row.data(), 64).ok());
    for (int64_t f = 0; f < 64; ++f)
      CHECK(st[static_cast<size_t>(f / 32 * 2 + d)] * static_cast<float>(qt[static_cast<size_t>(f * 2 + d)]) ==
            row[static_cast<size_t>(f)]);
  }
  Status s;
  s = ops::transpose_weight_q(TensorView::contiguous(DType::Q2_K, {1, 256}, wb.data()), qt.data(), st.data(), 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("Q8_0 / Q4_0 / IQ4_NL / Q6_K / Q4_K / Q5_K") != std::string::npos);
}

TEST_CASE("sparse-input matmul on int8 values and scales adds exactly what the dequantized rows would") {
  // The same product on the f32 transpose of the decoded weight is the reference bit for bit
  // (each axpy adds a · (s · q), and s · q is the decoded value); the double reference bounds
  // both; above the threshold the dense product on the quantized weight is taken.
  std::mt19937 rng(45);
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::IQ4_NL, DType::Q6_K, DType::Q4_K, DType::Q5_K})
    for (int64_t D : {1, 5, 17, 2100})
      for (int64_t F : {int64_t{256}})
        for (int64_t M : {1, 40}) {
          const int64_t B = ops::sparse_scale_block(dt);
          auto wb = random_quant_rows(dt, D, F, rng, 0.02f);
          const TensorView w = TensorView::contiguous(dt, {D, F}, wb.data());
          std::vector<int8_t> qt(static_cast<size_t>(F * D));
          const int64_t scale_rows = F / B * (ops::sparse_has_offsets(dt) ? 2 : 1);
          std::vector<float> st(static_cast<size_t>(scale_rows * D)), wf(static_cast<size_t>(D * F)),
              wtf(static_cast<size_t>(F * D));
          REQUIRE(ops::transpose_weight_q(w, qt.data(), st.data(), 2).ok());
          for (int64_t d = 0; d < D; ++d)
            REQUIRE(dequantize_row(dt, w.row<const uint8_t>(d), wf.data() + d * F, static_cast<uint64_t>(F)).ok());
          const TensorView w32 = TensorView::contiguous(DType::F32, {D, F}, wf.data());
          REQUIRE(ops::transpose_weight(w32, wtf.data(), 1).ok());
          const TensorView wt = TensorView::contiguous(DType::I8, {F, D}, qt.data()),
                           scales = TensorView::contiguous(DType::F32, {scale_rows, D}, st.data()),
                           wt32 = TensorView::contiguous(DType::F32, {F, D}, wtf.data());
          for (double p : {0.05, 0.2, 1.0}) {  // 0.2: sparse for one token, dense for 40
            Buf x(M * F, 1);
            const auto keep = random_mask(M * F, p, rng);
            fill(x.data(), M * F, rng);
            for (int64_t i = 0; i < M * F; ++i)
              if (keep[static_cast<size_t>(i)] == 0.0f) x[i] = 0.0f;
            std::vector<float> want(static_cast<size_t>(M * D));
            ops::ref::matmul_sparse(x.data(), M, wt, want.data(), &scales, ops::sparse_has_offsets(dt));
            const std::string at = std::string(dtype_name(dt)) + " M=" + std::to_string(M) + " D=" + std::to_string(D) +
                                   " p=" + std::to_string(p);
            for (const ops::Kernels* k : all_tables()) {
              const std::string where = at + " " + k->isa;
              std::vector<float> q8(want.size(), 7.0f), f32(want.size(), 7.0f), chosen(want.size(), 7.0f),
                  dense(want.size(), 7.0f);
              REQUIRE(ops::matmul_sparse(x.data(), M, w, wt, q8.data(), 2, ops::SparsePath::sparse, k, &scales).ok());
              REQUIRE(ops::matmul_sparse(x.data(), M, w32, wt32, f32.data(), 2, ops::SparsePath::sparse, k).ok());
              REQUIRE(ops::matmul_sparse(x.data(), M, w, wt, chosen.data(), 2, ops::SparsePath::automatic, k, &scales)
                          .ok());
              REQUIRE(ops::matmul(x.data(), M, w, dense.data(), 2, ops::MatmulPath::automatic, k).ok());
              CHECK_MESSAGE(same_floats(q8, f32), where << ": int8 and scales differ from the decoded rows");
              check_close(q8.data(), want.data(), M * D, 1e-5f, 1e-5f * static_cast<float>(F) * 3.0f, "int8 " + where);
              CHECK_MESSAGE(
                  same_floats(chosen, above(x.data(), M * F, ops::sparse_dense_above(DType::I8, M)) ? dense : q8),
                  where << ": the path the density chooses");
            }
          }
        }
  // Scales that do not fit the weight: an error naming both.
  auto wb = random_quant_rows(DType::Q8_0, 2, 64, rng, 0.02f);
  std::vector<int8_t> qt(128);
  std::vector<float> st(4), x(64, 1.0f), y(2);
  const TensorView w = TensorView::contiguous(DType::Q8_0, {2, 64}, wb.data());
  const TensorView wt = TensorView::contiguous(DType::I8, {64, 2}, qt.data());
  const TensorView bad = TensorView::contiguous(DType::F32, {1, 2}, st.data());
  auto s = ops::matmul_sparse(x.data(), 1, w, wt, y.data(), 1, ops::SparsePath::automatic, nullptr, &bad);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("(scales F32 [1, 2])") != std::string::npos);
  s = ops::matmul_sparse(x.data(), 1, w, wt, y.data(), 1);  // no scales at all
  REQUIRE_FALSE(s.ok());
}
