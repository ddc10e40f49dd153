// bench_ops: a micro-benchmark per op, with this machine's peaks measured in the same run,
// and the targets checked here (never in unit tests):
//   f32 GEMV [8192 x 2048]               >= 80% of measured read bandwidth
//   prefill GEMM (512 tokens, 2048^2)     >= 60% of measured FMA peak
//   AltUp predict + correct, K=4, d=2048  <  2% of one f32 GEMV [2048 x 2048]
// Output: one JSON object per line on stdout; a readable table on stderr.
// Usage: bench_ops [-t THREADS] [--quick] [--bandwidth]   (ALTUP_ISA=... picks a kernel table)
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "ops/altup_mix.h"
#include "ops/attention.h"
#include "ops/bf16_rate.h"
#include "ops/elementwise.h"
#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif
#include "ops/isa.h"
#include "ops/matmul.h"
#include "ops/matmul_masked.h"
#include "ops/matmul_sparse.h"
#include "ops/qgemv.h"
#include "runtime/threading.h"

namespace altup::bench {
#if defined(ALTUP_HAVE_SSE42)
double fma_peak_sse4_2(int64_t, int64_t*);
#endif
#if defined(ALTUP_HAVE_AVX2)
double fma_peak_avx2(int64_t, int64_t*);
#endif
#if defined(ALTUP_HAVE_AVX512)
double fma_peak_avx512(int64_t, int64_t*);
#endif
#if defined(ALTUP_HAVE_AVX512_VNNI)
double fma_peak_avx512_vnni(int64_t, int64_t*);
#endif
#if defined(ALTUP_HAVE_NEON)
double fma_peak_neon(int64_t, int64_t*);
#endif
#if defined(ALTUP_HAVE_NEON_DOTPROD)
double fma_peak_neon_dotprod(int64_t, int64_t*);
#endif
}  // namespace altup::bench

using namespace altup;
using namespace altup::bench;

namespace {

using PeakFn = double (*)(int64_t, int64_t*);

PeakFn peak_fn_for(const std::string& isa) {
#if defined(ALTUP_HAVE_AVX512)
  if (isa == "avx512") return fma_peak_avx512;
#endif
#if defined(ALTUP_HAVE_AVX512_VNNI)
  if (isa == "avx512_vnni") return fma_peak_avx512_vnni;
#endif
#if defined(ALTUP_HAVE_AVX2)
  if (isa == "avx2") return fma_peak_avx2;
#endif
#if defined(ALTUP_HAVE_SSE42)
  if (isa == "sse4.2") return fma_peak_sse4_2;
#endif
#if defined(ALTUP_HAVE_NEON)
  if (isa == "neon") return fma_peak_neon;
#endif
#if defined(ALTUP_HAVE_NEON_DOTPROD)
  if (isa == "neon_dotprod") return fma_peak_neon_dotprod;
#endif
  (void)isa;
  return nullptr;
}

volatile double g_sink = 0;  // keeps results alive

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  for (auto& x : v) x = d(rng);
  return v;
}

// Random quantized block bytes with sane fp16 scales (random bits could be NaN or Inf).
std::vector<uint8_t> random_blocks(DType dt, size_t bytes, uint32_t seed) {
  std::vector<uint8_t> buf(bytes);
  std::mt19937 rng(seed);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  // Offset of the first fp16 scale and how many follow it (ggml-common.h).
  const size_t scale_at = dt == DType::Q6_K ? 208 : dt == DType::Q3_K ? 108 : dt == DType::Q2_K ? 80 : 0;
  const size_t scales = dt == DType::Q4_K || dt == DType::Q5_K || dt == DType::Q2_K ? 2 : 1;
  for (size_t o = 0; o < bytes; o += traits(dt).block_bytes)
    for (size_t k = 0; k < scales; ++k) {
      const uint16_t h = fp32_to_fp16(0.001f * static_cast<float>(rng() % 100));
      std::memcpy(&buf[o + scale_at + 2 * k], &h, 2);
    }
  return buf;
}

// Read bandwidth: every thread reads its share of a buffer far larger than the caches, as
// `streams` sequential streams walked side by side in 4 KiB steps (GEMV reads four rows at
// once, and several streams keep more prefetches in flight than one). The peak reported is
// the best of 1 and 4 streams.
double measure_read_bw(int threads, size_t bytes, int streams) {
  const size_t n = bytes / sizeof(float);
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  parallel_for(static_cast<int64_t>(n), threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = 1.0f;
  });
  const ops::Kernels& k = ops::kernels();
  std::vector<double> partial(static_cast<size_t>(threads));
  constexpr int64_t kStep = 1024;  // floats
  const double t = median_seconds(
      [&] {
        parallel_for(static_cast<int64_t>(n), threads, [&](int64_t b, int64_t e) {
          const int64_t len = (e - b) / streams;
          double acc = 0;
          for (int64_t off = 0; off < len; off += kStep)
            for (int st = 0; st < streams; ++st)
              acc += k.sum_squares(buf + b + st * len + off, std::min(kStep, len - off));
          partial[static_cast<size_t>(omp_get_thread_num())] = acc;
        });
        g_sink = partial[0];
      },
      5, 0.5);
  std::free(buf);
  return static_cast<double>(bytes) / t / 1e9;
}

