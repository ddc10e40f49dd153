// Malformed GGUF files: each kind of damage gives its own error naming the problem, and no
// input, however broken, crashes the reader (run this under the sanitizer build too).
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "runtime/gguf.h"
#include "tests/malformed_cases.h"

using namespace altup;
using namespace altup::test;

namespace {
std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("the valid base file parses, so each case below fails for its own reason") {
  auto f = GgufFile::parse(build(valid_spec()));
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  CHECK((*f)->tensors().size() == 2);
}

TEST_CASE("each malformed file gives its own error") {
  std::set<std::string> messages;
  const auto all = malformed_cases();
  for (const Case& c : all) {
    const std::string what = c.what;
    CAPTURE(what);
    auto f = GgufFile::parse(c.bytes);
    REQUIRE_FALSE(f.ok());
    const std::string& msg = f.error().message;
    CAPTURE(msg);
    CHECK(msg.find(c.expect) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);  // one line
    messages.insert(msg);
  }
  CHECK(messages.size() == all.size());  // no two kinds of damage read the same
}

TEST_CASE("every truncation of real files fails cleanly, with 'truncated' in each section") {
  for (const char* name : {"all_types.gguf", "aligned64.gguf", "llama_like.gguf"}) {
    const std::string fixture = name;
    CAPTURE(fixture);
    const auto full = read_file(std::string(ALTUP_FIXTURES_DIR) + "/" + name);
    REQUIRE(full.size() > 100);
    auto whole = GgufFile::parse(full);
    REQUIRE(whole.ok());
    const uint64_t data_at = (*whole)->data_offset();
    uint64_t data_end = data_at;  // trailing padding after the last tensor may be cut freely
    for (const auto& t : (*whole)->tensors()) data_end = std::max(data_end, data_at + t.offset + t.nbytes);
    // Every prefix up to the data section (all of the header, metadata and tensor infos),
    // then a stride through the data section.
    for (size_t n = 0; n < data_end; n += (n < data_at + 64 ? 1 : 61)) {
      auto f = GgufFile::parse(std::vector<uint8_t>(full.begin(), full.begin() + n));
      CAPTURE(n);
      REQUIRE_FALSE(f.ok());
      const std::string& m = f.error().message;
      const bool named = m.find("truncated") != std::string::npos || m.find("runs past the end") != std::string::npos ||
                         m.find("not a GGUF file") != std::string::npos || m.find("cannot fit") != std::string::npos ||
                         m.find("data section would start") != std::string::npos;
      CHECK_MESSAGE(named, m);
    }
  }
}

TEST_CASE("random damage never crashes, and whatever parses keeps its tensors inside the file") {
  const auto base = read_file(ALTUP_FIXTURES_DIR "/all_types.gguf");
  std::mt19937 rng(2024);
  int accepted = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    auto bytes = base;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % bytes.size();
      bytes[at] = rng() % 3 == 0 ? 0xff : static_cast<uint8_t>(rng());
    }
    auto f = GgufFile::parse(bytes);
    if (!f.ok()) continue;
    ++accepted;
    for (const auto& t : (*f)->tensors()) {
      REQUIRE(t.offset + t.nbytes + (*f)->data_offset() <= bytes.size());
    }
    for (const auto& [k, v] : (*f)->metadata()) (void)v.to_string();
  }
  MESSAGE("mutations that still parsed: " << accepted << " of 4000");
}
