// GGUF reader (versions 2 and 3, little-endian). The whole file is validated when it is
// opened — header, every metadata value, every tensor info, alignment, and that each tensor's
// bytes lie inside the file without overlapping another — so nothing downstream ever reads a
// size or offset that was not checked. Errors name the problem and, where useful, the offset.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <map>
#include <vector>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace altup {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u32", "string", "array", ...

// One metadata value. Strings and array payloads point into the file's bytes.
struct GgufValue {
  GgufType type = GgufType::U8;
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0;    // f32 and f64
  std::string_view str;

  // Arrays: element type and count; numeric/bool elements packed in `raw` (possibly
  // unaligned, read them with at<T>), string elements in `strings`, nested arrays in `items`.
  GgufType elem_type = GgufType::U8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strings;
  std::vector<GgufValue> items;

  template <class T>
  T at(uint64_t k) const {
    T v;
    std::memcpy(&v, raw + k * sizeof(T), sizeof(T));
    return v;
  }
  // A one-line rendering for listings: scalars in full, arrays as a count and a preview.
  std::string to_string(size_t max_items = 8) const;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;          // row-major: shape[0] outermost (the file stores innermost first)
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;

  TensorView view() const { return TensorView::contiguous(dtype, shape, const_cast<uint8_t*>(data)); }
};

class GgufFile {
 public:
  // Map and validate a file.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Validate bytes already in memory (tests, fuzzing). The bytes are kept by the object.
  static Result<std::unique_ptr<GgufFile>> parse(std::vector<uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  // True when the bytes are a read-only mapping of the file (open), false when they are held
  // in memory (parse): only a mapping's pages may be handed back (runtime/mapped_file.h).
  bool mapped() const;

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(std::string_view name) const;

  // Typed getters; the type must match exactly ("key X is u32, expected f32").
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  // Any integer type holding a non-negative value (writers differ between u32 and u64).
  Result<uint64_t> get_count(std::string_view key) const;
  // Arrays, checked for their element type.
  Result<const GgufValue*> get_array(std::string_view key, GgufType elem) const;

  // general.architecture, or "" when absent.
  std::string_view architecture() const;

  ~GgufFile();

 private:
  GgufFile() = default;
  static Result<std::unique_ptr<GgufFile>> parse_bytes(std::unique_ptr<GgufFile> f);

  struct Storage;
  std::unique_ptr<Storage> storage_;
  const uint8_t* bytes_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

bool is_valid_utf8(std::string_view s);

}  // namespace altup
