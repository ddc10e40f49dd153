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
  // Grouped by kind, in the order of struct Kernels.
  // clang-format off
  static const Kernels table = {
      ALTUP_ISA_NAME, static_cast<int>(k::L), k::kQ8GemmPanels, k::kHalfDot,
      k::add, k::mul, k::scale, k::act, k::glu, k::softcap, k::axpy, k::axpy_f16, k::axpy_bf16, k::axpy_i8s, k::axpy_i8so,
      k::dot, k::sum_squares, k::sum,
      k::rmsnorm, k::softmax, k::rope_neox,
      k::cvt_f16, k::cvt_bf16,
      k::gemv_f32, k::gemv_f16, k::gemv_bf16, k::quantize_q8x, k::quantize_q8k, k::gemv_q8_0, k::gemv_q4_0, k::gemv_iq4_nl, k::gemm_q8_0, k::gemm_q4_0,
      k::gemv_q4_k, k::gemv_q5_k, k::gemv_q6_k, k::gemv_q2_k, k::gemv_q3_k, k::gemv_iq4_xs, k::gemm_q4_k, k::gemm_q5_k, k::gemm_q6_k,
      k::gemm_f16, k::gemm_bf16, k::gemm_f16_dot, k::gemm_bf16_dot, k::gemm_tile,
      k::altup_predict, k::altup_correct,
  };
  // clang-format on
  return &table;
}

}  // namespace altup::ops
