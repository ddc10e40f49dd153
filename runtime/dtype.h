// Tensor element types. The ids are ggml's (and so GGUF's) type ids, so a GGUF tensor's type
// field maps to a DType without a translation table. The runtime computes with F32, F16, BF16,
// Q8_0 and Q4_0; every other ggml type is known by name and block geometry only, so that files
// using them can be validated and listed by `altup info`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "runtime/error.h"

namespace altup {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

struct DTypeTraits {
  std::string_view name;
  uint32_t block_elems;  // elements per block (1 for plain types)
  uint32_t block_bytes;  // bytes per block
  bool computable;       // the runtime has kernels for it
};

// Traits of a known type id, or nullopt for ids ggml never defined or has removed.
std::optional<DTypeTraits> dtype_traits(uint32_t id);
const DTypeTraits& traits(DType t);  // t must be a known type
inline std::string_view dtype_name(DType t) { return traits(t).name; }
std::optional<DType> dtype_from_name(std::string_view name);  // "f32", "Q8_0", ... (any case)

// Bytes of one row of n elements. Fails if n is not a multiple of the block size or the
// product overflows.
Result<uint64_t> row_bytes(DType t, uint64_t n);

// Overflow-checked helpers for size arithmetic on untrusted numbers.
bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out);
bool add_overflows(uint64_t a, uint64_t b, uint64_t* out);

// Scalar conversions, bit exact (round to nearest even), independent of compiler support
// for _Float16 so they behave the same on every target.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t b);
uint16_t fp32_to_bf16(float f);

// Block layouts of the quantized types we compute with (ggml-common.h).
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale: amax / 127
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;      // fp16 scale
  uint8_t qs[16];  // element j: low nibble of byte j; element j+16: high nibble
};
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);

// Decode n elements of a row of type t (computable types only) into fp32.
Status dequantize_row(DType t, const void* src, float* dst, uint64_t n);

}  // namespace altup