double measure_fma_peak(int threads, PeakFn fn) {
  const int64_t iters = 20'000'000;
  int64_t flops_each = 0;
  const double t = median_seconds(
      [&] {
#pragma omp parallel num_threads(threads)
        {
          int64_t f;
          const double r = fn(iters, &f);
#pragma omp master
          {
            flops_each = f;
            g_sink = r;
          }
        }
      },
      3, 0.3);
  return static_cast<double>(flops_each) * threads / t / 1e9;
}

}  // namespace

// M = 2..4 tokens through one quantized weight (a StagFormer's shared-weights decode step
// reads every weight with its p rows) against one token, both ways: the GEMV (each token's
// int8 dot products over the row block while it is in cache) and the int8 tiles (a block
// of weights against every token in registers). Cold copies, as decoding reads them.
int few_tokens(const ops::Kernels& k, int threads, bool quick, double bw) {
  // A 4096 x 2048 weight, and d = 1024's FFN gate (2752 x 1024, as the StagFormer bench's).
  for (auto [N, K] : {std::pair<int64_t, int64_t>{quick ? 2048 : 4096, quick ? 1024 : 2048}, {2752, 1024}}) {
    // Copies enough to leave the last-level cache (up to ~512 MiB of them).
    const int copies = static_cast<int>(std::clamp<int64_t>((int64_t{256} << 20) / (N * K), quick ? 4 : 8, 64));
    auto xs = random_vec(static_cast<size_t>(4 * K), 2);
    std::vector<float> ys(static_cast<size_t>(4 * N));
    for (DType dt : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
      const size_t bytes = static_cast<size_t>(*tensor_bytes(dt, {N, K}));
      std::vector<std::vector<uint8_t>> wq(static_cast<size_t>(copies));
      for (int c = 0; c < copies; ++c) wq[c] = random_blocks(dt, bytes, 7 + c);
      const std::string base =
          "few_tokens_" + std::string(traits(dt).name) + "_" + std::to_string(N) + "x" + std::to_string(K);
      auto time = [&](int64_t M, ops::MatmulPath path) {
        int next = 0;
        return median_seconds(
            [&] {
              (void)ops::matmul(xs.data(), M, TensorView::contiguous(dt, {N, K}, wq[next].data()), ys.data(), threads,
                                path);
              next = (next + 1) % copies;
            },
            5 * copies);
      };
      const double t1 = time(1, ops::MatmulPath::gemv);
      report(Measurement(base + "_M1_gemv", t1, static_cast<double>(bytes) / t1 / 1e9, "GB/s",
                         static_cast<double>(bytes) / t1 / 1e9 / bw));
      for (int64_t M : {2, 3, 4})
        for (auto [path, name] :
             {std::pair{ops::MatmulPath::gemv, "gemv"}, std::pair{ops::MatmulPath::int8_tiles, "tiles"},
              std::pair{ops::MatmulPath::automatic, "auto"}}) {
          const double t = time(M, path);
          report(Measurement(base + "_M" + std::to_string(M) + "_" + name + "_over_M1", t, t / t1, "x one token", -1));
        }
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  int threads = std::min(2, available_threads());
  bool quick = false, bandwidth_only = false, few_tokens_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-t" || a == "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--bandwidth") {
      bandwidth_only = true;
    } else if (a == "--few-tokens") {
      few_tokens_only = true;
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: bench_ops [-t THREADS] [--quick] [--bandwidth] [--few-tokens]\n"
          "Times every op, measures read bandwidth and FMA peak in the same run, and checks\n"
          "the kernel targets. JSON lines on stdout, a table on stderr. ALTUP_ISA=scalar|sse4.2|\n"
          "avx2|avx512|avx512_vnni|neon|neon_dotprod picks the kernel table. --quick: smaller sizes (a smoke run).\n"
          "--bandwidth: measure the read bandwidth only (bench/compare.py's reference for\n"
          "decode), then stop. --few-tokens: only 2-4 tokens through quantized weights (a\n"
          "StagFormer's shared-weights decode step) against one, by path.\n");
      return 0;
    } else {
      std::fprintf(stderr, "bench_ops: unknown argument '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (threads < 1) threads = 1;
  const ops::Kernels& k = ops::kernels();
  std::fprintf(stderr, "bench_ops: kernels %s, %d threads%s\n", k.isa, threads, quick ? " (quick)" : "");
  std::printf("{\"name\": \"config\", \"isa\": \"%s\", \"threads\": %d, \"quick\": %s}\n", k.isa, threads,
              quick ? "true" : "false");

  // Peaks, measured now.
  const size_t bw_bytes = quick ? (size_t{128} << 20) : (size_t{1} << 30);
  const double bw1 = measure_read_bw(threads, bw_bytes, 1), bw4 = measure_read_bw(threads, bw_bytes, 4);
  report(Measurement("read_bandwidth_1_stream", 0, bw1, "GB/s"));
  report(Measurement("read_bandwidth_4_streams", 0, bw4, "GB/s"));
  const double bw = std::max(bw1, bw4);
  report(Measurement("peak_read_bandwidth", 0, bw, "GB/s"));
  if (bandwidth_only) return 0;
  if (few_tokens_only) return few_tokens(k, threads, quick, bw);
  const PeakFn peak = peak_fn_for(k.isa);
  const double fma = peak ? measure_fma_peak(threads, peak) : 0.0;
  if (peak) report(Measurement("peak_fma", 0, fma, "GFLOP/s"));

  // Decode GEMV, f32 / f16 / bf16: bytes of W per second against the read bandwidth.
  // "warm": the same W every call (part of it stays in the last-level cache); "cold": calls
  // cycle through copies of W totalling far more than the caches, as decoding a real model
  // does (each weight read once per token). The target is checked on the cold figure.
  const int64_t N = quick ? 2048 : 8192, K = 2048;
  const int copies = quick ? 4 : 8;
  std::vector<std::vector<float>> wf(static_cast<size_t>(copies));
  std::vector<std::vector<uint16_t>> wh(static_cast<size_t>(copies)), wb(static_cast<size_t>(copies));
  for (int c = 0; c < copies; ++c) {
    wf[c] = random_vec(static_cast<size_t>(N * K), 100 + c, 0.05f);
    wh[c].resize(wf[c].size());
    wb[c].resize(wf[c].size());
    for (size_t i = 0; i < wf[c].size(); ++i) {
      wh[c][i] = fp32_to_fp16(wf[c][i]);
      wb[c][i] = fp32_to_bf16(wf[c][i]);
    }
  }
  auto x = random_vec(static_cast<size_t>(K), 2);
  std::vector<float> y(static_cast<size_t>(N));
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    const int64_t size = dt == DType::F32 ? 4 : 2;
    auto view = [&](int c) {
      void* data = dt == DType::F32   ? static_cast<void*>(wf[c].data())
                   : dt == DType::F16 ? static_cast<void*>(wh[c].data())
                                      : static_cast<void*>(wb[c].data());
      return TensorView::contiguous(dt, {N, K}, data);
    };
    const std::string base = "gemv_" + std::string(dtype_name(dt)) + "_" + std::to_string(N) + "x" + std::to_string(K);
    const TensorView w0 = view(0);
    double t = median_seconds([&] { (void)ops::matmul(x.data(), 1, w0, y.data(), threads, ops::MatmulPath::gemv); });
    double gbs = static_cast<double>(N * K * size) / t / 1e9;
    report(Measurement(base + "_warm", t, gbs, "GB/s", gbs / bw));
    int next = 0;
    t = median_seconds(
        [&] {
          (void)ops::matmul(x.data(), 1, view(next), y.data(), threads, ops::MatmulPath::gemv);
          next = (next + 1) % copies;
        },
        5 * copies);
    gbs = static_cast<double>(N * K * size) / t / 1e9;
    Measurement r(base + "_cold", t, gbs, "GB/s", gbs / bw);
    if (dt == DType::F32) r.with_target(">= 0.80 of read bandwidth", gbs / bw >= 0.80);
    report(r);
  }

  // Quantized weights: GB/s of the blocks read (bytes per weight is the point of them).
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::IQ4_NL, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                   DType::Q6_K, DType::IQ4_XS}) {
    const DTypeTraits& tr = traits(dt);
    const size_t bytes = static_cast<size_t>(*tensor_bytes(dt, {N, K}));
    std::vector<std::vector<uint8_t>> wq(static_cast<size_t>(copies));
    for (int c = 0; c < copies; ++c) wq[c] = random_blocks(dt, bytes, 7 + c);
    auto view = [&](int c) { return TensorView::contiguous(dt, {N, K}, wq[c].data()); };
    const std::string base = "gemv_" + std::string(tr.name) + "_" + std::to_string(N) + "x" + std::to_string(K);
    int next = 0;
    const double t = median_seconds(
        [&] {
          (void)ops::matmul(x.data(), 1, view(next), y.data(), threads, ops::MatmulPath::gemv);
          next = (next + 1) % copies;
        },
        5 * copies);
    const double gbs = static_cast<double>(bytes) / t / 1e9;
    Measurement r(base + "_cold", t, gbs, "GB/s", gbs / bw);
    if (dt == DType::Q8_0) r.with_target(">= 0.85 of read bandwidth", gbs / bw >= 0.85);
    report(r);
  }

  // Prefill GEMM through oneDNN.
  {
    const int64_t M = quick ? 128 : 512, D = 2048;
    auto w = random_vec(static_cast<size_t>(D * D), 3, 0.05f);
    auto xs = random_vec(static_cast<size_t>(M * D), 4);
    std::vector<float> ys(static_cast<size_t>(M * D));
    const TensorView wv = TensorView::contiguous(DType::F32, {D, D}, w.data());
    const double t =
        median_seconds([&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::onednn); });
    const double gf = 2.0 * M * D * D / t / 1e9;
    report(Measurement("gemm_f32_" + std::to_string(M) + "x" + std::to_string(D) + "x" + std::to_string(D), t, gf,
                       "GFLOP/s", fma > 0 ? gf / fma : -1)
               .with_target(">= 0.60 of FMA peak", fma > 0 && gf / fma >= 0.60));
  }

  // Activation quantization (every quantized product's first step): this table against the
  // scalar quantizer, which gives the same bits.
  {
    const int64_t n = (quick ? 64 : 512) * 2048;
    auto xs = random_vec(static_cast<size_t>(n), 13);
    std::vector<ops::BlockQ8K> q(static_cast<size_t>(n / 256));
    const double ts = median_seconds([&] { ops::scalar_kernels().quantize_q8k(xs.data(), q.data(), n); });
    const double tk = median_seconds([&] { k.quantize_q8k(xs.data(), q.data(), n); });
    report(Measurement("quantize_q8k_" + std::to_string(n), tk, static_cast<double>(n) * 4 / tk / 1e9, "GB/s", -1));
    report(Measurement("quantize_q8k_over_scalar", tk, ts / tk, "ratio", -1));
  }

  // Prefill on quantized weights, both ways in one run: oneDNN on row blocks widened to f32
  // (MatmulPath::onednn; GEMV where there is no oneDNN) and the int8 kernels (MatmulPath::int8_tiles: tiles, or on the
  // AVX2 tables panels of 8 rows, for K-quants from 24 tokens). The ratio is int8 / widened;
  // matmul takes the int8 kernels by default where it is > 1 (ops/matmul.cpp).
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const int64_t M = quick ? 64 : 512, N = 2048, K = 2048;
    const auto wq = random_blocks(dt, static_cast<size_t>(*tensor_bytes(dt, {N, K})), 11);
    const TensorView wv = TensorView::contiguous(dt, {N, K}, const_cast<uint8_t*>(wq.data()));
    auto xs = random_vec(static_cast<size_t>(M * K), 12);
    std::vector<float> ys(static_cast<size_t>(M * N));
    const double flop = 2.0 * static_cast<double>(M * N * K);
    const std::string base = "gemm_" + std::string(dtype_name(dt)) + "_" + std::to_string(M) + "x" + std::to_string(N) +
                             "x" + std::to_string(K);
    const double tw =
        median_seconds([&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::onednn); });
    const double tt =
        median_seconds([&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::int8_tiles); });
    report(Measurement(base + "_widened", tw, flop / tw / 1e9, "GFLOP/s", -1));
    report(Measurement(base + "_tiles", tt, flop / tt / 1e9, "GFLOP/s", -1));
    report(Measurement(base + "_tiles_over_widened", tt, tw / tt, "ratio", -1));
  }

  // K-quant GEMM on the AVX2 tables, panels against row tiles (both give the same bits) at
  // small token counts: where kquant_panel_min_tokens (ops/qgemv.h) should sit.
  if (k.q8_gemm_panels)
    for (DType dt : {DType::Q4_K, DType::Q6_K})
      for (int64_t M : {8, 16, 24, 32, 64}) {
        const int64_t N = 2048, K = 2048;
        const auto wq = random_blocks(dt, static_cast<size_t>(*tensor_bytes(dt, {N, K})), 14);
        const TensorView wv = TensorView::contiguous(dt, {N, K}, const_cast<uint8_t*>(wq.data()));
        auto xs = random_vec(static_cast<size_t>(M * K), 15);
        std::vector<float> ys(static_cast<size_t>(M * N));
        const int64_t saved = ops::kquant_panel_min_tokens();
        ops::set_kquant_panel_min_tokens(std::numeric_limits<int64_t>::max());
        const double tt = median_seconds(
            [&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::int8_tiles); });
        ops::set_kquant_panel_min_tokens(1);
        const double tp = median_seconds(
            [&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::int8_tiles); });
        ops::set_kquant_panel_min_tokens(saved);
        report(Measurement(
            "gemm_" + std::string(dtype_name(dt)) + "_" + std::to_string(M) + "x2048x2048_panels_over_tiles", tp,
            tt / tp, "ratio", -1));
      }

  // f16 / bf16 prefill: the half-precision panels (MatmulPath::half_panels) against oneDNN on widened rows
  // (MatmulPath::onednn), 512 tokens (quick: 64), square and FFN-shaped weights.
  for (DType dt : {DType::F16, DType::BF16})
    for (const auto& [N, K] : {std::pair<int64_t, int64_t>{2048, 2048}, {8192, 2048}, {2048, 8192}}) {
      const int64_t M = quick ? 64 : 512;
      auto wv32 = random_vec(static_cast<size_t>(N * K), 16, 0.05f);
      std::vector<uint16_t> wh(wv32.size());
      for (size_t i = 0; i < wh.size(); ++i) wh[i] = dt == DType::F16 ? fp32_to_fp16(wv32[i]) : fp32_to_bf16(wv32[i]);
      const TensorView wv = TensorView::contiguous(dt, {N, K}, wh.data());
      auto xs = random_vec(static_cast<size_t>(M * K), 17);
      std::vector<float> ys(static_cast<size_t>(M * N));
      const double tw =
          median_seconds([&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::onednn); });
      const double tp = median_seconds(
          [&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, ops::MatmulPath::half_panels); });
      report(Measurement("gemm_" + std::string(dtype_name(dt)) + "_" + std::to_string(M) + "x" + std::to_string(N) +
                             "x" + std::to_string(K) + "_panels_over_widened",
                         tp, tw / tp, "ratio", -1));
    }

  // The half-precision dot-product tiles (MatmulPath::half_dot) against oneDNN on widened rows (MatmulPath::onednn)
  // and, for few tokens, the GEMV (MatmulPath::gemv): E2B's [8192 x 2048] FFN shape, by token count.
  // Time ratios, below 1 where the tiles are faster; the default takes them from 2 tokens to
  // ops::kHalfDotMaxTokensF16 / BF16.
  for (DType dt : {DType::F16, DType::BF16}) {
    const int64_t N = 8192, K = 2048;
    auto wv32 = random_vec(static_cast<size_t>(N * K), 21, 0.05f);
    std::vector<uint16_t> wh(wv32.size());
    for (size_t i = 0; i < wh.size(); ++i) wh[i] = dt == DType::F16 ? fp32_to_fp16(wv32[i]) : fp32_to_bf16(wv32[i]);
    const TensorView wv = TensorView::contiguous(dt, {N, K}, wh.data());
    for (const int64_t M :
         quick ? std::vector<int64_t>{2, 32, 128} : std::vector<int64_t>{2, 8, 32, 64, 128, 256, 512}) {
      auto xs = random_vec(static_cast<size_t>(M * K), 22);
      std::vector<float> ys(static_cast<size_t>(M * N));
      auto time_path = [&](ops::MatmulPath path) {
        return median_seconds([&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, path); });
      };
      const double td = time_path(ops::MatmulPath::half_dot), to = time_path(ops::MatmulPath::onednn);
      const std::string base = "matmul_" + std::string(dtype_name(dt)) + "_m" + std::to_string(M) + "_dot_over_";
      report(Measurement(base + "onednn", td, td / to, "ratio"));
      if (M <= ops::kGemvMaxTokensHalf)
        report(Measurement(base + "gemv", td, td / time_path(ops::MatmulPath::gemv), "ratio"));
    }
  }

