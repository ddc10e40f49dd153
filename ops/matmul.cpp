#include "ops/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif
#include "ops/isa.h"
#include "ops/op_util.h"
#include "ops/qgemv.h"

namespace altup::ops {

void ref::gemv(const TensorView& w, const float* x, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols()));
  for (int64_t r = 0; r < w.rows(); ++r) {
    (void)dequantize_row(w.dtype, w.row<const uint8_t>(r), row.data(), static_cast<uint64_t>(w.cols()));
    double s = 0;
    for (int64_t i = 0; i < w.cols(); ++i) s += static_cast<double>(row[i]) * x[i];
    y[r] = static_cast<float>(s);
  }
}

namespace {

// W rows per block: a block (16 rows x 2048 f32 = 128 KiB) stays in L2 while every token
// of a small batch passes over it.
constexpr int64_t kRowBlock = 16;

// Weights with an int8 kernel of their own: Q8_0 / Q4_0 / IQ4_NL (activation in blocks of 32)
// and Q2_K / Q3_K / Q4_K / Q5_K / Q6_K / IQ4_XS (activation in blocks of 256). Q4_1, Q5_0 and
// Q5_1, which llama-quantize writes only for the odd small matrix whose width is not a
// multiple of 256, are decoded a block of rows at a time and multiplied in f32.
bool int8_blocks32(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::IQ4_NL; }
bool kquant_gemm(DType t) { return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }
bool int8_blocks256(DType t) { return kquant_gemm(t) || t == DType::Q2_K || t == DType::Q3_K || t == DType::IQ4_XS; }
// Types with int8 prefill kernels too (Q2_K / Q3_K / IQ4_NL / IQ4_XS have the GEMV only:
// their prefill decodes rows for oneDNN).
bool int8_gemm(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || kquant_gemm(t); }
bool plain(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
int64_t act_block(DType t) { return int8_blocks32(t) ? 32 : int8_blocks256(t) ? 256 : 1; }

}  // namespace

namespace detail {

// The store is the calling thread's; the workers write through its pointer.
const void* quantize_activations(const Kernels& k, DType t, const float* x, int64_t M, int64_t K, int threads) {
  thread_local std::vector<BlockQ8x> q32;
  thread_local std::vector<BlockQ8K> q256;
  const int nt = threads_for(M * K, threads);
  if (int8_blocks32(t)) {
    q32.resize(static_cast<size_t>(M * (K / 32)));
    BlockQ8x* q = q32.data();
    parallel_for(M, nt, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) k.quantize_q8x(x + m * K, q + m * (K / 32), K);
    });
    return q;
  }
  if (int8_blocks256(t)) {
    q256.resize(static_cast<size_t>(M * (K / 256)));
    BlockQ8K* q = q256.data();
    parallel_for(M, nt, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) k.quantize_q8k(x + m * K, q + m * (K / 256), K);
    });
    return q;
  }
  return nullptr;
}

void gemv_token(const Kernels& k, const TensorView& w, const float* x, const void* xq, int64_t m, float* y, int64_t r0,
                int64_t rows) {
  const int64_t K = w.cols(), nb = K / act_block(w.dtype), rb = static_cast<int64_t>(w.row_stride());
  const float* xm = x + m * K;
  // Token m's blocks; xq is null for weights without int8 kernels (no arithmetic on null).
  const auto* x32 = xq ? static_cast<const BlockQ8x*>(xq) + m * nb : nullptr;
  const auto* x256 = xq ? static_cast<const BlockQ8K*>(xq) + m * nb : nullptr;
  const uint8_t* wb = w.row<const uint8_t>(r0);
  switch (w.dtype) {
    case DType::F32: k.gemv_f32(w.row<const float>(r0), K, xm, y, rows, K); break;
    case DType::F16: k.gemv_f16(w.row<const uint16_t>(r0), K, xm, y, rows, K); break;
    case DType::BF16: k.gemv_bf16(w.row<const uint16_t>(r0), K, xm, y, rows, K); break;
    case DType::Q8_0: k.gemv_q8_0(wb, rb, x32, y, rows, nb); break;
    case DType::Q4_0: k.gemv_q4_0(wb, rb, x32, y, rows, nb); break;
    case DType::IQ4_NL: k.gemv_iq4_nl(wb, rb, x32, y, rows, nb); break;
    case DType::Q4_K: k.gemv_q4_k(wb, rb, x256, y, rows, nb); break;
    case DType::Q5_K: k.gemv_q5_k(wb, rb, x256, y, rows, nb); break;
    case DType::Q6_K: k.gemv_q6_k(wb, rb, x256, y, rows, nb); break;
    case DType::Q2_K: k.gemv_q2_k(wb, rb, x256, y, rows, nb); break;
    case DType::Q3_K: k.gemv_q3_k(wb, rb, x256, y, rows, nb); break;
    case DType::IQ4_XS: k.gemv_iq4_xs(wb, rb, x256, y, rows, nb); break;
    default: {  // the rest decoded to f32 first (runtime/dtype)
      thread_local std::vector<float> decoded;
      decoded.resize(static_cast<size_t>(rows * K));
      for (int64_t r = 0; r < rows; ++r)
        (void)dequantize_row(w.dtype, wb + r * rb, decoded.data() + r * K, static_cast<uint64_t>(K));
      k.gemv_f32(decoded.data(), K, xm, y, rows, K);
    }
  }
}

