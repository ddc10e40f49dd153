#include "ops/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/elementwise.h"
#include "ops/isa.h"
#include "ops/matmul.h"
#include "ops/op_util.h"

namespace altup::ops {

void moe_route(const float* logits, int64_t T, int64_t E, int64_t k, int32_t* ids, float* gates) {
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const float* r = logits + t * E;
    // softmax(r) keeps r's order, so the top k of r are the top k of the softmax; the gates are
    // exp(r_e - max) over the kept ones' sum (the full softmax's denominator cancels).
    for (int64_t e = 0; e < E; ++e) order[static_cast<size_t>(e)] = static_cast<int32_t>(e);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return r[a] > r[b] || (r[a] == r[b] && a < b); });
    const float top = r[order[0]];
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(r[order[static_cast<size_t>(j)]]) - top);
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = order[static_cast<size_t>(j)];
      ids[t * k + j] = e;
      gates[t * k + j] = static_cast<float>(std::exp(static_cast<double>(r[e]) - top) / sum);
    }
  }
}

namespace {

// Expert e of a stacked [E, rows, cols] weight, as a [rows, cols] matrix.
TensorView expert(const TensorView& w, int64_t e) {
  const Shape s{w.shape[1], w.shape[2]};
  const uint64_t bytes = *row_bytes(w.dtype, static_cast<uint64_t>(s[1])) * static_cast<uint64_t>(s[0]);
  return TensorView::contiguous(w.dtype, s, static_cast<uint8_t*>(w.data) + bytes * static_cast<uint64_t>(e));
}

Status check_shapes(int64_t d, const TensorView& gate, const TensorView& up, const TensorView& down, int64_t k) {
  if (gate.shape.ndim != 3 || up.shape != gate.shape || down.shape.ndim != 3 || down.shape[0] != gate.shape[0] ||
      down.shape[1] != d || down.shape[2] != gate.shape[1] || gate.shape[2] != d)
    return make_error("moe: expert shapes gate " + gate.shape.str() + ", up " + up.shape.str() + ", down " +
                      down.shape.str() + " do not fit a width of " + std::to_string(d));
  if (k < 1 || k > gate.shape[0] || gate.shape[0] > kMaxExperts)
    return make_error("moe: " + std::to_string(k) + " experts used of " + std::to_string(gate.shape[0]));
  return {};
}

}  // namespace

Status moe_ffn(const float* x, int64_t T, const float* logits, const TensorView& gate, const TensorView& up,
               const TensorView& down, const MoeParams& p, float* y, int threads, const Kernels* table) {
  const int64_t d = gate.shape.ndim == 3 ? gate.shape[2] : 0, E = gate.shape[0], F = gate.shape[1], k = p.k;
  ALTUP_TRY(check_shapes(d, gate, up, down, k));
  const Kernels& kt = table ? *table : kernels();
  std::vector<int32_t> ids(static_cast<size_t>(T * k));
  std::vector<float> gates(static_cast<size_t>(T * k));
  moe_route(logits, T, E, k, ids.data(), gates.data());
  std::fill(y, y + T * d, 0.0f);
  // The tokens of each expert, in token order (a token takes an expert at most once).
  std::vector<std::vector<int64_t>> slots(static_cast<size_t>(E));  // index into ids / gates
  for (int64_t i = 0; i < T * k; ++i) slots[static_cast<size_t>(ids[static_cast<size_t>(i)])].push_back(i);
  std::vector<float> xs, g, u, out;
  for (int64_t e = 0; e < E; ++e) {
    const auto& s = slots[static_cast<size_t>(e)];
    if (s.empty()) continue;  // never read
    const int64_t n = static_cast<int64_t>(s.size());
    xs.resize(static_cast<size_t>(n * d));
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(&xs[static_cast<size_t>(j * d)], x + (s[static_cast<size_t>(j)] / k) * d,
                  static_cast<size_t>(d) * sizeof(float));
    g.resize(static_cast<size_t>(n * F));
    u.resize(static_cast<size_t>(n * F));
    out.resize(static_cast<size_t>(n * d));
    const MatmulPath path = MatmulPath::automatic;
    ALTUP_TRY(matmul(xs.data(), n, expert(gate, e), g.data(), threads, path, table));
    ALTUP_TRY(matmul(xs.data(), n, expert(up, e), u.data(), threads, path, table));
    kt.glu(p.act, g.data(), u.data(), g.data(), n * F);
    ALTUP_TRY(matmul(g.data(), n, expert(down, e), out.data(), threads, path, table));
    for (int64_t j = 0; j < n; ++j) {
      const int64_t slot = s[static_cast<size_t>(j)];
      kt.axpy(gates[static_cast<size_t>(slot)], &out[static_cast<size_t>(j * d)], y + (slot / k) * d, d);
    }
  }
  return {};
}

