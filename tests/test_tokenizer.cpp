// The tokenizer against the sentencepiece library (fixtures/make_tokenizer_fixtures.py): the
// same ids for > 10,000 lines (a quarter of the KJV, unicode, emoji, whitespace runs, empty
// lines, digits, control characters), the same text back from those ids and from random id
// sequences, and streaming decode equal to whole decode; for the demo's vocabulary and for a
// Gemma-style one (no dummy prefix, turn markers and newline pieces, chat-formatted lines).
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "runtime/tokenizer.h"

using namespace altup;

namespace {

struct Reader {
  std::vector<uint8_t> buf;
  size_t at = 0;
  uint32_t u32() {
    REQUIRE(at + 4 <= buf.size());
    uint32_t v;
    std::memcpy(&v, buf.data() + at, 4);
    at += 4;
    return v;
  }
  std::string bytes(size_t n) {
    REQUIRE(at + n <= buf.size());
    std::string s(reinterpret_cast<const char*>(buf.data() + at), n);
    at += n;
    return s;
  }
  std::vector<int32_t> ids(size_t n) {
    std::vector<int32_t> v(n);
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(at + 2 <= buf.size());
      v[i] = buf[at] | (buf[at + 1] << 8);
      at += 2;
    }
    return v;
  }
};

Tokenizer load(const char* name = "tokenizer_kjv.gguf") {
  auto f = GgufFile::open(std::string(ALTUP_FIXTURES_DIR) + "/" + name);
  REQUIRE(f.ok());
  auto t = Tokenizer::from_gguf(**f);
  REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
  return *t;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

// Every line of a case file (make_tokenizer_fixtures.py's layout) against the library.
void check_cases(const Tokenizer& tok, const char* cases) {
  std::ifstream in(std::string(ALTUP_FIXTURES_DIR) + "/" + cases, std::ios::binary);
  REQUIRE(in.good());
  Reader r{{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()}};
  const uint32_t n = r.u32();
  REQUIRE(n >= 10000);
  int encode_mismatch = 0, decode_mismatch = 0;
  for (uint32_t c = 0; c < n; ++c) {
    const std::string text = r.bytes(r.u32());
    const auto want = r.ids(r.u32());
    const uint32_t dl = r.u32();
    const std::string want_text = dl == 0xFFFFFFFFu ? text : r.bytes(dl);
    const auto got = tok.encode(text, /*add_bos=*/false);
    if (got != want && ++encode_mismatch <= 5)
      FAIL_CHECK("encode of \"" << text << "\": " << show(got) << "vs sentencepiece " << show(want));
    const std::string back = tok.decode(want);
    if (back != want_text && ++decode_mismatch <= 5)
      FAIL_CHECK("decode of " << show(want) << ": \"" << back << "\" vs \"" << want_text << "\"");
  }
  CHECK(encode_mismatch == 0);
  CHECK(decode_mismatch == 0);
  const uint32_t nd = r.u32();
  int random_mismatch = 0;
  for (uint32_t c = 0; c < nd; ++c) {
    const auto ids = r.ids(r.u32());
    const std::string want = r.bytes(r.u32());
    const std::string got = tok.decode(ids);
    if (got != want && ++random_mismatch <= 5)
      FAIL_CHECK("decode of " << show(ids) << ": \"" << got << "\" vs \"" << want << "\"");
    // Streaming gives the same text, token by token.
    Tokenizer::Stream s(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += s.push(id);
    streamed += s.finish();
    CHECK(streamed == got);
  }
  CHECK(random_mismatch == 0);
  CHECK(r.at == r.buf.size());
}

}  // namespace

TEST_CASE("encode and decode agree with the sentencepiece library on every fixture line") {
  const Tokenizer tok = load();
  CHECK(tok.vocab_size() == 2048);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  check_cases(tok, "tokenizer_cases.bin");
}

TEST_CASE("a Gemma-style vocabulary: turn markers, control tokens, newlines, no dummy prefix") {
  const Tokenizer tok = load("tokenizer_gemma.gguf");
  CHECK(tok.vocab_size() == 3000);
  CHECK(tok.bos() == 2);
  CHECK(tok.eos() == 1);
  check_cases(tok, "tokenizer_gemma_cases.bin");
  // The turn markers are single tokens, in text too.
  const auto ids = tok.encode("<start_of_turn>user\nhi<end_of_turn>", false);
  REQUIRE(ids.size() >= 3);
  CHECK(tok.piece(ids.front()) == "<start_of_turn>");
  CHECK(tok.piece(ids.back()) == "<end_of_turn>");
}

TEST_CASE("streaming holds back an unfinished character until it completes") {
  const Tokenizer tok = load();
  const auto ids = tok.encode("🚀", false);  // "▁" then four byte tokens
  REQUIRE(ids.size() == 5);
  Tokenizer::Stream s(tok);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += s.push(ids[i]);
  CHECK(out.empty());
  out += s.push(ids.back());
  CHECK(out == "🚀");
  CHECK(tok.encode("", true) == std::vector<int32_t>{1});
}

TEST_CASE("tokenizers that are not SentencePiece BPE are refused with a reason") {
  auto f = GgufFile::open(ALTUP_FIXTURES_DIR "/all_types.gguf");
  REQUIRE(f.ok());
  auto t = Tokenizer::from_gguf(**f);
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().message == "missing key tokenizer.ggml.model");
}
