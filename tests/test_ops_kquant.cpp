// The quantized types beyond Q8_0 / Q4_0: Q4_1, Q5_0, Q5_1, the K-quants Q4_K, Q5_K, Q6_K,
// Q2_K, Q3_K and the non-linear IQ4_NL, IQ4_XS.
// Decoding against the gguf package (fixtures/quant_blocks.bin, make_quant_fixtures.py), bit
// for bit; the K-quant GEMV kernels of every table against the scalar reference, bit for bit,
// at awkward sizes and misaligned starts; matmul and the embedding lookup on every type.
#include <cstring>
#include <fstream>
#include <limits>

#include "ops/convert.h"
#include "ops/matmul.h"
#include "ops/qgemv.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

constexpr DType kKQuants[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K};
constexpr DType kAllNew[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K,   DType::Q5_K,
                             DType::Q6_K, DType::Q2_K, DType::Q3_K, DType::IQ4_NL, DType::IQ4_XS};

std::vector<uint8_t> random_rows(DType dt, int64_t rows, int64_t n, std::mt19937& rng) {
  return random_quant_rows(dt, rows, n, rng, 0.01f);
}

template <typename T>
T read_le(std::ifstream& f) {
  T v{};
  f.read(reinterpret_cast<char*>(&v), sizeof v);
  return v;
}

// A fixture from fixtures/make_quant_fixtures.py, past its 4-byte magic (checked).
std::ifstream open_fixture(const std::string& name, const std::string& magic) {
  std::ifstream f(std::string(ALTUP_FIXTURES_DIR) + "/" + name, std::ios::binary);
  REQUIRE(f.good());
  char got[4];
  f.read(got, 4);
  REQUIRE(std::string(got, 4) == magic);
  return f;
}

}  // namespace

TEST_CASE("dequantize_row matches the gguf package bit for bit on random and adversarial blocks") {
  std::ifstream f = open_fixture("quant_blocks.bin", "AQB1");
  const uint32_t records = read_le<uint32_t>(f);
  CHECK(records == std::size(kAllNew));
  for (uint32_t r = 0; r < records; ++r) {
    const auto id = read_le<uint32_t>(f), blocks = read_le<uint32_t>(f);
    const auto tr = dtype_traits(id);
    REQUIRE(tr.has_value());
    const DType t = static_cast<DType>(id);
    CAPTURE(std::string(tr->name));
    std::vector<uint8_t> raw(static_cast<size_t>(blocks) * tr->block_bytes);
    std::vector<float> want(static_cast<size_t>(blocks) * tr->block_elems), got(want.size());
    f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    f.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4));
    REQUIRE(f.good());
    REQUIRE(dequantize_row(t, raw.data(), got.data(), want.size()).ok());
    int64_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (!same_bits(got[i], want[i]) && bad++ < 5)
        FAIL_CHECK("value " << i << ": got " << got[i] << ", gguf " << want[i]);
    CHECK(bad == 0);
    // A row that is not whole blocks is an error, not a partial decode.
    CHECK_FALSE(dequantize_row(t, raw.data(), got.data(), tr->block_elems + 1).ok());
  }
}

TEST_CASE("Q8_0 activation blocks equal the gguf package's Q8_0 quantization of the same values") {
  // fixtures/q8_0_activations.bin (make_quant_fixtures.py): the blocks llama.cpp's Q8_0 /
  // Q4_0 products read, fp16 scale and all, from the scalar quantizer and every table's.
  std::ifstream f = open_fixture("q8_0_activations.bin", "AQA1");
  const uint32_t nb = read_le<uint32_t>(f);
  REQUIRE(nb > 0);
  std::vector<float> x(static_cast<size_t>(nb) * 32);
  std::vector<uint8_t> want(static_cast<size_t>(nb) * 34);  // ggml block_q8_0: fp16 d, 32 x int8
  f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * 4));
  f.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size()));
  REQUIRE(f.good());
  for (const ops::Kernels* k : all_tables()) {
    CAPTURE(std::string(k->isa));
    std::vector<ops::BlockQ8x> q(nb);
    k->quantize_q8x(x.data(), q.data(), static_cast<int64_t>(x.size()));
    for (uint32_t b = 0; b < nb; ++b) {
      CAPTURE(b);
      uint16_t d;
      std::memcpy(&d, &want[b * 34], 2);
      REQUIRE(same_bits(q[b].d, fp16_to_fp32(d)));
      REQUIRE(std::memcmp(q[b].qs, &want[b * 34 + 2], 32) == 0);
    }
  }
}