void ref::moe_ffn(const float* x, int64_t T, const float* logits, const TensorView& gate, const TensorView& up,
                  const TensorView& down, const MoeParams& p, float* y) {
  const int64_t d = gate.shape[2], E = gate.shape[0], F = gate.shape[1], k = p.k;
  std::vector<int32_t> ids(static_cast<size_t>(T * k));
  std::vector<float> gates(static_cast<size_t>(T * k)), g(static_cast<size_t>(F)), u(static_cast<size_t>(F)),
      o(static_cast<size_t>(d));
  moe_route(logits, T, E, k, ids.data(), gates.data());
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[static_cast<size_t>(t * k + j)];
      ref::gemv(expert(gate, e), x + t * d, g.data());
      ref::gemv(expert(up, e), x + t * d, u.data());
      ref::glu(p.act, g.data(), u.data(), g.data(), F);
      ref::gemv(expert(down, e), g.data(), o.data());
      for (int64_t i = 0; i < d; ++i)
        acc[static_cast<size_t>(i)] += gates[static_cast<size_t>(t * k + j)] * o[static_cast<size_t>(i)];
    }
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = static_cast<float>(acc[static_cast<size_t>(i)]);
  }
}

namespace {

Status run(const Node& node, ExecContext& ctx) {
  const TensorView &x = ctx.input(node, 0), &logits = ctx.input(node, 1), &gate = ctx.input(node, 2),
                   &up = ctx.input(node, 3), &down = ctx.input(node, 4), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&x, &logits, &y}));
  MoeParams p;
  ALTUP_TRY(params_of(node, &p));
  if (y.shape != x.shape || logits.rows() != x.rows() || logits.cols() != gate.shape[0])
    return make_error("moe: x " + x.shape.str() + ", router logits " + logits.shape.str() + ", y " + y.shape.str() +
                      " do not agree");
  return moe_ffn(x.as<float>(), x.rows(), logits.as<float>(), gate, up, down, p, y.as<float>(), ctx.threads());
}

// The experts the tokens chose (each read once however many tokens chose it), and 6·F·d
// operations per token and kept expert.
void work(const Node& node, const ExecContext& ctx, double* flops, double* bytes) {
  const TensorView &x = ctx.input(node, 0), &logits = ctx.input(node, 1), &gate = ctx.input(node, 2),
                   &down = ctx.input(node, 4);
  MoeParams p;
  if (!node.params.get(&p) || gate.shape.ndim != 3 || !logits.data || p.k < 1 || p.k > gate.shape[0]) return;
  const int64_t T = x.rows(), E = gate.shape[0], F = gate.shape[1], d = gate.shape[2];
  std::vector<int32_t> ids(static_cast<size_t>(T * p.k));
  std::vector<float> gates(ids.size());
  moe_route(logits.as<float>(), T, E, p.k, ids.data(), gates.data());
  std::vector<bool> used(static_cast<size_t>(E), false);
  for (int32_t e : ids) used[static_cast<size_t>(e)] = true;
  const double chosen = static_cast<double>(std::count(used.begin(), used.end(), true));
  const auto gb = tensor_bytes(gate.dtype, gate.shape), db = tensor_bytes(down.dtype, down.shape);
  *flops = static_cast<double>(T * p.k) * 6.0 * static_cast<double>(F * d);
  *bytes =
      (gb && db ? (2.0 * static_cast<double>(*gb) + static_cast<double>(*db)) * chosen / static_cast<double>(E) : 0.0) +
      8.0 * static_cast<double>(x.numel());
}

}  // namespace

const OpDef kMoeFfn = {"moe_ffn", run, nullptr, nullptr, work};

}  // namespace altup::ops
