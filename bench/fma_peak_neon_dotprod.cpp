#define FMA_PEAK_FN fma_peak_neon_dotprod
#define FMA_PEAK_ARCH xsimd::neon64
#include "bench/fma_peak-inl.h"
