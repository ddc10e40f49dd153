// Reading "<arch>.*" hyper-parameters with their ranges checked: every model's from_gguf uses
// these, so a key out of range is refused with the same one-line message everywhere
// ("key gemma3n.block_count = 0 is out of range [1, 4096]").
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ops/kernels.h"
#include "runtime/gguf.h"

namespace altup {

// Ranges every hyper-parameter is checked against (beyond them a file is refused before
// anything is allocated); generous for today's models.
constexpr int64_t kMaxWidth = 1 << 16, kMaxLayers = 4096, kMaxHeads = 1024, kMaxHeadDim = 4096;
constexpr int64_t kMaxContext = 1 << 24, kMaxVocab = 1 << 24;

// What every decoder-only transformer file states: widths, depth, heads, context, norm
// epsilon and the vocabulary (from <arch>.vocab_size or the tokenizer's token list).
struct TransformerSizes {
  int64_t vocab = 0, d = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ctx = 0;
  float eps = 1e-6f;
};

// 1 + the highest N of the file's "blk.N.*" tensors (0 without any).
int64_t layers_in_file(const GgufFile& f);
// N of a "blk.N.*" tensor name, or -1.
int64_t blk_index(std::string_view name);

class HParamReader {
 public:
  HParamReader(const GgufFile& f, std::string_view arch) : f_(f), arch_(arch) {}

  std::string key(const char* k) const { return arch_ + "." + k; }
  bool has(const char* k) const { return f_.find(key(k)) != nullptr; }

  // embedding_length, block_count, attention.head_count(_kv), key / value_length,
  // context_length, layer_norm_rms_epsilon and the vocabulary, each checked.
  Status sizes(TransformerSizes* out) const;

  // An integer key in [lo, hi].
  Status count(const char* k, int64_t lo, int64_t hi, int64_t* out) const {
    auto v = f_.get_count(key(k));
    if (!v) return v.error();
    if (*v < static_cast<uint64_t>(lo) || *v > static_cast<uint64_t>(hi))
      return make_error("key " + key(k) + " = " + std::to_string(*v) + " is out of range [" + std::to_string(lo) +
                        ", " + std::to_string(hi) + "]");
    *out = static_cast<int64_t>(*v);
    return {};
  }
  // The same, leaving *out as it is when the key is absent.
  Status optional_count(const char* k, int64_t lo, int64_t hi, int64_t* out) const {
    return has(k) ? count(k, lo, hi, out) : Status{};
  }
  // An array of one integer per layer (INT32 or UINT32), each in [lo, hi].
  Status per_layer_counts(const char* k, int64_t layers, int64_t lo, int64_t hi, std::vector<int64_t>* out) const;
  // A BOOL array of one flag per layer.
  Status per_layer_flags(const char* k, int64_t layers, std::vector<bool>* out) const;
  // "<arch>.ffn_activation": "swiglu" (SiLU) or "geglu" (tanh-approximated GELU).
  Status activation(ops::Act* out) const;
  // A bool key.
  Status flag(const char* k, bool* out) const {
    auto v = f_.get_bool(key(k));
    if (!v) return v.error();
    *out = *v;
    return {};
  }
  // A float key that must be finite and in (0, hi].
  Status positive(const char* k, double hi, float* out) const {
    auto v = f_.get_f32(key(k));
    if (!v) return v.error();
    if (!(std::isfinite(*v) && *v > 0 && *v <= hi)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", static_cast<double>(*v));
      return make_error("key " + key(k) + " = " + buf + " must be a finite number in (0, " +
                        (hi == 1 ? std::string("1") : std::string("inf")) + "]");
    }
    *out = *v;
    return {};
  }

 private:
  const GgufFile& f_;
  std::string arch_;
};

}  // namespace altup
