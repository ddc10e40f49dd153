// GEMV (f32 / f16 / bf16 weights) on every SIMD table against the scalar reference; the
// threaded matmul on both paths (GEMV and oneDNN) against the double-precision reference,
// with the determinism contract of op_test_util.h (check_thread_agreement); embedding lookup.
#include <cstring>

#include "ops/bf16_rate.h"
#include "ops/convert.h"
#include "ops/gemm_half.h"
#include "ops/matmul.h"
#if defined(ALTUP_HAVE_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>

#include "ops/gemm_dnnl.h"
#endif
#include "ops/qgemv.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

TEST_CASE("gemv kernels match the scalar reference for every weight dtype, size and start") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(10);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int64_t rows : {1, 3, 4, 5, 9})
        for (int off : kMisalignments) {
          const int64_t ld = n + off;  // row starts misaligned too
          Buf w(rows * ld, off), x(n, off), y(rows, 0), want(rows, 0);
          fill(w.data(), rows * ld, rng);
          fill(x.data(), n, rng);
          double mag = 0;
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < n; ++i) mag = std::max(mag, std::fabs(double(w[r * ld + i]) * x[i]) * n);
          const float atol = 2e-6f * static_cast<float>(mag) + 1e-6f;
          const std::string at = label(*k, n, off) + " rows=" + std::to_string(rows);
          k->gemv_f32(w.data(), ld, x.data(), y.data(), rows, n);
          ref.gemv_f32(w.data(), ld, x.data(), want.data(), rows, n);
          check_close(y.data(), want.data(), rows, 0, atol, "gemv_f32 " + at);
          for (bool bf16 : {false, true}) {
            auto h = to_half(w.data(), rows * ld, bf16);
            (bf16 ? k->gemv_bf16 : k->gemv_f16)(h.data(), ld, x.data(), y.data(), rows, n);
            (bf16 ? ref.gemv_bf16 : ref.gemv_f16)(h.data(), ld, x.data(), want.data(), rows, n);
            check_close(y.data(), want.data(), rows, 0, atol, (bf16 ? "gemv_bf16 " : "gemv_f16 ") + at);
          }
        }
}

