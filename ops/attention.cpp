#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/isa.h"
#include "ops/op_util.h"
#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif

namespace altup::ops {

namespace {

// `reading`: the call reads keys (attention), so a ring must hold its whole span; a store
// only needs its own positions to land in distinct slots.
Status check(const AttentionShape& s, const int32_t* positions, int64_t T, bool reading = true) {
  if (s.n_heads <= 0 || s.n_kv_heads <= 0 || s.head_dim <= 0 || s.n_heads % s.n_kv_heads)
    return make_error("attention: " + std::to_string(s.n_heads) + " query heads cannot share " +
                      std::to_string(s.n_kv_heads) + " KV heads");
  for (int64_t t = 0; t < T; ++t)
    if (positions[t] < 0 || (!s.ring && positions[t] >= s.ctx))
      return make_error("position " + std::to_string(positions[t]) + " is outside the context of " +
                        std::to_string(s.ctx));
  if (s.ring && !reading && T > s.ctx)
    return make_error("kv_store: " + std::to_string(T) + " positions do not fit a ring of " + std::to_string(s.ctx));
  if (s.ring && reading && T > 0) {
    if (s.window <= 0 || s.window > s.ctx)
      return make_error("attention: a ring cache of " + std::to_string(s.ctx) + " slots needs a window in [1, " +
                        std::to_string(s.ctx) + "], got " + std::to_string(s.window));
    int64_t lo = positions[0], hi = positions[0];
    for (int64_t t = 1; t < T; ++t) lo = std::min<int64_t>(lo, positions[t]), hi = std::max<int64_t>(hi, positions[t]);
    const int64_t span = hi - std::max<int64_t>(0, lo - s.window + 1) + 1;
    if (span > s.ctx)
      return make_error("attention: positions " + std::to_string(lo) + ".." + std::to_string(hi) +
                        " with a window of " + std::to_string(s.window) + " need " + std::to_string(span) +
                        " keys; the ring holds " + std::to_string(s.ctx));
  }
  return {};
}

// First key a query at `pos` may see.
int64_t first_key(const AttentionShape& s, int64_t pos) {
  return s.window > 0 && pos - s.window + 1 > 0 ? pos - s.window + 1 : 0;
}

// The cache row of the key at position j.
int64_t slot(const AttentionShape& s, int64_t j) { return s.ring ? j % s.ctx : j; }

#if defined(ALTUP_HAVE_ONEDNN)
// Prefill: many queries meet the same keys, so per KV head the scores S = Q·Kᵀ and the output
// O = P·V are two batched matrix products (batch = the group's query heads), read from and
// written to q, the caches and out in place through strides. Between them, each score row is
// scaled and soft-maxed over the keys its query may see (causal, window) and zeroed elsewhere.
// Queries go in blocks so that S stays within kScoreFloats whatever the context length; a
// block's keys span from its first visible key to its last query's position.
Status attention_gemm(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                      const int32_t* positions, int64_t T, float* out, int threads, const Kernels& k, int64_t block) {
  constexpr int64_t kScoreFloats = int64_t{1} << 22;  // 16 MiB of scores at most
  const int64_t H = s.n_heads, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  int64_t span = 1;
  for (int64_t t = 0; t < T; ++t) span = std::max<int64_t>(span, positions[t] + 1);
  if (block <= 0) block = std::min(T, std::max<int64_t>(16, kScoreFloats / (group * span)));
  thread_local std::vector<float> scores;
  for (int64_t t0 = 0; t0 < T; t0 += block) {
    const int64_t tb = std::min(block, T - t0);
    int64_t kmin = INT64_MAX, kmax = 0;  // positions (a ring's may pass ctx)
    for (int64_t t = t0; t < t0 + tb; ++t) {
      kmin = std::min(kmin, first_key(s, positions[t]));
      kmax = std::max<int64_t>(kmax, positions[t]);
    }
    const int64_t nk = kmax - kmin + 1;
    scores.resize(static_cast<size_t>(group * tb * nk));
    float* S = scores.data();  // [group, tb, nk]
    for (int64_t g = 0; g < s.n_kv_heads; ++g) {
      const float* qg = q + (t0 * H + g * group) * hd;              // [group, tb, hd], strides hd, H*hd, 1
      const float* kg = kcache + (g * s.ctx + slot(s, kmin)) * hd;  // Kᵀ [hd, nk]: strides 1, hd
      const float* vg = vcache + (g * s.ctx + slot(s, kmin)) * hd;  // V [nk, hd]
      if (s.ring && slot(s, kmin) + nk > s.ctx) {  // the keys wrap around the ring: lay them out in order
        thread_local std::vector<float> kv_store_buf;
        kv_store_buf.resize(static_cast<size_t>(2 * nk * hd));
        float* kd = kv_store_buf.data();
        float* vd = kd + nk * hd;
        const int64_t first = s.ctx - slot(s, kmin);  // keys before the wrap
        const float* kb = kcache + g * s.ctx * hd;
        const float* vb = vcache + g * s.ctx * hd;
        std::copy_n(kb + slot(s, kmin) * hd, first * hd, kd);
        std::copy_n(kb, (nk - first) * hd, kd + first * hd);
        std::copy_n(vb + slot(s, kmin) * hd, first * hd, vd);
        std::copy_n(vb, (nk - first) * hd, vd + first * hd);
        kg = kd, vg = vd;
      }
      ALTUP_TRY(
          ops::bmm_f32_dnnl(group, tb, nk, hd, {qg, hd, H * hd, 1}, {kg, 0, 1, hd}, true, S, tb * nk, nk, 1, threads));
      parallel_for(group * tb, group * tb * nk >= kMinParallelElems ? threads : 1, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t pos = positions[t0 + r % tb];
          const int64_t a = first_key(s, pos) - kmin, b = pos - kmin + 1;  // visible: [a, b)
          float* row = S + r * nk;
          std::fill(row, row + a, 0.0f);
          k.scale(row + a, s.scale, row + a, b - a);
          k.softmax(row + a, row + a, b - a);
          std::fill(row + b, row + nk, 0.0f);
        }
      });
      ALTUP_TRY(ops::bmm_f32_dnnl(group, tb, hd, nk, {S, tb * nk, nk, 1}, {vg, 0, hd, 1}, true,
                                  out + (t0 * H + g * group) * hd, hd, H * hd, 1, threads));
    }
  }
  return {};
}
#endif

}  // namespace

