// A tensor view: dtype, shape, byte strides and a data pointer it does not own.
// Row-major as in PyTorch: shape[0] is the outermost dimension, shape[ndim-1] the innermost,
// which is contiguous. (GGUF stores dimensions innermost-first; the reader reverses them.)
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "runtime/dtype.h"

namespace altup {

constexpr int kMaxDims = 4;

struct Shape {
  std::array<int64_t, kMaxDims> dims{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    for (int64_t v : d) dims[ndim++] = v;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t& operator[](int i) { return dims[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
  }
  int64_t inner() const { return ndim ? dims[ndim - 1] : 1; }  // row length
  int64_t rows() const { return ndim ? numel() / (dims[ndim - 1] ? dims[ndim - 1] : 1) : 1; }
  bool operator==(const Shape& o) const {
    if (ndim != o.ndim) return false;
    for (int i = 0; i < ndim; ++i)
      if (dims[i] != o.dims[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2048, 256]"
};

struct TensorView {
  DType dtype = DType::F32;
  Shape shape;
  std::array<int64_t, kMaxDims> stride_bytes{};  // stride of each dimension in bytes
  void* data = nullptr;

  // A contiguous view of `shape` over `data`.
  static TensorView contiguous(DType dtype, const Shape& shape, void* data);

  int64_t numel() const { return shape.numel(); }
  int64_t rows() const { return shape.rows(); }
  int64_t cols() const { return shape.inner(); }
  uint64_t row_stride() const { return shape.ndim >= 2 ? stride_bytes[shape.ndim - 2] : 0; }
  template <class T>
  T* row(int64_t r) const {  // r-th row of a tensor viewed as [rows, cols]
    return reinterpret_cast<T*>(static_cast<char*>(data) + r * static_cast<int64_t>(row_stride()));
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Bytes of a contiguous tensor of this dtype and shape (rows x row_bytes), or an error.
Result<uint64_t> tensor_bytes(DType dtype, const Shape& shape);

}  // namespace altup
