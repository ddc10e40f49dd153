// Tensor element types. The ids are ggml's (and so GGUF's) type ids, so a GGUF tensor's type
// field maps to a DType without a translation table. The runtime computes with F32, F16, BF16,
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (what llama.cpp's
// llama-quantize writes for Q2_K / Q3_K_* / Q4_K_M / Q5_K_M files) and IQ4_NL, IQ4_XS; every
// other ggml type is known by name and block geometry only, so that files using them can be
// validated and listed by `altup info`.
#pragma once

#include <cstddef>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

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
// Every type the runtime computes with (matmul, the embedding lookup), F32 first, then by id:
// what a model accepts for its matrices and tables.
const std::vector<DType>& computable_dtypes();

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

// K-quants: super-blocks of 256 values (ggml-common.h). Every field is a byte array so the
// structs have no padding and may sit at any address.
constexpr int kQK = 256;
struct BlockQ4_K {     // value = d * sc[s] * q - dmin * m[s], s = the value's sub-block of 32
  uint8_t d[2];        // fp16 super-block scale of the 6-bit scales
  uint8_t dmin[2];     // fp16 super-block scale of the 6-bit mins
  uint8_t scales[12];  // 8 scales and 8 mins, 6 bits each (kquant_scale_min)
  uint8_t qs[128];     // 4-bit q: per 64 values, 32 bytes; low nibbles first, then high
};
struct BlockQ5_K {  // as Q4_K with a fifth bit: q = nibble + 16 * bit s of qh[value % 32]
  uint8_t d[2];
  uint8_t dmin[2];
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6_K {  // value = d * scales[i / 16] * (q - 32), q 6 bits: 4 in ql, 2 in qh
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint8_t d[2];  // fp16, last
};
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// Scale and min of sub-block j (0..7) of a Q4_K / Q5_K block: j < 4 keep their 6 bits in
// bytes j and j + 4; j >= 4 have their low 4 bits in byte j + 4 and their top 2 bits in the
// spare top bits of bytes j - 4 and j.
inline void kquant_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// All 8 scales and 8 mins of a Q4_K / Q5_K block at once (the same values as
// kquant_scale_min), worked on as 32-bit words: sc[j] and m[j] for j = 0..7.
inline void kquant_scales_mins(const uint8_t* s, uint8_t sc[8], uint8_t m[8]) {
  static_assert(std::endian::native == std::endian::little, "byte j of a word is byte j in memory");
  uint32_t w[3];
  std::memcpy(w, s, 12);
  const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  const uint32_t sc_lo = w[0] & low6, m_lo = w[1] & low6;
  const uint32_t sc_hi = (w[2] & low4) | (((w[0] >> 6) & low2) << 4);
  const uint32_t m_hi = ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

// 6-bit value i (0..255) of a Q6_K block: per half of 128, value 32 * g + l (g = 0..3,
// l = 0..31) has its low 4 bits in ql[64h + 32(g & 1) + l] (low nibble for g < 2, high for
// g >= 2) and its top 2 bits in bits 2g..2g+1 of qh[32h + l].
inline int q6k_value(const BlockQ6_K& b, int i) {
  const int h = i / 128, g = (i % 128) / 32, l = i % 32;
  const uint8_t lo = b.ql[64 * h + 32 * (g & 1) + l];
  const int low4 = g < 2 ? (lo & 0x0F) : (lo >> 4);
  const int top2 = (b.qh[32 * h + l] >> (2 * g)) & 3;
  return (low4 | (top2 << 4)) - 32;
}

// Integer l (0..31) of sub-block j (0..7) of a Q4_K / Q5_K block (qh null for Q4_K): the low
// nibble of qs[32(j / 2) + l] for even j, the high one for odd j; Q5_K adds bit j of qh[l] as
// bit 4.
inline int q45k_value(const uint8_t* qs, const uint8_t* qh, int j, int l) {
  const uint8_t b = qs[32 * (j / 2) + l];
  int v = j % 2 == 0 ? (b & 0x0F) : (b >> 4);
  if (qh) v |= ((qh[l] >> j) & 1) << 4;
  return v;
}

// Scale g (0..15) of a Q3_K block, less 32 (sc: its 12 packed scale bytes): the low 4 bits in
// the low (g < 8) or high (g >= 8) nibble of byte g % 8, the top 2 in bits 2(g / 4) of byte
// 8 + g % 4.
inline int q3k_scale(const uint8_t* sc, int g) {
  const int low = g < 8 ? (sc[g] & 0x0F) : (sc[g - 8] >> 4);
  return (low | ((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4) - 32;
}

// Scale of sub-block s (0..7) of an IQ4_XS block (blk: its 136 bytes: fp16 d, scales_h,
// scales_l[4], qs[128]), less 32: 4 bits in nibble s % 2 of scales_l[s / 2], 2 in bits 2s of
// the little-endian scales_h.
inline int iq4xs_scale(const uint8_t* blk, int s) {
  const int scales_h = blk[2] | blk[3] << 8;
  return (((blk[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | ((scales_h >> (2 * s)) & 3) << 4) - 32;
}

// IQ4_NL / IQ4_XS: the 16 values a 4-bit index stands for (before the block's scale).
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Decode n elements of a row of type t (computable types only) into fp32.
Status dequantize_row(DType t, const void* src, float* dst, uint64_t n);

}  // namespace altup
