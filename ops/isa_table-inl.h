// Builds one instruction set's kernel table from the SIMD templates. Included once by each
// ops/isa_*.cpp after it defines ALTUP_ISA, ALTUP_ARCH, ALTUP_ISA_NAME and ALTUP_TABLE_FN.
#include "ops/kernels.h"
#include "ops/simd-inl.h"
#include "ops/elementwise-inl.h"
#include "ops/reduce-inl.h"
#include "ops/rmsnorm-inl.h"
#include "ops/softmax-inl.h"
#include "ops/rope-inl.h"
#include "ops/convert-inl.h"
#include "ops/gemv-inl.h"
#include "ops/quantize-inl.h"
#include "ops/qgemv-inl.h"
#include "ops/qgemm_panel-inl.h"  // before the two panel GEMMs, which use it
#include "ops/qgemm_q8-inl.h"
#include "ops/qgemv_k-inl.h"
#include "ops/qgemm_k-inl.h"
#include "ops/qgemm_kpanel-inl.h"
#include "ops/gemm_tile-inl.h"
#include "ops/gemm_half-inl.h"
#include "ops/altup_mix-inl.h"

namespace altup::ops {

const Kernels* ALTUP_TABLE_FN() {
  namespace k = ALTUP_ISA;
  // Every field by name (designated initializers: a field left out or misordered does not compile).
  // clang-format off
  static const Kernels table = {
      .isa = ALTUP_ISA_NAME,
      .lanes = static_cast<int>(k::L),
      .q8_gemm_panels = k::kQ8GemmPanels,
      .half_dot = k::kHalfDot,
      .add = k::add,
      .mul = k::mul,
      .scale = k::scale,
      .act = k::act,
      .glu = k::glu,
      .softcap = k::softcap,
      .axpy = k::axpy,
      .axpy_f16 = k::axpy_f16,
      .axpy_bf16 = k::axpy_bf16,
      .axpy_i8s = k::axpy_i8s,
      .axpy_i8so = k::axpy_i8so,
      .dot = k::dot,
      .sum_squares = k::sum_squares,
      .sum = k::sum,
      .rmsnorm = k::rmsnorm,
      .softmax = k::softmax,
      .rope_neox = k::rope_neox,
      .cvt_f16 = k::cvt_f16,
      .cvt_bf16 = k::cvt_bf16,
      .gemv_f32 = k::gemv_f32,
      .gemv_f16 = k::gemv_f16,
      .gemv_bf16 = k::gemv_bf16,
      .quantize_q8x = k::quantize_q8x,
      .quantize_q8k = k::quantize_q8k,
      .gemv_q8_0 = k::gemv_q8_0,
      .gemv2_q8_0 = k::gemv2_q8_0,
      .gemv_q4_0 = k::gemv_q4_0,
      .gemv_iq4_nl = k::gemv_iq4_nl,
      .gemm_q8_0 = k::gemm_q8_0,
      .gemm_q4_0 = k::gemm_q4_0,
      .gemv_q4_k = k::gemv_q4_k,
      .gemv_q5_k = k::gemv_q5_k,
      .gemv_q6_k = k::gemv_q6_k,
      .gemv_q2_k = k::gemv_q2_k,
      .gemv_q3_k = k::gemv_q3_k,
      .gemv_iq4_xs = k::gemv_iq4_xs,
      .gemm_q4_k = k::gemm_q4_k,
      .gemm_q5_k = k::gemm_q5_k,
      .gemm_q6_k = k::gemm_q6_k,
      .gemm_f16 = k::gemm_f16,
      .gemm_bf16 = k::gemm_bf16,
      .gemm_f16_dot = k::gemm_f16_dot,
      .gemm_bf16_dot = k::gemm_bf16_dot,
      .gemm_tile = k::gemm_tile,
      .altup_predict = k::altup_predict,
      .altup_correct = k::altup_correct,
  };
  // clang-format on
  return &table;
}

}  // namespace altup::ops