double expected_density(const Node& n) {
  DensityParams p;
  return n.params.get(&p) ? std::clamp(static_cast<double>(p.density), 0.0, 1.0) : 1.0;
}

double sparse_flops(const Node& n, const Graph& g) {
  return 2.0 * expected_density(n) * static_cast<double>(g.tensor(n.inputs[0]).shape.rows()) *
         static_cast<double>(g.tensor(n.inputs[1]).shape.numel());
}

}  // namespace detail

namespace {

using detail::gemv_token;
using detail::quantize_activations;

// xq: the activations from quantize_activations (null for plain weights).
void gemv_block(const Kernels& k, const TensorView& w, const float* x, const void* xq, int64_t M, float* y, int64_t r0,
                int64_t r1) {
  const int64_t K = w.cols(), N = w.rows();
  thread_local std::vector<float> decoded;  // [kRowBlock, K]: rows of the other types, in f32
  const bool decode = !plain(w.dtype) && !int8_blocks32(w.dtype) && !int8_blocks256(w.dtype);
  for (int64_t b = r0; b < r1; b += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, r1 - b);
    if (decode) {  // once per block, for every token
      decoded.resize(static_cast<size_t>(kRowBlock * K));
      for (int64_t r = 0; r < rows; ++r)
        (void)dequantize_row(w.dtype, w.row<const uint8_t>(b + r), decoded.data() + r * K, static_cast<uint64_t>(K));
    }
    int64_t m = 0;
    if (w.dtype == DType::Q8_0)  // two tokens per pass over the block where a kernel takes them
      for (const auto* xb = static_cast<const BlockQ8x*>(xq); m + 1 < M; m += 2)
        k.gemv2_q8_0(w.row<const uint8_t>(b), static_cast<int64_t>(w.row_stride()), xb + m * (K / 32),
                     xb + (m + 1) * (K / 32), y + m * N + b, y + (m + 1) * N + b, rows, K / 32);
    for (; m < M; ++m) {
      if (decode)
        k.gemv_f32(decoded.data(), K, x + m * K, y + m * N + b, rows, K);
      else
        gemv_token(k, w, x, xq, m, y + m * N + b, b, rows);
    }
  }
}

