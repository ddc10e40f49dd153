#include "runtime/tensor.h"

namespace altup {

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

TensorView TensorView::contiguous(DType dtype, const Shape& shape, void* data) {
  TensorView v;
  v.dtype = dtype;
  v.shape = shape;
  v.data = data;
  if (shape.ndim == 0) return v;
  // The innermost stride is one element (or one block for quantized types); outer strides
  // follow from whole rows.
  const DTypeTraits& tr = traits(dtype);
  int64_t stride = static_cast<int64_t>(tr.block_bytes) / static_cast<int64_t>(tr.block_elems);
  v.stride_bytes[shape.ndim - 1] = stride;
  stride = static_cast<int64_t>(shape.inner() / tr.block_elems * tr.block_bytes);
  for (int i = shape.ndim - 2; i >= 0; --i) {
    v.stride_bytes[i] = stride;
    stride *= shape.dims[i];
  }
  return v;
}

Result<uint64_t> tensor_bytes(DType dtype, const Shape& shape) {
  uint64_t rows = 1;
  for (int i = 0; i + 1 < shape.ndim; ++i) {
    if (shape.dims[i] < 0) return make_error("negative dimension in " + shape.str());
    if (mul_overflows(rows, static_cast<uint64_t>(shape.dims[i]), &rows))
      return make_error("element count of " + shape.str() + " overflows 64 bits");
  }
  if (shape.ndim > 0 && shape.inner() < 0) return make_error("negative dimension in " + shape.str());
  auto rb = row_bytes(dtype, static_cast<uint64_t>(shape.inner()));
  if (!rb) return rb.error();
  uint64_t total;
  if (mul_overflows(rows, *rb, &total)) return make_error("byte size of " + shape.str() + " overflows 64 bits");
  return total;
}

}  // namespace altup
