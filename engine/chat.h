// Gemma's chat turn template, as tokens. A conversation is
//   <bos><start_of_turn>user\n{system}\n\n{message}<end_of_turn>\n<start_of_turn>model\n{reply}<end_of_turn>\n
//   <start_of_turn>user\n{message}<end_of_turn>\n<start_of_turn>model\n{reply} ...
// as Gemma's Hugging Face chat template renders it: Gemma has no system role, so the system
// text opens the first user message; messages are trimmed; "assistant" is "model". The turn
// markers are inserted as their token ids, never tokenized from text, so a file whose
// vocabulary types them as ordinary pieces (llama.cpp's converter does) works the same.
// Turns are built one at a time so a session's KV cache carries the conversation: each new
// turn feeds only its own tokens.
#pragma once

#include <string_view>
#include <vector>

#include "runtime/error.h"
#include "runtime/tokenizer.h"

namespace altup {

class ChatTemplate {
 public:
  // Needs <start_of_turn> and <end_of_turn> in the vocabulary.
  static Result<ChatTemplate> gemma(const Tokenizer& tok);

  // One user message and the opening of the model's reply. `first`: the conversation starts
  // here (BOS, and `system` if not empty). `close_previous`: the model's previous reply was
  // not closed by a fed <end_of_turn> (generation stopped at it, or was cut short).
  std::vector<int32_t> user_turn(std::string_view message, std::string_view system, bool first,
                                 bool close_previous) const;
  int32_t end_of_turn() const { return end_; }

 private:
  explicit ChatTemplate(const Tokenizer& tok) : tok_(&tok) {}
  const Tokenizer* tok_;
  int32_t start_ = -1, end_ = -1;
};

}  // namespace altup
