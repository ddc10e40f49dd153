#include "ops/gemm_half.h"

#include "runtime/dtype.h"

namespace altup::ops::ref {

namespace {
template <float (*Cvt)(uint16_t)>
void gemm_half(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t K) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * Cvt(w[r * ldw + k]);
      y[m * ldy + r] = static_cast<float>(s);
    }
}
}  // namespace

void gemm_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
              int64_t K) {
  gemm_half<fp16_to_fp32>(w, ldw, x, M, y, ldy, rows, K);
}
void gemm_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t M, float* y, int64_t ldy, int64_t rows,
               int64_t K) {
  gemm_half<bf16_to_fp32>(w, ldw, x, M, y, ldy, rows, K);
}

}  // namespace altup::ops::ref
