#include "runtime/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <queue>

namespace altup {

namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";        // U+2581, SentencePiece's "▁"
constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD

// Length of the valid UTF-8 character starting at s[0], or 0 if it is malformed or cut off.
size_t valid_char_len(std::string_view s) {
  if (s.empty()) return 0;
  const auto c = static_cast<unsigned char>(s[0]);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (s.size() < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return len;
}

// Could `s` (shorter than its lead byte announces) still become a valid character?
bool is_unfinished_char(std::string_view s) {
  const auto c = static_cast<unsigned char>(s[0]);
  const size_t want = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (want == 0 || s.size() >= want) return false;
  for (size_t k = 1; k < s.size(); ++k)
    if ((static_cast<unsigned char>(s[k]) & 0xc0) != 0x80) return false;
  return true;
}

bool parse_byte_piece(std::string_view p, int* value) {
  // "<0xAB>"
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return false;
  unsigned v = 0;
  for (size_t k = 3; k < 5; ++k) {
    const char ch = p[k];
    v <<= 4;
    if (ch >= '0' && ch <= '9')
      v |= static_cast<unsigned>(ch - '0');
    else if (ch >= 'A' && ch <= 'F')
      v |= static_cast<unsigned>(ch - 'A' + 10);
    else
      return false;
  }
  *value = static_cast<int>(v);
  return true;
}

}  // namespace

void append_utf8_lossy(std::string& bytes, std::string* out, bool keep_tail) {
  size_t i = 0;
  while (i < bytes.size()) {
    const std::string_view rest(bytes.data() + i, bytes.size() - i);
    const size_t len = valid_char_len(rest);
    if (len) {
      out->append(rest.substr(0, len));
      i += len;
    } else if (keep_tail && is_unfinished_char(rest)) {
      break;
    } else {
      out->append(kReplacement);
      ++i;
    }
  }
  bytes.erase(0, i);
}

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  Tokenizer t;
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return model.error();
  if (*model != "llama")
    return make_error("tokenizer model '" + std::string(*model) +
                      "' is not supported (only SentencePiece BPE, tokenizer.ggml.model = \"llama\")");
  auto tokens = f.get_array("tokenizer.ggml.tokens", GgufType::STRING);
  if (!tokens) return tokens.error();
  auto scores = f.get_array("tokenizer.ggml.scores", GgufType::F32);
  if (!scores) return scores.error();
  auto types = f.get_array("tokenizer.ggml.token_type", GgufType::I32);
  if (!types) return types.error();
  const uint64_t n = (*tokens)->count;
  if (n == 0 || n > (1u << 30)) return make_error("tokenizer has " + std::to_string(n) + " tokens");
  if ((*scores)->count != n || (*types)->count != n)
    return make_error("tokenizer arrays disagree: " + std::to_string(n) + " tokens, " +
                      std::to_string((*scores)->count) + " scores, " + std::to_string((*types)->count) + " types");
  t.pieces_.reserve(n);
  std::fill(std::begin(t.byte_ids_), std::end(t.byte_ids_), -1);
  for (uint64_t i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    t.pieces_.emplace_back((*tokens)->strings[i]);
    t.scores_.push_back((*scores)->at<float>(i));
    if (!std::isfinite(t.scores_.back()))  // merges are ranked by score: NaN would break the order
      return make_error("tokenizer.ggml.scores[" + std::to_string(i) + "] is not a finite number");
    const int32_t ty = (*types)->at<int32_t>(i);
    if (ty < kNormal || ty > kByte)
      return make_error("token " + std::to_string(i) + " has unknown type " + std::to_string(ty));
    t.types_.push_back(static_cast<Type>(ty));
    const std::string& p = t.pieces_.back();
    switch (ty) {
      case kNormal:
      case kUnused: t.ids_.emplace(p, id); break;
      case kUserDefined:
        t.ids_.emplace(p, id);
        t.user_defined_.push_back(p);
        break;
      case kByte: {
        int v;
        if (!parse_byte_piece(p, &v))
          return make_error("byte token " + std::to_string(i) + " is not of the form <0xAB>");
        t.byte_ids_[v] = id;
        t.has_bytes_ = true;
        break;
      }
      case kUnknown: t.unk_ = id; break;
      default: break;
    }
  }
  std::sort(t.user_defined_.begin(), t.user_defined_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  auto id_key = [&](const char* key, int32_t* out) -> Status {
    const GgufValue* v = f.find(key);
    if (!v) return {};
    auto c = f.get_count(key);
    if (!c) return c.error();
    if (*c >= n) return make_error(std::string(key) + " " + std::to_string(*c) + " is not a token id");
    *out = static_cast<int32_t>(*c);
    return {};
  };
  ALTUP_TRY(id_key("tokenizer.ggml.bos_token_id", &t.bos_));
  ALTUP_TRY(id_key("tokenizer.ggml.eos_token_id", &t.eos_));
  ALTUP_TRY(id_key("tokenizer.ggml.unknown_token_id", &t.unk_));
  // Optional flags: absent keeps the default; present must be a bool.
  auto flag = [&](const char* key, bool* out) -> Status {
    if (!f.find(key)) return {};
    auto v = f.get_bool(key);
    if (!v) return v.error();
    *out = *v;
    return {};
  };
  ALTUP_TRY(flag("tokenizer.ggml.add_bos_token", &t.add_bos_));
  ALTUP_TRY(flag("tokenizer.ggml.add_space_prefix", &t.add_space_prefix_));
  ALTUP_TRY(flag("tokenizer.ggml.remove_extra_whitespaces", &t.remove_extra_ws_));
  if (f.find("tokenizer.ggml.add_bos_token") && t.add_bos_ && t.bos_ < 0)
    return make_error("tokenizer.ggml.add_bos_token is true but the file has no tokenizer.ggml.bos_token_id");
  return t;
}

int32_t Tokenizer::find(std::string_view piece) const {
  auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

std::string Tokenizer::normalize(std::string_view in) const {
  std::string out;
  if (in.empty()) return out;
  if (remove_extra_ws_) {
    while (!in.empty() && in.front() == ' ') in.remove_prefix(1);
    if (in.empty()) return out;
  }
  out.reserve(in.size() * 3 + 3);
  if (add_space_prefix_) out += kSpace;
  bool prev_space = remove_extra_ws_;
  while (!in.empty()) {
    // User-defined tokens pass through whole (longest match first).
    size_t len = 0;
    for (const std::string& u : user_defined_)
      if (in.substr(0, u.size()) == u) {
        len = u.size();
        break;
      }
    std::string_view ch;
    if (len) {
      ch = in.substr(0, len);
    } else {
      len = valid_char_len(in);
      if (len == 0) {
        ch = kReplacement;  // one malformed byte
        len = 1;
      } else {
        ch = in.substr(0, len);
      }
    }
    if (ch == " ") {
      if (!prev_space) out += kSpace;
      prev_space = remove_extra_ws_;
    } else {
      out += ch;
      prev_space = false;
    }
    in.remove_prefix(len);
  }
  if (remove_extra_ws_)
    while (out.size() >= kSpace.size() && std::string_view(out).substr(out.size() - kSpace.size()) == kSpace)
      out.resize(out.size() - kSpace.size());
  return out;
}

void Tokenizer::encode_normalized(std::string_view norm, std::vector<int32_t>* out) const {
  struct Symbol {
    int prev, next;
    bool frozen;  // user-defined: never merged
    std::string_view piece;
  };
  struct Pair {
    int left, right;
    float score;
    size_t size;
  };
  // Highest score first; on ties the leftmost pair.
  auto worse = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  std::vector<Symbol> sym;

  // Characters (user-defined tokens whole).
  for (size_t i = 0; i < norm.size();) {
    size_t len = 0;
    bool frozen = false;
    for (const std::string& u : user_defined_)
      if (norm.substr(i, u.size()) == u) {
        len = u.size();
        frozen = true;
        break;
      }
    if (!len) len = std::max<size_t>(1, valid_char_len(norm.substr(i)));
    len = std::min(len, norm.size() - i);
    const int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, -1, frozen, norm.substr(i, len)});
    if (idx > 0) sym[idx - 1].next = idx;
    i += len;
  }
  auto maybe_add = [&](int l, int r) {
    if (l < 0 || r < 0 || sym[l].frozen || sym[r].frozen) return;
    const std::string_view merged(sym[l].piece.data(), sym[l].piece.size() + sym[r].piece.size());
    const int32_t id = find(merged);
    if (id < 0) return;
    agenda.push({l, r, scores_[static_cast<size_t>(id)], merged.size()});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) maybe_add(i - 1, i);
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol &L = sym[top.left], &R = sym[top.right];
    if (L.piece.empty() || R.piece.empty() || L.piece.size() + R.piece.size() != top.size) continue;  // stale
    L.piece = std::string_view(L.piece.data(), L.piece.size() + R.piece.size());
    L.next = R.next;
    if (R.next >= 0) sym[R.next].prev = top.left;
    R.piece = {};
    maybe_add(L.prev, top.left);
    maybe_add(top.left, L.next);
  }
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    const int32_t id = find(sym[i].piece);
    if (id >= 0) {
      out->push_back(id);
    } else if (has_bytes_) {
      for (unsigned char b : sym[i].piece) out->push_back(byte_ids_[b] >= 0 ? byte_ids_[b] : unk_);
    } else {
      out->push_back(unk_);
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos && bos_ >= 0) ids.push_back(bos_);
  encode_normalized(normalize(text), &ids);
  return ids;
}

