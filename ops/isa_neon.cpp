// The neon kernel table. Compiled with this instruction set's flags (ops/meson.build).
#define ALTUP_ISA isa_neon
#define ALTUP_ARCH xsimd::neon64
#define ALTUP_ISA_NAME "neon"
#define ALTUP_TABLE_FN kernels_neon
#include "ops/isa_table-inl.h"