Status attention(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                 const int32_t* positions, int64_t T, float* out, int threads, const Kernels* table) {
  return attention(s, q, kcache, vcache, positions, T, out, threads, table, AttentionPath::automatic);
}

Status attention(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                 const int32_t* positions, int64_t T, float* out, int threads, const Kernels* table, AttentionPath path,
                 int64_t block) {
  ALTUP_TRY(check(s, positions, T));
  if (T == 0) return {};
  const Kernels& k = table ? *table : kernels();
#if defined(ALTUP_HAVE_ONEDNN)
  if (path == AttentionPath::gemm || (path == AttentionPath::automatic && T >= kMinGemmQueries))
    return attention_gemm(s, q, kcache, vcache, positions, T, out, threads, k, block);
#else
  (void)block;
  if (path == AttentionPath::gemm) return make_error("attention: the GEMM path needs oneDNN (built without it)");
#endif
  const int64_t H = s.n_heads, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  // One work item per (query, head); each writes its own output row.
  const int64_t items = T * H;
  const int64_t work = items * (positions[T - 1] + 1) * hd;
  parallel_for(items, work >= kMinParallelElems ? threads : 1, [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(s.ctx));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item / H, h = item % H, kvh = h / group;
      const int64_t pos = positions[t], lo = first_key(s, pos);
      const float* qv = q + item * hd;
      const float* kbase = kcache + kvh * s.ctx * hd;
      const float* vbase = vcache + kvh * s.ctx * hd;
      float* sc = scores.data();
      for (int64_t j = lo; j <= pos; ++j) sc[j - lo] = k.dot(qv, kbase + slot(s, j) * hd, hd) * s.scale;
      k.softmax(sc, sc, pos - lo + 1);
      float* o = out + item * hd;
      std::memset(o, 0, static_cast<size_t>(hd) * sizeof(float));
      for (int64_t j = lo; j <= pos; ++j) k.axpy(sc[j - lo], vbase + slot(s, j) * hd, o, hd);
    }
  });
  return {};
}