TEST_CASE("K activation blocks: amax / 127 scales, values in [-127, 127], exact 16-value sums") {
  std::mt19937 rng(31);
  std::vector<float> x(256 * 3);
  fill(x.data(), static_cast<int64_t>(x.size()), rng);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero block: scale 0, values 0
  x[600] = 1e6f;                                      // one huge value: the rest round to 0
  std::vector<ops::BlockQ8K> q(3);
  ops::quantize_row_q8k(x.data(), q.data(), static_cast<int64_t>(x.size()));
  CHECK(q[1].d == 0.0f);
  CHECK(q[2].qs[600 - 512] == 127);
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 256; ++i) {
      CHECK(q[b].qs[i] >= -127);
      CHECK(std::fabs(q[b].qs[i] * q[b].d - x[b * 256 + i]) <= 0.5f * q[b].d * 1.0001f + 1e-7f);
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[b].qs[16 * g + i];
      CHECK(q[b].bsums[g] == sum);
    }
  }
}

TEST_CASE("activation quantizers (Q8x, Q8K) of every table give the scalar quantizer's bits") {
  // Random rows, plus the blocks that catch a rounding or max slip: all zeros, one huge
  // value among tiny ones, subnormals, exact halves (amax 127 makes 1 / d exactly 1, so
  // k + 0.5 must round away from zero, as roundf does, not to even), and a NaN (skipped by
  // the amax as std::fmax skips it; its own lane is not compared).
  std::mt19937 rng(36);
  for (int64_t nb : {0, 1, 2, 3, 9})
    for (int off : {0, 1, 3}) {
      const int64_t n = nb * 256;
      std::vector<float> buf(static_cast<size_t>(n + 8));
      float* x = buf.data() + off;  // a misaligned start
      fill(x, n, rng, -3, 3);
      int64_t nan_at = -1;
      if (nb >= 2) {
        for (int i = 0; i < 32; ++i) x[i] = 0.0f;                             // zeros
        x[40] = 3e38f;                                                        // huge
        for (int i = 64; i < 96; ++i) x[i] = 1e-40f * static_cast<float>(i);  // subnormal
        x[96] = 127.0f;                                                       // ties
        for (int i = 97; i < 128; ++i) x[i] = static_cast<float>(i % 9) - 4.5f;
        x[256 + 10] = std::nanf("");
        nan_at = 256 + 10;
      }
      for (const ops::Kernels* k : simd_tables()) {
        CAPTURE(std::string(k->isa));
        CAPTURE(nb);
        CAPTURE(off);
        std::vector<ops::BlockQ8x> a(static_cast<size_t>(nb * 8)), b(a.size());
        k->quantize_q8x(x, a.data(), n);
        ops::quantize_row_q8x(x, b.data(), n);
        for (size_t i = 0; i < a.size(); ++i) {
          REQUIRE(same_bits(a[i].d, b[i].d));
          for (int j = 0; j < 32; ++j)
            if (static_cast<int64_t>(i * 32 + j) != nan_at) REQUIRE(a[i].qs[j] == b[i].qs[j]);
          if (nan_at < 0 || static_cast<int64_t>(i) != nan_at / 32) REQUIRE(a[i].sum == b[i].sum);
        }
        std::vector<ops::BlockQ8K> c(static_cast<size_t>(nb)), e(c.size());
        k->quantize_q8k(x, c.data(), n);
        ops::quantize_row_q8k(x, e.data(), n);
        for (size_t i = 0; i < c.size(); ++i) {
          REQUIRE(same_bits(c[i].d, e[i].d));
          for (int j = 0; j < 256; ++j)
            if (static_cast<int64_t>(i * 256 + j) != nan_at) REQUIRE(c[i].qs[j] == e[i].qs[j]);
          if (nan_at < 0 || static_cast<int64_t>(i) != nan_at / 256)
            for (int g = 0; g < 16; ++g) REQUIRE(c[i].bsums[g] == e[i].bsums[g]);
        }
      }
    }
  // The ties really are ties: 1 / d is exactly 1 for a block whose amax is 127.
  std::vector<float> t(32, 0.0f);
  t[0] = 127.0f;
  t[1] = 2.5f;
  t[2] = -2.5f;
  ops::BlockQ8x q;
  ops::quantize_row_q8x(t.data(), &q, 32);
  CHECK(q.d == 1.0f);
  CHECK(q.qs[1] == 3);
  CHECK(q.qs[2] == -3);
}

