// The sse4.2 kernel table. Compiled with this instruction set's flags (ops/meson.build).
#define ALTUP_ISA isa_sse4_2
#define ALTUP_ARCH xsimd::sse4_2
#define ALTUP_ISA_NAME "sse4.2"
#define ALTUP_TABLE_FN kernels_sse4_2
#include "ops/isa_table-inl.h"
