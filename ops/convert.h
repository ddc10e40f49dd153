// Half-precision rows to f32, and the embedding row lookup built on it.
#pragma once

#include "ops/kernels.h"
#include "runtime/graph.h"

namespace altup::ops {

namespace ref {
void cvt_f16(const uint16_t* x, float* y, int64_t n);
void cvt_bf16(const uint16_t* x, float* y, int64_t n);
}  // namespace ref

// One row of any f32 / f16 / bf16 / q8_0 / q4_0 matrix, as f32.
Status row_to_f32(const TensorView& table, int64_t row, float* out);

// Embedding lookup: out[t] = table[ids[t]] * scale. The table [V, d] is f32, f16, bf16, q8_0
// or q4_0 and is read in place (only the rows asked for are touched: a mapped table that is
// larger than memory costs only those pages). Ids outside [0, V) are an error, unless
// vocab > V: then ids in [V, vocab) read row 0.
Status embedding_lookup(const TensorView& table, const int32_t* ids, int64_t T, float scale, float* out, int threads,
                        int64_t vocab = 0, bool release = false);

// Graph op: inputs {table [V, d], ids [T] I32}, output [T, d] f32; EmbeddingParams (default: scale 1).
struct EmbeddingParams {
  float scale = 1.0f;
  // 0: ids must lie in [0, V). Else ids in [V, vocab) read row 0: Gemma 3n's per-layer table
  // covers only the text tokens, and transformers maps every other id to row 0 (padding).
  int64_t vocab = 0;
  // The table is only ever looked up and lives in a read-only file mapping: each row's pages
  // are handed back after it is read (runtime/mapped_file.h release_mapped_rows), so a huge
  // table (Gemma 3n's per-layer embeddings) never becomes resident.
  bool release = false;
};
extern const OpDef kEmbedding;

}  // namespace altup::ops