TEST_CASE("matmul: GEMV and oneDNN paths agree with the reference; threads keep the determinism contract") {
  std::mt19937 rng(11);
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t M : {1, 3, 7, 33})
      // {4100, 257}: f16 / bf16 weights go to oneDNN in blocks of (1 << 20) / K rows; this crosses one.
      for (auto [N, K] :
           std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {17, 31}, {64, 256}, {300, 129}, {4100, 257}}) {
        std::vector<float> wf(static_cast<size_t>(N * K)), x(static_cast<size_t>(M * K));
        fill(wf.data(), N * K, rng, -1, 1);
        fill(x.data(), M * K, rng, -1, 1);
        std::vector<uint16_t> wh;
        void* wdata = wf.data();
        if (dt != DType::F32) {
          wh = to_half(wf.data(), N * K, dt == DType::BF16);
          wdata = wh.data();
        }
        const TensorView w = TensorView::contiguous(dt, {N, K}, wdata);
        std::vector<float> want(static_cast<size_t>(M * N)), want_bf16x(want.size());
        for (int64_t m = 0; m < M; ++m) ops::ref::gemv(w, x.data() + m * K, want.data() + m * N);
        // oneDNN's bf16 product (bf16_native) multiplies x rounded to bf16: its reference.
        if (dt == DType::BF16) {
          const std::vector<float> xr = rounded_to_bf16(x.data(), M * K);
          for (int64_t m = 0; m < M; ++m) ops::ref::gemv(w, xr.data() + m * K, want_bf16x.data() + m * N);
        }
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        for (const ops::Kernels* k : all_tables())
          for (ops::MatmulPath path : {ops::MatmulPath::automatic, ops::MatmulPath::gemv, ops::MatmulPath::onednn,
                                       ops::MatmulPath::half_dot, ops::MatmulPath::bf16_native}) {
            if (path == ops::MatmulPath::half_dot && dt == DType::F32)
              continue;  // the dot tiles are for half precision
            if (path == ops::MatmulPath::bf16_native && (dt != DType::BF16 || !kHaveOneDnn))
              continue;  // oneDNN's bf16 product
            const std::string at = std::string("matmul ") + k->isa + " path " + ops::matmul_path_name(path);
            std::vector<float> y1(want.size()), y2(want.size()), y2again(want.size());
            const Status first = ops::matmul(x.data(), M, w, y1.data(), 1, path, k);
            if (path == ops::MatmulPath::bf16_native && !bf16_product() && !first.ok()) {
              // Where oneDNN has no bf16 product at all (below AVX-512): a clear error.
              CHECK_MESSAGE(first.error().message.find("oneDNN") != std::string::npos, first.error().message);
              continue;
            }
            REQUIRE(first.ok());
            REQUIRE(ops::matmul(x.data(), M, w, y2.data(), 2, path, k).ok());
            REQUIRE(ops::matmul(x.data(), M, w, y2again.data(), 2, path, k).ok());
            const bool bf16x =
                kHaveOneDnn && dt == DType::BF16 &&
                (path == ops::MatmulPath::bf16_native || (path == ops::MatmulPath::automatic && bf16_native_at(M)));
            const float* ref = bf16x ? want_bf16x.data() : want.data();
            check_close(y1.data(), ref, M * N, 1e-4f, 1e-4f, at);
            check_close(y2.data(), ref, M * N, 1e-4f, 1e-4f, at + " (2 threads)");
            // onednn is oneDNN's where the build has it, and so is automatic for f32 above the
            // GEMV sizes and for bf16 on AMX; 1 and 5 are always the runtime's own kernels.
            const bool onednn =
                kHaveOneDnn &&
                (path == ops::MatmulPath::onednn || bf16x ||
                 (path == ops::MatmulPath::automatic && dt == DType::F32 && M > ops::kGemvMaxTokensF32) ||
                 (path == ops::MatmulPath::automatic && dt != DType::F32 && (M > 256 || !k->half_dot)));
            check_thread_agreement(y1.data(), y2.data(), M * N, onednn, at);
            CHECK_MESSAGE(std::memcmp(y2.data(), y2again.data(), y2.size() * 4) == 0,
                          at << ": the same call twice must give the same bits");
          }
      }
}

TEST_CASE("matmul refuses weights it has no kernel for") {
  std::vector<uint8_t> q(66 * 2);
  const TensorView w = TensorView::contiguous(DType::IQ2_XXS, {2, 256}, q.data());
  float x[256] = {}, y[2];
  auto s = ops::matmul(x, 1, w, y, 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("no kernel for IQ2_XXS") != std::string::npos);
}

TEST_CASE("embedding lookup: f32, f16, bf16 and q8_0 tables, scaled; bad ids are errors") {
  std::mt19937 rng(12);
  const int64_t V = 11, d = 64;
  std::vector<float> table(static_cast<size_t>(V * d));
  fill(table.data(), V * d, rng);
  const int32_t ids[] = {3, 0, 10, 3};
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<uint16_t> h;
    void* data = table.data();
    if (dt != DType::F32) {
      h = to_half(table.data(), V * d, dt == DType::BF16);
      data = h.data();
    }
    const TensorView t = TensorView::contiguous(dt, {V, d}, data);
    std::vector<float> out(4 * d), row(d);
    for (int threads : {1, 2}) {
      REQUIRE(ops::embedding_lookup(t, ids, 4, 2.0f, out.data(), threads).ok());
      for (int r = 0; r < 4; ++r) {
        REQUIRE(dequantize_row(dt, t.row<const uint8_t>(ids[r]), row.data(), d).ok());
        for (int64_t i = 0; i < d; ++i) REQUIRE(out[r * d + i] == 2.0f * row[i]);
      }
    }
  }
  const TensorView t = TensorView::contiguous(DType::F32, {V, d}, table.data());
  std::vector<float> out(d);
  const int32_t bad[] = {11};
  auto s = ops::embedding_lookup(t, bad, 1, 1.0f, out.data(), 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "token id 11 is outside the vocabulary [0, 11)");
}

