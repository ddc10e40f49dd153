// The "altup" architecture (../shared/reference/altup.md): a Llama-style backbone of width d
// that runs on one of K blocks per layer, with predict / correct keeping all K blocks
// current. K = 1 is the dense Llama-style model, which is how llama.cpp's "llama" GGUF files
// run here too (their q / k rows are laid out for adjacent-pair RoPE). A layer may be a
// Sequence-AltUp layer (ops/seq_altup.h): its step runs on every k-th position only.
#pragma once

#include <memory>

#include "models/decoder.h"
#include "models/submodel.h"
#include "models/weight_table.h"
#include "ops/kernels.h"

namespace altup {

struct AltUpHParams {
  TransformerSizes sizes;  // vocab, d, n_layers, heads, head_dim, ctx, eps
  int K = 1;
  bool alternating = true;  // active block l mod K; else always block 0
  bool widened = true;      // embedding [V, K*d]; else [V, d] copied to every block (Recycled-AltUp)
  bool concat_out = false;  // output h = the blocks side by side [K*d]; else their sum [d]
  bool tied = false;        // unembedding = token_embd
  ops::Act act = ops::Act::Silu;
  bool rope_pairs_adjacent = false;  // llama.cpp's "llama" layout: pairs (2i, 2i+1), not rotate-half
  DecoderSpec spec;                  // per layer; in "altup" and "llama" every layer is alike

  int64_t embed_width() const { return widened ? K * sizes.d : sizes.d; }
  int64_t out_width() const { return concat_out ? K * sizes.d : sizes.d; }
  // The block layer i of the spec runs on (by its index in the file, so a sub-model keeps it).
  int active_block(int64_t i) const { return alternating ? static_cast<int>(spec[i].weights % K) : 0; }

  // Reads "<arch>.*" keys; for "llama" files the AltUp keys are absent and K = 1.
  static Result<AltUpHParams> from_gguf(const GgufFile& f, std::string_view arch);
};

// The weights, typed: one struct for the whole model, one per layer (models/weight_table.h).
struct AltUpLayerWeights {
  WeightRef attn_norm, wq, wk, wv, wo;  // [d], [H·hd, d], [Hkv·hd, d] x2, [d, H·hd]
  WeightRef ffn_norm, gate, up, down;   // [d], [ffn, d] x2, [d, ffn]; a mixture of experts: [E, ffn, d] x2, [E, d, ffn]
  WeightRef router;                     // a mixture of experts: [E, d]
  WeightRef predict, correct;           // AltUp's P [K, K] and g [K]; absent in a dense file
  WeightRef seq;                        // Sequence-AltUp's (α, β, γ) [3]; a layer of stride > 1 only
};
struct AltUpWeights {
  WeightRef embed;        // [V, K·d] widened, [V, d] recycled
  WeightRef output_norm;  // [out]
  WeightRef output;       // [V, out]; absent when tied to embed
  std::vector<AltUpLayerWeights> layers;
};

// Every tensor the model reads, with its shape and accepted dtypes.
std::vector<WeightSpec> altup_weight_list(const AltUpHParams& hp);

class AltUpModel : public Decoder {
 public:
  // The whole model, or the sub-model `choice` names (models/submodel.h: FFN prefixes of a
  // MatFormer-trained model, layers left out).
  static Result<std::unique_ptr<AltUpModel>> load(const GgufFile& f, std::string_view arch,
                                                  const SubmodelChoice& choice = {});

  std::string_view arch() const override { return arch_; }
  uint64_t row_lookup_bytes() const override;  // the embedding table, unless it is the output head
  const DecoderSpec& spec() const override { return hp_.spec; }
  const TransformerSizes& sizes() const override { return hp_.sizes; }
  const AltUpHParams& hparams() const { return hp_; }
  int64_t state_blocks() const override { return hp_.K; }

 private:
  TensorId prologue(Pass& p) const override;
  void layer(Pass& p) const override;
  // One AltUp step of the current layer on `ring` [K, T, d], in place, for tokens at `pos`
  // whose K / V go to cache rows `slots` (kNoTensor: their positions). cut: only the last
  // row's result is wanted (Pass::queries); returns the ring then left ([K, 1, d]).
  TensorId step(Pass& p, TensorId ring, TensorId pos, TensorId slots, bool cut) const;
  TensorId epilogue(Pass& p) const override;

  std::string arch_;
  AltUpHParams hp_;
  AltUpWeights w_;
};

}  // namespace altup