TEST_CASE(
    "K-quant (Q2_K-Q6_K) and IQ4_XS GEMV kernels equal the scalar reference bit for bit on every table, size and "
    "start") {
  std::mt19937 rng(32);
  const ops::Kernels& ref = ops::scalar_kernels();
  auto pick = [](const ops::Kernels& k, DType t) {
    return t == DType::Q4_K   ? k.gemv_q4_k
           : t == DType::Q5_K ? k.gemv_q5_k
           : t == DType::Q6_K ? k.gemv_q6_k
           : t == DType::Q3_K ? k.gemv_q3_k
           : t == DType::Q2_K ? k.gemv_q2_k
                              : k.gemv_iq4_xs;
  };
  for (DType dt : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q2_K, DType::Q3_K, DType::IQ4_XS})
    for (const ops::Kernels* k : simd_tables())
      for (int64_t nb : {0, 1, 2, 3, 7, 16})
        for (int64_t rows : {1, 3, 4, 5, 17})
          for (int off : {0, 1, 3}) {  // weight rows and activation blocks at odd addresses
            const auto rows_bytes = random_rows(dt, rows, std::max<int64_t>(nb, 1) * 256, rng);
            const int64_t row_bytes = static_cast<int64_t>(rows_bytes.size()) / rows;
            std::vector<uint8_t> wbuf(rows_bytes.size() + 64);
            uint8_t* w = wbuf.data() + off;
            std::memcpy(w, rows_bytes.data(), rows_bytes.size());
            std::vector<float> x(static_cast<size_t>(std::max<int64_t>(nb, 1) * 256));
            fill(x.data(), static_cast<int64_t>(x.size()), rng);
            std::vector<unsigned char> xbuf((nb + 1) * sizeof(ops::BlockQ8K) + 8);
            auto* xq = reinterpret_cast<ops::BlockQ8K*>(xbuf.data() + (off ? 4 : 0));
            ops::quantize_row_q8k(x.data(), xq, nb * 256);
            std::vector<float> y(rows, -1.0f), want(rows, -2.0f);
            pick(*k, dt)(w, row_bytes, xq, y.data(), rows, nb);
            pick(ref, dt)(w, row_bytes, xq, want.data(), rows, nb);
            CAPTURE(std::string(dtype_name(dt)));
            CAPTURE(std::string(k->isa));
            CAPTURE(nb);
            CAPTURE(rows);
            CAPTURE(off);
            for (int64_t r = 0; r < rows; ++r) REQUIRE(same_bits(y[r], want[r]));
          }
}

