#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/isa.h"
#include "ops/op_util.h"

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

// The tiled path's scratch, kept per thread between calls so that prefill chunks reuse it:
// the calling thread's packed queries and Kᵀ, each worker's scores and outputs. Kᵀ grows
// with the keys (hd x keys: 32 MiB at 32k keys of 256), so a buffer past kKeepScratchBytes
// is handed back after the call instead of staying resident for the rest of the process;
// allocating it again costs page faults, little next to a product over that many keys.
constexpr size_t kKeepScratchBytes = size_t{8} << 20;
thread_local std::vector<float> t_qp, t_kt;

void trim(std::vector<float>& v) {
  if (v.capacity() * sizeof(float) > kKeepScratchBytes) std::vector<float>().swap(v);
}

// Prefill on our own tiles. Many queries meet the same keys, so per KV head:
//   Qp [T·group, hd]  the group's query rows, scaled, as rows (token · group + head);
//   Kᵀ [hd, nkp]      every key any of them sees (kmin..kmax), transposed once, zero-padded
//                     to nkp (a multiple of kPad), stored key block by key block.
// Rows go kRows at a time: a row block computes its scores S = Qp·Kᵀ over only the keys its
// rows can see (causal and window masks skip work rather than zero it), soft-maxes each row
// over its visible keys, and adds P·V with the value rows read straight from the cache, both
// products a key block at a time (a block's keys stay in L2 while the rows pass over them)
// with the table's gemm_tile. No oneDNN primitive is made, whatever T and the KV length,
// and a thread's scores take kRows rows at most. Row blocks go to threads round-robin:
// later queries see more keys, so contiguous ranges would load the last thread most.
// block > 0 (tests) sets kRows to it and kKeys to it rounded up to kPad.
Status attention_tiles(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                       const int32_t* positions, int64_t T, float* out, int threads, const Kernels& k, int64_t block) {
  constexpr int64_t kPad = 16;
  const int64_t H = s.n_heads, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  int64_t kmin = INT64_MAX, kmax = 0;  // positions (a ring's may pass ctx)
  for (int64_t t = 0; t < T; ++t) {
    kmin = std::min(kmin, first_key(s, positions[t]));
    kmax = std::max<int64_t>(kmax, positions[t]);
  }
  const int64_t nk = kmax - kmin + 1, nkp = (nk + kPad - 1) / kPad * kPad, rows = T * group;
  // Score rows an odd number of cache lines apart: rows a multiple of 4 KiB apart would all
  // fall into one cache set, and a block's rows would evict each other.
  const int64_t lds = nkp / kPad % 2 ? nkp : nkp + kPad;
  // 128 x 128 measured fastest of rows {32, 64, 128, 256} x keys {64, 128, 256} (E2B heads).
  // Past 8,192 keys, fewer rows, so that a thread's scores stay within 4 MiB.
  const int64_t kRows = block > 0 ? block : std::clamp<int64_t>((int64_t{1} << 20) / lds / 4 * 4, 16, 128);
  const int64_t kKeys = block > 0 ? (block + kPad - 1) / kPad * kPad : 128;
  const int64_t blocks = (rows + kRows - 1) / kRows;
  t_qp.resize(static_cast<size_t>(rows * hd));  // the calling thread's; workers only read them
  t_kt.resize(static_cast<size_t>(hd * nkp));
  float* qp = t_qp.data();  // [rows, hd]
  // Kᵀ, block by block: key block b is [hd, width(b)] at kt + b * hd * kKeys, so a block's
  // strips lie within a few pages (a [hd, nk] layout would put every row of a strip on its
  // own page) and stay in L2 while a row block passes over them.
  float* kt = t_kt.data();
  auto key_block = [&](int64_t j) { return kt + j / kKeys * hd * kKeys; };  // holds column j
  auto width = [&](int64_t j) { return std::min(kKeys, nkp - j / kKeys * kKeys); };
  // Visible keys of row r, as columns of Kᵀ: [a, b).
  auto visible = [&](int64_t r, int64_t* a, int64_t* b) {
    const int64_t pos = positions[r / group];
    *a = first_key(s, pos) - kmin, *b = pos - kmin + 1;
  };
  const int pt = threads_for(rows * nk * hd, threads);
  const int nt = static_cast<int>(std::min<int64_t>(pt, blocks));
  for (int64_t g = 0; g < s.n_kv_heads; ++g) {
    const float* kg = kcache + g * s.ctx * hd;
    const float* vg = vcache + g * s.ctx * hd;
    parallel_for(T, pt, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) k.scale(q + (t * H + g * group) * hd, s.scale, qp + t * group * hd, group * hd);
    });
    // Transpose kPad keys at a time, one Kᵀ row segment (a cache line) after another while the
    // kPad key rows are read in step: writing a key's column at once would touch hd lines
    // 4 * kKeys bytes apart, which share a few cache sets and evict each other.
    parallel_for(nkp / kPad, pt, [&](int64_t b0, int64_t b1) {
      static const float zeros[1] = {0.0f};
      const float* key[kPad];
      int64_t step[kPad];  // 0 for a padding column: it reads the zero over and over
      for (int64_t j0 = b0 * kPad; j0 < b1 * kPad; j0 += kPad) {
        for (int64_t c = 0; c < kPad; ++c) {
          const bool real = j0 + c < nk;
          key[c] = real ? kg + slot(s, kmin + j0 + c) * hd : zeros;
          step[c] = real ? 1 : 0;
        }
        float* dst = key_block(j0) + j0 % kKeys;
        const int64_t ld = width(j0);
        for (int64_t i = 0; i < hd; ++i)
          for (int64_t c = 0; c < kPad; ++c) dst[i * ld + c] = key[c][i * step[c]];
      }
    });
    parallel_for(nt, nt, [&](int64_t w0, int64_t w1) {
      thread_local std::vector<float> sbuf, obuf;
      sbuf.resize(static_cast<size_t>(kRows * lds));
      obuf.resize(static_cast<size_t>(kRows * hd));
      float* S = sbuf.data();  // [kRows, lds]
      float* O = obuf.data();  // [kRows, hd]
      for (int64_t w = w0; w < w1; ++w)
        for (int64_t blk = w; blk < blocks; blk += nt) {
          const int64_t r0 = blk * kRows, m = std::min(kRows, rows - r0);
          int64_t lo = nk, hi = 0;  // the keys any row of the block sees
          for (int64_t r = r0; r < r0 + m; ++r) {
            int64_t a, b;
            visible(r, &a, &b);
            lo = std::min(lo, a), hi = std::max(hi, b);
          }
          lo = lo / kPad * kPad;
          const int64_t hi_pad = std::min(nkp, (hi + kPad - 1) / kPad * kPad);
          // Scores, a key block at a time.
          for (int64_t j = lo; j < hi_pad;) {
            const int64_t n = std::min(hi_pad, (j / kKeys + 1) * kKeys) - j;
            k.gemm_tile(qp + r0 * hd, hd, key_block(j) + j % kKeys, width(j), S + j, lds, m, n, hd, false);
            j += n;
          }
          for (int64_t r = 0; r < m; ++r) {
            int64_t a, b;
            visible(r0 + r, &a, &b);
            float* row = S + r * lds;
            std::fill(row + lo, row + a, 0.0f);
            k.softmax(row + a, row + a, b - a);
            std::fill(row + b, row + hi, 0.0f);
          }
          // O = P·V over keys [lo, hi), a key block at a time (a ring's run of slots may wrap).
          for (int64_t j = lo; j < hi;) {
            const int64_t first = slot(s, kmin + j), n = std::min({kKeys, hi - j, s.ctx - first});
            k.gemm_tile(S + j, lds, vg + first * hd, hd, O, hd, m, hd, n, j > lo);
            j += n;
          }
          for (int64_t r = r0; r < r0 + m; ++r) {
            const int64_t t = r / group, h = g * group + r % group;
            std::copy_n(O + (r - r0) * hd, hd, out + (t * H + h) * hd);
          }
        }
      trim(sbuf);  // past 64k keys even 16 score rows pass kKeepScratchBytes
    });
  }
  trim(t_qp);
  trim(t_kt);
  return {};
}

}  // namespace

