// Helpers for the kernel tests: every runnable compiled instruction set, the awkward sizes
// (0, 1, lanes-1, lanes, lanes+1, 3*lanes+1, 4099), misaligned starts, and closeness checks.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/isa.h"
#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif
#include "runtime/dtype.h"

namespace altup::test {

// The SIMD tables this CPU can run (the scalar table is the reference, so it is left out).
// The same float bits (any two NaNs count as the same: payloads are not part of the contract).
inline bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub;
}

inline std::vector<const ops::Kernels*> simd_tables() {
  std::vector<const ops::Kernels*> v;
  for (const auto& e : ops::compiled_isas())
    if (e.runnable && e.kernels != &ops::scalar_kernels()) v.push_back(e.kernels);
  return v;
}

// The SIMD tables and the scalar one: for composite ops, every path a user can get.
inline std::vector<const ops::Kernels*> all_tables() {
  auto t = simd_tables();
  t.push_back(&ops::scalar_kernels());
  return t;
}

inline std::vector<int64_t> awkward_sizes(int lanes) {
  return {0, 1, lanes - 1, lanes, lanes + 1, 3 * lanes + 1, 4099};
}

constexpr int kMisalignments[] = {0, 1, 2, 3};  // floats past a 64-byte boundary

// A buffer whose data() starts `offset` floats past a 64-byte boundary.
class Buf {
 public:
  Buf(int64_t n, int offset) : store_(static_cast<size_t>(n + offset + 16)), off_(offset) {
    while (reinterpret_cast<uintptr_t>(store_.data() + pad_) % 64) ++pad_;
  }
  float* data() { return store_.data() + pad_ + off_; }
  float& operator[](int64_t i) { return data()[i]; }

 private:
  std::vector<float> store_;
  int pad_ = 0, off_;
};

inline void fill(float* x, int64_t n, std::mt19937& rng, float lo = -3.0f, float hi = 3.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < n; ++i) x[i] = d(rng);
}

// |got - want| <= atol + rtol * |want| everywhere; reports the first index that is not.
inline void check_close(const float* got, const float* want, int64_t n, float rtol, float atol,
                        const std::string& what) {
  for (int64_t i = 0; i < n; ++i) {
    const float tol = atol + rtol * std::fabs(want[i]);
    if (!(std::fabs(got[i] - want[i]) <= tol) && !(std::isinf(want[i]) && got[i] == want[i])) {
      FAIL_CHECK(what << ": element " << i << " of " << n << " is " << got[i] << ", reference " << want[i]);
      return;
    }
  }
}

// The determinism contract (docs/guarantees.md, "Determinism"): the runtime's own kernels give bit-identical
// results for any thread count. Products that go through oneDNN are bit-identical run after run
// with the same thread count, but oneDNN picks its kernel and its split of the work per CPU and
// per thread count, so across thread counts they only agree to rounding: |a - b| <= 1e-5 * (|b| + max|b|).
// `one` and `two` are the 1- and 2-thread outputs of the same computation.
inline void check_thread_agreement(const float* one, const float* two, int64_t n, bool via_onednn,
                                   const std::string& what) {
  if (!via_onednn) {
    for (int64_t i = 0; i < n; ++i)
      if (std::memcmp(one + i, two + i, 4) != 0) {
        FAIL_CHECK(what << ": 1 and 2 threads differ at element " << i << " of " << n << " (" << one[i] << " vs "
                        << two[i] << "); the runtime's own kernels must be bit-identical across thread counts");
        return;
      }
    return;
  }
  float mag = 0;
  for (int64_t i = 0; i < n; ++i) mag = std::max(mag, std::fabs(one[i]));
  check_close(two, one, n, 1e-5f, 1e-5f * mag, what + " (2 threads vs 1, through oneDNN)");
}

// Whether this build has oneDNN (its products are then used from some size on).
#if defined(ALTUP_HAVE_ONEDNN)
constexpr bool kHaveOneDnn = true;
#else
constexpr bool kHaveOneDnn = false;
#endif

// Whether matmul's default sends a bf16 product of M tokens to oneDNN's bf16 product (AMX,
// or vdpbf16ps where that is fast or ALTUP_BF16_NATIVE=1 asks), which rounds the
// activations to bf16: relative error up to 2^-9 per product (ops/matmul.h MatmulPath::bf16_native).
inline bool bf16_native_at(int64_t M) {
#if defined(ALTUP_HAVE_ONEDNN)
  return ops::dnnl_bf16_native_at(M);
#else
  (void)M;
  return false;
#endif
}
// Whether oneDNN, as capped, has a bf16 product at all (MatmulPath::bf16_native works).
inline bool bf16_product() {
#if defined(ALTUP_HAVE_ONEDNN)
  return ops::dnnl_has_bf16();
#else
  return false;
#endif
}
// x rounded to bf16 and back: the activations that product multiplies.
inline std::vector<float> rounded_to_bf16(const float* x, int64_t n) {
  std::vector<float> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = bf16_to_fp32(fp32_to_bf16(x[i]));
  return r;
}

inline std::string label(const ops::Kernels& k, int64_t n, int off) {
  return std::string(k.isa) + " n=" + std::to_string(n) + " offset=" + std::to_string(off);
}

// n floats rounded to f16 or bf16.
inline std::vector<uint16_t> to_half(const float* x, int64_t n, bool bf16) {
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) h[static_cast<size_t>(i)] = bf16 ? fp32_to_bf16(x[i]) : fp32_to_fp16(x[i]);
  return h;
}

// Offsets of the fp16 scale fields in one block of a quantized type.
inline std::vector<size_t> half_fields(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::IQ4_NL:
    case DType::IQ4_XS: return {0};
    case DType::Q6_K: return {208};
    case DType::Q2_K: return {80, 82};
    case DType::Q3_K: return {108};
    default: return {0, 2};  // Q4_1, Q5_1, Q4_K, Q5_K: d and the min's scale
  }
}

// Random blocks of a quantized type (every bit pattern of the quants), with random fp16
// scales in [-max_scale, max_scale] (random bits could be NaN or Inf there).
inline std::vector<uint8_t> random_quant_rows(DType dt, int64_t rows, int64_t n, std::mt19937& rng, float max_scale) {
  const size_t bytes = static_cast<size_t>(*tensor_bytes(dt, {rows, n}));
  std::vector<uint8_t> w(bytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
  const size_t blk = traits(dt).block_bytes;
  std::uniform_real_distribution<float> scale(-max_scale, max_scale);
  for (size_t off = 0; off < bytes; off += blk)
    for (size_t f : half_fields(dt)) {
      const uint16_t d = fp32_to_fp16(scale(rng));
      std::memcpy(&w[off + f], &d, 2);
    }
  return w;
}

}  // namespace altup::test
