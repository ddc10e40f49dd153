// The per-layer spec: what one layer of a decoder is, as data. An architecture fills it once
// when it reads the hyper-parameters (checked there, DecoderSpec::check), and everything else
// reads it: the weight rows bound (by each layer's index in the file), the KV cache layout
// (which layers own a cache, which are rings), the graph the decoder skeleton builds
// (models/decoder.h) and `altup info`. A layer list need not be 0..L-1: a sub-model is a
// list of kept layers with their own widths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace altup {

enum class AttentionKind {
  own_cache,     // computes K / V and stores them in its own cache
  shared_cache,  // computes q only and reads the cache of layer kv_source (Gemma 3n's last layers)
};

enum class FfnKind {
  gated,         // down(act(gate x) ⊙ up x)
  sparse_gated,  // the same with Gaussian top-k on the gate (sparsity > 0)
  moe,           // a mixture of `experts` gated FFNs, `experts_used` of them per token (ops/moe.h)
};

struct LayerSpec {
  int64_t weights = 0;  // the layer's tensors in the file: blk.<weights>.*
  int stack = 0;        // the stack or section the layer belongs to; layers of different stacks may share weights
  AttentionKind attention = AttentionKind::own_cache;
  int kv_source = -1;          // shared_cache: the index (in the spec) of the layer whose cache it reads
  int64_t window = 0;          // sliding window; 0: full causal attention
  float rope_base = 10000.0f;  // RoPE theta
  FfnKind ffn_kind = FfnKind::gated;
  int64_t ffn = 0;                        // FFN width: the hidden units this layer uses
  int64_t ffn_in_file = 0;                // the width the file stores; a MatFormer sub-model uses a prefix, ffn <= it
  float sparsity = 0.0f;                  // sparse_gated: the fraction of the gate Gaussian top-k zeroes
  int64_t experts = 0, experts_used = 0;  // moe: E experts of width ffn, k of them per token
  // Cross-attention (StagFormer): after its self-attention the layer attends over the previous
  // stack's outputs at strictly earlier positions, the last cross_window of them (0: all),
  // from a cache of its own (K / V of those outputs, by position).
  bool cross = false;
  int64_t cross_window = 0;
  // Sequence-AltUp (ops/seq_altup.h): the layer runs on every seq_stride-th position only
  // (attention among those anchors, whose cache holds them alone, slot p / stride); the
  // other tokens are predicted and corrected from their anchor. 1: every token.
  int64_t seq_stride = 1;
};

struct DecoderSpec {
  std::vector<LayerSpec> layers;  // in the order they run
  int64_t file_layers = 0;        // blk.N.* layers the file holds (every weights index is below it)

  int64_t size() const { return static_cast<int64_t>(layers.size()); }
  const LayerSpec& operator[](int64_t i) const { return layers[static_cast<size_t>(i)]; }
  // The layer whose cache layer i's attention reads: itself, or its kv_source.
  int64_t cache_owner(int64_t i) const {
    const LayerSpec& s = (*this)[i];
    return s.attention == AttentionKind::shared_cache ? s.kv_source : i;
  }
  // The last layer that stores K / V: no later layer needs rows of other tokens than its own.
  int64_t last_cache_writer() const;
  // The graph of T tokens depends on the first position modulo this: the least common multiple
  // of the Sequence-AltUp strides (1 without them).
  int64_t period() const;
  // Every field in range and consistent with the others (a shared layer reads an earlier
  // own-cache layer of the same window, weights indices distinct and in the file, ...).
  Status check() const;
};

}  // namespace altup
