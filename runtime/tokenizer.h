// SentencePiece BPE tokenizer read from GGUF metadata (llama.cpp's keys: tokenizer.ggml.model
// "llama", tokens, scores, token_type, bos/eos/unknown ids, add_space_prefix,
// remove_extra_whitespaces). Encodes and decodes exactly as the sentencepiece library does
// for such models (tests/test_tokenizer.cpp compares them on the whole training corpus and
// more):
//   normalize: (remove_extra_whitespaces: trim, collapse space runs), spaces -> "▁",
//              a "▁" prefix when add_space_prefix, malformed UTF-8 bytes -> U+FFFD;
//   encode:    split into characters (user-defined tokens kept whole), then repeatedly merge
//              the adjacent pair whose concatenation is a vocabulary piece with the highest
//              score (leftmost first on ties); pieces outside the vocabulary fall back to
//              their UTF-8 bytes (<0xXX> tokens), or <unk> without byte tokens;
//   decode:    control tokens vanish, "▁" -> space, the first piece loses its leading "▁"
//              when the encoder adds one (add_space_prefix; Gemma's vocabulary does not),
//              runs of byte tokens (ended by any other token, control tokens included)
//              become UTF-8 text, each invalid byte -> U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <functional>
#include <unordered_map>
#include <vector>

#include "runtime/error.h"
#include "runtime/gguf.h"

namespace altup {

class Tokenizer {
 public:
  enum Type : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

  static Result<Tokenizer> from_gguf(const GgufFile& file);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  Type type(int32_t id) const { return types_[static_cast<size_t>(id)]; }

  // Decodes a stream of tokens into text that is safe to print as it comes: bytes of an
  // unfinished UTF-8 character are held back until the character is complete.
  class Stream {
   public:
    explicit Stream(const Tokenizer& t) : t_(t) {}
    std::string push(int32_t id);  // the text that became ready
    std::string finish();          // whatever is still held back

   private:
    const Tokenizer& t_;
    std::string pending_bytes_;  // from byte tokens, not yet valid UTF-8
    bool at_start_ = true;
  };

 private:
  std::string normalize(std::string_view text) const;
  void encode_normalized(std::string_view norm, std::vector<int32_t>* out) const;
  int32_t find(std::string_view piece) const;  // -1 if not a piece

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<Type> types_;
  // Transparent hashing: merge candidates are looked up as string_views, without a copy.
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> ids_;  // normal, user-defined, unused
  std::vector<std::string> user_defined_;                                     // matched whole, longest first
  int32_t byte_ids_[256];
  bool has_bytes_ = false;
  int32_t bos_ = -1, eos_ = -1, unk_ = 0;
  bool add_bos_ = true, add_space_prefix_ = true, remove_extra_ws_ = false;
};

// Appends `bytes` as UTF-8 text to `out`, replacing each byte that does not start a valid,
// complete character with U+FFFD. With `keep_tail`, an unfinished character at the end is
// left in `bytes` instead (for streaming); otherwise `bytes` is consumed entirely.
void append_utf8_lossy(std::string& bytes, std::string* out, bool keep_tail);

}  // namespace altup