TEST_CASE("activation quantization: 8-bit blocks of 32 with amax / 127 scales in fp16, never -128") {
  std::mt19937 rng(21);
  std::vector<float> x(32 * 5);
  fill(x.data(), static_cast<int64_t>(x.size()), rng);
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block: scale 0, values 0
  std::vector<ops::BlockQ8x> q(5);
  ops::quantize_row_q8x(x.data(), q.data(), static_cast<int64_t>(x.size()));
  CHECK(q[1].d == 0.0f);
  for (int b = 0; b < 5; ++b)
    for (int i = 0; i < 32; ++i) {
      CHECK(q[b].qs[i] >= -127);
      // The q are rounded against the f32 d, the stored d to fp16 (relative 2^-11): |q| <= 127
      // times that on top of half a step.
      CHECK(std::fabs(q[b].qs[i] * q[b].d - x[b * 32 + i]) <= (0.5f + 127.0f / 1024.0f) * q[b].d + 1e-7f);
    }
  for (int b = 0; b < 5; ++b) CHECK(q[b].d == fp16_to_fp32(fp32_to_fp16(q[b].d)));  // an fp16 value
}

TEST_CASE("quantized GEMV kernels match the scalar reference on every table, size and start") {
  std::mt19937 rng(22);
  const ops::Kernels& ref = ops::scalar_kernels();
  auto gemv = [](const ops::Kernels& k, DType dt) {
    return dt == DType::Q8_0 ? k.gemv_q8_0 : dt == DType::Q4_0 ? k.gemv_q4_0 : k.gemv_iq4_nl;
  };
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::IQ4_NL})
    for (const ops::Kernels* k : simd_tables())
      for (int64_t n : {0, 32, 64, 32 * (k->lanes - 1), 32 * (k->lanes + 1), 4096})
        for (int64_t rows : {1, 3, 4, 5, 9})
          for (int off : {0, 1, 3}) {  // row starts and the activation blocks misaligned
            const int64_t nb = n / 32;
            const auto rows_bytes = random_quant_rows(dt, rows, std::max<int64_t>(n, 32), rng, 0.05f);
            std::vector<uint8_t> wbuf(rows_bytes.size() + 64);
            uint8_t* w = wbuf.data() + off;
            std::memcpy(w, rows_bytes.data(), rows_bytes.size());
            const int64_t row_bytes = static_cast<int64_t>(rows_bytes.size()) / rows;
            std::vector<float> x(static_cast<size_t>(std::max<int64_t>(n, 32)));
            fill(x.data(), static_cast<int64_t>(x.size()), rng);
            std::vector<unsigned char> xbuf((nb + 1) * sizeof(ops::BlockQ8x) + 8);
            auto* xq = reinterpret_cast<ops::BlockQ8x*>(xbuf.data() + (off ? 4 : 0));  // 4-byte aligned, not 8
            ops::quantize_row_q8x(x.data(), xq, n);
            std::vector<float> y(rows), want(rows);
            gemv(*k, dt)(w, row_bytes, xq, y.data(), rows, nb);
            gemv(ref, dt)(w, row_bytes, xq, want.data(), rows, nb);
            // Exact int32 block sums both ways; only the order of the float accumulation differs.
            double mag = 0;
            for (int64_t b = 0; b < nb; ++b) mag += 127.0 * 128.0 * 32.0 * 0.05 * xq[b].d;
            CAPTURE(std::string(dtype_name(dt)));
            check_close(
                y.data(), want.data(), rows, 0, static_cast<float>(1e-6 * mag) + 1e-7f,
                "gemv " + std::string(dtype_name(dt)) + " " + label(*k, n, off) + " rows=" + std::to_string(rows));
          }
}