// Prefill on Q8_0 / Q4_0 / K-quant weights: the activations quantized once, then the
// table's int8 GEMM (tiles of rows x tokens, or on AVX2 panels of 8 rows: ops/qgemv-inl.h,
// qgemm_q8-inl.h, qgemm_k-inl.h, qgemm_kpanel-inl.h); threads take chunks of rows.
Status gemm_quantized(const Kernels& k, const float* x, int64_t M, const TensorView& w, float* y, int threads) {
  const int64_t K = w.cols(), N = w.rows(), nb = K / act_block(w.dtype);
  const void* xq = quantize_activations(k, w.dtype, x, M, K, threads);
  const auto* x32 = static_cast<const BlockQ8x*>(xq);
  const auto* x256 = static_cast<const BlockQ8K*>(xq);
  constexpr int64_t kRows = 64;  // per work item: a multiple of the kernels' row tile
  const int64_t items = (N + kRows - 1) / kRows, rb = static_cast<int64_t>(w.row_stride());
  parallel_for(items, threads, [&](int64_t i0, int64_t i1) {
    const int64_t r0 = i0 * kRows, rows = std::min(N, i1 * kRows) - r0;
    const uint8_t* wr = w.row<const uint8_t>(r0);
    switch (w.dtype) {
      case DType::Q8_0: k.gemm_q8_0(wr, rb, x32, M, y + r0, N, rows, nb); break;
      case DType::Q4_0: k.gemm_q4_0(wr, rb, x32, M, y + r0, N, rows, nb); break;
      case DType::Q4_K: k.gemm_q4_k(wr, rb, x256, M, y + r0, N, rows, nb); break;
      case DType::Q5_K: k.gemm_q5_k(wr, rb, x256, M, y + r0, N, rows, nb); break;
      default: k.gemm_q6_k(wr, rb, x256, M, y + r0, N, rows, nb); break;
    }
  });
  return {};
}

// Prefill on f16 / bf16 weights: the table's gemm_f16 / gemm_bf16 (each weight converted
// once into f32 panels that every token reads), or with dot its dot-product tiles (weights
// widened in registers); threads take chunks of kHalfRows rows.
Status gemm_half(const Kernels& k, const float* x, int64_t M, const TensorView& w, float* y, int threads, bool dot) {
  constexpr int64_t kHalfRows = 64;
  const int64_t K = w.cols(), N = w.rows();
  const auto fn = w.dtype == DType::F16 ? (dot ? k.gemm_f16_dot : k.gemm_f16) : (dot ? k.gemm_bf16_dot : k.gemm_bf16);
  parallel_for((N + kHalfRows - 1) / kHalfRows, threads, [&](int64_t i0, int64_t i1) {
    const int64_t r0 = i0 * kHalfRows, rows = std::min(N, i1 * kHalfRows) - r0;
    fn(w.row<const uint16_t>(r0), K, x, M, y + r0, N, rows, K);
  });
  return {};
}

#if defined(ALTUP_HAVE_ONEDNN)
Status gemm_bf16_native(const float* x, int64_t M, const TensorView& w, float* y, int threads) {
  return gemm_bf16_dnnl(x, w.row<const uint16_t>(0), y, M, w.rows(), w.cols(), threads);
}

Status gemm_dnnl_any(const float* x, int64_t M, const TensorView& w, float* y, int threads) {
  const int64_t K = w.cols(), N = w.rows();
  if (w.dtype == DType::F32) return gemm_f32_dnnl(x, w.as<float>(), y, M, N, K, threads);
  // f16 / bf16 / quantized: convert a block of rows to f32, multiply it, write its columns of y.
  const Kernels& k = kernels();
  // ~16 MiB of f32 rows per block: oneDNN's products run faster with more rows per call. At
  // 512 tokens, two interleaved runs through 8192x2048, 2048x8192 and 2048^2 f16 weights gave
  // 102-121 GFLOP/s with 4 MiB blocks, 113-126 with 16 MiB, 117-131 with 64 MiB (whole
  // matrices); 16 MiB takes most of the gain for a quarter of the scratch memory.
  const int64_t block = std::max<int64_t>(16, (int64_t{1} << 22) / std::max<int64_t>(K, 1));
  // Scratch kept per calling thread (grown once); the workers get its pointer, since their
  // own thread_local copies would be different vectors.
  thread_local std::vector<float> wf_store, yb_store;
  wf_store.resize(static_cast<size_t>(std::min(block, N) * K));
  yb_store.resize(static_cast<size_t>(M * std::min(block, N)));
  float* wf = wf_store.data();
  float* yb = yb_store.data();
  for (int64_t b = 0; b < N; b += block) {
    const int64_t rows = std::min(block, N - b);
    parallel_for(rows, threads, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const auto* src = w.row<const uint16_t>(b + r);
        if (w.dtype == DType::F16)
          k.cvt_f16(src, wf + r * K, K);
        else if (w.dtype == DType::BF16)
          k.cvt_bf16(src, wf + r * K, K);
        else  // quantized rows: decoded exactly as the gguf package does (runtime/dtype)
          (void)dequantize_row(w.dtype, src, wf + r * K, static_cast<uint64_t>(K));
      }
    });
    ALTUP_TRY(gemm_f32_dnnl(x, wf, yb, M, rows, K, threads));
    for (int64_t m = 0; m < M; ++m) std::copy_n(yb + m * rows, rows, y + m * N + b);
  }
  return {};
}
#endif

}  // namespace

