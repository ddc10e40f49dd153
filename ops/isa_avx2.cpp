// The avx2 kernel table. Compiled with this instruction set's flags (ops/meson.build).
#define ALTUP_ISA isa_avx2
#define ALTUP_ARCH xsimd::fma3<xsimd::avx2>
#define ALTUP_ISA_NAME "avx2"
#define ALTUP_TABLE_FN kernels_avx2
#include "ops/isa_table-inl.h"