size_t attention_scratch_bytes() { return (t_qp.capacity() + t_kt.capacity()) * sizeof(float); }

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
  if (path == AttentionPath::tiles || (path == AttentionPath::automatic && T >= kMinTileQueries))
    return attention_tiles(s, q, kcache, vcache, positions, T, out, threads, k, block);
  const int64_t H = s.n_heads, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  // One work item per (query, head); each writes its own output row.
  const int64_t items = T * H;
  const int64_t work = items * (positions[T - 1] + 1) * hd;
  parallel_for(items, threads_for(work, threads), [&](int64_t i0, int64_t i1) {
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
  const int64_t T = q.shape[0];
  if (p.lag == 0)
    return attention(*s, q.as<float>(), kc.as<float>(), vc.as<float>(), pos.as<int32_t>(), T, y.as<float>(),
                     ctx.threads());
  // Lagged: the queries that see no key (the first ones, positions increase) give 0; the rest
  // attend at their lagged positions.
  if (p.lag < 0) return make_error("attention: a negative lag");
  std::vector<int32_t> lagged(static_cast<size_t>(T));
  int64_t none = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t at = static_cast<int64_t>(pos.as<int32_t>()[t]) - p.lag;
    if (t > 0 && pos.as<int32_t>()[t] <= pos.as<int32_t>()[t - 1])
      return make_error("attention: a lagged attention's positions must increase");
    lagged[static_cast<size_t>(t)] = static_cast<int32_t>(std::max<int64_t>(at, -1));
    none += at < 0;
  }
  const int64_t row = q.shape[1] * q.shape[2];
  std::fill(y.as<float>(), y.as<float>() + none * row, 0.0f);
  if (none == T) return {};
  return attention(*s, q.as<float>() + none * row, kc.as<float>(), vc.as<float>(), lagged.data() + none, T - none,
                   y.as<float>() + none * row, ctx.threads());
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

// Per query row, the keys it sees: q·k and p·v take 2·hd each per key and head; the K and V
// rows of its KV head are read once per head group (the row path's reads; the tiled path
// shares them between rows, so this is an upper bound there).
void attention_work(const Node& node, const ExecContext& ctx, double* flops, double* bytes) {
  const TensorView &q = ctx.input(node, 0), &kc = ctx.input(node, 1), &pos = ctx.input(node, 3);
  AttentionParams p;
  if (q.shape.ndim != 3 || kc.shape.ndim != 3 || pos.dtype != DType::I32 || !node.params.get(&p) || !pos.data) return;
  const int64_t T = q.shape[0], H = q.shape[1], hd = q.shape[2], Hkv = kc.shape[0];
  double keys = 0;
  for (int64_t t = 0; t < T && t < pos.numel(); ++t) {
    const int64_t seen = std::max<int64_t>(0, static_cast<int64_t>(pos.as<int32_t>()[t]) - p.lag + 1);
    keys += static_cast<double>(p.window > 0 ? std::min<int64_t>(seen, p.window) : seen);
  }
  *flops = keys * static_cast<double>(H * hd * 4);
  *bytes = keys * static_cast<double>(Hkv * hd * 2 * 4) + static_cast<double>(2 * q.numel() * 4);
}

// Reads the new rows and writes them into the cache.
double kv_store_bytes(const Node& node, const Graph& g) {
  return 2.0 * 4.0 * static_cast<double>(g.tensor(node.inputs[0]).shape.numel());
}

}  // namespace

const OpDef kAttention = {"attention", run_attention, nullptr, nullptr, attention_work};
const OpDef kKvStore = {"kv_store", run_kv_store, nullptr, kv_store_bytes};

}  // namespace altup::ops
