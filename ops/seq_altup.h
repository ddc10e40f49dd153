// Sequence-AltUp (docs/sequence-altup.md): a layer of stride k runs on the anchors only, the
// positions p with p mod k == 0, and every other token is predicted and corrected from its
// anchor a = k·floor(p / k) with the layer's three scalars (α, β, γ):
//   x'_p = α x_p + β x_a + γ (y_a − (α + β) x_a) = α x_p + c_a,
//   c_a  = γ y_a + (β − γ (α + β)) x_a,                         x'_a = y_a,
// block by block over the AltUp ring [K, T, d] (K = 1: a dense model's state). c_a is kept in
// a state [K, slots, d], one row per anchor (slot p / k), so that a token finds its anchor's
// whether the anchor ran in the same call or an earlier one. A call's T rows hold
// consecutive positions; its anchors are rows first, first + k, ... (A of them), fixed when
// the graph is built (Model::build's phase) and checked against the positions when it runs.
// A non-anchor token costs 2·K·d operations in such a layer.
#pragma once

#include <cstdint>

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

constexpr int64_t kMaxSeqStride = 64;

struct SeqParams {
  int64_t stride = 1;   // k
  int64_t first = 0;    // the first anchor's row
  bool divide = false;  // kSeqPositions: the anchors' cache slots (p / k) instead of their positions
};

// The anchors of T rows whose first position is pos0: the first one's row and how many.
inline int64_t seq_first_anchor(int64_t pos0, int64_t k) { return (k - pos0 % k) % k; }
inline int64_t seq_anchor_count(int64_t T, int64_t first, int64_t k) { return T > first ? (T - first + k - 1) / k : 0; }

// ring [K, T, d] corrected in place (its anchor rows are the x_a the layer ran on); ya
// [K, A, d]: the anchors' rows after the layer (null when A = 0); coef (α, β, γ); state
// [K, slots, d]; pos [T]. `table` picks a kernel table (tests run every one); null: the one in use.
Status seq_correct(float* ring, const float* ya, const float* coef, float* state, const int32_t* pos, int K, int64_t T,
                   int64_t A, int64_t slots, int64_t d, const SeqParams& p, int threads,
                   const Kernels* table = nullptr);

namespace ref {
// The formula as written above, in double, row by row.
void seq_correct(float* ring, const float* ya, const float* coef, float* state, const int32_t* pos, int K, int64_t T,
                 int64_t A, int64_t slots, int64_t d, const SeqParams& p);
}  // namespace ref

// Graph ops, all with SeqParams:
// kSeqAnchors: inputs {ring [K, T, d]}, output [K, A, d]: rows first + j·k.
// kSeqPositions: inputs {pos [T] I32}, output [A] I32: the anchors' positions (or slots).
// kSeqCorrect: inputs {ring, coef [3], state [K, slots, d], pos [T]} and, when A > 0, ya;
//   output the ring, in place. It also writes the anchors' c rows into the state.
extern const OpDef kSeqAnchors;
extern const OpDef kSeqPositions;
extern const OpDef kSeqCorrect;

}  // namespace altup::ops
