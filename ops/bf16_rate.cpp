#include "ops/bf16_rate.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized (_mm512_undefined_*), as in the
// kernel tables (ops/meson.build).
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace altup::ops {

#if defined(__x86_64__)
namespace {

// Twelve independent accumulators: more than latency x issue width of either instruction on
// the cores we know of (4-6 cycles, up to 2 per cycle), so both loops time issue rate, not
// latency. The operands stay in registers; nothing but the instruction under test runs in
// the loop besides the counter.
constexpr int kChains = 12;
constexpr int64_t kIters = 50000;  // 600k instructions: 0.1-0.4 ms per timing

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The two instructions timed, one accumulator step each. Everything here is compiled for
// AVX512-BF16 (only such CPUs are timed), and the steps are functors, not lambdas: a lambda
// would not inherit the target instructions.
struct DotBf16Step {
  [[gnu::target("avx512f,avx512bf16"), gnu::always_inline]] __m512 operator()(__m512 acc) const {
    const __m512bh one = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3f80));  // bf16 1.0
    return _mm512_dpbf16_ps(acc, one, one);                                      // 64 flops
  }
};
struct FmaStep {
  [[gnu::target("avx512f,avx512bf16"), gnu::always_inline]] __m512 operator()(__m512 acc) const {
    return _mm512_fmadd_ps(acc, _mm512_set1_ps(1.0f), _mm512_set1_ps(1e-9f));  // 32 flops
  }
};

template <class Step>
[[gnu::target("avx512f,avx512bf16")]] double time_chains(Step step, float* sink) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < kIters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = step(acc[c]);
  }
  const double t = since(t0);
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  *sink += _mm512_reduce_add_ps(sum);  // keeps the loop's work observable
  return t;
}

double measure() {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16")) return 0.0;
  // Interleaved, best of seven each after a warm-up pair: the fastest run is the one least
  // disturbed by interrupts, frequency changes or the other hyperthread.
  float sink = 0;
  (void)time_chains(DotBf16Step{}, &sink), (void)time_chains(FmaStep{}, &sink);
  double dp = 1e30, fma = 1e30;
  for (int r = 0; r < 7; ++r) {
    dp = std::min(dp, time_chains(DotBf16Step{}, &sink));
    fma = std::min(fma, time_chains(FmaStep{}, &sink));
  }
  if (!(dp > 0) || !(fma > 0) || sink != sink) return 0.0;
  return (64.0 / dp) / (32.0 / fma);
}

}  // namespace

double bf16_dot_rate_over_fma() {
  static const double rate = measure();
  return rate;
}
#else
double bf16_dot_rate_over_fma() { return 0.0; }
#endif

Bf16Native parse_bf16_native(const char* value, std::string* problem) {
  if (value == nullptr || *value == '\0' || std::strcmp(value, "auto") == 0) return Bf16Native::kAuto;
  if (std::strcmp(value, "1") == 0) return Bf16Native::kAlways;
  if (std::strcmp(value, "0") == 0) return Bf16Native::kNever;
  if (problem) *problem = "ALTUP_BF16_NATIVE=" + std::string(value) + " is not 0, 1 or auto; using auto";
  return Bf16Native::kAuto;
}

namespace {
struct Setting {
  std::string problem;
  Bf16Native value = parse_bf16_native(std::getenv("ALTUP_BF16_NATIVE"), &problem);
};
const Setting& setting() {
  static const Setting s;
  return s;
}
}  // namespace

Bf16Native bf16_native_setting() { return setting().value; }
const std::string& bf16_native_problem() { return setting().problem; }

}  // namespace altup::ops