TEST_CASE("the two-token Q8_0 GEMV gives each token the one-token GEMV's bits, on every table") {
  std::mt19937 rng(23);
  for (const ops::Kernels* k : all_tables())
    for (int64_t nb : {0, 1, 2, 3, 8, 9, 128})
      for (int64_t rows : {1, 3, 16, 17})
        for (int off : {0, 1, 3}) {  // row starts and the activation blocks misaligned
          const auto rows_bytes = random_quant_rows(DType::Q8_0, rows, std::max<int64_t>(nb, 1) * 32, rng, 0.05f);
          std::vector<uint8_t> wbuf(rows_bytes.size() + 64);
          uint8_t* w = wbuf.data() + off;
          std::memcpy(w, rows_bytes.data(), rows_bytes.size());
          const int64_t row_bytes = static_cast<int64_t>(rows_bytes.size()) / rows;
          std::vector<float> x(static_cast<size_t>(2 * std::max<int64_t>(nb, 1) * 32));
          fill(x.data(), static_cast<int64_t>(x.size()), rng);
          std::vector<unsigned char> xbuf((2 * nb + 2) * sizeof(ops::BlockQ8x) + 8);
          auto* xq = reinterpret_cast<ops::BlockQ8x*>(xbuf.data() + (off ? 4 : 0));
          ops::quantize_row_q8x(x.data(), xq, 2 * nb * 32);
          std::vector<float> y0(rows, -1.0f), y1(rows, -1.0f), want0(rows), want1(rows);
          k->gemv2_q8_0(w, row_bytes, xq, xq + nb, y0.data(), y1.data(), rows, nb);
          k->gemv_q8_0(w, row_bytes, xq, want0.data(), rows, nb);
          k->gemv_q8_0(w, row_bytes, xq + nb, want1.data(), rows, nb);
          CAPTURE(k->isa);
          CAPTURE(nb);
          CAPTURE(rows);
          CAPTURE(off);
          for (int64_t r = 0; r < rows; ++r) {
            REQUIRE(same_bits(y0[r], want0[r]));
            REQUIRE(same_bits(y1[r], want1[r]));
          }
        }
}

TEST_CASE("quantized GEMM tiles (prefill) match the scalar reference on every table: tokens x rows x blocks") {
  std::mt19937 rng(24);
  const ops::Kernels& ref = ops::scalar_kernels();
  for (DType dt : {DType::Q8_0, DType::Q4_0})
    for (const ops::Kernels* k : simd_tables())
      for (int64_t nb : {1, 2, 9, 64})
        for (int64_t rows : {1, 3, 4, 5, 63, 64, 65, 130})
          for (int64_t M : {1, 2, 3, 5, 8, 13}) {  // 13: a group of 8 (avx512_vnni), 4, 1
            const auto rows_bytes = random_quant_rows(dt, rows, nb * 32, rng, 0.05f);
            const int64_t row_bytes = static_cast<int64_t>(rows_bytes.size()) / rows;
            std::vector<float> x(static_cast<size_t>(M * nb * 32));
            fill(x.data(), static_cast<int64_t>(x.size()), rng);
            std::vector<ops::BlockQ8x> xq(static_cast<size_t>(M * nb));
            for (int64_t m = 0; m < M; ++m) ops::quantize_row_q8x(x.data() + m * nb * 32, xq.data() + m * nb, nb * 32);
            const int64_t ldy = rows + 3;  // y rows further apart than the rows computed
            std::vector<float> y(static_cast<size_t>(M * ldy), -7.0f), want(y);
            (dt == DType::Q8_0 ? k->gemm_q8_0 : k->gemm_q4_0)(rows_bytes.data(), row_bytes, xq.data(), M, y.data(), ldy,
                                                              rows, nb);
            (dt == DType::Q8_0 ? ref.gemm_q8_0 : ref.gemm_q4_0)(rows_bytes.data(), row_bytes, xq.data(), M, want.data(),
                                                                ldy, rows, nb);
            double mag = 0;
            for (const auto& b : xq) mag = std::max(mag, 127.0 * 128.0 * 32.0 * 0.05 * b.d * static_cast<double>(nb));
            CAPTURE(std::string(dtype_name(dt)));
            CAPTURE(nb);
            CAPTURE(rows);
            CAPTURE(M);
            check_close(y.data(), want.data(), M * ldy, 0, static_cast<float>(1e-6 * mag) + 1e-7f,
                        std::string("gemm ") + k->isa);
            // The AVX2 / AVX-512 tables run panels of 8 rows (16 on avx512_vnni), one row per
            // lane, with the reference's float steps: its bits exactly (ops/qgemm_q8-inl.h).
            if (k->q8_gemm_panels)
              for (size_t i = 0; i < y.size(); ++i) REQUIRE(same_bits(y[i], want[i]));
            for (int64_t m = 0; m < M; ++m) CHECK(y[static_cast<size_t>(m * ldy + rows)] == -7.0f);  // untouched
          }
}

