// The "stagformer" architecture (docs/stagformer.md; the PyTorch reference is
// converters/altup_tools/stagformer.py): p stacks of h dense Llama-style layers, every stack
// starting from the token embeddings, each stack after the first cross-attending to the
// previous stack's outputs at strictly earlier positions. At a decode step no stack needs
// another's output of the same token, so with shared weights all stacks run as one p-row pass
// through each weight.
#pragma once

#include <memory>

#include "models/decoder.h"
#include "models/weight_table.h"
#include "ops/kernels.h"

namespace altup {

struct StagFormerHParams {
  TransformerSizes sizes;  // n_layers: the blk.N.* layers the file stores
  int stacks = 1;          // p
  int64_t depth = 0;       // h, layers per stack
  bool shared = false;     // every stack runs the first stack's blk.N.* weights
  int64_t cross_window = 0;
  bool tied = false;
  ops::Act act = ops::Act::Silu;
  DecoderSpec spec;  // p·h layers, stack-major: layer s·h + i is layer i of stack s

  static Result<StagFormerHParams> from_gguf(const GgufFile& f);
};

struct KvPair {
  TensorId k = kNoTensor, v = kNoTensor;  // [n, Hkv, hd]
};

struct StagLayerWeights {
  WeightRef attn_norm, wq, wk, wv, wo;   // self-attention; shared layers point at stack 0's
  WeightRef ffn_norm, gate, up, down;    // FFN
  WeightRef cross_norm, cq, ck, cv, co;  // cross-attention (stacks after the first)
  WeightRef mem_norm;                    // a stack's first layer: the norm of the memory it reads
};
struct StagFormerWeights {
  WeightRef embed, output_norm, output;
  std::vector<StagLayerWeights> layers;  // by place in the spec
};

class StagFormerModel : public Decoder {
 public:
  static Result<std::unique_ptr<StagFormerModel>> load(const GgufFile& f, const SubmodelChoice& choice = {});

  std::string_view arch() const override { return "stagformer"; }
  uint64_t row_lookup_bytes() const override;
  const DecoderSpec& spec() const override { return hp_.spec; }
  const TransformerSizes& sizes() const override { return hp_.sizes; }
  const StagFormerHParams& hparams() const { return hp_; }
  // Whether a decode step runs the stacks at once (the default) or one after the other: with
  // shared weights as one p-row pass, with separate weights as branches on groups of threads.
  // The two give the same bits where a product's rows do not depend on each other or on the
  // thread count (tests/test_model_stagformer.cpp). ALTUP_STAGGER=0 turns it off.
  void set_concurrent(bool on) { concurrent_ = on; }
  bool concurrent() const { return concurrent_; }

 private:
  TensorId prologue(Pass& p) const override;
  void layer(Pass& p) const override;
  TensorId epilogue(Pass& p) const override;

  bool runs_together(const Pass& p) const { return concurrent_ && hp_.shared && hp_.stacks > 1 && p.T == 1; }
  void layer_all_stacks(Pass& p) const;
  // A decode step with separate weights: each stack a branch of its own, run at once.
  bool runs_in_branches(const Pass& p) const { return concurrent_ && !hp_.shared && hp_.stacks > 1 && p.T == 1; }
  void stacks_in_branches(Pass& p) const;
  // After the stacks of a decode step: stack s's output outs[s] becomes the memory of stack
  // s + 1, normed and stored in its layers' cross caches, read from the next token on.
  void store_memories(Pass& p, const std::vector<TensorId>& outs) const;
  // Stack s's output rows out [n, d] normed as the memory stack s + 1 reads.
  TensorId memory_norm(Pass& p, int64_t s, TensorId out) const;
  // K / V (K with RoPE) of the memory rows mem [n, d] at positions pos for spec layer l's
  // cross-attention; store_kv puts them in its cross cache; store_memory does both.
  KvPair memory_kv(Pass& p, int64_t l, TensorId mem, TensorId pos) const;
  void store_kv(Pass& p, int64_t l, KvPair kv, TensorId pos) const;
  void store_memory(Pass& p, int64_t l, TensorId mem, TensorId pos) const;
  // The cross-attention of spec layer l for the normed rows xn [n, d] at positions pos.
  TensorId cross_attention(Pass& p, int64_t l, TensorId xn, TensorId pos) const;

  StagFormerHParams hp_;
  StagFormerWeights w_;
  bool concurrent_ = true;
};

}  // namespace altup
