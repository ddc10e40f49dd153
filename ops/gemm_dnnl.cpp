#include "ops/gemm_dnnl.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "ops/bf16_rate.h"
#include "ops/matmul.h"
#include "runtime/dtype.h"
#include "runtime/executor.h"
#include "runtime/threading.h"

namespace altup::ops {

namespace {

// oneDNN's matmul primitive (brgemm kernels) is markedly faster than dnnl_sgemm on this
// hardware (bench/bench_ops: ~62% vs ~46% of the FMA peak at 512x2048x2048), but a
// primitive takes from 0.1 ms (gemm:jit, AVX2) to milliseconds (brgemm, AVX-512) to create.
//
// The token count M changes with every prompt, and a prompt of a new length must create
// nothing. oneDNN can leave M to run time: where it then picks the implementation it picks
// for a fixed M (gemm:jit on AVX2 CPUs), that one primitive per weight shape serves every M.
// Where a fixed M gets other kernels (brgemm on AVX-512 CPUs needs fixed shapes), products
// run in fixed chunks of kChunk tokens through one fixed-shape primitive, and the rows
// left over (fewer than kChunk) through the run-time one: two primitives per weight shape,
// made at its first product, whatever the prompt lengths. Decided once per weight shape, by
// comparing the two implementations' names.
constexpr int64_t kChunk = 128;        // 64 cost 15-23% over whole products with gemm:jit here, 128 10-20%
std::atomic<int64_t> g_primitives{0};  // primitive descriptors made (dnnl_primitives_created)
std::atomic<bool> g_force_chunks{false};

dnnl::matmul::primitive_desc make_pd(const dnnl::memory::desc& a, const dnnl::memory::desc& b,
                                     const dnnl::memory::desc& c, const dnnl::engine& engine) {
  g_primitives.fetch_add(1, std::memory_order_relaxed);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), engine);
}

// The primitives of one weight shape [N, K] and type.
struct ShapePrims {
  std::shared_ptr<dnnl::matmul> any_m;  // token count at run time
  std::shared_ptr<dnnl::matmul> chunk;  // exactly kChunk tokens; null: any_m serves every count
};

struct Matmuls {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  std::map<std::tuple<int64_t, int64_t, bool>, ShapePrims> shapes;  // per (N, K, bf16)

  // f32: chunked where a fixed count gets other kernels (above). bf16 (AMX): the run-time
  // count only, since there the fixed-shape kernels (brgemm) reorder the plain weights at
  // every call: at 512 x 2048 x 2048 they ran 384 GFLOP/s, the run-time one 1,235.
  ShapePrims get(int64_t n, int64_t k, bool bf16) {
    std::lock_guard<std::mutex> lock(mu);
    const auto it = shapes.find({n, k, bf16});
    if (it != shapes.end()) return it->second;
    ShapePrims made;  // stored only once made: a refused primitive (it throws) leaves nothing
    const auto any = pd(DNNL_RUNTIME_DIM_VAL, n, k, bf16);
    made.any_m = std::make_shared<dnnl::matmul>(any);
    if (!bf16) {
      const auto fixed = pd(kChunk, n, k, bf16);
      if (g_force_chunks.load() || std::string(fixed.impl_info_str()) != any.impl_info_str())
        made.chunk = std::make_shared<dnnl::matmul>(fixed);
    }
    shapes.emplace(std::make_tuple(n, k, bf16), made);
    return made;
  }

 private:
  dnnl::matmul::primitive_desc pd(int64_t m, int64_t n, int64_t k, bool bf16) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dt in = bf16 ? dt::bf16 : dt::f32;
    const dnnl::memory::desc x({m, k}, in, tag::ab);
    const dnnl::memory::desc w({k, n}, in, tag::ba);  // W [N, K] row-major is Wᵀ in "ba"
    const dnnl::memory::desc y({m, n}, dt::f32, tag::ab);
    return make_pd(x, w, y, engine);
  }
};

Matmuls& matmuls() {
  static Matmuls m;
  return m;
}

}  // namespace

int64_t dnnl_primitives_created() { return g_primitives.load(std::memory_order_relaxed); }

bool dnnl_chunked(int64_t n, int64_t k) {
  Matmuls& mm = matmuls();
  std::lock_guard<std::mutex> lock(mm.mu);
  const auto it = mm.shapes.find({n, k, false});
  return it != mm.shapes.end() && it->second.chunk != nullptr;
}

void dnnl_force_chunks(bool on) { g_force_chunks.store(on); }

