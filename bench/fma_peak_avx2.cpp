#define FMA_PEAK_FN fma_peak_avx2
#define FMA_PEAK_ARCH xsimd::fma3<xsimd::avx2>
#include "bench/fma_peak-inl.h"
