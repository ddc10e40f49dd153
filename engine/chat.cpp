#include "engine/chat.h"

#include <string>

namespace altup {

namespace {
std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

int32_t find_piece(const Tokenizer& tok, std::string_view piece) {
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (tok.piece(id) == piece) return id;
  return -1;
}
}  // namespace

Result<ChatTemplate> ChatTemplate::gemma(const Tokenizer& tok) {
  ChatTemplate t(tok);
  t.start_ = find_piece(tok, "<start_of_turn>");
  t.end_ = find_piece(tok, "<end_of_turn>");
  if (t.start_ < 0 || t.end_ < 0)
    return make_error("the vocabulary has no <start_of_turn> / <end_of_turn> tokens: not a Gemma chat model");
  return t;
}

std::vector<int32_t> ChatTemplate::user_turn(std::string_view message, std::string_view system, bool first,
                                             bool close_previous) const {
  std::vector<int32_t> ids;
  auto text = [&](std::string_view s) {
    const auto t = tok_->encode(s, /*add_bos=*/false);
    ids.insert(ids.end(), t.begin(), t.end());
  };
  if (first) {
    if (tok_->bos() >= 0) ids.push_back(tok_->bos());
  } else if (close_previous) {
    ids.push_back(end_);
    text("\n");
  }
  ids.push_back(start_);
  std::string body = "user\n";
  if (first && !trim(system).empty()) body += std::string(trim(system)) + "\n\n";
  body += std::string(trim(message));
  text(body);
  ids.push_back(end_);
  text("\n");
  ids.push_back(start_);
  text("model\n");
  return ids;
}

}  // namespace altup