std::string Tokenizer::Stream::push(int32_t id) {
  std::string out;
  if (id < 0 || id >= t_.vocab_size()) return out;
  const Type ty = t_.type(id);
  if (ty == kControl) {  // invisible, but it ends a run of byte tokens (as sentencepiece does)
    append_utf8_lossy(pending_bytes_, &out, /*keep_tail=*/false);
    return out;
  }
  if (ty == kByte) {
    int v = 0;
    parse_byte_piece(t_.piece(id), &v);
    pending_bytes_.push_back(static_cast<char>(v));
    at_start_ = false;
    append_utf8_lossy(pending_bytes_, &out, /*keep_tail=*/true);
    return out;
  }
  append_utf8_lossy(pending_bytes_, &out, /*keep_tail=*/false);  // a non-byte piece ends a byte run
  if (ty == kUnknown) {
    out += " \xe2\x81\x87 ";  // " ⁇ ", SentencePiece's surface for <unk>
    at_start_ = false;
    return out;
  }
  std::string_view p = t_.piece(id);
  // The dummy prefix the encoder added comes off again; without one (Gemma) the space is text.
  if (at_start_ && t_.add_space_prefix_ && p.substr(0, kSpace.size()) == kSpace) p.remove_prefix(kSpace.size());
  at_start_ = false;
  for (size_t i = 0; i < p.size();) {
    if (p.substr(i, kSpace.size()) == kSpace) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += p[i++];
    }
  }
  return out;
}

std::string Tokenizer::Stream::finish() {
  std::string out;
  append_utf8_lossy(pending_bytes_, &out, /*keep_tail=*/false);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  Stream s(*this);
  std::string out;
  for (int32_t id : ids) out += s.push(id);
  return out + s.finish();
}

}  // namespace altup
