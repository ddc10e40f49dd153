// The "altup" architecture (../shared/reference/altup.md): a Llama-style backbone of width d
// that runs on one of K blocks per layer, with predict / correct keeping all K blocks
// current. K = 1 is the dense Llama-style model, which is how llama.cpp's "llama" GGUF files
// run here too (their q / k rows are laid out for adjacent-pair RoPE).
#pragma once

#include <memory>

#include "models/blocks.h"
#include "models/hparam_reader.h"
#include "models/weight_table.h"
#include "ops/kernels.h"
#include "runtime/model.h"
#include "runtime/weights.h"

namespace altup {

struct AltUpHParams {
  int64_t vocab = 0, d = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ffn = 0, ctx = 0;
  int K = 1;
  bool alternating = true;  // active block l mod K; else always block 0
  bool widened = true;      // embedding [V, K*d]; else [V, d] copied to every block (Recycled-AltUp)
  bool concat_out = false;  // output h = the blocks side by side [K*d]; else their sum [d]
  bool tied = false;        // unembedding = token_embd
  ops::Act act = ops::Act::Silu;
  float rope_theta = 10000.0f, eps = 1e-5f;
  int64_t window = 0;                // sliding window; 0 = full causal attention
  bool rope_pairs_adjacent = false;  // llama.cpp's "llama" layout: pairs (2i, 2i+1), not rotate-half
  std::vector<LayerConfig> layers;   // per layer; in "altup" every layer has the same

  int64_t embed_width() const { return widened ? K * d : d; }
  int64_t out_width() const { return concat_out ? K * d : d; }
  int active_block(int64_t layer) const { return alternating ? static_cast<int>(layer % K) : 0; }

  // Reads "<arch>.*" keys; for "llama" files the AltUp keys are absent and K = 1.
  static Result<AltUpHParams> from_gguf(const GgufFile& f, std::string_view arch);
};

// The weights, typed: one struct for the whole model, one per layer (models/weight_table.h).
struct AltUpLayerWeights {
  WeightRef attn_norm, wq, wk, wv, wo;  // [d], [H·hd, d], [Hkv·hd, d] x2, [d, H·hd]
  WeightRef ffn_norm, gate, up, down;   // [d], [ffn, d] x2, [d, ffn]
  WeightRef predict, correct;           // AltUp's P [K, K] and g [K]; absent in a dense file
};
struct AltUpWeights {
  WeightRef embed;        // [V, K·d] widened, [V, d] recycled
  WeightRef output_norm;  // [out]
  WeightRef output;       // [V, out]; absent when tied to embed
  std::vector<AltUpLayerWeights> layers;
};

// Every tensor the model reads, with its shape and accepted dtypes.
std::vector<WeightSpec> altup_weight_list(const AltUpHParams& hp);

class AltUpModel : public Model {
 public:
  static Result<std::unique_ptr<AltUpModel>> load(const GgufFile& f, std::string_view arch);

  std::string_view arch() const override { return arch_; }
  int64_t vocab_size() const override { return hp_.vocab; }
  int64_t context_length() const override { return hp_.ctx; }
  uint64_t weight_bytes() const override { return bound_.total_bytes; }
  uint64_t row_lookup_bytes() const override;  // the embedding table, unless it is the output head
  std::vector<StateSpec> state_specs(int64_t ctx, int64_t max_tokens) const override;
  ForwardGraph build(Graph& g, int64_t T, int64_t ctx, int64_t max_tokens, bool all_logits) const override;
  const AltUpHParams& hparams() const { return hp_; }

 private:
  std::string arch_;
  AltUpHParams hp_;
  BoundWeights bound_;  // the views into the file the WeightRefs point at
  AltUpWeights w_;
};

}  // namespace altup
