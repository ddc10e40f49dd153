#include "ops/matmul_sparse.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/isa.h"
#include "ops/matmul.h"
#include "ops/op_util.h"

namespace altup::ops {

bool sparse_transposable(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

namespace {
// Rows [d0, d1) of w [D, F] into columns of wt [F, D], a tile of kTile x kTile elements at a
// time through a buffer on the stack, so that both sides are read and written along rows.
// E2B's [2048, 8192] f16 down weight on 2 Zen 3 cores: 11-13 ms with 64 x 64 tiles, 13-15
// with 16 x 16, 44 writing wt straight from w's rows.
template <class T>
void transpose_rows(const TensorView& w, T* wt, int64_t d0, int64_t d1) {
  constexpr int64_t kTile = 64;
  const int64_t D = w.rows(), F = w.cols();
  for (int64_t db = d0; db < d1; db += kTile) {
    const int64_t de = std::min(d1, db + kTile);
    for (int64_t fb = 0; fb < F; fb += kTile) {
      const int64_t fe = std::min(F, fb + kTile);
      T tile[kTile][kTile];  // [d - db][f - fb]: read along w's rows, written along wt's
      for (int64_t d = db; d < de; ++d) std::memcpy(tile[d - db], w.row<const T>(d) + fb, sizeof(T) * (fe - fb));
      for (int64_t f = fb; f < fe; ++f)
        for (int64_t d = db; d < de; ++d) wt[f * D + d] = tile[d - db][f - fb];
    }
  }
}
}  // namespace

Status transpose_weight(const TensorView& w, void* wt, int threads) {
  if (!sparse_transposable(w.dtype) || w.shape.ndim != 2)
    return make_error("transpose_weight: need a 2-D f32 / f16 / bf16 weight, got " + std::string(dtype_name(w.dtype)) +
                      " " + w.shape.str());
  parallel_for(w.rows(), threads, [&](int64_t d0, int64_t d1) {
    if (w.dtype == DType::F32)
      transpose_rows(w, static_cast<float*>(wt), d0, d1);
    else
      transpose_rows(w, static_cast<uint16_t*>(wt), d0, d1);
  });
  return {};
}

int64_t sparse_scale_block(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::IQ4_NL:
    case DType::Q4_K:
    case DType::Q5_K: return 32;
    case DType::Q6_K: return 16;
    default: return 0;
  }
}

namespace {
// One row of F values of a sparse_scale_block type as its integers q[F] and the scale (and
// offset) of each B of them, formed as the decoder (runtime/dtype.cpp) forms them: the block's
// fp16 d, Q6_K's d · scale[j], Q4_K / Q5_K's d · sc[j] and dmin · m[j]. The decoder's value
// is s · q (- o), the same operations, so the result is exact by construction.
void row_ints(DType t, const uint8_t* row, int64_t F, int8_t* q, float* s, float* o) {
  switch (t) {
    case DType::Q4_K:
    case DType::Q5_K: {
      const int64_t bytes = t == DType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K);
      for (int64_t b = 0; b < F / kQK; ++b) {
        const uint8_t* p = row + b * bytes;
        uint16_t d16, m16;
        std::memcpy(&d16, p, 2);
        std::memcpy(&m16, p + 2, 2);
        const float d = fp16_to_fp32(d16), dmin = fp16_to_fp32(m16);
        const uint8_t* qh = t == DType::Q5_K ? p + 16 : nullptr;
        const uint8_t* qs = p + (t == DType::Q5_K ? 48 : 16);
        for (int j = 0; j < 8; ++j) {  // sub-block j: values 32j .. 32j + 31
          int sc, m;
          kquant_scale_min(p + 4, j, &sc, &m);
          s[b * 8 + j] = d * static_cast<float>(sc);
          o[b * 8 + j] = dmin * static_cast<float>(m);
          for (int l = 0; l < 32; ++l) q[b * kQK + 32 * j + l] = static_cast<int8_t>(q45k_value(qs, qh, j, l));
        }
      }
      return;
    }
    case DType::Q6_K:
      for (int64_t b = 0; b < F / kQK; ++b) {
        BlockQ6_K blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ6_K), sizeof blk);
        uint16_t d16;
        std::memcpy(&d16, blk.d, 2);
        const float d = fp16_to_fp32(d16);
        for (int j = 0; j < kQK / 16; ++j) s[b * (kQK / 16) + j] = d * static_cast<float>(blk.scales[j]);
        for (int i = 0; i < kQK; ++i) q[b * kQK + i] = static_cast<int8_t>(q6k_value(blk, i));
      }
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < F / 32; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ8_0), sizeof blk);
        s[b] = fp16_to_fp32(blk.d);
        std::memcpy(q + b * 32, blk.qs, 32);
      }
      return;
    default:  // Q4_0: nibble - 8; IQ4_NL: the nibble's table value
      for (int64_t b = 0; b < F / 32; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ4_0), sizeof blk);
        s[b] = fp16_to_fp32(blk.d);
        for (int j = 0; j < 16; ++j) {
          const int lo = blk.qs[j] & 0x0F, hi = blk.qs[j] >> 4;
          q[b * 32 + j] = static_cast<int8_t>(t == DType::Q4_0 ? lo - 8 : kIq4Values[lo]);
          q[b * 32 + j + 16] = static_cast<int8_t>(t == DType::Q4_0 ? hi - 8 : kIq4Values[hi]);
        }
      }
  }
}
}  // namespace

