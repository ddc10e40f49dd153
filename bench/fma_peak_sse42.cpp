#define FMA_PEAK_FN fma_peak_sse4_2
#define FMA_PEAK_ARCH xsimd::sse4_2
#include "bench/fma_peak-inl.h"
