#include "runtime/dtype.h"

#include <array>
#include <cctype>
#include <cstring>
#include <string>

namespace altup {
namespace {

struct Entry {
  uint32_t id;
  DTypeTraits traits;
};

// Block geometry of every ggml type, as gguf-py's GGML_QUANT_SIZES lists it.
constexpr std::array<Entry, 34> kTypes = {{
    {0, {"F32", 1, 4, true}},          {1, {"F16", 1, 2, true}},          {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},       {6, {"Q5_0", 32, 22, true}},       {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},       {9, {"Q8_1", 32, 40, false}},      {10, {"Q2_K", 256, 84, false}},
    {11, {"Q3_K", 256, 110, false}},   {12, {"Q4_K", 256, 144, true}},    {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}},    {15, {"Q8_K", 256, 292, false}},   {16, {"IQ2_XXS", 256, 66, false}},
    {17, {"IQ2_XS", 256, 74, false}},  {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},   {21, {"IQ3_S", 256, 110, false}},  {22, {"IQ2_S", 256, 82, false}},
    {23, {"IQ4_XS", 256, 136, false}}, {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},        {27, {"I64", 1, 8, false}},        {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", 256, 56, false}},   {30, {"BF16", 1, 2, true}},        {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},   {39, {"MXFP4", 32, 17, false}},    {40, {"NVFP4", 64, 36, false}},
    {41, {"Q1_0", 128, 18, false}},
}};

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Q4_1 (d, m, 16 bytes of nibbles): value = d * q + m. Q5_0 (d, 32 high bits, nibbles):
// value = d * (q - 16). Q5_1 (d, m, high bits, nibbles): value = d * q + m. Nibble j of a
// block is the low half of byte j for j < 16, the high half of byte j - 16 after that; the
// fifth bit of value j is bit j of the little-endian 32-bit qh.
Status dequantize_legacy(DType t, const uint8_t* p, float* dst, uint64_t n) {
  const DTypeTraits& tr = traits(t);
  if (n % 32) return make_error(std::string(tr.name) + " row length must be a multiple of 32");
  for (uint64_t b = 0; b < n / 32; ++b, p += tr.block_bytes) {
    const float d = fp16_to_fp32(u16_at(p));
    const bool has_min = t != DType::Q5_0;
    const float m = has_min ? fp16_to_fp32(u16_at(p + 2)) : 0.0f;
    const uint8_t* q = p + (has_min ? 4 : 2);
    uint32_t qh = 0;
    if (t != DType::Q4_1) {
      std::memcpy(&qh, q, 4);
      q += 4;
    }
    for (int j = 0; j < 32; ++j) {
      int v = j < 16 ? (q[j] & 0x0F) : (q[j - 16] >> 4);
      if (t != DType::Q4_1) v |= static_cast<int>((qh >> j) & 1u) << 4;
      if (t == DType::Q5_0)
        dst[b * 32 + j] = d * static_cast<float>(v - 16);
      else
        dst[b * 32 + j] = d * static_cast<float>(v) + m;  // two roundings, as gguf: no fma
    }
  }
  return {};
}

// K-quants, in the gguf package's order of operations: (d * scale) first, then times q, then
// minus (dmin * min). The project builds with -ffp-contract=off so no fma merges them.
Status dequantize_k(DType t, const uint8_t* p, float* dst, uint64_t n) {
  const DTypeTraits& tr = traits(t);
  if (n % kQK) return make_error(std::string(tr.name) + " row length must be a multiple of 256");
  for (uint64_t b = 0; b < n / kQK; ++b, p += tr.block_bytes, dst += kQK) {
    if (t == DType::Q6_K) {
      BlockQ6_K blk;
      std::memcpy(&blk, p, sizeof blk);
      const float d = fp16_to_fp32(u16_at(blk.d));
      for (int i = 0; i < kQK; ++i) {
        const float dl = d * static_cast<float>(blk.scales[i / 16]);
        dst[i] = dl * static_cast<float>(q6k_value(blk, i));
      }
      continue;
    }
    // Q4_K / Q5_K share the header (d, dmin, scales); Q5_K has qh before qs.
    const float d = fp16_to_fp32(u16_at(p)), dmin = fp16_to_fp32(u16_at(p + 2));
    const uint8_t* scales = p + 4;
    const uint8_t* qh = t == DType::Q5_K ? p + 16 : nullptr;
    const uint8_t* qs = p + (t == DType::Q5_K ? 48 : 16);
    for (int s = 0; s < 8; ++s) {  // sub-block s: values 32s .. 32s + 31
      int sc, m;
      kquant_scale_min(scales, s, &sc, &m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      const uint8_t* q = qs + 32 * (s / 2);
      for (int l = 0; l < 32; ++l) {
        int v = s % 2 == 0 ? (q[l] & 0x0F) : (q[l] >> 4);
        if (qh) v |= ((qh[l] >> s) & 1) << 4;
        dst[32 * s + l] = dl * static_cast<float>(v) - ml;
      }
    }
  }
  return {};
}

}  // namespace

std::optional<DTypeTraits> dtype_traits(uint32_t id) {
  for (const Entry& e : kTypes)
    if (e.id == id) return e.traits;
  return std::nullopt;
}

const DTypeTraits& traits(DType t) {
  for (const Entry& e : kTypes)
    if (e.id == static_cast<uint32_t>(t)) return e.traits;
  return kTypes[0].traits;  // unreachable for a valid DType
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const Entry& e : kTypes) {
    if (e.traits.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == e.traits.name[i];
    if (same) return static_cast<DType>(e.id);
  }
  return std::nullopt;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

Result<uint64_t> row_bytes(DType t, uint64_t n) {
  const DTypeTraits& tr = traits(t);
  if (n % tr.block_elems != 0)
    return make_error("a row of " + std::to_string(n) + " elements is not a multiple of the " + std::string(tr.name) +
                      " block size " + std::to_string(tr.block_elems));
  uint64_t bytes;
  if (mul_overflows(n / tr.block_elems, tr.block_bytes, &bytes)) return make_error("row size overflows 64 bits");
  return bytes;
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_f32(sign);
  // Subnormal half: value = mant * 2^-24, exact in fp32.
  const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // nan stays nan
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): round abs * 2^24 to an integer, ties to even.
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24 for exponents in range
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits, ties to even.
  uint32_t r = abs - (112u << 23);
  r += 0xfffu + ((r >> 13) & 1u);
  return sign | static_cast<uint16_t>(r >> 13);
}

float bf16_to_fp32(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }

uint16_t fp32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

Status dequantize_row(DType t, const void* src, float* dst, uint64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32: std::memcpy(dst, p, n * 4); return {};
    case DType::F16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return {};
    case DType::BF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return {};
    case DType::Q8_0:
      if (n % 32) return make_error("Q8_0 row length must be a multiple of 32");
      for (uint64_t b = 0; b < n / 32; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, p + b * sizeof(BlockQ8_0), sizeof blk);
        const float d = fp16_to_fp32(blk.d);
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * blk.qs[j];
      }
      return {};
    case DType::Q4_0:
      if (n % 32) return make_error("Q4_0 row length must be a multiple of 32");
      for (uint64_t b = 0; b < n / 32; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, p + b * sizeof(BlockQ4_0), sizeof blk);
        const float d = fp16_to_fp32(blk.d);
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = d * static_cast<float>((blk.qs[j] & 0x0f) - 8);
          dst[b * 32 + j + 16] = d * static_cast<float>((blk.qs[j] >> 4) - 8);
        }
      }
      return {};
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1: return dequantize_legacy(t, p, dst, n);
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: return dequantize_k(t, p, dst, n);
    default: return make_error("no decoder for tensor type " + std::string(dtype_name(t)));
  }
}

}  // namespace altup
