// How fast this CPU's cores multiply bf16 pairs (AVX512-BF16's vdpbf16ps) compared with
// f32 FMAs, which is what decides whether oneDNN's bf16 product (activations rounded to
// bf16, no weight widened) beats oneDNN's f32 product on rows widened from bf16 where there
// is no AMX (ops/gemm_dnnl.h). The two instructions' rates differ by CPU, not by instruction
// set: on the 2-core Xeon VM this was written on, vdpbf16ps issues at a quarter of the FMA
// rate (half its arithmetic), on other AVX512-BF16 cores it may match it. So it is measured.
#pragma once

#include <string>

namespace altup::ops {

// Floating-point operations per second of vdpbf16ps (64 per zmm instruction) over those of
// vfmadd231ps (32), timed once per process on the calling core (a few milliseconds, on the
// first call; thread-safe). 0 where the CPU has no AVX512-BF16 or this is not x86-64.
double bf16_dot_rate_over_fma();

// ALTUP_BF16_NATIVE: "auto" (or unset) lets that measurement decide where there is no AMX;
// "1" takes oneDNN's bf16 product wherever oneDNN has one, "0" never (rows are widened, as
// on CPUs without bf16 instructions; this also gives up AMX). Read once per process.
enum class Bf16Native { kAuto, kAlways, kNever };
Bf16Native bf16_native_setting();
// Empty, or why ALTUP_BF16_NATIVE was ignored (the library never prints; the program says it).
const std::string& bf16_native_problem();
// The parse itself, for tests: null or "" or "auto" -> kAuto; an unknown value -> kAuto and
// a problem naming it.
Bf16Native parse_bf16_native(const char* value, std::string* problem);

}  // namespace altup::ops
