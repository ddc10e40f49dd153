// The "gemma3n" architecture: Gemma 3n's text decoder, AltUp as Google ships it
// (docs/gemma3n-architecture.md). Against the paper's AltUp ("altup"): the predict / correct
// coefficients come from a router per token, the K streams start as projections of the
// embedding rescaled to its magnitude, every layer adds a LAuReL low-rank branch and a
// per-layer embedding (PLE), sliding and full attention layers alternate, and the last layers
// reuse an earlier layer's K / V. Reads GGUF files in llama.cpp's layout.
#pragma once

#include <deque>
#include <memory>

#include "models/decoder.h"
#include "models/submodel.h"
#include "models/weight_table.h"

namespace altup {

struct Gemma3nHParams {
  TransformerSizes sizes;  // vocab, d (H), n_layers (L), heads, head_dim, ctx, eps
  int K = 4;               // AltUp streams
  int active = 0;          // the stream the layers run on
  int64_t ple = 0;         // P: per-layer input width
  int64_t ple_rows = 0;    // rows of the per-layer embedding table (<= vocab)
  int64_t laurel_rank = 0;
  float softcap = 0;          // final logit softcap; 0: none
  float coef_clip = 120.0f;   // |correct coefficients| <= this (transformers clamps them)
  int64_t n_shared_kv = 0;    // the last n layers reuse an earlier layer's K / V
  std::vector<bool> sliding;  // per layer
  DecoderSpec spec;

  static Result<Gemma3nHParams> from_gguf(const GgufFile& f);
};

struct Gemma3nLayerWeights {
  WeightRef router_norm, router;                        // [H], [K, H]
  WeightRef predict_coef, correct_coef, correct_scale;  // [K·K, K], [K, K], [H]
  WeightRef attn_norm, wq, wk, wv, wo, q_norm, k_norm;  // [H], projections, [hd] x2
  WeightRef post_attn_norm;                             // [H]
  WeightRef laurel_l, laurel_r, laurel_norm;            // [r, H], [H, r], [H]
  WeightRef ffn_norm, gate, up, down, post_ffn_norm;    // [H], [F, H] x2, [H, F], [H]
  WeightRef down_t;  // [F, H]: down transposed, on sparse layers (f32 / f16 / bf16, or int8 values)
  WeightRef down_s;  // [F / B, H]: the scales of an int8 down_t (ops/matmul_sparse.h)
  WeightRef ple_gate, ple_proj, ple_norm;  // [P, H], [H, P], [H]
};
struct Gemma3nWeights {
  WeightRef embed;                                 // [V, H], also the output head (tied)
  WeightRef ple_embed;                             // [V', L·P], read row by row, never resident
  WeightRef ple_model_proj, ple_norm;              // [L·P, H], [P]
  WeightRef stream_proj, stream_unproj;            // [K-1, H, H] each
  WeightRef output_norm;                           // [H]
  std::vector<WeightRef> streams_in, streams_out;  // the K-1 [H, H] slices of the two above
  std::vector<Gemma3nLayerWeights> layers;
};

std::vector<WeightSpec> gemma3n_weight_list(const Gemma3nHParams& hp);

class Gemma3nModel : public Decoder {
 public:
  // The whole model, or the MatFormer sub-model `choice` names (models/submodel.h).
  static Result<std::unique_ptr<Gemma3nModel>> load(const GgufFile& f, const SubmodelChoice& choice = {});

  std::string_view arch() const override { return "gemma3n"; }
  uint64_t row_lookup_bytes() const override;
  int64_t rewritten_extra_bytes() const override { return transposed_extra_; }  // the per-layer embedding table
  const DecoderSpec& spec() const override { return hp_.spec; }
  const TransformerSizes& sizes() const override { return hp_.sizes; }
  const Gemma3nHParams& hparams() const { return hp_; }

 private:
  TensorId prologue(Pass& p) const override;
  void layer(Pass& p) const override;
  TensorId epilogue(Pass& p) const override;
  Status transpose_sparse_downs();        // fills down_t
  bool transposes_down(int64_t i) const;  // layer i's down is transposed at load
  Status gather_ple_proj();               // a sub-model's rows of per_layer_model_proj

  Gemma3nHParams hp_;
  std::deque<std::vector<float>> owned_;                   // the clipped correct coefficients (f32)
  std::vector<std::unique_ptr<uint8_t[]>> ple_proj_copy_;  // gather_ple_proj's rows
  // The transposed down weights in float-aligned storage (f32 / f16 / bf16 elements, or int8
  // values then f32 scales), left uninitialised until the transposition writes every element.
  std::deque<std::unique_ptr<float[]>> transposed_;
  int64_t transposed_extra_ = 0;  // bytes of transposed_ beyond the file bytes they replace
  bool release_rows_ = false;     // per-layer table rows: pages handed back after reading
  Gemma3nWeights w_;
};

}  // namespace altup
