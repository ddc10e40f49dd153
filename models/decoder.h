// The decoder skeleton every architecture runs on. It does what each one would otherwise
// repeat: binding the weights a spec names (the file's layer count checked, every tensor
// bound, unused ones refused), the KV cache layout (a cache per own-cache layer, a ring for
// a window shorter than the context), caches looked up by layer, the loop over the spec's
// layers, and the last-token cut. An architecture supplies only its math, as three hooks:
//   prologue  token ids -> the state the layers update (Pass::x);
//   layer     one layer of the spec on Pass::x;
//   epilogue  Pass::x -> logits for the rows asked for.
// models/altup.cpp and models/gemma3n.cpp are the two that use it.
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "models/blocks.h"
#include "models/hparam_reader.h"
#include "models/model.h"
#include "models/spec.h"
#include "runtime/weights.h"

namespace altup {

// One forward graph under construction: what the skeleton tracks and the hooks read.
struct Pass {
  explicit Pass(Builder& builder) : b(builder) {}
  Builder& b;
  int64_t T = 0;               // tokens in this call
  int64_t Tr = 0;              // rows the layers' state holds: T, or 1 after the cut
  TensorId ids = kNoTensor;    // [T] I32
  TensorId pos = kNoTensor;    // [T] I32
  TensorId pos_r = kNoTensor;  // [Tr] positions of those rows
  bool all_logits = false;
  TensorId x = kNoTensor;     // the state the layers update (an AltUp ring [K, Tr, d])
  TensorId side = kNoTensor;  // a prologue product every layer reads (Gemma 3n's per-layer inputs)

  // Set before each layer's hook:
  int64_t index = 0;                          // the layer's place in the spec
  const LayerSpec* spec = nullptr;            // its spec
  KvCache cache;                              // the cache its attention reads (its own or its source's)
  KvCache cross_cache;                        // its cross-attention's (LayerSpec::cross)
  std::vector<KvCache> caches, cross_caches;  // every layer's, by place in the spec (a hook that runs several)
  TensorId memory = kNoTensor;                // StagFormer: the previous stack's outputs, normed, [Tr, d]
  int64_t phase = 0;                          // the first position modulo DecoderSpec::period()
  std::vector<TensorId> seq_states;           // Sequence-AltUp layers' anchor rows, by place in the spec
  TensorId seq_state = kNoTensor;             // this layer's
  bool cut = false;                           // see queries()
  // When only the last token's logits are wanted, the last layer that stores K / V stores
  // them for every row but computes the rest for the last row alone (no later layer reads
  // the other rows): attention_block's `queries`.
  int64_t queries() const { return cut ? 1 : 0; }
  // At the cut: keep the last row of a [K, Tr, d] state; from here on Tr = 1.
  TensorId keep_last_row(TensorId state);
};

class Decoder : public Model {
 public:
  int64_t vocab_size() const override { return sizes().vocab; }
  int64_t context_length() const override { return sizes().ctx; }
  uint64_t weight_bytes() const override { return bound_.total_bytes; }
  uint64_t effective_parameters() const override;
  uint64_t unchosen_expert_bytes() const override;
  std::vector<StateSpec> state_specs(int64_t ctx, int64_t max_tokens) const override;
  int64_t period() const override { return spec().period(); }
  ForwardGraph build(Graph& g, int64_t T, int64_t ctx, int64_t max_tokens, bool all_logits,
                     int64_t phase = 0) const final;

  virtual const DecoderSpec& spec() const = 0;
  virtual const TransformerSizes& sizes() const = 0;
  // K / V rows layer i's cache keeps for a context of ctx fed max_tokens at a time: ctx, or
  // window + max_tokens for a sliding layer when that is fewer (a ring).
  int64_t cache_slots(int64_t i, int64_t ctx, int64_t max_tokens) const;
  int64_t cross_cache_slots(int64_t i, int64_t ctx, int64_t max_tokens) const;  // a cross-attending layer's
  // Whether layer i's cache is a ring (a sliding window shorter than the context).
  bool cache_is_ring(int64_t i, int64_t ctx, int64_t max_tokens) const;
  // The blocks of the state the layers update (AltUp's K): the rows of a Sequence-AltUp state.
  virtual int64_t state_blocks() const { return 1; }

 protected:
  virtual TensorId prologue(Pass& p) const = 0;
  virtual void layer(Pass& p) const = 0;
  virtual TensorId epilogue(Pass& p) const = 0;  // logits [rows, V]: every row, or the last

  // Checks the file against the spec (its blk.N.* layers) and binds `list` into bound_,
  // refusing tensors the list does not name (but those of layers a sub-model leaves out,
  // which are never read).
  Status bind(const GgufFile& f, std::string_view arch, const std::vector<WeightSpec>& list);

  // A MatFormer sub-model (models/submodel.h): layer i uses the first spec()[i].ffn of the
  // ffn_in_file hidden units its file stores. Called after bind, with the weights bound at the
  // stored widths. ffn_gate / ffn_up become views of their first rows. ffn_down's prefix of
  // every row is copied into a contiguous matrix (its file pages handed back when `mapped`),
  // unless strided_down(i): then it stays a strided view, for an architecture that reads it
  // once itself (Gemma 3n transposes its sparse layers' downs at load). A prefix that splits a
  // quantization block is refused, naming the layer.
  Status narrow_ffns(const std::function<bool(int64_t)>& strided_down, bool mapped);

  BoundWeights bound_;                                // the views into the file the models' WeightRefs point at
  std::vector<std::string> file_weights_;             // the names bind found in the file (bound_ adds derived views)
  std::vector<std::unique_ptr<uint8_t[]>> narrowed_;  // the down prefixes narrow_ffns copied
};

}  // namespace altup
