// The avx512 kernel table. Compiled with this instruction set's flags (ops/meson.build).
#define ALTUP_ISA isa_avx512
#define ALTUP_ARCH xsimd::avx512bw
#define ALTUP_ISA_NAME "avx512"
#define ALTUP_TABLE_FN kernels_avx512
#include "ops/isa_table-inl.h"