bool sparse_has_offsets(DType t) { return t == DType::Q4_K || t == DType::Q5_K; }

Status transpose_weight_q(const TensorView& w, int8_t* qt, float* st, int threads) {
  const int64_t B = sparse_scale_block(w.dtype);
  const bool kquant = w.dtype == DType::Q6_K || sparse_has_offsets(w.dtype);
  if (B == 0 || w.shape.ndim != 2 || w.cols() % (kquant ? kQK : 32) != 0)
    return make_error("transpose_weight_q: need a 2-D Q8_0 / Q4_0 / IQ4_NL / Q6_K / Q4_K / Q5_K weight, got " +
                      std::string(dtype_name(w.dtype)) + " " + w.shape.str());
  const int64_t D = w.rows(), F = w.cols();
  // Tiles of 64 output rows x 256 values (a whole number of blocks of every such type): the
  // tile's integers (16 KiB) stay in L1 while they are written out 64 bytes at a time.
  constexpr int64_t kRows = 64, kVals = 256;
  const int64_t per_block = kquant ? kQK : 32;
  float* ot = sparse_has_offsets(w.dtype) ? st + F / B * D : nullptr;  // the offsets, after the scales
  const auto block_bytes = static_cast<int64_t>(traits(w.dtype).block_bytes);
  parallel_for((D + kRows - 1) / kRows, threads, [&](int64_t t0, int64_t t1) {
    int8_t q[kRows * kVals];
    float scales[kRows * (kVals / 16)], offsets[kRows * (kVals / 16)];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o0 = t * kRows, n = std::min(D, o0 + kRows) - o0;
      for (int64_t f0 = 0; f0 < F; f0 += kVals) {
        const int64_t nv = std::min(kVals, F - f0), ns = nv / B;
        for (int64_t i = 0; i < n; ++i)
          row_ints(w.dtype, w.row<const uint8_t>(o0 + i) + f0 / per_block * block_bytes, nv, q + i * kVals,
                   scales + i * (kVals / 16), offsets + i * (kVals / 16));
        for (int64_t f = 0; f < nv; ++f)
          for (int64_t i = 0; i < n; ++i) qt[(f0 + f) * D + o0 + i] = q[i * kVals + f];
        for (int64_t b = 0; b < ns; ++b)
          for (int64_t i = 0; i < n; ++i) {
            st[(f0 / B + b) * D + o0 + i] = scales[i * (kVals / 16) + b];
            if (ot) ot[(f0 / B + b) * D + o0 + i] = offsets[i * (kVals / 16) + b];
          }
      }
    }
  });
  return {};
}

void ref::matmul_sparse(const float* x, int64_t M, const TensorView& wt, float* y, const TensorView* scales,
                        bool offsets) {
  const int64_t F = wt.rows(), D = wt.cols();
  std::vector<double> acc(static_cast<size_t>(D));
  std::vector<float> row(static_cast<size_t>(D));
  const bool q = wt.dtype == DType::I8 && scales;
  const int64_t nb = q ? scales->rows() / (offsets ? 2 : 1) : 1, B = q ? F / nb : 1;  // scale rows, values per scale
  for (int64_t m = 0; m < M; ++m) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t f = 0; f < F; ++f) {
      if (q) {
        for (int64_t i = 0; i < D; ++i) {
          float v = scales->row<const float>(f / B)[i] * static_cast<float>(wt.row<const int8_t>(f)[i]);
          if (offsets) v -= scales->row<const float>(nb + f / B)[i];
          row[static_cast<size_t>(i)] = v;
        }
      } else {
        (void)dequantize_row(wt.dtype, wt.row<const uint8_t>(f), row.data(), static_cast<uint64_t>(D));
      }
      for (int64_t i = 0; i < D; ++i) acc[static_cast<size_t>(i)] += static_cast<double>(x[m * F + f]) * row[i];
    }
    for (int64_t i = 0; i < D; ++i) y[m * D + i] = static_cast<float>(acc[static_cast<size_t>(i)]);
  }
}