TEST_CASE("K-quant GEMM (prefill) gives the reference GEMV's bits per token on every table, size and start") {
  // Below kquant_panel_min_tokens() (by default each table's own: 24 tokens, 16 on
  // avx512_vnni) the row x token tiles (ops/qgemm_k-inl.h) run, from it on the AVX2 tables'
  // panels of 8 rows, 16 on avx512_vnni (ops/qgemm_kpanel-inl.h):
  // both at every token count (the setting at 1 and at its largest), with partial panels
  // (rows not a multiple of 8 or 16; 24: a full panel of 16, then one of 8) and token counts
  // that leave 1, 2 or 3 after the fours.
  const int64_t default_min = ops::kquant_panel_min_tokens();
  CHECK(default_min == 0);  // the table's own threshold
  struct Restore {          // the default again, whatever happens below
    int64_t v;
    ~Restore() { ops::set_kquant_panel_min_tokens(v); }
  } restore{default_min};
  std::mt19937 rng(35);
  for (int64_t min_tokens : {int64_t{1}, std::numeric_limits<int64_t>::max(), default_min}) {
    ops::set_kquant_panel_min_tokens(min_tokens);
    auto pick = [](const ops::Kernels& k, DType t) {
      return t == DType::Q4_K ? k.gemm_q4_k : t == DType::Q5_K ? k.gemm_q5_k : k.gemm_q6_k;
    };
    auto gemv = [](DType t) {
      return t == DType::Q4_K ? ops::ref::gemv_q4_k : t == DType::Q5_K ? ops::ref::gemv_q5_k : ops::ref::gemv_q6_k;
    };
    for (DType dt : kKQuants)
      for (const ops::Kernels* k : all_tables())
        for (int64_t nb : {0, 1, 3})
          for (int64_t rows : {1, 2, 3, 5, 8, 9, 17, 24})
            for (int64_t M : {0, 1, 3, 4, 5, 9, 24, 30, 33})
              for (int off : {0, 3}) {  // weight rows and activation blocks at odd addresses
                const auto rows_bytes = random_rows(dt, rows, std::max<int64_t>(nb, 1) * 256, rng);
                const int64_t row_bytes = static_cast<int64_t>(rows_bytes.size()) / rows;
                std::vector<uint8_t> wbuf(rows_bytes.size() + 64);
                uint8_t* w = wbuf.data() + off;
                std::memcpy(w, rows_bytes.data(), rows_bytes.size());
                std::vector<float> x(static_cast<size_t>(std::max<int64_t>(M * nb, 1) * 256));
                fill(x.data(), static_cast<int64_t>(x.size()), rng);
                std::vector<unsigned char> xbuf((M * nb + 1) * sizeof(ops::BlockQ8K) + 8);
                auto* xq = reinterpret_cast<ops::BlockQ8K*>(xbuf.data() + (off ? 4 : 0));
                for (int64_t m = 0; m < M; ++m) ops::quantize_row_q8k(x.data() + m * nb * 256, xq + m * nb, nb * 256);
                const int64_t ldy = rows + 2;  // y rows further apart than the rows computed
                std::vector<float> y(static_cast<size_t>(std::max<int64_t>(M, 1) * ldy), -7.0f), want(y);
                pick(*k, dt)(w, row_bytes, xq, M, y.data(), ldy, rows, nb);
                for (int64_t m = 0; m < M; ++m) gemv(dt)(w, row_bytes, xq + m * nb, want.data() + m * ldy, rows, nb);
                CAPTURE(std::string(dtype_name(dt)));
                CAPTURE(std::string(k->isa));
                CAPTURE(nb);
                CAPTURE(rows);
                CAPTURE(M);
                CAPTURE(off);
                CAPTURE(min_tokens);
                for (size_t i = 0; i < y.size(); ++i) REQUIRE(same_bits(y[i], want[i]));  // the gaps stay -7
              }
  }
}