Status detail::check_weight(const TensorView& w) {
  if (!traits(w.dtype).computable)
    return make_error("matmul has no kernel for " + std::string(dtype_name(w.dtype)) + " weights yet");
  if (w.shape.ndim != 2) return make_error("matmul weight must be [N, K], got " + w.shape.str());
  const int64_t block = traits(w.dtype).block_elems;
  if (w.cols() % block)
    return make_error("matmul: " + std::string(dtype_name(w.dtype)) + " rows must be whole blocks of " +
                      std::to_string(block));
  return {};
}

const char* matmul_path_name(MatmulPath p) {
  switch (p) {
    case MatmulPath::automatic: return "automatic";
    case MatmulPath::gemv: return "gemv";
    case MatmulPath::onednn: return "onednn";
    case MatmulPath::int8_tiles: return "int8_tiles";
    case MatmulPath::half_panels: return "half_panels";
    case MatmulPath::half_dot: return "half_dot";
    case MatmulPath::bf16_native: return "bf16_native";
  }
  return "?";
}

Status matmul(const float* x, int64_t M, const TensorView& w, float* y, int threads, MatmulPath path,
              const Kernels* table) {
  ALTUP_TRY(detail::check_weight(w));
  if (M == 0 || w.rows() == 0) return {};
  // A weight whose rows are prefixes of longer ones (a MatFormer sub-model's sparse down
  // projection, read in place by the sparse product): the kernels take contiguous rows, so
  // this rare dense fallback packs it first, and computes the bits a file of that width would.
  if (const uint64_t rb = *row_bytes(w.dtype, static_cast<uint64_t>(w.cols())); w.row_stride() != rb) {
    std::vector<uint8_t> packed(rb * static_cast<uint64_t>(w.rows()));
    for (int64_t r = 0; r < w.rows(); ++r)
      std::memcpy(packed.data() + rb * static_cast<uint64_t>(r), w.row<uint8_t>(r), rb);
    return matmul(x, M, TensorView::contiguous(w.dtype, w.shape, packed.data()), y, threads, path, table);
  }
  const int64_t max_gemv = w.dtype == DType::F32 ? kGemvMaxTokensF32 : kGemvMaxTokensHalf;
  const bool use_gemv = path == MatmulPath::gemv || (path == MatmulPath::automatic && M <= max_gemv);
  const Kernels& k = table ? *table : kernels();
  // Quantized weights with many tokens: the int8 tiles when forced (int8_tiles), by default for
  // the K-quants, for Q8_0 / Q4_0 where the table repacks rows into panels (AVX2), and for
  // everything where there is no oneDNN (ARM64). bench_ops (gemm_*_tiles_over_widened)
  // measures both ways: on 2 Zen 3 cores, pp512 through 2048^2, the K-quant tiles ran
  // 0.86-1.41x the f32 widening into oneDNN (the AVX2 K-quant panels, from 24 tokens, 1.6-1.9x
  // the tiles), the Q8_0 / Q4_0 panels 1.18-1.84x; the SSE4.2
  // table's Q8_0 / Q4_0 tiles (one token at a time per row, a float step per block) were
  // 0.6-0.8x of it, so it keeps oneDNN.
#if defined(ALTUP_HAVE_ONEDNN)
  const bool tiles_by_default = kquant_gemm(w.dtype) || (int8_gemm(w.dtype) && k.q8_gemm_panels);
#else
  const bool tiles_by_default = true;
#endif
  const bool int8 = int8_gemm(w.dtype);
  // The K-quant tiles give the GEMV's bits per token, so they take over below the GEMV's
  // limit, from kKquantTilesMinTokens.
  const bool tiles =
      path == MatmulPath::int8_tiles ||
      (path == MatmulPath::automatic && tiles_by_default &&
       (!use_gemv || (kquant_gemm(w.dtype) && M >= kKquantTilesMinTokens)));
  if (int8 && tiles) return gemm_quantized(k, x, M, w, y, threads);
  const bool half = w.dtype == DType::F16 || w.dtype == DType::BF16;
  // Half-precision panels (gemm_half) where there is no oneDNN, or when forced (half_panels).
  // With oneDNN, widened rows stay the default: on 2 Zen 3 cores, 512 tokens through
  // 2048^2, 8192x2048 and 2048x8192 weights, the panels ran 0.90-1.03x oneDNN (bench_ops
  // gemm_{F16,BF16}_*_panels_over_widened; 0.64-1.08x in a throwaway A/B), 0.96-1.15x at 64
  // tokens, and 1.6-2.3x the GEMV path that builds without oneDNN used before.
#if defined(ALTUP_HAVE_ONEDNN)
  const bool half_tiles = path == MatmulPath::half_panels;
#else
  const bool half_tiles =
      path == MatmulPath::automatic || path == MatmulPath::onednn || path == MatmulPath::half_panels;
#endif
  // The dot-product tiles (widening in registers) from 2 tokens up to a measured size, where
  // the table widens in hardware: faster than the GEMV from 2 tokens and than oneDNN on
  // widened rows below it (f16 up to 256 tokens, bf16 up to 64; docs/kernels.md).
  // Builds without oneDNN (ARM64, not timed here) keep the GEMV and the panels.
#if defined(ALTUP_HAVE_ONEDNN)
  const int64_t max_dot = w.dtype == DType::F16 ? kHalfDotMaxTokensF16 : kHalfDotMaxTokensBF16;
  const bool dot_default = path == MatmulPath::automatic && k.half_dot && M >= 2 && M <= max_dot;
#else
  const bool dot_default = false;
#endif
#if defined(ALTUP_HAVE_ONEDNN)
  // bf16 weights where oneDNN multiplies bf16 on AMX tiles, or with a vdpbf16ps that keeps
  // up with FMAs: the activations rounded to bf16 (as llama.cpp's bf16 products do) and no
  // weight widened at all, from dnnl_bf16_native_min_tokens() (docs/kernels.md; the
  // accuracy cost is measured there too).
  if (w.dtype == DType::BF16 &&
      (path == MatmulPath::bf16_native || (path == MatmulPath::automatic && dnnl_bf16_native_at(M))))
    return gemm_bf16_native(x, M, w, y, threads);
#endif
  if (half && (path == MatmulPath::half_dot || dot_default)) return gemm_half(k, x, M, w, y, threads, true);
  if (half && !use_gemv && half_tiles) return gemm_half(k, x, M, w, y, threads, false);
#if defined(ALTUP_HAVE_ONEDNN)
  if (!use_gemv) return gemm_dnnl_any(x, M, w, y, threads);
#else
  (void)use_gemv;  // without oneDNN every product takes the GEMV path
#endif
  // Quantized weights: each activation row is quantized once, then read by every row block.
  const void* xq = quantize_activations(k, w.dtype, x, M, w.cols(), threads);
  const int64_t blocks = (w.rows() + kRowBlock - 1) / kRowBlock;
  for_rows(blocks, kRowBlock * w.cols() * M, threads, [&](int64_t b0, int64_t b1) {
    gemv_block(k, w, x, xq, M, y, b0 * kRowBlock, std::min(b1 * kRowBlock, w.rows()));
  });
  return {};
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &w = ctx.input(node, 1), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows())
    return make_error("matmul shapes " + x.shape.str() + " x " + w.shape.str() + "ᵀ -> " + y.shape.str() +
                      " do not agree");
  return matmul(x.as<float>(), x.rows(), w, y.as<float>(), ctx.threads());
}
double flops(const Node& n, const Graph& g) {
  return 2.0 * static_cast<double>(g.tensor(n.inputs[0]).shape.rows()) *
         static_cast<double>(g.tensor(n.inputs[1]).shape.numel());
}
double bytes(const Node& n, const Graph& g) {
  const TensorDesc& w = g.tensor(n.inputs[1]);
  auto wb = tensor_bytes(w.dtype, w.shape);
  return (wb ? static_cast<double>(*wb) : 0.0) + 4.0 * static_cast<double>(g.tensor(n.inputs[0]).shape.numel()) +
         4.0 * static_cast<double>(g.tensor(n.output).shape.numel());
}
}  // namespace

const OpDef kMatMul = {"matmul", run, flops, bytes};

}  // namespace altup::ops
