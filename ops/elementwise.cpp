#include "ops/elementwise.h"

#include <cmath>

#include "ops/isa.h"
#include "runtime/dtype.h"
#include "ops/op_util.h"

namespace altup::ops {

namespace ref {
void add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void mul(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void scale(const float* x, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}
static float act1(Act a, float x) {
  switch (a) {
    case Act::Silu: return x / (1.0f + std::exp(-x));
    case Act::GeluTanh: return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case Act::GeluErf: return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
  }
  return x;
}
void act(Act a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act1(a, x[i]);
}
void glu(Act a, const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act1(a, g[i]) * u[i];
}
void softcap(const float* x, float cap, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = cap * std::tanh(x[i] / cap);
}
void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * bf16_to_fp32(x[i]);
}
void axpy_i8s(float a, const int8_t* q, const float* s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * (s[i] * static_cast<float>(q[i]));
}
void axpy_i8so(float a, const int8_t* q, const float* s, const float* t, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * (s[i] * static_cast<float>(q[i]) - t[i]);
}
}  // namespace ref

namespace {

// Binary ops: b is either the same shape as a or one row broadcast over a's rows.
template <void (*Kernels::*F)(const float*, const float*, float*, int64_t)>
Status run_binary(const Node& node, ExecContext& ctx) {
  const TensorView &a = ctx.input(node, 0), &b = ctx.input(node, 1), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&a, &b, &y}));
  // One row of a.cols() values (any shape: [d] or [1, d]) is broadcast; so for one token a
  // [1, d] activation times a [d] weight works like [T, d] times [d].
  const bool broadcast = b.shape != a.shape && b.numel() == a.cols() && b.cols() == a.cols();
  if ((!broadcast && b.shape != a.shape) || y.shape != a.shape)
    return make_error("shapes " + a.shape.str() + ", " + b.shape.str() + " -> " + y.shape.str() + " do not agree");
  const Kernels& k = kernels();
  const int64_t cols = a.cols();
  for_rows(a.rows(), cols, ctx.threads(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      (k.*F)(a.row<float>(r), broadcast ? b.as<float>() : b.row<float>(r), y.row<float>(r), cols);
  });
  return {};
}

template <class F>
Status run_unary(const Node& node, ExecContext& ctx, F&& f) {
  const TensorView &x = ctx.input(node, 0), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &y}));
  if (x.shape != y.shape) return make_error("shapes " + x.shape.str() + " -> " + y.shape.str() + " differ");
  const Kernels& k = kernels();
  const int64_t cols = x.cols();
  for_rows(x.rows(), cols, ctx.threads(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) f(k, x.row<float>(r), y.row<float>(r), cols);
  });
  return {};
}

Status run_scale(const Node& node, ExecContext& ctx) {
  ScaleParams p;
  ALTUP_TRY(params_of(node, &p));
  return run_unary(node, ctx,
                   [&](const Kernels& k, const float* x, float* y, int64_t c) { k.scale(x, p.factor, y, c); });
}
Status run_act(const Node& node, ExecContext& ctx) {
  ActParams p;
  ALTUP_TRY(params_of(node, &p));
  return run_unary(node, ctx, [&](const Kernels& k, const float* x, float* y, int64_t c) { k.act(p.act, x, y, c); });
}
Status run_softcap(const Node& node, ExecContext& ctx) {
  SoftcapParams p;
  ALTUP_TRY(params_of(node, &p));
  return run_unary(node, ctx,
                   [&](const Kernels& k, const float* x, float* y, int64_t c) { k.softcap(x, p.cap, y, c); });
}
Status run_glu(const Node& node, ExecContext& ctx) {
  const TensorView &g = ctx.input(node, 0), &u = ctx.input(node, 1), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&g, &u, &y}));
  if (g.shape != u.shape || g.shape != y.shape)
    return make_error("shapes " + g.shape.str() + ", " + u.shape.str() + " -> " + y.shape.str() + " differ");
  const Kernels& k = kernels();
  ActParams p;
  ALTUP_TRY(params_of(node, &p));
  const Act a = p.act;
  for_rows(g.rows(), g.cols(), ctx.threads(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) k.glu(a, g.row<float>(r), u.row<float>(r), y.row<float>(r), g.cols());
  });
  return {};
}

double out_elems(const Node& n, const Graph& g) { return static_cast<double>(g.tensor(n.output).shape.numel()); }
double bytes_io(const Node& n, const Graph& g) {
  double b = 4.0 * out_elems(n, g);
  for (TensorId t : n.inputs) b += 4.0 * static_cast<double>(g.tensor(t).shape.numel());
  return b;
}
double act_flops(const Node& n, const Graph& g) { return 10.0 * out_elems(n, g); }  // rough: exp/tanh cost

}  // namespace

const OpDef kAdd = {"add", run_binary<&Kernels::add>, out_elems, bytes_io};
const OpDef kMul = {"mul", run_binary<&Kernels::mul>, out_elems, bytes_io};
const OpDef kScale = {"scale", run_scale, out_elems, bytes_io};
const OpDef kAct = {"act", run_act, act_flops, bytes_io};
const OpDef kGlu = {"glu", run_glu, act_flops, bytes_io};
const OpDef kSoftcap = {"softcap", run_softcap, act_flops, bytes_io};

}  // namespace altup::ops
