// The table of malformed GGUF files: one entry per kind of damage, with a phrase its error
// must contain. Shared by the reader's tests and the CLI's.
#pragma once

#include "tests/gguf_builder.h"

namespace altup::test {

struct Case {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* expect;  // a substring the error must contain
};

inline std::vector<uint8_t> with(void (*edit)(FileSpec&)) {
  FileSpec s = valid_spec();
  edit(s);
  return build(s);
}

inline std::vector<Case> malformed_cases() {
  std::vector<Case> c;
  const auto valid = build(valid_spec());
  // One case per line or two reads better than the builder chains unrolled one call a line.
  // clang-format off
  c.push_back({"empty file", {}, "not a GGUF file: only 0 bytes"});
  c.push_back({"bad magic", with([](FileSpec& s) { s.magic = 0x4c4d4747; }), "bad magic \"GGML\""});
  c.push_back({"version 1", with([](FileSpec& s) { s.version = 1; }), "unsupported GGUF version 1"});
  c.push_back({"version 4", with([](FileSpec& s) { s.version = 4; }), "unsupported GGUF version 4"});
  c.push_back({"big-endian", with([](FileSpec& s) { s.version = 0x03000000; }), "big-endian"});
  c.push_back({"truncated header", std::vector<uint8_t>(valid.begin(), valid.begin() + 12), "truncated header"});
  c.push_back({"absurd metadata count", with([](FileSpec& s) { s.n_kv_override = 1ll << 60; }), "metadata count"});
  c.push_back({"absurd tensor count", with([](FileSpec& s) { s.n_tensors_override = 1ll << 60; }), "tensor count"});
  // Truncations inside the metadata: the counts are plausible, the bytes run out.
  c.push_back({"truncated key", Bytes().put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0)
                   .put<uint64_t>(1).put<uint64_t>(20).raw({'a', 'b', 'c', 'd', 'e'}).bytes(), "truncated metadata key"});
  c.push_back({"truncated value type", Bytes().put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0)
                   .put<uint64_t>(1).str("kkkkk").put<uint16_t>(4).bytes(), "truncated metadata value type"});
  c.push_back({"truncated scalar value", Bytes().put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0)
                   .put<uint64_t>(1).str("k").put<uint32_t>(4).put<uint16_t>(1).bytes(), "truncated metadata value"});
  c.push_back({"string longer than the file", with([](FileSpec& s) {
                 s.kvs[0] = Bytes().str("general.architecture").put<uint32_t>(8).put<uint64_t>(1ull << 40).bytes(); }),
               "truncated string value"});
  c.push_back({"array count past the end", with([](FileSpec& s) {
                 s.kvs.push_back(Bytes().str("arr").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 50).bytes()); }),
               "array of 1125899906842624 elements"});
  c.push_back({"unknown value type", with([](FileSpec& s) { s.kvs.push_back(Bytes().str("x").put<uint32_t>(13).bytes()); }),
               "key x has unknown value type 13"});
  c.push_back({"unknown array element type", with([](FileSpec& s) {
                 s.kvs.push_back(Bytes().str("x").put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(0).bytes()); }),
               "array of unknown value type 77"});
  c.push_back({"non-UTF-8 key", with([](FileSpec& s) { s.kvs.push_back(kv_u32("bad\xff\xfekey", 1)); }), "is not valid UTF-8"});
  c.push_back({"empty key", with([](FileSpec& s) { s.kvs.push_back(kv_u32("", 1)); }), "is empty"});
  c.push_back({"duplicate key", with([](FileSpec& s) { s.kvs.push_back(kv_u32("test.block_count", 3)); }),
               "duplicate metadata key test.block_count"});
  c.push_back({"bool neither 0 nor 1", with([](FileSpec& s) {
                 s.kvs.push_back(Bytes().str("flag").put<uint32_t>(7).put<uint8_t>(2).bytes()); }), "is not 0 or 1"});
  c.push_back({"arrays nested too deep", with([](FileSpec& s) {
                 Bytes b;
                 b.str("deep").put<uint32_t>(9);
                 for (int k = 0; k < 6; ++k) b.put<uint32_t>(9).put<uint64_t>(1);
                 s.kvs.push_back(b.bytes()); }), "nested deeper than"});
  c.push_back({"alignment of the wrong type", with([](FileSpec& s) {
                 s.kvs.push_back(Bytes().str("general.alignment").put<uint32_t>(10).put<uint64_t>(32).bytes()); }),
               "general.alignment is u64, expected u32"});
  c.push_back({"alignment not a power of two", with([](FileSpec& s) { s.kvs.push_back(kv_u32("general.alignment", 48)); }),
               "general.alignment 48 is not a power of two"});
  c.push_back({"truncated tensor info", [] {
                 auto b = build(valid_spec());
                 FileSpec s = valid_spec();
                 s.tensors.clear();
                 s.data_bytes = 0;
                 const size_t infos_at = build(s).size();
                 b.resize(infos_at + 8 + 1 + 4 + 3);  // inside tensor a's first dimension
                 return b; }(), "truncated tensor info"});
  c.push_back({"tensor with no dimensions", with([](FileSpec& s) { s.tensors[0].ne = {}; }), "has 0 dimensions"});
  c.push_back({"tensor with five dimensions", with([](FileSpec& s) { s.tensors[0].ne = {1, 1, 1, 1, 1}; }), "has 5 dimensions"});
  c.push_back({"unknown tensor type", with([](FileSpec& s) { s.tensors[1].type = 99; }), "tensor b has unknown type 99"});
  c.push_back({"row not a multiple of the block", with([](FileSpec& s) { s.tensors[0].type = 8; s.tensors[0].ne = {33, 1}; }),
               "not a multiple of the Q8_0 block size 32"});
  c.push_back({"element count overflow", with([](FileSpec& s) { s.tensors[0].ne = {1ull << 40, 1ull << 40}; }),
               "element count overflows"});
  c.push_back({"byte size overflow", with([](FileSpec& s) { s.tensors[0].ne = {1ull << 62, 1}; }), "overflows 64 bits"});
  c.push_back({"misaligned offset", with([](FileSpec& s) { s.tensors[1].offset = 36; }),
               "tensor b: offset 36 is not a multiple of the alignment 32"});
  c.push_back({"offset past the end", with([](FileSpec& s) { s.tensors[1].offset = 1 << 20; }), "runs past the end of the file"});
  c.push_back({"offset that overflows", with([](FileSpec& s) { s.tensors[1].offset = UINT64_MAX - 31; }),
               "runs past the end of the file"});
  c.push_back({"stored bytes fewer than shape x dtype", with([](FileSpec& s) { s.data_bytes = 48; }),
               "tensor b: data at offset 32 (32 bytes) runs past the end"});
  c.push_back({"data section missing", with([](FileSpec& s) { s.data_bytes = 0; s.alignment = 1; }),
               "data section would start"});
  c.push_back({"overlapping tensors", with([](FileSpec& s) { s.tensors[1].offset = 0; s.tensors[1].ne = {4}; }),
               "tensors a and b overlap"});
  c.push_back({"duplicate tensor", with([](FileSpec& s) { s.tensors[1].name = "a"; }), "duplicate tensor name a"});
  c.push_back({"empty tensor name", with([](FileSpec& s) { s.tensors[1].name = ""; }), "tensor #1 has an empty name"});
  c.push_back({"non-UTF-8 tensor name", with([](FileSpec& s) { s.tensors[1].name = "w\xc0\xaf"; }),
               "tensor #1 name is not valid UTF-8"});
  // clang-format on
  return c;
}

}  // namespace altup::test
