#include "ops/convert.h"

#include <algorithm>

#include "ops/isa.h"
#include "ops/op_util.h"
#include "runtime/mapped_file.h"

namespace altup::ops {

void ref::cvt_f16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}
void ref::cvt_bf16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

Status row_to_f32(const TensorView& table, int64_t row, float* out) {
  const Kernels& k = kernels();
  const int64_t d = table.cols();
  const void* src = table.row<const uint8_t>(row);
  switch (table.dtype) {
    case DType::F16: k.cvt_f16(static_cast<const uint16_t*>(src), out, d); return {};
    case DType::BF16: k.cvt_bf16(static_cast<const uint16_t*>(src), out, d); return {};
    default: return dequantize_row(table.dtype, src, out, static_cast<uint64_t>(d));
  }
}

Status embedding_lookup(const TensorView& table, const int32_t* ids, int64_t T, float scale, float* out, int threads,
                        int64_t vocab, bool release) {
  if (table.shape.ndim != 2) return make_error("embedding table must be [V, d], got " + table.shape.str());
  const int64_t V = table.rows(), d = table.cols(), limit = std::max(V, vocab);
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= limit)
      return make_error("token id " + std::to_string(ids[t]) + " is outside the vocabulary [0, " +
                        std::to_string(limit) + ")");
  const Kernels& k = kernels();
  Status first_error;
  for_rows(T, d, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = ids[t] < V ? ids[t] : 0;
      Status s = row_to_f32(table, row, out + t * d);
      if (release)
        release_mapped_rows(table.data, static_cast<uint64_t>(V) * table.row_stride(), table.row<const uint8_t>(row),
                            table.row_stride());
      if (!s.ok()) {
#pragma omp critical
        first_error = s;
        return;
      }
      if (scale != 1.0f) k.scale(out + t * d, scale, out + t * d, d);
    }
  });
  return first_error;
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &table = ctx.input(node, 0), &ids = ctx.input(node, 1), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&y}));
  if (ids.dtype != DType::I32) return make_error("token ids must be I32");
  if (y.rows() != ids.numel() || y.cols() != table.cols())
    return make_error("embedding output " + y.shape.str() + " does not fit " + std::to_string(ids.numel()) +
                      " rows of " + std::to_string(table.cols()));
  EmbeddingParams p;  // parameters are optional here: a node without any scales by 1
  if (!node.params.empty()) ALTUP_TRY(params_of(node, &p));
  const float scale = p.scale;
  return embedding_lookup(table, ids.as<int32_t>(), ids.numel(), scale, y.as<float>(), ctx.threads(), p.vocab,
                          p.release);
}
// A row of the table per token, decoded (and scaled): one operation and 4 bytes written per
// value, plus the row's bytes read.
double embedding_flops(const Node& node, const Graph& g) {
  return static_cast<double>(g.tensor(node.output).shape.numel());
}
double embedding_bytes(const Node& node, const Graph& g) {
  const TensorDesc& table = g.tensor(node.inputs[0]);
  const Shape& out = g.tensor(node.output).shape;
  auto row = row_bytes(table.dtype, static_cast<uint64_t>(table.shape.ndim == 2 ? table.shape[1] : 0));
  return static_cast<double>(out.rows()) * static_cast<double>(row ? *row : 0) + 4.0 * static_cast<double>(out.numel());
}
}  // namespace

const OpDef kEmbedding = {"embedding", run, embedding_flops, embedding_bytes};

}  // namespace altup::ops
