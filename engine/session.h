// A loaded model ready to generate: the mapped GGUF file, the model, its tokenizer, the KV
// caches for one sequence, and the forward graphs (one built once for single-token decode,
// one built per prompt length for prefill). Nothing is allocated per decoded token.
//
// Opening validates before it allocates: the model's hyper-parameters and tensors
// (models/*.cpp), the tokenizer against the model, and the KV cache a context needs against
// the memory available. The caches are reserved, not touched (runtime/zero_pages.h): memory
// follows the tokens held. Prompts are evaluated in chunks of at most kPrefillChunk tokens,
// so activations stay bounded however long the prompt. Logits that are not finite are an
// error, never sampled.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine/thread_tuner.h"
#include "runtime/executor.h"
#include "runtime/gguf.h"
#include "models/model.h"
#include "runtime/tokenizer.h"
#include "runtime/zero_pages.h"

namespace altup {

// The most tokens one forward graph evaluates; longer prompts run as several chunks.
constexpr int64_t kPrefillChunk = kMaxGraphTokens;

struct SessionOptions {
  int threads = 0;  // at most this many threads; 0: every available core
  // Decode steps on as many of them as measure fastest (engine/thread_tuner.h); false: always
  // all of them (a profile that should show a fixed count).
  bool tune_decode_threads = true;
  // A decode graph's sections of branches (a StagFormer's stacks with separate weights,
  // runtime/graph.h): whether they run at once, on groups of the threads, or one node at a time
  // on all of them. Both give the same bits. tuned: whichever measures faster, chosen with the
  // thread count (at once when not tuning). ALTUP_BRANCHES=1 / 0 in the environment makes
  // tuned always / never.
  enum class Branches { tuned, always, never };
  Branches branches = Branches::tuned;
  int64_t ctx = 0;  // 0: the model's context length
  // Tokens per forward graph, in [1, kMaxGraphTokens]; also sizes sliding-window rings
  // (tests set it small to exercise them).
  int64_t max_tokens = kMaxGraphTokens;
};

// A validated model: the mapped file, the architecture's model and its tokenizer. Read-only
// once loaded, so several sessions (on different threads) may share one.
struct LoadedModel {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;

  // The whole model, or the sub-model `submodel` names (models/submodel.h).
  static Result<std::shared_ptr<const LoadedModel>> load(const std::string& path, const SubmodelChoice& submodel = {});
  static Result<std::shared_ptr<const LoadedModel>> load(std::unique_ptr<GgufFile> file,
                                                         const SubmodelChoice& submodel = {});
};

class Session {
 public:
  // A session of its own on a model already loaded.
  static Result<std::unique_ptr<Session>> create(std::shared_ptr<const LoadedModel> model,
                                                 const SessionOptions& options = {});
  static Result<std::unique_ptr<Session>> open(const std::string& path, const SessionOptions& options = {},
                                               const SubmodelChoice& submodel = {});
  // The same for a file already read (tests, fuzzing): validation, tokenizer, caches.
  static Result<std::unique_ptr<Session>> open(std::unique_ptr<GgufFile> file, const SessionOptions& options = {},
                                               const SubmodelChoice& submodel = {});

  const Tokenizer& tokenizer() const { return loaded_->tokenizer; }
  const Model& model() const { return *loaded_->model; }
  const GgufFile& file() const { return *loaded_->file; }
  const std::shared_ptr<const LoadedModel>& loaded() const { return loaded_; }
  int64_t ctx() const { return ctx_; }
  int64_t n_past() const { return n_past_; }
  int threads() const { return threads_; }  // the most any step uses
  void set_threads(int n) {
    threads_ = n > 0 ? n : 1;
    tuner_ = ThreadTuner(threads_, tuner_.tries_branches());
  }
  // The thread count decode steps settled on (threads() when they are not tuned).
  int decode_threads() const { return tune_ ? tuner_.best().threads : threads_; }
  // Whether decode steps settled on running sections' branches at once (false when the
  // decode graph has none).
  bool decode_branches() const;

  // Forget the sequence (the caches are simply overwritten from position 0).
  void reset() { n_past_ = 0; }
  // Keep only the first n tokens of the sequence (0 <= n <= n_past); the next eval continues
  // there. A model with sliding-window rings can take back at most max_rollback() tokens.
  Status truncate(int64_t n);
  int64_t max_rollback() const { return max_rollback_; }  // -1: any number

  // Bytes of KV cache (all layers) a context of `ctx` tokens takes once full.
  uint64_t kv_cache_bytes(int64_t ctx) const;
  // What a context of `ctx` tokens costs in memory, by part: the weights a decode step reads
  // (the file's tensors less the tables read a row at a time), the KV cache when full, and
  // the activation arenas of a decode step and of a prefill chunk (as planned).
  struct MemoryEstimate {
    uint64_t weights_file = 0, row_lookup = 0, weights_per_token = 0, kv_cache = 0;
    uint64_t activations_decode = 0, activations_prefill = 0;
    int64_t prefill_tokens = 0;
    int64_t weights_rewritten = 0;  // Model::rewritten_extra_bytes
    // What stays resident while decoding after a prompt: the session keeps the decode graphs'
    // arenas (one per phase) and the prefill graph's.
    uint64_t decoding() const {
      const int64_t w = static_cast<int64_t>(weights_per_token) + weights_rewritten;
      return static_cast<uint64_t>(std::max<int64_t>(0, w)) + kv_cache + activations_decode + activations_prefill;
    }
  };
  Result<MemoryEstimate> memory_estimate(int64_t ctx) const;

  // Feeds `tokens` at positions n_past .. n_past + n - 1 and returns their logits: [n, V] with
  // all_logits, else the last token's [V]. The pointer is valid until the next eval().
  Result<const float*> eval(const std::vector<int32_t>& tokens, bool all_logits = false);

  // Optional hooks (profiler, tensor dumps) for every graph run.
  void set_hooks(ExecHooks* hooks) { hooks_ = hooks; }
  // The graph of the last eval (for profilers that name nodes).
  const Graph* last_graph() const { return last_graph_; }

 private:
  struct Forward {
    Graph graph;
    ForwardGraph io;
    std::unique_ptr<Executor> exec;
    int64_t T = 0;
    bool all_logits = false;
    int64_t phase = 0;  // the first position modulo Model::period()
  };
  Result<Forward*> forward_for(int64_t T, bool all_logits);
  Result<const float*> eval_chunk(const int32_t* tokens, int64_t T, bool all_logits);

  std::shared_ptr<const LoadedModel> loaded_;
  int64_t ctx_ = 0, n_past_ = 0, max_tokens_ = kMaxGraphTokens, max_rollback_ = -1;
  int threads_ = 1;
  bool tune_ = true;
  SessionOptions::Branches branches_ = SessionOptions::Branches::tuned;
  bool decode_has_sections_ = false;
  ThreadTuner tuner_{1};
  std::vector<ZeroPages> states_;                 // KV caches, one buffer per StateSpec, backed as written
  std::vector<float> chunked_logits_;             // [T, V]: all_logits of a prompt longer than one chunk
  std::vector<std::unique_ptr<Forward>> decode_;  // by phase
  std::unique_ptr<Forward> prefill_;
  std::vector<int32_t> ids_, pos_;
  ExecHooks* hooks_ = nullptr;
  const Graph* last_graph_ = nullptr;
};

}  // namespace altup