TEST_CASE("matmul on Q8_0 / Q4_0 weights: both paths close to the dequantized product, threads keep the contract") {
  std::mt19937 rng(23);
  for (DType dt : {DType::Q8_0, DType::Q4_0})
    for (int64_t M : {1, 3, 33})
      for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{17, 32}, {64, 256}, {300, 96}, {4100, 288}}) {
        const auto wq = random_quant_rows(dt, N, K, rng, 0.05f);
        const TensorView w = TensorView::contiguous(dt, {N, K}, const_cast<uint8_t*>(wq.data()));
        std::vector<float> x(static_cast<size_t>(M * K)), want(static_cast<size_t>(M * N));
        fill(x.data(), M * K, rng, -1, 1);
        for (int64_t m = 0; m < M; ++m) ops::ref::gemv(w, x.data() + m * K, want.data() + m * N);
        float mag = 0;
        for (float v : want) mag = std::max(mag, std::fabs(v));
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(M);
        CAPTURE(N);
        for (const ops::Kernels* k : all_tables())
          for (ops::MatmulPath path : {ops::MatmulPath::gemv, ops::MatmulPath::onednn, ops::MatmulPath::int8_tiles}) {
            const std::string at =
                "matmul " + std::string(dtype_name(dt)) + " " + k->isa + " path " + ops::matmul_path_name(path);
            std::vector<float> y1(want.size()), y2(want.size());
            REQUIRE(ops::matmul(x.data(), M, w, y1.data(), 1, path, k).ok());
            REQUIRE(ops::matmul(x.data(), M, w, y2.data(), 2, path, k).ok());
            // The GEMV path and the int8 tiles (int8_tiles) quantize the activations to 8 bits
            // (error ~ 1/254 of each block's max); oneDNN's (onednn where the build has it)
            // multiplies the exactly decoded weights in f32. Without oneDNN onednn is the GEMV.
            const bool exact = path == ops::MatmulPath::onednn && kHaveOneDnn;
            check_close(y1.data(), want.data(), M * N, 0, (exact ? 1e-5f : 2e-2f) * mag + 1e-6f, at);
            check_thread_agreement(y1.data(), y2.data(), M * N, path == ops::MatmulPath::onednn && kHaveOneDnn, at);
          }
      }
}

TEST_CASE(
    "gemm_f16 / gemm_bf16, panels and dot tiles, match their scalar reference on every SIMD table, at awkward sizes "
    "and starts") {
  std::mt19937 rng(31);
  for (const ops::Kernels* k : simd_tables())
    for (const bool bf16 : {false, true}) {
      const int64_t L = k->lanes;
      for (int64_t M : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{9}})
        for (int64_t rows : {int64_t{0}, int64_t{1}, 2 * L - 1, 2 * L, 2 * L + 1, 8 * L + 3, int64_t{131}})
          for (int64_t K : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{128}, int64_t{129}, int64_t{300}}) {
            const int off = static_cast<int>((M + rows + K) % 4);  // misaligned starts, across the sizes
            const int64_t ldw = K + 3, ldy = rows + 2;             // padded rows: strides are honoured
            std::vector<uint16_t> wstore(static_cast<size_t>(rows * ldw + off));
            uint16_t* w = wstore.data() + off;
            std::uniform_real_distribution<float> d(-3.0f, 3.0f);
            for (int64_t i = 0; i < rows * ldw; ++i) w[i] = bf16 ? fp32_to_bf16(d(rng)) : fp32_to_fp16(d(rng));
            Buf x(M * K, off), y(M * ldy, (off + 1) % 4);
            fill(x.data(), M * K, rng);
            fill(y.data(), M * ldy, rng);  // every output is overwritten, the padding kept
            std::vector<float> want(y.data(), y.data() + M * ldy);
            (bf16 ? ops::ref::gemm_bf16 : ops::ref::gemm_f16)(w, ldw, x.data(), M, want.data(), ldy, rows, K);
            const std::string at = std::string(k->isa) + (bf16 ? " bf16" : " f16") + " M=" + std::to_string(M) +
                                   " rows=" + std::to_string(rows) + " K=" + std::to_string(K);
            std::vector<float> y0(y.data(), y.data() + M * ldy);
            (bf16 ? k->gemm_bf16 : k->gemm_f16)(w, ldw, x.data(), M, y.data(), ldy, rows, K);
            check_close(y.data(), want.data(), M * ldy, 1e-5f, 5e-4f, "panels " + at);
            std::copy(y0.begin(), y0.end(), y.data());
            (bf16 ? k->gemm_bf16_dot : k->gemm_f16_dot)(w, ldw, x.data(), M, y.data(), ldy, rows, K);
            check_close(y.data(), want.data(), M * ldy, 1e-5f, 5e-4f, "dot tiles " + at);
          }
    }
}

