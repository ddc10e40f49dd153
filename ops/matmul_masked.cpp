#include "ops/matmul_masked.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/isa.h"
#include "ops/matmul.h"
#include "ops/op_util.h"

namespace altup::ops {

void ref::matmul_masked(const float* x, int64_t M, const TensorView& w, const float* mask, float* y) {
  const int64_t N = w.rows(), K = w.cols();
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t r = 0; r < N; ++r) {
    (void)dequantize_row(w.dtype, w.row<const uint8_t>(r), row.data(), static_cast<uint64_t>(K));
    for (int64_t m = 0; m < M; ++m) {
      double s = 0;
      if (mask[m * N + r] != 0.0f)
        for (int64_t i = 0; i < K; ++i) s += static_cast<double>(row[i]) * x[m * K + i];
      y[m * N + r] = static_cast<float>(s);
    }
  }
}

namespace {

// Weight rows per work item of the sparse path: the mask is scanned a chunk of rows at a
// time, so each item's token lists stay small and in cache.
constexpr int64_t kChunkRows = 64;

// Rows [r0, r1) of y: the kept entries through one-row GEMVs, the rest zero. Per row, the
// tokens that keep it are listed first, so a weight row is read once for all of them.
void sparse_rows(const Kernels& k, const float* x, const void* xq, int64_t M, const TensorView& w, const float* mask,
                 float* y, int64_t r0, int64_t r1) {
  const int64_t N = w.rows(), n = r1 - r0;
  thread_local std::vector<int32_t> start, tokens, cursor;  // CSR over the chunk's rows: tokens per row
  start.assign(static_cast<size_t>(n + 1), 0);
  for (int64_t m = 0; m < M; ++m) {
    const float* km = mask + m * N + r0;
    for (int64_t r = 0; r < n; ++r) start[static_cast<size_t>(r + 1)] += km[r] != 0.0f;
    std::fill_n(y + m * N + r0, n, 0.0f);
  }
  for (int64_t r = 0; r < n; ++r) start[static_cast<size_t>(r + 1)] += start[static_cast<size_t>(r)];
  tokens.resize(static_cast<size_t>(start[static_cast<size_t>(n)]));
  cursor.assign(start.begin(), start.end() - 1);
  for (int64_t m = 0; m < M; ++m) {
    const float* km = mask + m * N + r0;
    for (int64_t r = 0; r < n; ++r)
      if (km[r] != 0.0f) tokens[static_cast<size_t>(cursor[static_cast<size_t>(r)]++)] = static_cast<int32_t>(m);
  }
  for (int64_t r = 0; r < n; ++r)
    for (int32_t i = start[static_cast<size_t>(r)]; i < start[static_cast<size_t>(r + 1)]; ++i) {
      const int64_t m = tokens[static_cast<size_t>(i)];
      detail::gemv_token(k, w, x, xq, m, y + m * N + r0 + r, r0 + r, 1);
    }
}

}  // namespace

Status matmul_masked(const float* x, int64_t M, const TensorView& w, const float* mask, float* y, int threads,
                     SparsePath path, const Kernels* table) {
  ALTUP_TRY(detail::check_weight(w));
  const int64_t N = w.rows(), K = w.cols();
  if (M == 0 || N == 0) return {};
  const Kernels& k = table ? *table : kernels();
  const bool dense = path == SparsePath::dense ||
                     (path == SparsePath::automatic && static_cast<double>(count_nonzero(mask, M * N, threads)) >
                                                           kMaskedDenseAbove * static_cast<double>(M * N));
  if (dense) {
    ALTUP_TRY(matmul(x, M, w, y, threads, MatmulPath::automatic, table));
    for_rows(M, N, threads, [&](int64_t m0, int64_t m1) {
      for (int64_t i = m0 * N; i < m1 * N; ++i)
        if (mask[i] == 0.0f) y[i] = 0.0f;
    });
    return {};
  }
  const void* xq = detail::quantize_activations(k, w.dtype, x, M, K, threads);
  const int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
  for_rows(chunks, kChunkRows * M, threads, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      sparse_rows(k, x, xq, M, w, mask, y, c * kChunkRows, std::min(N, (c + 1) * kChunkRows));
  });
  return {};
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &w = ctx.input(node, 1), &mask = ctx.input(node, 2), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &mask, &y}));
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows() || mask.shape != y.shape)
    return make_error("masked matmul shapes " + x.shape.str() + " x " + w.shape.str() + "ᵀ (mask " + mask.shape.str() +
                      ") -> " + y.shape.str() + " do not agree");
  return matmul_masked(x.as<float>(), x.rows(), w, mask.as<float>(), y.as<float>(), ctx.threads());
}
// Estimates from the expected density: kept entries times 2K, and the weight rows at least
// one token keeps (a fraction 1 - (1 - density)^M of them).
double bytes(const Node& n, const Graph& g) {
  const TensorDesc& w = g.tensor(n.inputs[1]);
  const auto wb = tensor_bytes(w.dtype, w.shape);
  const double M = static_cast<double>(g.tensor(n.inputs[0]).shape.rows());
  const double rows_read = 1.0 - std::pow(1.0 - detail::expected_density(n), M);
  return (wb ? static_cast<double>(*wb) * rows_read : 0.0) +
         4.0 * static_cast<double>(g.tensor(n.inputs[0]).shape.numel()) +
         8.0 * static_cast<double>(g.tensor(n.output).shape.numel());
}
}  // namespace

const OpDef kMatMulMasked = {"matmul_masked", run, detail::sparse_flops, bytes};

}  // namespace altup::ops
