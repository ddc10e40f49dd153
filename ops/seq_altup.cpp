#include "ops/seq_altup.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "ops/isa.h"
#include "ops/op_util.h"

namespace altup::ops {

namespace {

// The rows, anchors and slots agree with each other: the graph was built for these positions.
Status check(const int32_t* pos, int64_t T, int64_t A, int64_t slots, const SeqParams& p) {
  const int64_t k = p.stride;
  if (k < 1 || k > kMaxSeqStride) return make_error("Sequence-AltUp: a stride of " + std::to_string(k));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t q = pos[t];
    if (q < 0 || q / k >= slots)
      return make_error("Sequence-AltUp: position " + std::to_string(q) + " has no slot among " +
                        std::to_string(slots) + " (stride " + std::to_string(k) + ")");
    if (t > 0 && q != pos[t - 1] + 1) return make_error("Sequence-AltUp: the positions are not consecutive");
    const bool anchor_row = t >= p.first && (t - p.first) % k == 0 && (t - p.first) / k < A;
    if ((q % k == 0) != anchor_row)
      return make_error("Sequence-AltUp: the graph was built for anchors at other rows (position " + std::to_string(q) +
                        " at row " + std::to_string(t) + ", stride " + std::to_string(k) + ")");
  }
  if (A > 0 && p.first + (A - 1) * k >= T) return make_error("Sequence-AltUp: more anchors than rows");
  return {};
}

}  // namespace

Status seq_correct(float* ring, const float* ya, const float* coef, float* state, const int32_t* pos, int K, int64_t T,
                   int64_t A, int64_t slots, int64_t d, const SeqParams& p, int threads, const Kernels* table) {
  ALTUP_TRY(check(pos, T, A, slots, p));
  const Kernels& kt = table ? *table : kernels();
  const int64_t k = p.stride;
  const float alpha = coef[0], beta = coef[1], gamma = coef[2], delta = beta - gamma * (alpha + beta);
  // First every anchor's c from its row of the ring, still x_a (a later row of this call reads
  // c), then every row.
  for (int b = 0; b < K; ++b)
    for (int64_t j = 0; j < A; ++j) {
      const int64_t row = p.first + j * k;
      float* c = state + (b * slots + pos[row] / k) * d;
      kt.scale(ring + (b * T + row) * d, delta, c, d);
      kt.axpy(gamma, ya + (b * A + j) * d, c, d);
    }
  for_rows(T, K * d, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int b = 0; b < K; ++b) {
        float* x = ring + (b * T + t) * d;
        if (pos[t] % k == 0) {
          std::copy_n(ya + (b * A + (t - p.first) / k) * d, d, x);  // (copy_n: d may be 0, ya then null)
        } else {
          kt.scale(x, alpha, x, d);
          kt.add(x, state + (b * slots + pos[t] / k) * d, x, d);
        }
      }
  });
  return {};
}

void ref::seq_correct(float* ring, const float* ya, const float* coef, float* state, const int32_t* pos, int K,
                      int64_t T, int64_t A, int64_t slots, int64_t d, const SeqParams& p) {
  const double alpha = coef[0], beta = coef[1], gamma = coef[2];
  const int64_t k = p.stride;
  // The anchors' x_a (their rows of the ring) and y_a by slot: this call's, else what the
  // state's c stands for.
  for (int b = 0; b < K; ++b)
    for (int64_t j = 0; j < A; ++j)
      for (int64_t i = 0; i < d; ++i) {
        const double x = ring[(b * T + p.first + j * k) * d + i], y = ya[(b * A + j) * d + i];
        state[(b * slots + pos[p.first + j * k] / k) * d + i] =
            static_cast<float>(beta * x + gamma * (y - (alpha + beta) * x));
      }
  for (int64_t t = 0; t < T; ++t)
    for (int b = 0; b < K; ++b)
      for (int64_t i = 0; i < d; ++i) {
        float& x = ring[(b * T + t) * d + i];
        x = pos[t] % k == 0 ? ya[(b * A + (t - p.first) / k) * d + i]
                            : static_cast<float>(alpha * x + state[(b * slots + pos[t] / k) * d + i]);
      }
}

