#include "ops/isa.h"

#include <cstdlib>
#include <cstring>

#include <xsimd/xsimd.hpp>
#if defined(ALTUP_HAVE_NEON_DOTPROD)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "ops/altup_mix.h"
#include "ops/convert.h"
#include "ops/elementwise.h"
#include "ops/gemm_half.h"
#include "ops/gemm_tile.h"
#include "ops/qgemv.h"
#include "ops/reduce.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/softmax.h"

namespace altup::ops {

// Defined in ops/isa_*.cpp, each compiled with its own instruction-set flags.
#if defined(ALTUP_HAVE_SSE42)
const Kernels* kernels_sse4_2();
#endif
#if defined(ALTUP_HAVE_AVX2)
const Kernels* kernels_avx2();
#endif
#if defined(ALTUP_HAVE_AVX512)
const Kernels* kernels_avx512();
#endif
#if defined(ALTUP_HAVE_AVX512_VNNI)
const Kernels* kernels_avx512_vnni();
#endif
#if defined(ALTUP_HAVE_NEON)
const Kernels* kernels_neon();
#endif
#if defined(ALTUP_HAVE_NEON_DOTPROD)
const Kernels* kernels_neon_dotprod();
#endif

namespace {

void ref_gemv_f32(const float* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) y[r] = ref::dot(w + r * ld, x, n);
}
template <float (*Cvt)(uint16_t)>
void ref_gemv_half(const uint16_t* w, int64_t ld, const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(Cvt(w[r * ld + i])) * x[i];
    y[r] = static_cast<float>(s);
  }
}

}  // namespace

const Kernels& scalar_kernels() {
  static const Kernels table = {
      .isa = "scalar",
      .lanes = 1,
      .q8_gemm_panels = false,  // gemm_q8_0 / gemm_q4_0: one token at a time
      .half_dot = false,        // gemm_f16_dot / gemm_bf16_dot: plain loops
      .add = ref::add,
      .mul = ref::mul,
      .scale = ref::scale,
      .act = ref::act,
      .glu = ref::glu,
      .softcap = ref::softcap,
      .axpy = ref::axpy,
      .axpy_f16 = ref::axpy_f16,
      .axpy_bf16 = ref::axpy_bf16,
      .axpy_i8s = ref::axpy_i8s,
      .axpy_i8so = ref::axpy_i8so,
      .dot = ref::dot,
      .sum_squares = ref::sum_squares,
      .sum = ref::sum,
      .rmsnorm = ref::rmsnorm,
      .softmax = ref::softmax,
      .rope_neox = ref::rope_neox,
      .cvt_f16 = ref::cvt_f16,
      .cvt_bf16 = ref::cvt_bf16,
      .gemv_f32 = ref_gemv_f32,
      .gemv_f16 = ref_gemv_half<fp16_to_fp32>,
      .gemv_bf16 = ref_gemv_half<bf16_to_fp32>,
      .quantize_q8x = quantize_row_q8x,
      .quantize_q8k = quantize_row_q8k,
      .gemv_q8_0 = ref::gemv_q8_0,
      .gemv2_q8_0 = ref::gemv2_q8_0,
      .gemv_q4_0 = ref::gemv_q4_0,
      .gemv_iq4_nl = ref::gemv_iq4_nl,
      .gemm_q8_0 = ref::gemm_q8_0,
      .gemm_q4_0 = ref::gemm_q4_0,
      .gemv_q4_k = ref::gemv_q4_k,
      .gemv_q5_k = ref::gemv_q5_k,
      .gemv_q6_k = ref::gemv_q6_k,
      .gemv_q2_k = ref::gemv_q2_k,
      .gemv_q3_k = ref::gemv_q3_k,
      .gemv_iq4_xs = ref::gemv_iq4_xs,
      .gemm_q4_k = ref::gemm_q4_k,
      .gemm_q5_k = ref::gemm_q5_k,
      .gemm_q6_k = ref::gemm_q6_k,
      .gemm_f16 = ref::gemm_f16,
      .gemm_bf16 = ref::gemm_bf16,
      .gemm_f16_dot = ref::gemm_f16,  // gemm_f16_dot: the same product
      .gemm_bf16_dot = ref::gemm_bf16,
      .gemm_tile = ref::gemm_tile,
      .altup_predict = ref::altup_predict,
      .altup_correct = ref::altup_correct,
  };
  return table;
}

namespace {

struct IsaList {
  std::vector<IsaEntry> entries;
  std::string cap_problem;
};

const IsaList& isa_list() {
  static const IsaList list = [] {
    IsaList l;
    std::vector<IsaEntry>& v = l.entries;
    v.push_back({&scalar_kernels(), true});
    [[maybe_unused]] const auto cpu = xsimd::available_architectures();
#if defined(ALTUP_HAVE_SSE42)
    v.push_back({kernels_sse4_2(), static_cast<bool>(cpu.sse4_2)});
#endif
#if defined(ALTUP_HAVE_AVX2)
    v.push_back({kernels_avx2(), cpu.fma3_avx2 && cpu.avx2});
#endif
#if defined(ALTUP_HAVE_AVX512)
    const bool avx512 = cpu.avx512f && cpu.avx512bw && cpu.avx512dq && cpu.avx512cd;
    v.push_back({kernels_avx512(), avx512});
#endif
#if defined(ALTUP_HAVE_AVX512_VNNI)
    // xsimd 8 does not detect VNNI; GCC's CPUID reading does (the OS's saving of the AVX-512
    // registers is covered by xsimd's avx512f above).
    __builtin_cpu_init();
    v.push_back(
        {kernels_avx512_vnni(), avx512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")});
#endif
#if defined(ALTUP_HAVE_NEON)
    v.push_back({kernels_neon(), static_cast<bool>(cpu.neon64)});
#endif
#if defined(ALTUP_HAVE_NEON_DOTPROD)
    // xsimd does not detect the dot-product extension; Linux reports it in HWCAP.
    v.push_back({kernels_neon_dotprod(), cpu.neon64 && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0});
#endif
    const char* want = std::getenv("ALTUP_ISA");
    if (!want || !*want) return l;
    size_t cap = v.size();
    std::string names;
    for (size_t k = 0; k < v.size(); ++k) {
      names += (k ? ", " : "") + std::string(v[k].kernels->isa);
      if (std::strcmp(v[k].kernels->isa, want) == 0) cap = k;
    }
    if (cap == v.size()) {
      l.cap_problem = "ALTUP_ISA=" + std::string(want) + " is not a kernel table of this build (" + names +
                      "); using the best one this CPU runs";
    } else if (!v[cap].runnable) {
      l.cap_problem = "ALTUP_ISA=" + std::string(want) +
                      " needs instructions this CPU does not have; using the best "
                      "one it runs";
    } else {
      for (size_t k = cap + 1; k < v.size(); ++k) v[k].runnable = false;  // listed in ascending order
    }
    return l;
  }();
  return list;
}

}  // namespace

const std::vector<IsaEntry>& compiled_isas() { return isa_list().entries; }

const std::string& isa_cap_problem() { return isa_list().cap_problem; }

const Kernels& kernels() {
  static const Kernels* chosen = [] {
    const Kernels* best = &scalar_kernels();
    for (const IsaEntry& e : compiled_isas())
      if (e.runnable) best = e.kernels;  // listed in ascending order
    return best;
  }();
  return *chosen;
}

}  // namespace altup::ops
