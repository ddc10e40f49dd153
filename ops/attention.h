// Attention over a KV cache: out = softmax(q·Kᵀ·scale + mask)·V per head, causal, with GQA
// (query head h reads KV head h / (H / H_kv)) and an optional sliding window (a query at
// position p sees keys at positions k with k <= p and p - k < window).
//
// Cache layout, per layer: K and V each [H_kv, ctx, hd]. Decode reads, for one query head,
// a contiguous run of keys and then of values: the fastest order for one token at a time.
// A sliding-window layer may keep a ring instead: ctx slots with position p in slot p % ctx,
// enough for the window plus one call's tokens, so its memory does not grow with the context.
// Prefill with many queries takes a tiled path (see AttentionPath).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

struct AttentionShape {
  int64_t n_heads = 0;     // H
  int64_t n_kv_heads = 0;  // H_kv, divides H
  int64_t head_dim = 0;    // hd
  int64_t ctx = 0;         // positions the cache holds
  float scale = 1.0f;      // e.g. 1/sqrt(hd); Gemma 3n uses 1
  int64_t window = 0;      // sliding window; 0 = none
  // The cache is a ring of ctx slots (position p in slot p % ctx). Needs a window, and each
  // call's keys (from its first query's window start to its last position) must fit in it.
  bool ring = false;
};

// q, out: [T, H, hd]; positions: [T] (the cache holds every key up to each position).
// `table` picks a kernel table (tests run every one); null means the one in use.
Status attention(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                 const int32_t* positions, int64_t T, float* out, int threads, const Kernels* table = nullptr);

// Two ways to compute it, both on every SIMD table. "rows": per query and head, dot products
// with each visible key, softmax, then a sum of value rows (the decode path). "tiles": per KV
// head, blocks of query rows against blocks of keys as small matrix products of our own
// (ops/gemm_tile.h): prefill, with nothing made per prompt length. automatic picks tiles
// from kMinTileQueries queries on.
enum class AttentionPath { automatic, rows, tiles };
constexpr int64_t kMinTileQueries = 32;

// As above, with the path chosen; block > 0 sets the tiled path's rows per block and keys
// per block (rounded up to 16): tests use it to cross block boundaries; 0 picks 128 and 128.
Status attention(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
                 const int32_t* positions, int64_t T, float* out, int threads, const Kernels* table, AttentionPath path,
                 int64_t block = 0);

// Bytes of tiled-path scratch the calling thread keeps between calls (its packed queries
// and Kᵀ). A call that needed more than 8 MiB of either hands it back when it ends.
size_t attention_scratch_bytes();

// Copy new keys or values [T, H_kv, hd] into a cache [H_kv, ctx, hd] at their positions.
Status kv_store(const AttentionShape& s, const float* kv, const int32_t* positions, int64_t T, float* cache);

namespace ref {
// Straightforward scalar version of attention(), one query and head at a time.
void attention(const AttentionShape& s, const float* q, const float* kcache, const float* vcache,
               const int32_t* positions, int64_t T, float* out);
}  // namespace ref

// Graph ops. kAttention: inputs {q [T, H, hd], kcache (state), vcache (state), pos [T] I32},
// output [T, H, hd]; AttentionParams.
// kKvStore: inputs {kv [T, H_kv, hd], pos [T] I32}, output: the cache (a state tensor);
// optional KvStoreParams.
struct AttentionParams {
  float scale = 1.0f;
  int64_t window = 0;  // sliding window; 0: full causal attention
  bool ring = false;   // the caches are rings (AttentionShape::ring)
  // A query at position p attends as one at p - lag: keys at positions <= p - lag, the window
  // counted from there. A query left with no key (p < lag) gives 0. StagFormer's
  // cross-attention (lag 1) reads the previous stack's outputs at strictly earlier positions.
  int64_t lag = 0;
};
struct KvStoreParams {
  bool ring = false;  // optional; the cache is a ring
};
extern const OpDef kAttention;
extern const OpDef kKvStore;

}  // namespace altup::ops