TEST_CASE("K-quant GEMV and GEMM at the extremes: every value, scale and activation at its largest") {
  // The kernels add maddubs pairs in int16 for several steps before the scales (at most
  // 2 x 15 x 127 per pair for Q4_K over 8 steps, 2 x 31 x 127 for Q5_K over 4, 2 x 63 x 127
  // for Q6_K over 2): all-ones quant bits and activations of +-127 reach those bounds, and
  // one step too many would wrap. Q6_K's scales at -128 and 127 alike.
  for (DType dt : kKQuants)
    for (uint8_t q6scale : {uint8_t{0x80}, uint8_t{0x7F}})
      for (float sign : {1.0f, -1.0f}) {
        const int64_t rows = 9, nb = 2, M = 33;
        const size_t blk = traits(dt).block_bytes;
        std::vector<uint8_t> w(static_cast<size_t>(rows * nb) * blk, 0xFF);
        for (size_t off = 0; off < w.size(); off += blk) {
          if (dt == DType::Q6_K) std::memset(&w[off + offsetof(BlockQ6_K, scales)], q6scale, 16);
          for (size_t f : half_fields(dt)) {
            const uint16_t d = fp32_to_fp16(0.001f);
            std::memcpy(&w[off + f], &d, 2);
          }
        }
        std::vector<float> x(static_cast<size_t>(M * nb * 256), sign);
        std::vector<ops::BlockQ8K> xq(static_cast<size_t>(M * nb));
        for (int64_t m = 0; m < M; ++m) ops::quantize_row_q8k(x.data() + m * nb * 256, xq.data() + m * nb, nb * 256);
        REQUIRE(xq[0].qs[0] == static_cast<int8_t>(127 * sign));
        const int64_t row_bytes = nb * static_cast<int64_t>(blk);
        const auto gemv = dt == DType::Q4_K   ? ops::ref::gemv_q4_k
                          : dt == DType::Q5_K ? ops::ref::gemv_q5_k
                                              : ops::ref::gemv_q6_k;
        std::vector<float> want(static_cast<size_t>(M * rows));
        for (int64_t m = 0; m < M; ++m) gemv(w.data(), row_bytes, xq.data() + m * nb, want.data() + m * rows, rows, nb);
        // The reference itself against the decoded weights (every row the same), in double.
        std::vector<float> wrow(static_cast<size_t>(nb * 256));
        REQUIRE(dequantize_row(dt, w.data(), wrow.data(), static_cast<uint64_t>(nb * 256)).ok());
        double exact = 0;
        for (int64_t i = 0; i < nb * 256; ++i)
          exact += static_cast<double>(wrow[i]) * xq[i / 256].qs[i % 256] * xq[i / 256].d;
        CHECK(std::fabs(want[0] - exact) <= 1e-5 * std::fabs(exact) + 1e-6);
        for (const ops::Kernels* k : all_tables()) {
          CAPTURE(std::string(dtype_name(dt)));
          CAPTURE(std::string(k->isa));
          CAPTURE(sign);
          CAPTURE(static_cast<int>(q6scale));
          const auto gemm = dt == DType::Q4_K ? k->gemm_q4_k : dt == DType::Q5_K ? k->gemm_q5_k : k->gemm_q6_k;
          const auto gv = dt == DType::Q4_K ? k->gemv_q4_k : dt == DType::Q5_K ? k->gemv_q5_k : k->gemv_q6_k;
          for (int64_t tokens : {int64_t{1}, int64_t{5}, M}) {  // tiles below 24 tokens, panels above
            std::vector<float> y(static_cast<size_t>(tokens * rows));
            gemm(w.data(), row_bytes, xq.data(), tokens, y.data(), rows, rows, nb);
            for (size_t i = 0; i < y.size(); ++i) REQUIRE(same_bits(y[i], want[i]));
          }
          std::vector<float> y(static_cast<size_t>(rows));
          gv(w.data(), row_bytes, xq.data(), y.data(), rows, nb);
          for (int64_t r = 0; r < rows; ++r) REQUIRE(same_bits(y[r], want[r]));
        }
      }
}

