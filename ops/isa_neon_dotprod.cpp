// The neon_dotprod kernel table: NEON plus the Armv8.2 dot-product instructions (sdot /
// udot, FEAT_DotProd: Cortex-A55 / A76 and later, Apple M1, Graviton 2), which the int8
// kernels use for four products summed per 32-bit lane in one instruction. Compiled with
// those flags only (ops/meson.build); chosen at run time when the CPU reports them.
#define ALTUP_ISA isa_neon_dotprod
#define ALTUP_ARCH xsimd::neon64
#define ALTUP_ISA_NAME "neon_dotprod"
#define ALTUP_TABLE_FN kernels_neon_dotprod
#include "ops/isa_table-inl.h"