Status kv_store(const AttentionShape& s, const float* kv, const int32_t* positions, int64_t T, float* cache) {
  ALTUP_TRY(check(s, positions, T, /*reading=*/false));
  const int64_t hd = s.head_dim;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < s.n_kv_heads; ++h)
      std::memcpy(cache + (h * s.ctx + slot(s, positions[t])) * hd, kv + (t * s.n_kv_heads + h) * hd,
                  static_cast<size_t>(hd) * sizeof(float));
  return {};
}

void ref::attention(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                    const int32_t* positions, int64_t T, float* out) {
  const int64_t H = s.n_heads, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  std::vector<double> p(static_cast<size_t>(s.ctx));
  auto row = [&](int64_t j) { return s.ring ? j % s.ctx : j; };  // the key at position j
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t pos = positions[t], lo = first_key(s, pos), kvh = h / group;
      const float* qv = q + (t * H + h) * hd;
      double m = -INFINITY, z = 0;
      for (int64_t j = lo; j <= pos; ++j) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += static_cast<double>(qv[i]) * kcache[(kvh * s.ctx + row(j)) * hd + i];
        p[j - lo] = d * s.scale;
        m = std::max(m, p[j - lo]);
      }
      for (int64_t j = lo; j <= pos; ++j) z += (p[j - lo] = std::exp(p[j - lo] - m));
      for (int64_t i = 0; i < hd; ++i) {
        double acc = 0;
        for (int64_t j = lo; j <= pos; ++j) acc += p[j - lo] / z * vcache[(kvh * s.ctx + row(j)) * hd + i];
        out[(t * H + h) * hd + i] = static_cast<float>(acc);
      }
    }
}

namespace {

Result<AttentionShape> shape_of(const TensorView& q, const TensorView& cache, const TensorView& pos) {
  if (q.shape.ndim != 3 || cache.shape.ndim != 3 || q.shape[2] != cache.shape[2])
    return make_error("attention wants q [T, H, hd] and a cache [H_kv, ctx, hd], got " + q.shape.str() + " and " +
                      cache.shape.str());
  if (pos.dtype != DType::I32 || pos.numel() != q.shape[0])
    return make_error("positions must be I32 [" + std::to_string(q.shape[0]) + "]");
  AttentionShape s;
  s.n_heads = q.shape[1];
  s.n_kv_heads = cache.shape[0];
  s.ctx = cache.shape[1];
  s.head_dim = q.shape[2];
  return s;
}

Status run_attention(const Node& node, ExecContext& ctx) {
  const TensorView &q = ctx.input(node, 0), &kc = ctx.input(node, 1), &vc = ctx.input(node, 2),
                   &pos = ctx.input(node, 3), &y = ctx.output(node);
  ALTUP_TRY(expect_f32({&q, &kc, &vc, &y}));
  auto s = shape_of(q, kc, pos);
  if (!s) return s.error();
  if (vc.shape != kc.shape || y.shape != q.shape) return make_error("attention: V cache or output shape mismatch");
  AttentionParams p;
  ALTUP_TRY(params_of(node, &p));
  s->scale = p.scale;
  s->window = p.window;
  s->ring = p.ring;
  return attention(*s, q.as<float>(), kc.as<float>(), vc.as<float>(), pos.as<int32_t>(), q.shape[0], y.as<float>(),
                   ctx.threads());
}

Status run_kv_store(const Node& node, ExecContext& ctx) {
  const TensorView &kv = ctx.input(node, 0), &pos = ctx.input(node, 1), &cache = ctx.output(node);
  ALTUP_TRY(expect_f32({&kv, &cache}));
  auto s = shape_of(kv, cache, pos);
  if (!s) return s.error();
  if (kv.shape[1] != cache.shape[0]) return make_error("kv_store: head counts differ");
  KvStoreParams p;  // optional: a node without parameters writes a plain cache
  if (!node.params.empty()) ALTUP_TRY(params_of(node, &p));
  s->ring = p.ring;
  return kv_store(*s, kv.as<float>(), pos.as<int32_t>(), kv.shape[0], cache.as<float>());
}

}  // namespace

const OpDef kAttention = {"attention", run_attention, nullptr, nullptr};
const OpDef kKvStore = {"kv_store", run_kv_store, nullptr, nullptr};

}  // namespace altup::ops
