// Test helper: writes GGUF bytes field by field, so tests can make exactly the (often
// malformed) file a case needs. Not used by the library.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace altup::test {

class Bytes {
 public:
  template <class T>
  Bytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b_.insert(b_.end(), p, p + sizeof v);
    return *this;
  }
  Bytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const std::vector<uint8_t>& v) {
    b_.insert(b_.end(), v.begin(), v.end());
    return *this;
  }
  Bytes& zeros(size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    while (b_.size() % alignment) b_.push_back(0);
    return *this;
  }
  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// One metadata pair, encoded: key, type, value.
inline std::vector<uint8_t> kv_u32(std::string_view key, uint32_t v) {
  return Bytes().str(key).put<uint32_t>(4).put(v).bytes();
}
inline std::vector<uint8_t> kv_str(std::string_view key, std::string_view v) {
  return Bytes().str(key).put<uint32_t>(8).str(v).bytes();
}
inline std::vector<uint8_t> kv_i32_array(std::string_view key, const std::vector<int32_t>& v) {
  Bytes b;
  b.str(key).put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(v.size());
  for (int32_t x : v) b.put(x);
  return b.bytes();
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // GGUF order: innermost first
  uint32_t type = 0;         // F32
  uint64_t offset = 0;
};

struct FileSpec {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  std::vector<std::vector<uint8_t>> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t data_bytes = 0;  // bytes of (zero) tensor data after the aligned data start
  uint32_t alignment = 32;  // only used to pad; add general.alignment to kvs to declare it
  int64_t n_kv_override = -1;
  int64_t n_tensors_override = -1;
};

inline std::vector<uint8_t> build(const FileSpec& s) {
  Bytes b;
  b.put(s.magic).put(s.version);
  b.put<uint64_t>(s.n_tensors_override >= 0 ? static_cast<uint64_t>(s.n_tensors_override) : s.tensors.size());
  b.put<uint64_t>(s.n_kv_override >= 0 ? static_cast<uint64_t>(s.n_kv_override) : s.kvs.size());
  for (const auto& kv : s.kvs) b.raw(kv);
  for (const auto& t : s.tensors) {
    b.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) b.put(d);
    b.put(t.type).put(t.offset);
  }
  if (!s.tensors.empty() || s.data_bytes) b.pad_to(s.alignment);
  b.zeros(s.data_bytes);
  return b.bytes();
}

// A small valid file: two metadata keys, two f32 tensors.
inline FileSpec valid_spec() {
  FileSpec s;
  s.kvs.push_back(kv_str("general.architecture", "test"));
  s.kvs.push_back(kv_u32("test.block_count", 2));
  s.tensors.push_back({"a", {4, 2}, 0, 0});  // [2, 4] f32: 32 bytes
  s.tensors.push_back({"b", {8}, 0, 32});    // [8] f32: 32 bytes
  s.data_bytes = 64;
  return s;
}

}  // namespace altup::test