namespace {

// The sparse path works on blocks of y: kTokens tokens x kCols outputs (256 KiB of f32),
// which stay in L2 while the weight rows the block's tokens keep stream past; a weight row
// is read once per token block. At 512 tokens through E2B's [2048, 8192] f16 down weight,
// 5% non-zero, 2 Zen 3 cores (a throwaway A/B, medians of 5): 16-48 x 2048 took 30-32 ms,
// 64 x 512-1024 38-43, 128 x 256 44, 512 x 128 57; the dense product 108.
constexpr int64_t kTokens = 32, kCols = 2048;

// One token block's non-zero inputs, grouped by input index f: the f that any of its tokens
// keeps, and for each the tokens and values, in token order.
struct Kept {
  std::vector<int32_t> f, begin;  // begin has one more entry than f
  std::vector<int32_t> token;
  std::vector<float> value;
};

void collect(const float* x, int64_t F, int64_t m0, int64_t m1, Kept* k) {
  thread_local std::vector<int32_t> count;
  count.assign(static_cast<size_t>(F), 0);
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t f = 0; f < F; ++f) count[static_cast<size_t>(f)] += x[m * F + f] != 0.0f;
  k->f.clear();
  k->begin.assign(1, 0);
  for (int64_t f = 0; f < F; ++f)
    if (const int32_t c = count[static_cast<size_t>(f)]) {
      k->f.push_back(static_cast<int32_t>(f));
      k->begin.push_back(k->begin.back() + c);
      count[static_cast<size_t>(f)] = k->begin[k->begin.size() - 2];  // becomes the fill cursor
    }
  k->token.resize(static_cast<size_t>(k->begin.back()));
  k->value.resize(k->token.size());
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t f = 0; f < F; ++f)
      if (const float v = x[m * F + f]; v != 0.0f) {
        const auto at = static_cast<size_t>(count[static_cast<size_t>(f)]++);
        k->token[at] = static_cast<int32_t>(m);
        k->value[at] = v;
      }
}

}  // namespace