#if defined(ALTUP_HAVE_ONEDNN)
  // bf16 on oneDNN's bf16 product (MatmulPath::bf16_native, activations rounded to bf16: AMX tiles, or
  // vdpbf16ps without AMX) against each other path, by token count, E2B's [8192 x 2048]
  // FFN shape: time ratios, below 1 where it is faster. matmul takes it by default from
  // ops::dnnl_bf16_native_min_tokens() (0: not by default); without AMX that hangs on the
  // vdpbf16ps rate against FMA, measured here too (ops/bf16_rate.h).
  report(Measurement("bf16_dot_rate_over_fma", 0, ops::bf16_dot_rate_over_fma(), "ratio", -1));
  std::fprintf(stderr, "bf16 prefill: %s\n", ops::dnnl_bf16_plan().c_str());
  if (ops::dnnl_has_bf16()) {
    const int64_t N = 8192, K = 2048;
    auto wv32 = random_vec(static_cast<size_t>(N * K), 23, 0.05f);
    std::vector<uint16_t> wh(wv32.size());
    for (size_t i = 0; i < wh.size(); ++i) wh[i] = fp32_to_bf16(wv32[i]);
    const TensorView wv = TensorView::contiguous(DType::BF16, {N, K}, wh.data());
    for (const int64_t M :
         quick ? std::vector<int64_t>{2, 64} : std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 512}) {
      auto xs = random_vec(static_cast<size_t>(M * K), 24);
      std::vector<float> ys(static_cast<size_t>(M * N));
      auto time_path = [&](ops::MatmulPath path) {
        return median_seconds([&] { (void)ops::matmul(xs.data(), M, wv, ys.data(), threads, path); });
      };
      const double tn = time_path(ops::MatmulPath::bf16_native);
      const std::string base = "matmul_BF16_m" + std::to_string(M) + "_native_over_";
      report(Measurement(base + "widened", tn, tn / time_path(ops::MatmulPath::onednn), "ratio"));
      if (M >= 2) report(Measurement(base + "dot", tn, tn / time_path(ops::MatmulPath::half_dot), "ratio"));
      if (M <= ops::kGemvMaxTokensHalf)
        report(Measurement(base + "gemv", tn, tn / time_path(ops::MatmulPath::gemv), "ratio"));
    }
  } else {
    std::fprintf(stderr, "matmul_BF16_*_native_over_*: not measured (oneDNN has no bf16 product here)\n");
  }
