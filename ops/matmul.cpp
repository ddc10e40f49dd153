#include "ops/matmul.h"

#include <algorithm>
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

bool quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

// xq: for quantized weights, the M rows of x as 8-bit blocks (K / 32 each).
void gemv_block(const Kernels& k, const TensorView& w, const float* x, const BlockQ8x* xq, int64_t M, float* y,
                int64_t r0, int64_t r1) {
  const int64_t K = w.cols(), N = w.rows(), nb = K / 32;
  for (int64_t b = r0; b < r1; b += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, r1 - b);
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      float* ym = y + m * N + b;
      switch (w.dtype) {
        case DType::F32: k.gemv_f32(w.row<const float>(b), K, xm, ym, rows, K); break;
        case DType::F16: k.gemv_f16(w.row<const uint16_t>(b), K, xm, ym, rows, K); break;
        case DType::BF16: k.gemv_bf16(w.row<const uint16_t>(b), K, xm, ym, rows, K); break;
        case DType::Q8_0:
          k.gemv_q8_0(w.row<const uint8_t>(b), static_cast<int64_t>(w.row_stride()), xq + m * nb, ym, rows, nb);
          break;
        default:
          k.gemv_q4_0(w.row<const uint8_t>(b), static_cast<int64_t>(w.row_stride()), xq + m * nb, ym, rows, nb);
          break;
      }
    }
  }
}

// Prefill on Q8_0 / Q4_0 weights: the activations quantized once, then tiles of weight rows
// x tokens of exact int8 block dots (ops/qgemv-inl.h); threads take chunks of rows.
Status gemm_quantized(const Kernels& k, const float* x, int64_t M, const TensorView& w, float* y, int threads) {
  const int64_t K = w.cols(), N = w.rows(), nb = K / 32;
  thread_local std::vector<BlockQ8x> xq_store;
  xq_store.resize(static_cast<size_t>(M * nb));
  BlockQ8x* xq = xq_store.data();
  parallel_for(M, M * K >= kMinParallelElems ? threads : 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) quantize_row_q8x(x + m * K, xq + m * nb, K);
  });
  constexpr int64_t kRows = 64;  // per work item: a multiple of the kernels' row tile
  const auto gemm = w.dtype == DType::Q8_0 ? k.gemm_q8_0 : k.gemm_q4_0;
  const int64_t items = (N + kRows - 1) / kRows;
  parallel_for(items, threads, [&](int64_t i0, int64_t i1) {
    const int64_t r0 = i0 * kRows, r1 = std::min(N, i1 * kRows);
    gemm(w.row<const uint8_t>(r0), static_cast<int64_t>(w.row_stride()), xq, M, y + r0, N, r1 - r0, nb);
  });
  return {};
}

#if defined(ALTUP_HAVE_ONEDNN)
Status gemm_dnnl_any(const float* x, int64_t M, const TensorView& w, float* y, int threads) {
  const int64_t K = w.cols(), N = w.rows();
  if (w.dtype == DType::F32) return gemm_f32_dnnl(x, w.as<float>(), y, M, N, K, threads);
  // f16 / bf16 / Q8_0 / Q4_0: convert a block of rows to f32, multiply it, write its columns of y.
  const Kernels& k = kernels();
  const int64_t block = std::max<int64_t>(16, (1 << 20) / std::max<int64_t>(K, 1));  // ~4 MiB of f32
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

Status matmul(const float* x, int64_t M, const TensorView& w, float* y, int threads, int path, const Kernels* table) {
  if (w.dtype != DType::F32 && w.dtype != DType::F16 && w.dtype != DType::BF16 && !quantized(w.dtype))
    return make_error("matmul has no kernel for " + std::string(dtype_name(w.dtype)) + " weights yet");
  if (w.shape.ndim != 2) return make_error("matmul weight must be [N, K], got " + w.shape.str());
  if (quantized(w.dtype) && w.cols() % 32)
    return make_error("matmul: " + std::string(dtype_name(w.dtype)) + " rows must be whole blocks of 32");
  if (M == 0 || w.rows() == 0) return {};
  const int64_t max_gemv = w.dtype == DType::F32 ? kGemvMaxTokensF32 : kGemvMaxTokensHalf;
  const bool use_gemv = path == 1 || (path == 0 && M <= max_gemv);
  const Kernels& k = table ? *table : kernels();
  // Quantized weights with many tokens: the int8 tiles when forced (path 3), or by default
  // where there is no oneDNN (ARM64). With oneDNN, widening row blocks to f32 for its matmul
  // measured faster (E2B-shaped Q8_0, pp256 on 2 Zen 3 cores: 30 against 26 tok/s).
#if defined(ALTUP_HAVE_ONEDNN)
  const bool tiles_by_default = false;
#else
  const bool tiles_by_default = true;
#endif
  if (quantized(w.dtype) && (path == 3 || (path == 0 && !use_gemv && tiles_by_default)))
    return gemm_quantized(k, x, M, w, y, threads);
#if defined(ALTUP_HAVE_ONEDNN)
  if (!use_gemv) return gemm_dnnl_any(x, M, w, y, threads);
#else
  (void)use_gemv;  // without oneDNN every product takes the GEMV path
#endif
  // Quantized weights: each activation row is quantized once, then read by every row block.
  thread_local std::vector<BlockQ8x> xq_store;
  const BlockQ8x* xq = nullptr;
  if (quantized(w.dtype)) {
    const int64_t nb = w.cols() / 32;
    xq_store.resize(static_cast<size_t>(M * nb));
    for (int64_t m = 0; m < M; ++m) quantize_row_q8x(x + m * w.cols(), xq_store.data() + m * nb, w.cols());
    xq = xq_store.data();
  }
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
