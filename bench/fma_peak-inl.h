// A loop of independent FMA chains that stays in registers: the machine's FMA throughput
// for one instruction set. Compiled once per ISA by bench/meson.build (no include guard).
#include <xsimd/xsimd.hpp>

#include <cstdint>

namespace altup::bench {

double FMA_PEAK_FN(int64_t iters, int64_t* flops) {
  using V = xsimd::batch<float, FMA_PEAK_ARCH>;
  // 12 chains: enough to cover 4-cycle latency on two FMA pipes.
  V a0(1.0f), a1(1.1f), a2(1.2f), a3(1.3f), a4(1.4f), a5(1.5f), a6(1.6f), a7(1.7f), a8(1.8f), a9(1.9f), a10(2.0f),
      a11(2.1f);
  const V b(0.9999999f), c(1e-7f);
  // Written out by hand: twelve independent chains, three to a line.
  // clang-format off
  for (int64_t i = 0; i < iters; ++i) {
    a0 = xsimd::fma(a0, b, c); a1 = xsimd::fma(a1, b, c); a2 = xsimd::fma(a2, b, c);
    a3 = xsimd::fma(a3, b, c); a4 = xsimd::fma(a4, b, c); a5 = xsimd::fma(a5, b, c);
    a6 = xsimd::fma(a6, b, c); a7 = xsimd::fma(a7, b, c); a8 = xsimd::fma(a8, b, c);
    a9 = xsimd::fma(a9, b, c); a10 = xsimd::fma(a10, b, c); a11 = xsimd::fma(a11, b, c);
  }
  // clang-format on
  *flops = iters * 12 * 2 * static_cast<int64_t>(V::size);
  return xsimd::hadd(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)));
}

}  // namespace altup::bench