#if defined(ALTUP_HAVE_ONEDNN)
TEST_CASE("oneDNN matmul: a prompt of a new length creates no primitive, chunked or not") {
  // Shapes no other test uses, so the first products below decide for them. The second
  // shape is forced into fixed chunks of 128 tokens, the path AVX-512 CPUs take (brgemm),
  // so that it is tested on every CPU; lengths below, at and across chunk boundaries.
  std::mt19937 rng(25);
  const int64_t K = 40, max_m = 300;
  for (const bool force : {false, true}) {
    const int64_t N = force ? 76 : 72;
    CAPTURE(force);
    std::vector<float> w(static_cast<size_t>(N * K)), x(static_cast<size_t>(max_m * K));
    std::vector<float> y(static_cast<size_t>(max_m * N));
    fill(w.data(), N * K, rng);
    fill(x.data(), max_m * K, rng);
    ops::dnnl_force_chunks(force);
    REQUIRE(ops::gemm_f32_dnnl(x.data(), w.data(), y.data(), 20, N, K, 2).ok());
    ops::dnnl_force_chunks(false);
    if (force) REQUIRE(ops::dnnl_chunked(N, K));
    const int64_t before = ops::dnnl_primitives_created();
    for (int64_t m : {23, 128, 129, 37, 256, 9, 299, 1}) {
      CAPTURE(m);
      std::fill(y.begin(), y.end(), -7.0f);
      REQUIRE(ops::gemm_f32_dnnl(x.data(), w.data(), y.data(), m, N, K, 2).ok());
      for (int64_t r = 0; r < m; ++r)  // every row is right, chunks and the rest
        for (int64_t c = 0; c < N; c += 5) {
          double want = 0;
          for (int64_t i = 0; i < K; ++i) want += static_cast<double>(x[r * K + i]) * w[c * K + i];
          REQUIRE(std::fabs(y[r * N + c] - want) <= 1e-4 * (1 + std::fabs(want)));
        }
      CHECK(y[m * N] == -7.0f);  // and nothing past the last row is written
    }
    CHECK(ops::dnnl_primitives_created() - before == 0);
  }
}
#endif

TEST_CASE("bf16 prefill choice: the vdpbf16ps rate is measured where the CPU has it; ALTUP_BF16_NATIVE parses") {
  const double rate = ops::bf16_dot_rate_over_fma();
  CHECK(rate == ops::bf16_dot_rate_over_fma());  // measured once
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) {
    // Somewhere between "an eighth of FMA's arithmetic" and "four times it": any real core.
    CHECK(rate > 0.125);
    CHECK(rate < 4.0);
  } else {
    CHECK(rate == 0.0);
  }
#else
  CHECK(rate == 0.0);
