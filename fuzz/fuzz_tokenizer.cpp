// libFuzzer target: the tokenizer of a real vocabulary (tests/fixtures/tokenizer_kjv.gguf,
// SentencePiece BPE with byte fallback). The first byte picks what the rest is: text to
// encode (then decode again), or token ids, in range or not, to decode whole and streamed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "runtime/tokenizer.h"

namespace {
const altup::Tokenizer* tokenizer() {
  static const altup::Tokenizer* t = [] {
    auto f = altup::GgufFile::open(ALTUP_FUZZ_TOKENIZER);
    if (!f) __builtin_trap();  // the fixture is part of the checkout: missing means a broken setup
    static std::unique_ptr<altup::GgufFile> file = std::move(*f);
    auto tok = altup::Tokenizer::from_gguf(*file);
    if (!tok) __builtin_trap();
    static altup::Tokenizer keep = std::move(*tok);
    return &keep;
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const altup::Tokenizer& tok = *tokenizer();
  const uint8_t mode = data[0];
  ++data, --size;
  if (mode & 1) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto ids = tok.encode(text, mode & 2);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) __builtin_trap();  // encode must give valid ids
    (void)tok.decode(ids);
  } else {
    std::vector<int32_t> ids(size / 4);
    if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
    if (mode & 2)
      for (int32_t& id : ids) id = static_cast<int32_t>(static_cast<uint32_t>(id) % (tok.vocab_size() + 3u));
    (void)tok.decode(ids);
    altup::Tokenizer::Stream stream(tok);
    for (int32_t id : ids) (void)stream.push(id);
    (void)stream.finish();
  }
  return 0;
}
