#include "api/system_info.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <xsimd/xsimd.hpp>

#if defined(ALTUP_HAVE_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#endif

#include "ops/bf16_rate.h"
#if defined(ALTUP_HAVE_ONEDNN)
#include "ops/gemm_dnnl.h"
#endif
#include "ops/isa.h"
#include "runtime/threading.h"

namespace altup {

namespace {

// Flags from /proc/cpuinfo that matter for this runtime's kernels and oneDNN's (x86 and ARM).
std::string cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0) {
      std::string w, out;
      for (const char* want : {"sse4_2",   "avx",      "avx2",     "fma",         "f16c",        "avx512f",  "avx512bw",
                               "avx512dq", "avx512cd", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16",
                               "asimd",    "asimddp",  "fphp",     "asimdhp",     "i8mm",        "bf16",     "sve"}) {
        std::istringstream again(line.substr(line.find(':') + 1));
        while (again >> w)
          if (w == want) {
            out += (out.empty() ? "" : " ") + w;
            break;
          }
      }
      return out.empty() ? "(none of interest)" : out;
    }
  return "(unknown: no /proc/cpuinfo flags)";
}

#if defined(ALTUP_HAVE_ONEDNN)
const char* dnnl_isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "other";
  }
}
#endif

}  // namespace

std::string system_info() {
  std::string s;
  char buf[256];
  s += "kernel table     " + std::string(ops::kernels().isa) + "\n";
  std::string compiled;
  for (const auto& e : ops::compiled_isas())
    compiled += std::string(compiled.empty() ? "" : ", ") + e.kernels->isa + (e.runnable ? "" : " (not runnable)");
  s += "compiled tables  " + compiled + "\n";
  if (!ops::isa_cap_problem().empty()) s += "ALTUP_ISA        ignored: " + ops::isa_cap_problem() + "\n";
  s += "CPU features     " + cpu_flags() + "\n";
#if defined(ALTUP_HAVE_ONEDNN)
  const dnnl_version_t* v = dnnl_version();
  std::snprintf(buf, sizeof buf, "oneDNN           %d.%d.%d (%s), instruction set %s\n", v->major, v->minor, v->patch,
                v->hash ? v->hash : "?", dnnl_isa_name(dnnl_get_effective_cpu_isa()));
  s += buf;
  s += "bf16 prefill     " + ops::dnnl_bf16_plan() + "\n";
#else
  s += "oneDNN           not built in (matrix products use the GEMV kernels)\n";
#endif
  if (!ops::bf16_native_problem().empty()) s += "warning          " + ops::bf16_native_problem() + "\n";
  std::snprintf(buf, sizeof buf, "threads          %d available (default for every command)\n", available_threads());
  s += buf;
  return s;
}

}  // namespace altup
