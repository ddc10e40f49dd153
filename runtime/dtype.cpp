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
    {0, {"F32", 1, 4, true}},         {1, {"F16", 1, 2, true}},          {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},      {6, {"Q5_0", 32, 22, true}},       {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},      {9, {"Q8_1", 32, 40, false}},      {10, {"Q2_K", 256, 84, true}},
    {11, {"Q3_K", 256, 110, true}},   {12, {"Q4_K", 256, 144, true}},    {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}},   {15, {"Q8_K", 256, 292, false}},   {16, {"IQ2_XXS", 256, 66, false}},
    {17, {"IQ2_XS", 256, 74, false}}, {18, {"IQ3_XXS", 256, 98, false}}, {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, true}},   {21, {"IQ3_S", 256, 110, false}},  {22, {"IQ2_S", 256, 82, false}},
    {23, {"IQ4_XS", 256, 136, true}}, {24, {"I8", 1, 1, false}},         {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},       {27, {"I64", 1, 8, false}},        {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", 256, 56, false}},  {30, {"BF16", 1, 2, true}},        {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},  {39, {"MXFP4", 32, 17, false}},    {40, {"NVFP4", 64, 36, false}},
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
      for (int l = 0; l < 32; ++l) dst[32 * s + l] = dl * static_cast<float>(q45k_value(qs, qh, s, l)) - ml;
    }
  }
  return {};
}

// The 2- and 3-bit K-quants (llama-quantize's Q2_K and Q3_K_S / M / L files). Both walk a
// super-block as two halves of 128 values; in half h, 2-bit field j (bits 2j, 2j + 1) of
// qs[32h + l] is value 128h + 32j + l, and each 16 values have their own scale.
//   Q2_K (scales[16], qs[64], d, dmin): scale byte g = sc | m << 4 (4 bits each),
//        value = (d * sc) * q - (dmin * m).
//   Q3_K (hmask[32], qs[64], scales[12], d): 6-bit scales (q3k_scale, less 32 already);
//        value = (d * scale) * (q - 4 + 4 * hbit), where hbit is bit 4h + j of hmask[l].
// The order of operations is the gguf package's (its dequantize_blocks).
Status dequantize_low_k(DType t, const uint8_t* p, float* dst, uint64_t n) {
  const DTypeTraits& tr = traits(t);
  if (n % kQK) return make_error(std::string(tr.name) + " row length must be a multiple of 256");
  const bool three = t == DType::Q3_K;
  for (uint64_t b = 0; b < n / kQK; ++b, p += tr.block_bytes, dst += kQK) {
    const uint8_t* hmask = p;                     // Q3_K only
    const uint8_t* qs = three ? p + 32 : p + 16;  // 64 bytes of 2-bit fields
    const uint8_t* sc = three ? p + 96 : p;       // Q3_K: 12 packed bytes; Q2_K: 16 bytes
    const float d = fp16_to_fp32(u16_at(three ? p + 108 : p + 80));
    const float dmin = three ? 0.0f : fp16_to_fp32(u16_at(p + 82));
    // Loops over whole runs of 16 values with one scale (simple enough to vectorize):
    // half h, 2-bit field j, run r of values 128h + 32j + 16r .. + 15, scale g = 8h + 2j + r.
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 4; ++j)
        for (int r = 0; r < 2; ++r) {
          const int g = 8 * h + 2 * j + r;
          const uint8_t* q = qs + 32 * h + 16 * r;
          float* out = dst + 128 * h + 32 * j + 16 * r;
          if (three) {
            const float dl = d * static_cast<float>(q3k_scale(sc, g));
            const uint8_t* hm = hmask + 16 * r;
            const int bit = 4 * h + j;
            for (int l = 0; l < 16; ++l)
              out[l] = dl * static_cast<float>(((q[l] >> (2 * j)) & 3) - 4 + 4 * ((hm[l] >> bit) & 1));
          } else {
            const float dl = d * static_cast<float>(sc[g] & 0x0F), ml = dmin * static_cast<float>(sc[g] >> 4);
            for (int l = 0; l < 16; ++l) out[l] = dl * static_cast<float>((q[l] >> (2 * j)) & 3) - ml;
          }
        }
  }
  return {};
}

// IQ4_NL (d, qs[16]) and IQ4_XS (d, scales_h, scales_l[4], qs[128]): 4-bit indices into a
// fixed non-linear table, 32 values per block (IQ4_XS: 8 per super-block of 256, each with
// a 6-bit scale, iq4xs_scale). Index j < 16 of a block of 32 is the low nibble of its byte j, j >= 16 the high
// nibble of byte j - 16. value = d * table[index] (IQ4_XS: (d * (scale - 32)) * table[index]).
Status dequantize_iq4(DType t, const uint8_t* p, float* dst, uint64_t n) {
  const DTypeTraits& tr = traits(t);
  const uint64_t per = tr.block_elems;
  if (n % per) return make_error(std::string(tr.name) + " row length must be a multiple of " + std::to_string(per));
  const bool xs = t == DType::IQ4_XS;
  for (uint64_t b = 0; b < n / per; ++b, p += tr.block_bytes) {
    const float d = fp16_to_fp32(u16_at(p));
    const uint8_t* qs = p + (xs ? 8 : 2);
    for (uint64_t s = 0; s < per / 32; ++s, qs += 16, dst += 32) {
      const float dl = xs ? d * static_cast<float>(iq4xs_scale(p, static_cast<int>(s))) : d;
      for (int j = 0; j < 16; ++j) dst[j] = dl * static_cast<float>(kIq4Values[qs[j] & 0x0F]);
      for (int j = 0; j < 16; ++j) dst[16 + j] = dl * static_cast<float>(kIq4Values[qs[j] >> 4]);
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

const std::vector<DType>& computable_dtypes() {
  static const std::vector<DType> types = [] {
    std::vector<DType> v;
    for (const Entry& e : kTypes)
      if (e.traits.computable) v.push_back(static_cast<DType>(e.id));
    return v;
  }();
  return types;
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
    case DType::Q2_K:
    case DType::Q3_K: return dequantize_low_k(t, p, dst, n);
    case DType::IQ4_NL:
    case DType::IQ4_XS: return dequantize_iq4(t, p, dst, n);
    default: return make_error("no decoder for tensor type " + std::string(dtype_name(t)));
  }
}

}  // namespace altup
