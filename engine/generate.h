// The one generation loop: `altup run`, `altup chat`, the C API's altup_generate (and so the
// Python binding) all call generate(). From the logits of the last token fed, it samples a
// token; a stop token ends the reply (neither emitted nor fed); any other is emitted (its
// text, streamed so that characters split over tokens come out whole) and fed, until the
// length, a full context, or the caller says stop.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"

namespace altup {

enum class StopReason { length, end_of_sequence, end_of_turn, context_full, caller };
const char* stop_reason_name(StopReason r);  // "length", "end of sequence", ...

struct GenerateOptions {
  int64_t max_tokens = 128;
  std::vector<int32_t> stop_ids;  // e.g. the end-of-sequence and end-of-turn tokens
  // Feed the last emitted token too, so that the session's logits are the next token's and
  // another call can go on. false leaves it unfed (Generation::unfed): a command that ends
  // there saves a forward pass, a chat feeds it with the next turn.
  bool feed_last = true;
};

struct Generation {
  int64_t tokens = 0;  // sampled, a stop token included
  StopReason stop = StopReason::length;
  int32_t unfed = -1;             // the last emitted token when it was not fed
  double decode_s = 0;            // time spent from the first sample on
  const float* logits = nullptr;  // of the last token fed ([V], valid until the session's next eval)
};

// on_token(id, text) gets every emitted token and its text (possibly empty while a character
// is incomplete); returning false stops the reply (StopReason::caller) after that token.
// Every sampled token is appended to `history` (the repetition penalty's window). An error
// of a decode step is returned as it is; what was emitted before it stays emitted.
using TokenSink = std::function<bool(int32_t id, const std::string& text)>;
Result<Generation> generate(Session& s, Sampler& sampler, const float* logits, std::vector<int32_t>& history,
                            const GenerateOptions& options, Tokenizer::Stream& stream, const TokenSink& on_token);

}  // namespace altup
