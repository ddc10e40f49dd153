// Elementwise ops: add, mul, scale, activations (SiLU, GELU tanh / erf), the gated FFN
// product (SwiGLU / GeGLU: y = act(g) * u), tanh softcap, axpy (x in f32, f16, bf16, or int8 times per-element scales).
//   silu(x)      = x / (1 + exp(-x))
//   gelu_tanh(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
//   gelu_erf(x)  = x/2 * (1 + erf(x / sqrt(2)))
//   softcap(x)   = cap * tanh(x / cap)
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

namespace ref {  // scalar references, the definition every SIMD version is tested against
void add(const float* a, const float* b, float* y, int64_t n);
void mul(const float* a, const float* b, float* y, int64_t n);
void scale(const float* x, float s, float* y, int64_t n);
void act(Act act, const float* x, float* y, int64_t n);
void glu(Act act, const float* g, const float* u, float* y, int64_t n);
void softcap(const float* x, float cap, float* y, int64_t n);
void axpy(float a, const float* x, float* y, int64_t n);
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);                                 // y += a * f32(x)
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n);                                // y += a * f32(x)
void axpy_i8s(float a, const int8_t* q, const float* s, float* y, int64_t n);                   // y += a * (s * q)
void axpy_i8so(float a, const int8_t* q, const float* s, const float* t, float* y, int64_t n);  // y += a * (s * q - t)
}  // namespace ref

// Graph ops over f32 tensors of equal shape; add and mul also take a second operand of one
// row, broadcast over the rows of the first.
extern const OpDef kAdd;  // {a, b}
extern const OpDef kMul;  // {a, b}
struct ScaleParams {
  float factor = 1.0f;
};
struct ActParams {
  Act act = Act::Silu;
};
struct SoftcapParams {
  float cap = 30.0f;
};
extern const OpDef kScale;    // {x}, ScaleParams
extern const OpDef kAct;      // {x}, ActParams
extern const OpDef kGlu;      // {g, u}, ActParams
extern const OpDef kSoftcap;  // {x}, SoftcapParams

}  // namespace altup::ops