namespace {
// y = x · Wᵀ through the (N, K, bf16) primitives; x and W f32, or both bf16 (uint16_t).
Status gemm_dnnl(const void* x, const void* w, float* y, int64_t m, int64_t n, int64_t k, int threads, bool bf16) {
  if (m == 0 || n == 0) return {};
  set_compute_threads(threads);
  try {
    Matmuls& mm = matmuls();
    const ShapePrims prims = mm.get(n, k, bf16);
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dt in = bf16 ? dt::bf16 : dt::f32;
    const int64_t in_bytes = bf16 ? 2 : 4;
    dnnl::memory wm({{k, n}, in, tag::ba}, mm.engine, const_cast<void*>(w));
    dnnl::stream s(mm.engine);
    // Rows [m0, m0 + rows) of x and y through one primitive.
    auto run = [&](dnnl::matmul& prim, int64_t m0, int64_t rows) {
      const auto* xr = static_cast<const char*>(x) + m0 * k * in_bytes;
      dnnl::memory xm({{rows, k}, in, tag::ab}, mm.engine, const_cast<char*>(xr));
      dnnl::memory ym({{rows, n}, dt::f32, tag::ab}, mm.engine, y + m0 * n);
      prim.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
    };
    int64_t m0 = 0;
    if (prims.chunk)
      for (; m0 + kChunk <= m; m0 += kChunk) run(*prims.chunk, m0, kChunk);
    if (m0 < m) run(*prims.any_m, m0, m - m0);
    s.wait();
  } catch (const dnnl::error& e) {
    return make_error(std::string("oneDNN matmul failed: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(std::string("oneDNN matmul failed: ") + e.what());
  }
  return {};
}
}  // namespace

Status gemm_f32_dnnl(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, int threads) {
  return gemm_dnnl(x, w, y, m, n, k, threads, false);
}

// oneDNN's ISA is read at each call: oneDNN fixes it at its first primitive, and tests cap
// it (ONEDNN_MAX_CPU_ISA) per process, so this agrees with what the primitives run.
bool dnnl_has_bf16() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);  // ISAs are bit sets
  return (isa & bf16) == bf16;
}

namespace {
// Why bf16 prefill takes the product it takes: the one decision, which both the token
// threshold and the line `altup info --system` prints are read from.
enum class Bf16Why { kNoProduct, kSettingOff, kAmx, kSettingOn, kMeasured };
Bf16Why bf16_why() {
  if (!dnnl_has_bf16()) return Bf16Why::kNoProduct;
  const Bf16Native setting = bf16_native_setting();
  if (setting == Bf16Native::kNever) return Bf16Why::kSettingOff;
  if (dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx) return Bf16Why::kAmx;
  return setting == Bf16Native::kAlways ? Bf16Why::kSettingOn : Bf16Why::kMeasured;
}
int64_t min_tokens(Bf16Why why) {
  switch (why) {
    case Bf16Why::kAmx: return kBf16NativeMinTokens;
    case Bf16Why::kSettingOn: return kBf16DotNativeMinTokens;
    case Bf16Why::kMeasured: return bf16_dot_rate_over_fma() >= kBf16DotMinRate ? kBf16DotNativeMinTokens : 0;
    default: return 0;
  }
}
}  // namespace

int64_t dnnl_bf16_native_min_tokens() { return min_tokens(bf16_why()); }

bool dnnl_bf16_native_at(int64_t m) {
  const int64_t from = dnnl_bf16_native_min_tokens();
  return from > 0 && m >= from;
}

std::string dnnl_bf16_plan() {
  const Bf16Why why = bf16_why();
  const int64_t from = min_tokens(why);
  std::string how;
  switch (why) {
    case Bf16Why::kNoProduct: how = "oneDNN has no bf16 product here"; break;
    case Bf16Why::kSettingOff: how = "ALTUP_BF16_NATIVE=0"; break;
    case Bf16Why::kAmx: how = "AMX"; break;
    case Bf16Why::kSettingOn: how = "ALTUP_BF16_NATIVE=1"; break;
    case Bf16Why::kMeasured: {
      char buf[160];
      std::snprintf(buf, sizeof buf, "vdpbf16ps at %.2fx the f32 FMA rate; %.2fx or more would take it",
                    bf16_dot_rate_over_fma(), kBf16DotMinRate);
      how = buf;
    }
  }
  const std::string what = from > 0 ? "oneDNN's bf16 product from " + std::to_string(from) + " tokens"
                                    : "bf16 rows widened to f32, never rounding the activations";
  return what + " (" + how + ")";
}

Status gemm_bf16_dnnl(const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k, int threads) {
  if (m == 0 || n == 0) return {};
  // The activations rounded to bf16 (to nearest even, as runtime/dtype does), once per call.
  thread_local std::vector<uint16_t> xb_store;
  xb_store.resize(static_cast<size_t>(m * k));
  uint16_t* xb = xb_store.data();
  parallel_for(m * k, threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) xb[i] = fp32_to_bf16(x[i]);
  });
  return gemm_dnnl(xb, w, y, m, n, k, threads, true);
}

namespace {
Status run_matmul(const Node& node, ExecContext& ctx) {
  const TensorView& x = ctx.input(node, 0);
  const TensorView& w = ctx.input(node, 1);
  const TensorView& y = ctx.output(node);
  if (x.dtype != DType::F32 || w.dtype != DType::F32) return make_error("matmul_dnnl takes f32 only");
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows())
    return make_error("matmul shapes " + x.shape.str() + " x " + w.shape.str() + "ᵀ -> " + y.shape.str() +
                      " do not agree");
  return gemm_f32_dnnl(x.as<float>(), w.as<float>(), y.as<float>(), x.rows(), w.rows(), x.cols(), ctx.threads());
}
double matmul_flops(const Node& node, const Graph& g) {
  const Shape& x = g.tensor(node.inputs[0]).shape;
  const Shape& w = g.tensor(node.inputs[1]).shape;
  return 2.0 * static_cast<double>(x.rows()) * static_cast<double>(w.numel());
}
}  // namespace

const OpDef kMatMulDnnl = {"matmul_dnnl", run_matmul, matmul_flops, nullptr};

}  // namespace altup::ops
