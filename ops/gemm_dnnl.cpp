#include "ops/gemm_dnnl.h"

#include <oneapi/dnnl/dnnl.h>

#include "runtime/executor.h"
#include "runtime/threading.h"

namespace altup::ops {

Status gemm_f32_dnnl(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, int threads) {
  if (m == 0 || n == 0) return {};
  set_compute_threads(threads);
  // dnnl_sgemm is row-major: C[M,N] = A[M,K] · op(B); B = W[N,K] read transposed.
  const dnnl_status_t st = dnnl_sgemm('N', 'T', m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
  if (st != dnnl_success) return make_error("oneDNN sgemm failed with status " + std::to_string(st));
  return {};
}

namespace {
Status run_matmul(const Node& node, ExecContext& ctx) {
  const TensorView& x = ctx.input(node, 0);
  const TensorView& w = ctx.input(node, 1);
  const TensorView& y = ctx.output(node);
  if (x.dtype != DType::F32 || w.dtype != DType::F32) return make_error("matmul_dnnl takes f32 only");
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows())
    return make_error("matmul shapes " + x.shape.str() + " x " + w.shape.str() + "ᵀ -> " + y.shape.str() + " do not agree");
  return gemm_f32_dnnl(x.as<float>(), w.as<float>(), y.as<float>(), x.rows(), w.rows(), x.cols(), ctx.threads());
}
double matmul_flops(const Node& node, const Graph& g) {
  const Shape& x = g.tensor(node.inputs[0]).shape;
  const Shape& w = g.tensor(node.inputs[1]).shape;
  return 2.0 * static_cast<double>(x.rows()) * static_cast<double>(w.numel());
}
}  // namespace

const OpDef kMatMulDnnl = {"matmul_dnnl", run_matmul, matmul_flops, nullptr};

}  // namespace altup::ops