#endif
  std::string problem;
  CHECK(ops::parse_bf16_native(nullptr, &problem) == ops::Bf16Native::kAuto);
  CHECK(ops::parse_bf16_native("", &problem) == ops::Bf16Native::kAuto);
  CHECK(ops::parse_bf16_native("auto", &problem) == ops::Bf16Native::kAuto);
  CHECK(ops::parse_bf16_native("1", &problem) == ops::Bf16Native::kAlways);
  CHECK(ops::parse_bf16_native("0", &problem) == ops::Bf16Native::kNever);
  CHECK(problem.empty());
  CHECK(ops::parse_bf16_native("yes", &problem) == ops::Bf16Native::kAuto);
  CHECK(problem.find("ALTUP_BF16_NATIVE=yes") != std::string::npos);
#if defined(ALTUP_HAVE_ONEDNN)
  // The rule of ops/gemm_dnnl.h, from this process's oneDNN cap, setting and measurement.
  const int64_t from = ops::dnnl_bf16_native_min_tokens();
  const std::string plan = ops::dnnl_bf16_plan();
  CAPTURE(plan);
  if (!ops::dnnl_has_bf16() || ops::bf16_native_setting() == ops::Bf16Native::kNever) {
    CHECK(from == 0);
  } else if (dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx) {
    CHECK(from == ops::kBf16NativeMinTokens);
  } else {
    const bool take = ops::bf16_native_setting() == ops::Bf16Native::kAlways || rate >= ops::kBf16DotMinRate;
    CHECK(from == (take ? ops::kBf16DotNativeMinTokens : 0));
  }
  CHECK(plan.find(from > 0 ? "bf16 product from" : "widened") != std::string::npos);
#endif
}

TEST_CASE("matmul of a weight whose rows are prefixes of longer rows gives the contiguous copy's bits") {
  // A MatFormer sub-model's down projection read in place: [N, K] inside rows of K + extra
  // values. Every type, table and path, 1 to 64 tokens: the same bits as the rows copied out.
  std::mt19937 rng(41);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t block = traits(dt).block_elems, K = block == 256 ? 256 : 64, wide = K + (block == 256 ? 256 : 96);
    for (int64_t M : {1, 5, 64}) {
      const int64_t N = 40;
      std::vector<uint8_t> full;
      if (traits(dt).block_elems > 1) {
        full = random_quant_rows(dt, N, wide, rng, 0.05f);
      } else {
        std::vector<float> v(static_cast<size_t>(N * wide));
        fill(v.data(), N * wide, rng, -0.2f, 0.2f);
        full.resize(*tensor_bytes(dt, {N, wide}));
        for (size_t i = 0; i < v.size(); ++i) {
          if (dt == DType::F32) std::memcpy(&full[i * 4], &v[i], 4);
          const uint16_t h = dt == DType::F16 ? fp32_to_fp16(v[i]) : fp32_to_bf16(v[i]);
          if (dt != DType::F32) std::memcpy(&full[i * 2], &h, 2);
        }
      }
      const uint64_t rb_wide = *row_bytes(dt, wide), rb = *row_bytes(dt, K);
      TensorView strided = TensorView::contiguous(dt, {N, K}, full.data());
      strided.stride_bytes[0] = static_cast<int64_t>(rb_wide);
      std::vector<uint8_t> packed(rb * N);
      for (int64_t r = 0; r < N; ++r) std::memcpy(&packed[r * rb], &full[r * rb_wide], rb);
      const TensorView contiguous = TensorView::contiguous(dt, {N, K}, packed.data());
      std::vector<float> x(static_cast<size_t>(M * K));
      fill(x.data(), M * K, rng, -1, 1);
      for (const ops::Kernels* k : all_tables())
        for (ops::MatmulPath path : {ops::MatmulPath::automatic, ops::MatmulPath::gemv, ops::MatmulPath::onednn}) {
          CAPTURE(std::string(dtype_name(dt)) + " " + k->isa + " " + ops::matmul_path_name(path) +
                  " M=" + std::to_string(M));
          std::vector<float> a(static_cast<size_t>(M * N)), b(a.size());
          REQUIRE(ops::matmul(x.data(), M, strided, a.data(), 2, path, k).ok());
          REQUIRE(ops::matmul(x.data(), M, contiguous, b.data(), 2, path, k).ok());
          CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
        }
    }
  }
}