Status matmul_sparse(const float* x, int64_t M, const TensorView& w, const TensorView& wt, float* y, int threads,
                     SparsePath path, const Kernels* table, const TensorView* scales) {
  const bool shapes = w.shape.ndim == 2 && wt.shape.ndim == 2 && wt.shape[0] == w.shape[1] && wt.shape[1] == w.shape[0];
  const int64_t B = sparse_scale_block(w.dtype);
  const bool plain = sparse_transposable(wt.dtype) && wt.dtype == w.dtype;
  const int64_t per_scale = sparse_has_offsets(w.dtype) ? 2 : 1;  // scale rows, then offset rows
  const bool quantized = wt.dtype == DType::I8 && B > 0 && scales && scales->dtype == DType::F32 &&
                         scales->shape.ndim == 2 && w.shape.ndim == 2 &&
                         scales->shape[0] * B == per_scale * w.shape[1] && scales->shape[1] == w.shape[0];
  if (!shapes || !(plain || quantized))
    return make_error("sparse matmul: " + std::string(dtype_name(wt.dtype)) + " " + wt.shape.str() +
                      (scales ? " (scales " + std::string(dtype_name(scales->dtype)) + " " + scales->shape.str() + ")"
                              : std::string()) +
                      " is not the f32 / f16 / bf16 transpose, or the int8 transpose and scales (and offsets), of " +
                      std::string(dtype_name(w.dtype)) + " " + w.shape.str());
  const int64_t D = w.rows(), F = w.cols();
  if (M == 0 || D == 0) return {};
  if (path == SparsePath::dense ||
      (path == SparsePath::automatic && static_cast<double>(count_nonzero(x, M * F, threads)) >
                                            sparse_dense_above(wt.dtype, M) * static_cast<double>(M * F)))
    return matmul(x, M, w, y, threads, MatmulPath::automatic, table);

  const Kernels& k = table ? *table : kernels();
  const int64_t blocks = (M + kTokens - 1) / kTokens;
  // Fewer token blocks than threads (decode, short prompts): narrower column blocks, so every
  // thread gets some. Their edges stay multiples of 64 values, so no axpy has a scalar tail
  // before D and the bits do not depend on the thread count.
  const int64_t cols = blocks >= threads ? kCols : std::min(kCols, ((D + threads - 1) / threads + 63) / 64 * 64);
  const int64_t col_blocks = (D + cols - 1) / cols;
  thread_local std::vector<Kept> store;  // the calling thread's; workers use its pointer
  if (store.size() < static_cast<size_t>(blocks)) store.resize(static_cast<size_t>(blocks));
  Kept* kept = store.data();
  for_rows(blocks, kTokens * F, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) collect(x, F, b * kTokens, std::min(M, (b + 1) * kTokens), &kept[b]);
  });
  const int64_t es = wt.dtype == DType::F32 ? 4 : wt.dtype == DType::I8 ? 1 : 2;
  for_rows(blocks * col_blocks, kTokens * cols, threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / col_blocks, c0 = (i % col_blocks) * cols, n = std::min(D, c0 + cols) - c0;
      const int64_t m0 = b * kTokens, m1 = std::min(M, m0 + kTokens);
      for (int64_t m = m0; m < m1; ++m) std::fill_n(y + m * D + c0, n, 0.0f);
      const Kept& kb = kept[b];
      for (size_t j = 0; j < kb.f.size(); ++j) {
        const uint8_t* row = wt.row<const uint8_t>(kb.f[j]) + c0 * es;
        // its scales (and offsets, F / B rows further on)
        const float* srow = quantized ? scales->row<const float>(kb.f[j] / B) + c0 : nullptr;
        const float* orow = quantized && per_scale == 2 ? srow + F / B * D : nullptr;
        for (int32_t e = kb.begin[j]; e < kb.begin[j + 1]; ++e) {
          float* ym = y + kb.token[static_cast<size_t>(e)] * D + c0;
          const float a = kb.value[static_cast<size_t>(e)];
          switch (wt.dtype) {
            case DType::F32: k.axpy(a, reinterpret_cast<const float*>(row), ym, n); break;
            case DType::F16: k.axpy_f16(a, reinterpret_cast<const uint16_t*>(row), ym, n); break;
            case DType::I8:
              if (orow)
                k.axpy_i8so(a, reinterpret_cast<const int8_t*>(row), srow, orow, ym, n);
              else
                k.axpy_i8s(a, reinterpret_cast<const int8_t*>(row), srow, ym, n);
              break;
            default: k.axpy_bf16(a, reinterpret_cast<const uint16_t*>(row), ym, n); break;
          }
        }
      }
    }
  });
  return {};
}

namespace {
Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &w = ctx.input(node, 1), &wt = ctx.input(node, 2), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows())
    return make_error("sparse matmul shapes " + x.shape.str() + " x " + w.shape.str() + "ᵀ -> " + y.shape.str() +
                      " do not agree");
  const TensorView* scales = node.inputs.size() > 3 ? &ctx.input(node, 3) : nullptr;
  return matmul_sparse(x.as<float>(), x.rows(), w, wt, y.as<float>(), ctx.threads(), SparsePath::automatic, nullptr,
                       scales);
}
// Estimates from the expected density: kept inputs times 2D, and the weight rows at least one
// token of a kTokens-token block keeps, once per block.
double bytes(const Node& n, const Graph& g) {
  const TensorDesc& w = g.tensor(n.inputs[2]);
  const auto wb = tensor_bytes(w.dtype, w.shape);
  const double M = static_cast<double>(g.tensor(n.inputs[0]).shape.rows());
  const double blocks = std::ceil(M / static_cast<double>(kTokens));
  const double kept = 1.0 - detail::expected_density(n), tokens = std::min(M, double{kTokens});
  const double rows_read = blocks * (1.0 - std::pow(kept, tokens));
  double scales = 0;  // an int8 Wt's scale rows: one per B weight rows, read if any of them is
  if (n.inputs.size() > 3) {
    const TensorDesc& s = g.tensor(n.inputs[3]);
    const double B = static_cast<double>(w.shape.rows()) / static_cast<double>(std::max<int64_t>(1, s.shape.rows()));
    scales = 4.0 * static_cast<double>(s.shape.numel()) * blocks * (1.0 - std::pow(kept, tokens * B));
  }
  return (wb ? static_cast<double>(*wb) * rows_read : 0.0) + scales +
         4.0 * static_cast<double>(g.tensor(n.inputs[0]).shape.numel()) +
         4.0 * static_cast<double>(g.tensor(n.output).shape.numel());
}
}  // namespace

const OpDef kMatMulSparse = {"matmul_sparse", run, detail::sparse_flops, bytes};

}  // namespace altup::ops
