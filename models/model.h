// What the session needs from a model architecture: its sizes, the persistent state its
// forward pass keeps (KV caches), and a graph builder. Each architecture implements this
// in models/<arch>.cpp; models/registry.cpp maps GGUF architecture names to them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/error.h"
#include "runtime/gguf.h"
#include "runtime/graph.h"
#include "models/submodel.h"

namespace altup {

// Inputs, outputs and state tensors of one forward graph.
struct ForwardGraph {
  TensorId ids = kNoTensor;      // [T] I32 token ids
  TensorId pos = kNoTensor;      // [T] I32 positions
  TensorId logits = kNoTensor;   // [T, V] or [1, V] f32
  std::vector<TensorId> states;  // in state_specs() order
};

// The most tokens one forward graph evaluates (a prefill chunk); longer prompts run as
// several graphs through the cache.
constexpr int64_t kMaxGraphTokens = 512;

struct StateSpec {
  std::string name;
  Shape shape;  // f32
  // A ring buffer (a sliding-window layer's K / V keeps window + max_tokens positions): how
  // many positions may be taken back (Session::truncate) with its keys intact; -1: any.
  int64_t rollback = -1;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string_view arch() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t context_length() const = 0;  // the longest context the model was made for
  virtual uint64_t weight_bytes() const = 0;
  // Parameters of the weights the model computes with, but the token embedding tables (read a
  // row per token): MatFormer's "effective parameters". 0: not counted.
  virtual uint64_t effective_parameters() const { return 0; }
  // Bytes of the tables that are only ever read a row per token (an embedding table that is
  // not also the output head, Gemma 3n's per-layer table): mapped, but never resident whole.
  virtual uint64_t row_lookup_bytes() const { return 0; }
  // Bytes the model keeps beyond the file's for weights it rewrote at load (Gemma 3n's sparse
  // down weights, transposed: the file's pages are handed back, the new copy stays resident);
  // negative when the rewritten copies are smaller.
  virtual int64_t rewritten_extra_bytes() const { return 0; }
  // Bytes of weights a decode step leaves unread by design: the experts a mixture of experts
  // does not choose ((E - k) / E of its stacked experts).
  virtual uint64_t unchosen_expert_bytes() const { return 0; }
  // State for a context of `ctx` tokens fed at most `max_tokens` at a time (each layer's K
  // and V caches).
  virtual std::vector<StateSpec> state_specs(int64_t ctx, int64_t max_tokens) const = 0;
  // The forward pass for T <= max_tokens new tokens; all_logits: logits for every token,
  // else the last only. The graph may depend on the first position modulo period() (which
  // layers' Sequence-AltUp anchors the tokens hold): phase is that remainder.
  virtual int64_t period() const { return 1; }
  virtual ForwardGraph build(Graph& g, int64_t T, int64_t ctx, int64_t max_tokens, bool all_logits,
                             int64_t phase = 0) const = 0;
};

// The model for the file's general.architecture (models/registry.cpp), whole or the
// sub-model `choice` names (models/submodel.h); the file must outlive it.
Result<std::unique_ptr<Model>> load_model(const GgufFile& file, const SubmodelChoice& choice = {});

// Architectures load_model knows, for messages.
std::string known_architectures();

}  // namespace altup
