// The avx512_vnni kernel table: the AVX-512 table plus AVX512-VNNI (vpdpbusd: four unsigned
// x signed byte products summed into each 32-bit lane in one instruction, with no int16 step;
// Ice Lake, Sapphire Rapids, Zen 4 and later), which the int8 kernels use in place of
// maddubs + madd (ops/qgemv-inl.h dot_u8s8). Compiled with those flags only
// (ops/meson.build); chosen at run time when the CPU reports VNNI.
#define ALTUP_ISA isa_avx512_vnni
#define ALTUP_ARCH xsimd::avx512bw
#define ALTUP_ISA_NAME "avx512_vnni"
#define ALTUP_TABLE_FN kernels_avx512_vnni
#include "ops/isa_table-inl.h"
