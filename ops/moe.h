// Mixture-of-experts FFN with Mixtral's token-choice routing. For each token t, with router
// logits r[t] over E experts:
//   g = softmax(r[t]); keep the k largest (the lower index first among equals);
//   renormalise the kept g to sum 1;
//   y[t] = Σ_{e kept} g_e · down_e( act(gate_e x_t) ⊙ up_e x_t ).
// The experts' matrices are stacked as llama.cpp stores them, in any computable dtype:
// gate / up [E, F, d], down [E, d, F]. Only the chosen experts' matrices are read: a decode
// step reads k of E; a prefill groups the tokens by expert and runs each expert's products
// once over its tokens (matmul's kernels: the GEMV for a few tokens, tiles or oneDNN for many).
#pragma once

#include <cstdint>
#include <vector>

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

constexpr int64_t kMaxExperts = 256;

// The routing of T tokens: ids [T, k] and gates [T, k] (renormalised), from logits [T, E].
void moe_route(const float* logits, int64_t T, int64_t E, int64_t k, int32_t* ids, float* gates);

struct MoeParams {
  int64_t k = 2;  // experts used per token
  Act act = Act::Silu;
};

// x [T, d] -> y [T, d]. `table` picks a kernel table (tests run every one); null: the one in use.
Status moe_ffn(const float* x, int64_t T, const float* logits, const TensorView& gate, const TensorView& up,
               const TensorView& down, const MoeParams& p, float* y, int threads, const Kernels* table = nullptr);

namespace ref {
// Straightforward, in double: every token, every kept expert, rows decoded to f32.
void moe_ffn(const float* x, int64_t T, const float* logits, const TensorView& gate, const TensorView& up,
             const TensorView& down, const MoeParams& p, float* y);
}  // namespace ref

// Graph op: inputs {x [T, d], logits [T, E], gate [E, F, d], up [E, F, d], down [E, d, F]},
// output [T, d]; MoeParams. Its profile work counts the experts the tokens chose.
extern const OpDef kMoeFfn;

}  // namespace altup::ops
