// Test helper: a GGUF file as an editable list of metadata and tensors, so a test can take a
// real model and change exactly one thing (a key's value or type, a tensor's shape or dtype)
// and write it back as a structurally valid file. Not used by the library.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/gguf.h"
#include "tests/gguf_builder.h"

namespace altup::test {

// A metadata value encoded as GGUF stores it after the key: type, then payload.
inline void encode_value(Bytes& b, const GgufValue& v, bool with_type = true) {
  if (with_type) b.put<uint32_t>(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case GgufType::U8: b.put<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case GgufType::I8: b.put<int8_t>(static_cast<int8_t>(v.i)); break;
    case GgufType::U16: b.put<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case GgufType::I16: b.put<int16_t>(static_cast<int16_t>(v.i)); break;
    case GgufType::U32: b.put<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case GgufType::I32: b.put<int32_t>(static_cast<int32_t>(v.i)); break;
    case GgufType::F32: b.put<float>(static_cast<float>(v.f)); break;
    case GgufType::BOOL: b.put<uint8_t>(v.u ? 1 : 0); break;
    case GgufType::STRING: b.str(v.str); break;
    case GgufType::U64: b.put<uint64_t>(v.u); break;
    case GgufType::I64: b.put<int64_t>(v.i); break;
    case GgufType::F64: b.put<double>(v.f); break;
    case GgufType::ARRAY: {
      b.put<uint32_t>(static_cast<uint32_t>(v.elem_type)).put<uint64_t>(v.count);
      if (v.elem_type == GgufType::STRING) {
        for (auto s : v.strings) b.str(s);
      } else if (v.elem_type == GgufType::ARRAY) {
        for (const auto& item : v.items) encode_value(b, item, false);
      } else {
        static const size_t kSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        const size_t n = v.count * kSize[static_cast<size_t>(v.elem_type)];
        b.raw(std::vector<uint8_t>(v.raw, v.raw + n));
      }
      break;
    }
  }
}

struct EditableGguf {
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // GGUF order: innermost first
    DType dtype;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kvs;  // key -> encoded type + value
  std::vector<Tensor> tensors;

  static EditableGguf from(const GgufFile& f) {
    EditableGguf e;
    for (const auto& [key, value] : f.metadata()) {
      if (key == "general.alignment") continue;  // written back with the default alignment
      Bytes b;
      encode_value(b, value);
      e.kvs.emplace_back(key, b.bytes());
    }
    for (const auto& t : f.tensors()) {
      std::vector<uint64_t> ne;
      for (int k = t.shape.ndim - 1; k >= 0; --k) ne.push_back(static_cast<uint64_t>(t.shape.dims[k]));
      e.tensors.push_back({t.name, ne, t.dtype, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
    }
    return e;
  }

  // Replaces (or adds) a key with an already encoded value (type + payload).
  void set_raw(const std::string& key, std::vector<uint8_t> encoded) {
    for (auto& kv : kvs)
      if (kv.first == key) {
        kv.second = std::move(encoded);
        return;
      }
    kvs.emplace_back(key, std::move(encoded));
  }
  template <class T>
  void set(const std::string& key, uint32_t type, T value) {
    set_raw(key, Bytes().put<uint32_t>(type).put(value).bytes());
  }
  void set_u32(const std::string& key, uint32_t v) { set(key, 4, v); }
  void set_u64(const std::string& key, uint64_t v) { set(key, 10, v); }
  void set_i32(const std::string& key, int32_t v) { set(key, 5, v); }
  void set_f32(const std::string& key, float v) { set(key, 6, v); }
  void set_bool(const std::string& key, bool v) { set(key, 7, static_cast<uint8_t>(v)); }
  void set_str(const std::string& key, const std::string& v) { set_raw(key, Bytes().put<uint32_t>(8).str(v).bytes()); }
  void erase(const std::string& key) {
    kvs.erase(std::remove_if(kvs.begin(), kvs.end(), [&](const auto& kv) { return kv.first == key; }), kvs.end());
  }
  Tensor* tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  void erase_tensor(const std::string& name) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [&](const Tensor& t) { return t.name == name; }),
                  tensors.end());
  }
  // Gives a tensor a new dtype and shape (GGUF order) with zero bytes of the right size.
  void retype(const std::string& name, DType dt, std::vector<uint64_t> ne) {
    Tensor* t = tensor(name);
    Shape s;
    s.ndim = static_cast<int>(ne.size());
    for (size_t k = 0; k < ne.size(); ++k) s.dims[ne.size() - 1 - k] = static_cast<int64_t>(ne[k]);
    t->dtype = dt;
    t->ne = std::move(ne);
    t->data.assign(static_cast<size_t>(*tensor_bytes(dt, s)), 0);
  }

  std::vector<uint8_t> write() const {
    Bytes b;
    b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(tensors.size()).put<uint64_t>(kvs.size());
    for (const auto& [key, value] : kvs) b.str(key).raw(value);
    uint64_t offset = 0;
    for (const auto& t : tensors) {
      b.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) b.put(d);
      b.put<uint32_t>(static_cast<uint32_t>(t.dtype)).put<uint64_t>(offset);
      offset += (t.data.size() + 31) / 32 * 32;
    }
    b.pad_to(32);
    for (const auto& t : tensors) b.raw(t.data).pad_to(32);
    return b.bytes();
  }
};

}  // namespace altup::test
