// Rotary position embedding, NeoX style (rotate-half): within each head of hd values, pair
// i (< hd/2) is (x[i], x[i + hd/2]), rotated by angle pos * theta^(-2i/hd). theta is per
// layer (Gemma 3n: 1e6 on full-attention layers, 1e4 on sliding ones).
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

namespace ref {
void rope_neox(float* x, const float* cos, const float* sin, int64_t hd);
// The "normal" (GPT-J) layout llama.cpp uses for its "llama" architecture: pair i is
// (x[2i], x[2i+1]). Same rotation, different pairing; scalar only for now.
void rope_normal(float* x, const float* cos, const float* sin, int64_t hd);
}  // namespace ref

// cos/sin of the hd/2 angles for one position, in f32 as Hugging Face computes them
// (inv_freq = 1 / theta^(2i/hd) in f32, angle = pos * inv_freq in f32).
void rope_angles(int64_t pos, float theta, int64_t hd, float* cos, float* sin);

// Graph op: inputs {x [T, H, hd], pos [T] (I32)}, output [T, H, hd] (may be x's own view).
// RopeParams: theta, and whether pairs are adjacent (2i, 2i+1; llama.cpp's "normal") instead
// of NeoX's rotate-half (i, i + hd/2).
struct RopeParams {
  float theta = 10000.0f;
  bool adjacent_pairs = false;
};
extern const OpDef kRope;

}  // namespace altup::ops