#endif

  // The GEMV / oneDNN crossover: for M tokens through [2048 x 2048] weights (cold, cycling
  // through copies), the largest M for which GEMV is still at least as fast.
  for (DType dt : {DType::F32, DType::F16}) {
    const int64_t D = 2048;
    const int n_copies = quick ? 4 : 16;
    std::vector<std::vector<uint8_t>> ws(static_cast<size_t>(n_copies));
    for (int c = 0; c < n_copies; ++c) {
      auto v = random_vec(static_cast<size_t>(D * D), 200 + c, 0.05f);
      ws[c].resize(static_cast<size_t>(D * D) * (dt == DType::F32 ? 4 : 2));
      if (dt == DType::F32)
        std::memcpy(ws[c].data(), v.data(), ws[c].size());
      else
        for (size_t i = 0; i < v.size(); ++i) {
          const uint16_t h = fp32_to_fp16(v[i]);
          std::memcpy(ws[c].data() + 2 * i, &h, 2);
        }
    }
    auto xs = random_vec(static_cast<size_t>(32 * D), 4);
    std::vector<float> ys(static_cast<size_t>(32 * D));
    const int64_t compiled = dt == DType::F32 ? ops::kGemvMaxTokensF32 : ops::kGemvMaxTokensHalf;
    int64_t crossover = 0;
    bool gemv_still_wins = true;
    for (int64_t m : {1, 2, 3, 4, 6, 8, 12, 16, 32}) {
      auto time_path = [&](ops::MatmulPath path) {
        int next = 0;
        return median_seconds(
            [&] {
              (void)ops::matmul(xs.data(), m, TensorView::contiguous(dt, {D, D}, ws[next].data()), ys.data(), threads,
                                path);
              next = (next + 1) % n_copies;
            },
            3 * n_copies);
      };
      const double tg = time_path(ops::MatmulPath::gemv), td = time_path(ops::MatmulPath::onednn);
      report(Measurement("matmul_" + std::string(dtype_name(dt)) + "_m" + std::to_string(m) + "_gemv_over_onednn", 0,
                         tg / td, "ratio"));
      if (gemv_still_wins && tg <= td)
        crossover = m;
      else
        gemv_still_wins = false;
    }
    std::printf(
        "{\"name\": \"matmul_crossover_%s\", \"measured_max_gemv_tokens\": %lld, \"compiled_kGemvMaxTokens\": %lld}\n",
        std::string(dtype_name(dt)).c_str(), static_cast<long long>(crossover), static_cast<long long>(compiled));
    std::fprintf(stderr, "%-44s GEMV while M <= %lld (compiled in: %lld)\n",
                 ("matmul_crossover_" + std::string(dtype_name(dt))).c_str(), static_cast<long long>(crossover),
                 static_cast<long long>(compiled));
  }

  // The sparse FFN products (Gemma 3n's sparse layers, E2B's shapes): the masked up
  // projection [8192 x 2048] and the sparse-input down projection on [2048 x 8192] transposed
  // (f16, and Q8_0 as int8 values and scales), each against its dense product, by the fraction
  // of entries kept, for one token (cold weights: 4 copies in turn) and a prefill (512 tokens;
  // quick: 64). The crossover is the largest density at which the sparse path was still
  // faster, beside the compiled threshold.
  for (const auto& [up, dt] :
       {std::pair{true, DType::F16}, std::pair{false, DType::F16}, std::pair{false, DType::Q8_0}}) {
    const int64_t N = up ? 8192 : 2048, K = up ? 2048 : 8192;
    const int n_copies = 4;
    const bool q8 = dt == DType::Q8_0;
    std::vector<std::vector<uint8_t>> ws(n_copies), wts(n_copies);
    std::vector<std::vector<float>> scales(n_copies);
    for (int c = 0; c < n_copies; ++c) {
      auto v = random_vec(static_cast<size_t>(N * K), 300 + c, 0.05f);
      if (q8) {  // amax / 127 blocks of 32
        ws[c].resize(static_cast<size_t>(N * K / 32) * sizeof(BlockQ8_0));
        for (int64_t b = 0; b < N * K / 32; ++b) {
          float amax = 0;
          for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[static_cast<size_t>(b * 32 + j)]));
          BlockQ8_0 blk;
          blk.d = fp32_to_fp16(amax / 127.0f);
          const float d = fp16_to_fp32(blk.d);
          for (int j = 0; j < 32; ++j)
            blk.qs[j] = static_cast<int8_t>(d > 0 ? std::nearbyint(v[static_cast<size_t>(b * 32 + j)] / d) : 0.0f);
          std::memcpy(ws[c].data() + b * sizeof(BlockQ8_0), &blk, sizeof blk);
        }
        wts[c].resize(static_cast<size_t>(N * K));
        scales[c].resize(static_cast<size_t>(N * K / 32));
        (void)ops::transpose_weight_q(TensorView::contiguous(dt, {N, K}, ws[c].data()),
                                      reinterpret_cast<int8_t*>(wts[c].data()), scales[c].data(), threads);
      } else {
        ws[c].resize(v.size() * 2);
        auto* h = reinterpret_cast<uint16_t*>(ws[c].data());
        for (size_t i = 0; i < v.size(); ++i) h[i] = fp32_to_fp16(v[i]);
        wts[c].resize(v.size() * 2);
        (void)ops::transpose_weight(TensorView::contiguous(dt, {N, K}, ws[c].data()), wts[c].data(), threads);
      }
    }
    const std::string name = std::string(up ? "matmul_masked_" : "matmul_sparse_") + std::string(dtype_name(dt));
    for (const int64_t M : {int64_t{1}, int64_t{quick ? 64 : 512}}) {
      auto xs = random_vec(static_cast<size_t>(M * K), 18);
      std::vector<float> mask(static_cast<size_t>(M * (up ? N : K))), ys(static_cast<size_t>(M * N));
      double crossover = 0;
      bool sparse_still_wins = true;
      for (const double p : {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5}) {
        std::mt19937 rng(19);
        std::uniform_real_distribution<double> u(0, 1);
        for (auto& v : mask) v = u(rng) < p ? 1.0f : 0.0f;
        std::vector<float> xin = xs;  // the down projection's input is the sparse one
        if (!up)
          for (size_t i = 0; i < xin.size(); ++i) xin[i] *= mask[i];
        auto time_path = [&](ops::SparsePath path) {
          int next = 0;
          return median_seconds(
              [&] {
                const TensorView w = TensorView::contiguous(dt, {N, K}, ws[next].data());
                const TensorView wt = TensorView::contiguous(q8 ? DType::I8 : dt, {K, N}, wts[next].data());
                const TensorView st = TensorView::contiguous(DType::F32, {K / 32, N}, scales[next].data());
                if (up)
                  (void)ops::matmul_masked(xin.data(), M, w, mask.data(), ys.data(), threads, path);
                else
                  (void)ops::matmul_sparse(xin.data(), M, w, wt, ys.data(), threads, path, nullptr, q8 ? &st : nullptr);
                next = (next + 1) % n_copies;
              },
              M == 1 ? 5 * n_copies : 3);
        };
        const double ts = time_path(ops::SparsePath::sparse), td = time_path(ops::SparsePath::dense);
        char label[96];
        std::snprintf(label, sizeof label, "%s_m%lld_p%02d_sparse_over_dense", name.c_str(), static_cast<long long>(M),
                      static_cast<int>(std::lround(p * 100)));
        report(Measurement(label, ts, ts / td, "ratio"));
        if (sparse_still_wins && ts < td)
          crossover = p;
        else
          sparse_still_wins = false;
      }
      std::printf("{\"name\": \"%s_crossover_m%lld\", \"measured_max_sparse_density\": %.2f, \"compiled\": %.2f}\n",
                  name.c_str(), static_cast<long long>(M), crossover,
                  up ? ops::kMaskedDenseAbove : ops::sparse_dense_above(q8 ? DType::I8 : dt, M));
      std::fprintf(stderr, "%-44s sparse while density <= %.2f (compiled in: %.2f)\n",
                   (name + "_crossover_m" + std::to_string(M)).c_str(), crossover,
                   up ? ops::kMaskedDenseAbove : ops::sparse_dense_above(q8 ? DType::I8 : dt, M));
    }
  }

  // AltUp predict + correct (K = 4, d = 2048, one token) against one f32 GEMV [2048 x 2048].
  {
    const int Kb = 4;
    const int64_t d = 2048, reps = 1000;
    auto ring = random_vec(static_cast<size_t>(Kb * d), 5);
    auto yv = random_vec(static_cast<size_t>(d), 6);
    auto p = random_vec(Kb * Kb, 7, 0.5f), g = random_vec(Kb, 8, 0.5f);
    const double t_mix = median_seconds([&] {
                           for (int64_t r = 0; r < reps; ++r) {
                             (void)ops::altup_predict(ring.data(), ring.data(), p.data(), false, Kb, 1, d, threads);
                             (void)ops::altup_correct(ring.data(), yv.data(), g.data(), false, Kb, 0, 1, d, threads);
                           }
                         }) /
                         reps;
    auto w = random_vec(static_cast<size_t>(d * d), 9, 0.05f);
    const TensorView wv = TensorView::contiguous(DType::F32, {d, d}, w.data());
    std::vector<float> out(static_cast<size_t>(d));
    const double t_gemv =
        median_seconds([&] { (void)ops::matmul(ring.data(), 1, wv, out.data(), threads, ops::MatmulPath::gemv); });
    report(Measurement("altup_predict_correct_k4_d2048_us", t_mix, t_mix * 1e6, "us"));
    report(Measurement("gemv_f32_2048x2048_us", t_gemv, t_gemv * 1e6, "us"));
    report(Measurement("altup_mix_over_gemv_2048", t_mix, t_mix / t_gemv, "ratio")
               .with_target("< 0.02", t_mix / t_gemv < 0.02));
  }

  // Elementwise and row ops on [64, 4096] (bytes read + written per second).
  {
    const int64_t rows = 64, n = 4096, total = rows * n;
    auto a = random_vec(static_cast<size_t>(total), 10), b = random_vec(static_cast<size_t>(total), 11);
    std::vector<float> out(static_cast<size_t>(total));
    auto rowwise = [&](const char* name, double bytes_per_elem, auto fn) {
      const double t = median_seconds([&] {
        parallel_for(rows, threads, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) fn(a.data() + r * n, b.data() + r * n, out.data() + r * n, n);
        });
      });
      const double gbs = bytes_per_elem * static_cast<double>(total) / t / 1e9;
      report(Measurement(std::string(name) + "_64x4096", t, gbs, "GB/s", gbs / bw));
    };
    rowwise("add", 12, [&](const float* u, const float* v, float* o, int64_t m) { k.add(u, v, o, m); });
    rowwise("rmsnorm", 12, [&](const float* u, const float* v, float* o, int64_t m) { k.rmsnorm(u, v, o, m, 1e-6f); });
    rowwise("softmax", 8, [&](const float* u, const float*, float* o, int64_t m) { k.softmax(u, o, m); });
    rowwise("gelu_tanh", 8,
            [&](const float* u, const float*, float* o, int64_t m) { k.act(ops::Act::GeluTanh, u, o, m); });
    rowwise("silu", 8, [&](const float* u, const float*, float* o, int64_t m) { k.act(ops::Act::Silu, u, o, m); });
    rowwise("geglu", 12,
            [&](const float* u, const float* v, float* o, int64_t m) { k.glu(ops::Act::GeluTanh, u, v, o, m); });
    rowwise("softcap", 8, [&](const float* u, const float*, float* o, int64_t m) { k.softcap(u, 30.0f, o, m); });
  }

  // Attention decode over a 1024-token cache (Gemma 3n E2B-like heads): K and V bytes per second.
  {
    ops::AttentionShape s;
    s.n_heads = 8;
    s.n_kv_heads = 2;
    s.head_dim = 256;
    s.ctx = quick ? 256 : 1024;
    s.scale = 1.0f;
    auto q = random_vec(static_cast<size_t>(s.n_heads * s.head_dim), 12);
    auto kc = random_vec(static_cast<size_t>(s.n_kv_heads * s.ctx * s.head_dim), 13);
    auto vc = random_vec(static_cast<size_t>(s.n_kv_heads * s.ctx * s.head_dim), 14);
    std::vector<float> o(q.size());
    const int32_t pos = static_cast<int32_t>(s.ctx - 1);
    const double t =
        median_seconds([&] { (void)ops::attention(s, q.data(), kc.data(), vc.data(), &pos, 1, o.data(), threads); });
    const double gbs = 2.0 * 4 * s.n_kv_heads * s.ctx * s.head_dim / t / 1e9;
    report(Measurement("attention_decode_ctx" + std::to_string(s.ctx), t, gbs, "GB/s", gbs / bw));
  }

  // Attention prefill on the tiled path (E2B-like heads): a 512-token prompt from position 0,
  // and a 64-token chunk after 4,000 cached tokens (quick: 128 and 16 after 1,000). GFLOP/s
  // count the visible (query, key) pairs only, 4 * hd flops each (Q·Kᵀ and P·V).
  for (const auto& [T, first] : quick ? std::vector<std::pair<int64_t, int64_t>>{{128, 0}, {16, 1000}}
                                      : std::vector<std::pair<int64_t, int64_t>>{{512, 0}, {64, 4000}}) {
    ops::AttentionShape s;
    s.n_heads = 8;
    s.n_kv_heads = 2;
    s.head_dim = 256;
    s.ctx = first + T;
    auto q = random_vec(static_cast<size_t>(T * s.n_heads * s.head_dim), 15);
    auto kc = random_vec(static_cast<size_t>(s.n_kv_heads * s.ctx * s.head_dim), 16);
    auto vc = random_vec(kc.size(), 17);
    std::vector<float> o(q.size());
    std::vector<int32_t> pos(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(first + t);
    const double t = median_seconds([&] {
      (void)ops::attention(s, q.data(), kc.data(), vc.data(), pos.data(), T, o.data(), threads, nullptr,
                           ops::AttentionPath::tiles);
    });
    const double pairs = static_cast<double>(T) * static_cast<double>(first) + T * (T + 1) / 2.0;
    const double gf = pairs * s.n_heads * 4.0 * s.head_dim / t / 1e9;
    report(Measurement("attention_prefill_" + std::to_string(T) + "_after_" + std::to_string(first), t, gf, "GFLOP/s",
                       fma > 0 ? gf / fma : 0.0));
  }
  return 0;
}