TEST_CASE("K-quant GEMV reference equals the decoded weights times the quantized activations") {
  // Independent of the kernels' integer bookkeeping (scales, mins, Q6_K's offset, bsums):
  // decode the weights with runtime/dtype, multiply by the activation values in double.
  std::mt19937 rng(33);
  for (DType dt : kKQuants) {
    const int64_t rows = 6, nb = 3, n = nb * 256;
    const auto w = random_rows(dt, rows, n, rng);
    std::vector<float> x(n);
    fill(x.data(), n, rng);
    std::vector<ops::BlockQ8K> xq(nb);
    ops::quantize_row_q8k(x.data(), xq.data(), n);
    std::vector<float> y(rows), wrow(n);
    (dt == DType::Q4_K ? ops::ref::gemv_q4_k
     : dt == DType::Q5_K
         ? ops::ref::gemv_q5_k
         : ops::ref::gemv_q6_k)(w.data(), static_cast<int64_t>(w.size()) / rows, xq.data(), y.data(), rows, nb);
    for (int64_t r = 0; r < rows; ++r) {
      REQUIRE(dequantize_row(dt, w.data() + r * (w.size() / rows), wrow.data(), n).ok());
      double want = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double xv = static_cast<double>(xq[i / 256].qs[i % 256]) * xq[i / 256].d;
        want += static_cast<double>(wrow[i]) * xv;
        mag += std::fabs(static_cast<double>(wrow[i]) * xv);
      }
      CAPTURE(std::string(dtype_name(dt)));
      CHECK(std::fabs(y[r] - want) <= 1e-5 * mag + 1e-6);
    }
  }
}