namespace {

Status run_anchors(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  SeqParams p;
  ALTUP_TRY(params_of(node, &p));
  if (x.shape.ndim != 3 || y.shape.ndim != 3 || x.shape[0] != y.shape[0] || x.shape[2] != y.shape[2] || p.stride < 1 ||
      p.first < 0 || (y.shape[1] > 0 && p.first + (y.shape[1] - 1) * p.stride >= x.shape[1]))
    return make_error("seq_anchors: " + x.shape.str() + " -> " + y.shape.str() + " with stride " +
                      std::to_string(p.stride) + " from row " + std::to_string(p.first));
  const int64_t K = x.shape[0], T = x.shape[1], A = y.shape[1], d = x.shape[2];
  for (int64_t b = 0; b < K; ++b)
    for (int64_t j = 0; j < A; ++j)
      std::memcpy(y.as<float>() + (b * A + j) * d, x.as<float>() + (b * T + p.first + j * p.stride) * d,
                  static_cast<size_t>(d) * sizeof(float));
  return {};
}

Status run_positions(const Node& node, ExecContext& ctx) {
  const TensorView &pos = ctx.input(node, 0), &out = ctx.output(node);
  SeqParams p;
  ALTUP_TRY(params_of(node, &p));
  const int64_t T = pos.numel(), A = out.numel();
  if (pos.dtype != DType::I32 || out.dtype != DType::I32 || p.stride < 1 || p.first < 0 ||
      (A > 0 && p.first + (A - 1) * p.stride >= T))
    return make_error("seq_positions: " + std::to_string(A) + " anchors of " + std::to_string(T) + " positions");
  for (int64_t j = 0; j < A; ++j) {
    const int32_t q = pos.as<int32_t>()[p.first + j * p.stride];
    if (q < 0 || q % p.stride != 0)
      return make_error("Sequence-AltUp: position " + std::to_string(q) + " is not an anchor of stride " +
                        std::to_string(p.stride) + " (the graph was built for another first position)");
    out.as<int32_t>()[j] = p.divide ? static_cast<int32_t>(q / p.stride) : q;
  }
  return {};
}

Status run_correct(const Node& node, ExecContext& ctx) {
  const TensorView &ring = ctx.input(node, 0), &coef = ctx.input(node, 1), &state = ctx.input(node, 2),
                   &pos = ctx.input(node, 3), &out = ctx.output(node);
  ALTUP_TRY(expect_f32({&ring, &coef, &state, &out}));
  SeqParams p;
  ALTUP_TRY(params_of(node, &p));
  if (ring.shape.ndim != 3 || state.shape.ndim != 3 || state.shape[0] != ring.shape[0] ||
      state.shape[2] != ring.shape[2] || coef.numel() != 3 || pos.dtype != DType::I32 || pos.numel() != ring.shape[1] ||
      out.data != ring.data)
    return make_error("seq_correct: ring " + ring.shape.str() + ", coefficients " + coef.shape.str() + ", state " +
                      state.shape.str() + ", positions " + pos.shape.str() + " do not agree (in place)");
  const int64_t K = ring.shape[0], T = ring.shape[1], d = ring.shape[2];
  const float* ya = nullptr;
  int64_t A = 0;
  if (node.inputs.size() == 5) {
    const TensorView& y = ctx.input(node, 4);
    ALTUP_TRY(expect_f32({&y}));
    if (y.shape.ndim != 3 || y.shape[0] != K || y.shape[2] != d)
      return make_error("seq_correct: anchors " + y.shape.str() + " for ring " + ring.shape.str());
    A = y.shape[1], ya = y.as<float>();
  }
  return seq_correct(out.as<float>(), ya, coef.as<float>(), state.as<float>(), pos.as<int32_t>(), static_cast<int>(K),
                     T, A, state.shape[1], d, p, ctx.threads());
}

// 2 operations per element of the ring, and 4 per anchor element for c; the ring read and
// written, the state row read per token.
void correct_work(const Node& node, const ExecContext& ctx, double* flops, double* bytes) {
  const TensorView& ring = ctx.input(node, 0);
  const double n = static_cast<double>(ring.numel());
  const double anchors = node.inputs.size() == 5 ? static_cast<double>(ctx.input(node, 4).numel()) : 0.0;
  *flops = 2.0 * n + 4.0 * anchors;
  *bytes = 12.0 * n + 12.0 * anchors;
}

}  // namespace

const OpDef kSeqAnchors = {"seq_anchors", run_anchors, nullptr, nullptr};
const OpDef kSeqPositions = {"seq_positions", run_positions, nullptr, nullptr};
const OpDef kSeqCorrect = {"seq_correct", run_correct, nullptr, nullptr, correct_work};

}  // namespace altup::ops
