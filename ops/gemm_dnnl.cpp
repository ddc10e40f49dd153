#include "ops/gemm_dnnl.h"

#include <array>
#include <atomic>
#include <string>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>

#include "runtime/executor.h"
#include "runtime/threading.h"

namespace altup::ops {

namespace {

// oneDNN's matmul primitive (brgemm kernels) is markedly faster than dnnl_sgemm on this
// hardware (bench/bench_ops: ~62% vs ~46% of the FMA peak at 512x2048x2048), but a
// primitive takes from 0.1 ms (gemm:jit, AVX2) to milliseconds (brgemm, AVX-512) to create.
//
// The token count M changes with every prompt. oneDNN can leave it to run time: where it
// then picks the implementation it picks for a fixed M (gemm:jit on AVX2 CPUs), one
// primitive per weight shape serves every M, and a prompt of a new length creates nothing.
// Where a fixed M gets a different one (brgemm on AVX-512 CPUs needs fixed shapes), the
// fixed-M primitives are kept per shape, as before. Decided once per weight shape, by
// comparing the two implementations' names.
std::atomic<int64_t> g_primitives{0};  // primitive descriptors made (dnnl_primitives_created)

dnnl::matmul::primitive_desc make_pd(const dnnl::memory::desc& a, const dnnl::memory::desc& b,
                                     const dnnl::memory::desc& c, const dnnl::engine& engine) {
  g_primitives.fetch_add(1, std::memory_order_relaxed);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), engine);
}

struct Matmuls {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<dnnl::matmul>> any_m;  // per (N, K); null: per M
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::shared_ptr<dnnl::matmul>> cache;

  std::shared_ptr<dnnl::matmul> get(int64_t m, int64_t n, int64_t k) {
    std::lock_guard<std::mutex> lock(mu);
    auto [shape, fresh] = any_m.try_emplace({n, k});
    if (fresh) {
      const auto fixed = pd(m, n, k), any = pd(DNNL_RUNTIME_DIM_VAL, n, k);
      if (std::string(fixed.impl_info_str()) == any.impl_info_str())
        shape->second = std::make_shared<dnnl::matmul>(any);
      else
        cache.emplace(std::make_tuple(m, n, k), std::make_shared<dnnl::matmul>(fixed));
    }
    if (shape->second) return shape->second;
    const auto key = std::make_tuple(m, n, k);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    if (cache.size() >= 64) cache.clear();  // many distinct prompt lengths: start over, don't grow
    auto p = std::make_shared<dnnl::matmul>(pd(m, n, k));
    cache.emplace(key, p);
    return p;
  }

 private:
  dnnl::matmul::primitive_desc pd(int64_t m, int64_t n, int64_t k) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::desc x({m, k}, dt::f32, tag::ab);
    const dnnl::memory::desc w({k, n}, dt::f32, tag::ba);  // W [N, K] row-major is Wᵀ in "ba"
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

bool dnnl_any_token_count(int64_t n, int64_t k) {
  Matmuls& mm = matmuls();
  std::lock_guard<std::mutex> lock(mm.mu);
  const auto it = mm.any_m.find({n, k});
  return it != mm.any_m.end() && it->second != nullptr;
}

Status gemm_f32_dnnl(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, int threads) {
  if (m == 0 || n == 0) return {};
  set_compute_threads(threads);
  try {
    Matmuls& mm = matmuls();
    auto prim = mm.get(m, n, k);
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    dnnl::memory xm({{m, k}, dt::f32, tag::ab}, mm.engine, const_cast<float*>(x));
    dnnl::memory wm({{k, n}, dt::f32, tag::ba}, mm.engine, const_cast<float*>(w));
    dnnl::memory ym({{m, n}, dt::f32, tag::ab}, mm.engine, y);
    dnnl::stream s(mm.engine);
    prim->execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
    s.wait();
  } catch (const dnnl::error& e) {
    return make_error(std::string("oneDNN matmul failed: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(std::string("oneDNN matmul failed: ") + e.what());
  }
  return {};
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