TEST_CASE(
    "matmul on Q4_1 / Q5_0 / Q5_1 / Q2_K / Q3_K / IQ4 / K-quant weights: every path and table near the exact product") {
  std::mt19937 rng(34);
  for (DType dt : kAllNew)
    for (int64_t M : {1, 3, 20, 40})  // 40: the K-quant panels (from 24 tokens)
      for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{1, 256}, {17, 512}, {70, 768}}) {
        const auto wq = random_rows(dt, N, K, rng);
        const TensorView w = TensorView::contiguous(dt, {N, K}, const_cast<uint8_t*>(wq.data()));
        std::vector<float> x(static_cast<size_t>(M * K)), want(static_cast<size_t>(M * N));
        fill(x.data(), M * K, rng, -1, 1);
        for (int64_t m = 0; m < M; ++m) ops::ref::gemv(w, x.data() + m * K, want.data() + m * N);
        float mag = 0;
        for (float v : want) mag = std::max(mag, std::fabs(v));
        // The 8-bit activations move each x by at most half a step (its block's amax / 254):
        // bound the product's error by sum |w| * that step, over the worst output.
        double qbound = 0;
        {
          std::vector<float> wrow(static_cast<size_t>(K));
          for (int64_t m = 0; m < M; ++m)
            for (int64_t r = 0; r < N; ++r) {
              REQUIRE(dequantize_row(dt, w.row<const uint8_t>(r), wrow.data(), static_cast<uint64_t>(K)).ok());
              double b = 0;
              for (int64_t i0 = 0; i0 < K; i0 += 256) {
                float amax = 0;
                for (int64_t i = i0; i < i0 + 256; ++i) amax = std::max(amax, std::fabs(x[m * K + i]));
                for (int64_t i = i0; i < i0 + 256; ++i) b += std::fabs(wrow[i]) * amax / 254.0;
              }
              qbound = std::max(qbound, b);
            }
        }
        CAPTURE(std::string(dtype_name(dt)));
        CAPTURE(M);
        CAPTURE(N);
        const bool kq = dt == DType::Q4_K || dt == DType::Q5_K || dt == DType::Q6_K;
        // IQ4_NL's GEMV quantizes the activations too, to blocks of 32 with an fp16 scale: at
        // most half a step plus 127 x 2^-11 of one per value, within 1.13x the bound above
        // (a block of 32's step is at most its 256 block's).
        const bool iq4 = dt == DType::IQ4_NL;
        const bool q8k = kq || dt == DType::Q2_K || dt == DType::Q3_K || dt == DType::IQ4_XS;  // 256-blocks
        for (const ops::Kernels* k : all_tables()) {
          std::vector<float> gemv(want.size());
          REQUIRE(ops::matmul(x.data(), M, w, gemv.data(), 1, ops::MatmulPath::gemv, k).ok());
          for (ops::MatmulPath path : {ops::MatmulPath::automatic, ops::MatmulPath::gemv, ops::MatmulPath::onednn,
                                       ops::MatmulPath::int8_tiles}) {
            const std::string at = std::string(dtype_name(dt)) + " " + k->isa + " path " + ops::matmul_path_name(path);
            std::vector<float> y1(want.size()), y2(want.size());
            REQUIRE(ops::matmul(x.data(), M, w, y1.data(), 1, path, k).ok());
            REQUIRE(ops::matmul(x.data(), M, w, y2.data(), 2, path, k).ok());
            // K-quant GEMV and tiles quantize the activations to 8 bits per 256 values; the
            // decoded types (Q4_1 / Q5_* / Q2_K / Q3_K / IQ4_*) and oneDNN multiply the exactly
            // decoded weights in f32.
            // oneDNN (on widened rows) takes MatmulPath::onednn, and the other types' many-token products.
            const bool dnnl =
                kHaveOneDnn && (path == ops::MatmulPath::onednn ||
                                (!kq && (path == ops::MatmulPath::int8_tiles ||
                                         (path == ops::MatmulPath::automatic && M > ops::kGemvMaxTokensHalf))));
            const double tol = (q8k && !dnnl ? 1.01 * qbound : iq4 && !dnnl ? 1.13 * qbound : 0.0) + 1e-5 * mag + 1e-6;
            check_close(y1.data(), want.data(), M * N, 0, static_cast<float>(tol), at);
            check_thread_agreement(y1.data(), y2.data(), M * N, dnnl, at);
            // The K-quant tiles (MatmulPath::int8_tiles, and MatmulPath::automatic from 2 tokens on) give the GEMV's
            // bits.
            if (kq && !dnnl)
              for (size_t i = 0; i < y1.size(); ++i) REQUIRE(same_bits(y1[i], gemv[i]));
          }
        }
      }
  // Rows that are not whole blocks of the type are refused.
  const auto wq = random_rows(DType::Q4_K, 2, 256, rng);
  const TensorView bad = TensorView::contiguous(DType::Q4_K, {4, 128}, const_cast<uint8_t*>(wq.data()));
  float x[128] = {}, y[4];
  auto s = ops::matmul(x, 1, bad, y, 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("whole blocks of 256") != std::string::npos);
}

TEST_CASE("embedding lookup reads rows of every new type as dequantize_row decodes them") {
  std::mt19937 rng(35);
  const int64_t V = 5, d = 512;
  const int32_t ids[] = {4, 0, 2, 4};
  for (DType dt : kAllNew) {
    const auto table = random_rows(dt, V, d, rng);
    const TensorView t = TensorView::contiguous(dt, {V, d}, const_cast<uint8_t*>(table.data()));
    std::vector<float> out(4 * d), row(d);
    REQUIRE(ops::embedding_lookup(t, ids, 4, 0.5f, out.data(), 2).ok());
    for (int r = 0; r < 4; ++r) {
      REQUIRE(dequantize_row(dt, t.row<const uint8_t>(ids[r]), row.data(), d).ok());
      for (int64_t i = 0; i < d; ++i) REQUIRE(out[r * d + i] == 0.5f * row[i]);
    }
  }
}
