// dtype geometry against gguf-py's GGML_QUANT_SIZES (recorded in the fixtures), and the
// scalar fp16 / bf16 conversions against the compiler's own _Float16 and known bit patterns.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "runtime/dtype.h"

using namespace altup;

TEST_CASE("every ggml type's block geometry matches the gguf package") {
  std::ifstream in(ALTUP_FIXTURES_DIR "/gguf_expected.txt");
  REQUIRE(in.good());
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string tag, name;
    uint32_t id, block, bytes;
    ss >> tag;
    if (tag != "qsize") continue;
    ss >> id >> name >> block >> bytes;
    CAPTURE(name);
    auto tr = dtype_traits(id);
    REQUIRE(tr.has_value());
    CHECK(tr->name == name);
    CHECK(tr->block_elems == block);
    CHECK(tr->block_bytes == bytes);
    ++checked;
  }
  CHECK(checked >= 30);
  CHECK_FALSE(dtype_traits(4).has_value());  // removed Q4_2
  CHECK_FALSE(dtype_traits(31).has_value());
  CHECK_FALSE(dtype_traits(1000).has_value());
}

TEST_CASE("row_bytes: exact block arithmetic, errors on partial blocks and overflow") {
  CHECK(*row_bytes(DType::F32, 7) == 28);
  CHECK(*row_bytes(DType::BF16, 3) == 6);
  CHECK(*row_bytes(DType::Q8_0, 64) == 68);
  CHECK(*row_bytes(DType::Q4_0, 96) == 54);
  CHECK(*row_bytes(DType::Q4_0, 0) == 0);
  auto bad = row_bytes(DType::Q8_0, 33);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("not a multiple of the Q8_0 block size 32") != std::string::npos);
  CHECK_FALSE(row_bytes(DType::F64, UINT64_MAX / 4).ok());
  CHECK(dtype_from_name("q8_0") == DType::Q8_0);
  CHECK(dtype_from_name("BF16") == DType::BF16);
  CHECK_FALSE(dtype_from_name("q9_9").has_value());
}

// The compiler's own half type: _Float16 on x86-64 (GCC 12), __fp16 on ARM64.
#if defined(__x86_64__) && defined(__FLT16_MAX__)
#define ALTUP_TEST_HALF 1
using CompilerHalf = _Float16;
#elif defined(__aarch64__)
#define ALTUP_TEST_HALF 1
using CompilerHalf = __fp16;
#endif

#if defined(ALTUP_TEST_HALF)
TEST_CASE("fp16 conversions agree with the compiler's half type (all halves, random floats)") {
  for (uint32_t h = 0; h < 65536; ++h) {
    CompilerHalf ref;
    const uint16_t bits = static_cast<uint16_t>(h);
    std::memcpy(&ref, &bits, 2);
    const float want = static_cast<float>(ref);
    const float got = fp16_to_fp32(bits);
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
      continue;
    }
    REQUIRE(std::memcmp(&want, &got, 4) == 0);
    REQUIRE(fp32_to_fp16(got) == bits);  // exact round trip
  }
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint32_t> any;
  for (int k = 0; k < 200000; ++k) {
    uint32_t u = any(rng);
    // Concentrate on the exponents where fp16 is normal, subnormal or overflows.
    u = (u & 0x807fffffu) | ((100u + (u >> 23) % 60u) << 23);
    float f;
    std::memcpy(&f, &u, 4);
    const CompilerHalf ref = static_cast<CompilerHalf>(f);
    uint16_t want;
    std::memcpy(&want, &ref, 2);
    CAPTURE(f);
    REQUIRE(fp32_to_fp16(f) == want);
  }
}
#endif

TEST_CASE("bf16 rounds to nearest even and keeps nan a nan") {
  CHECK(fp32_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_fp32(0x3f80) == 1.0f);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties go to the even mantissa (1.0).
  CHECK(fp32_to_bf16(1.00390625f) == 0x3f80);
  // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): rounds up.
  CHECK(fp32_to_bf16(1.01171875f) == 0x3f82);
  CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
  CHECK(fp32_to_bf16(-0.0f) == 0x8000);
}

TEST_CASE("dequantize_row decodes q8_0 and q4_0 blocks as ggml lays them out") {
  BlockQ8_0 q8{};
  q8.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 32; ++j) q8.qs[j] = static_cast<int8_t>(j - 16);
  float out[32];
  REQUIRE(dequantize_row(DType::Q8_0, &q8, out, 32).ok());
  for (int j = 0; j < 32; ++j) CHECK(out[j] == 0.5f * (j - 16));

  BlockQ4_0 q4{};
  q4.d = fp32_to_fp16(2.0f);
  for (int j = 0; j < 16; ++j) q4.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  REQUIRE(dequantize_row(DType::Q4_0, &q4, out, 32).ok());
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == 2.0f * (j - 8));
    CHECK(out[j + 16] == 2.0f * (15 - j - 8));
  }
  CHECK_FALSE(dequantize_row(DType::IQ2_XXS, &q4, out, 256).ok());  // known, not decoded
  CHECK_FALSE(dequantize_row(DType::Q8_0, &q8, out, 31).ok());
}
