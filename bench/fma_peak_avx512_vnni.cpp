#define FMA_PEAK_FN fma_peak_avx512_vnni
#define FMA_PEAK_ARCH xsimd::avx512bw
#include "bench/fma_peak-inl.h"
