// Every elementwise, reduction, norm, softmax, RoPE and conversion kernel on every SIMD table
// this CPU runs, against its scalar reference, at awkward sizes and misaligned starts.
#include <cstdlib>
#include <cstring>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/convert.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;
using ops::Act;

TEST_CASE("ALTUP_ISA caps the kernel tables (scripts/test.sh checks the cap took effect)") {
  // scripts/test.sh sets ALTUP_EXPECT_ISA with ALTUP_ISA: the table in use must be that one,
  // and no table above it may count as runnable, or the capped runs would prove nothing.
  const char* want = std::getenv("ALTUP_EXPECT_ISA");
  if (!want) return;
  CHECK(ops::isa_cap_problem().empty());
  CHECK(std::string(ops::kernels().isa) == want);
  bool above = false;
  for (const auto& e : ops::compiled_isas()) {
    if (above) CHECK_MESSAGE(!e.runnable, e.kernels->isa << " is above the cap but runnable");
    above |= std::string(e.kernels->isa) == want;
  }
}

TEST_CASE("there is at least one SIMD table, and the one in use is runnable") {
  CHECK_FALSE(simd_tables().empty());
  bool found = false;
  for (const auto& e : ops::compiled_isas()) found |= e.runnable && e.kernels == &ops::kernels();
  CHECK(found);
  MESSAGE("kernels in use: " << std::string(ops::kernels().isa));
}

TEST_CASE("add, mul, scale, axpy") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(1);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        Buf a(n, off), b(n, off), y(n, off), want(n, 0);
        fill(a.data(), n, rng);
        fill(b.data(), n, rng);
        const std::string at = label(*k, n, off);
        k->add(a.data(), b.data(), y.data(), n);
        ref.add(a.data(), b.data(), want.data(), n);
        check_close(y.data(), want.data(), n, 0, 0, "add " + at);
        k->mul(a.data(), b.data(), y.data(), n);
        ref.mul(a.data(), b.data(), want.data(), n);
        check_close(y.data(), want.data(), n, 0, 0, "mul " + at);
        k->scale(a.data(), -0.37f, y.data(), n);
        ref.scale(a.data(), -0.37f, want.data(), n);
        check_close(y.data(), want.data(), n, 0, 0, "scale " + at);
        std::memcpy(y.data(), b.data(), static_cast<size_t>(n) * 4);
        std::memcpy(want.data(), b.data(), static_cast<size_t>(n) * 4);
        k->axpy(1.7f, a.data(), y.data(), n);
        ref.axpy(1.7f, a.data(), want.data(), n);
        check_close(y.data(), want.data(), n, 1e-6f, 1e-6f, "axpy " + at);
        ref.add(a.data(), b.data(), want.data(), n);
        k->add(a.data(), b.data(), a.data(), n);  // in place: y is a
        check_close(a.data(), want.data(), n, 0, 0, "add in place " + at);
      }
}

TEST_CASE("activations, gated products and softcap") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(2);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        Buf x(n, off), u(n, off), y(n, off), want(n, 0);
        fill(x.data(), n, rng, -12.0f, 12.0f);  // into the tails of exp / tanh / erf
        fill(u.data(), n, rng);
        for (Act a : {Act::Silu, Act::GeluTanh, Act::GeluErf}) {
          const std::string at = label(*k, n, off) + " act=" + std::to_string(static_cast<int>(a));
          k->act(a, x.data(), y.data(), n);
          ref.act(a, x.data(), want.data(), n);
          check_close(y.data(), want.data(), n, 2e-6f, 2e-6f, "act " + at);
          k->glu(a, x.data(), u.data(), y.data(), n);
          ref.glu(a, x.data(), u.data(), want.data(), n);
          check_close(y.data(), want.data(), n, 2e-6f, 6e-6f, "glu " + at);
        }
        k->softcap(x.data(), 5.0f, y.data(), n);
        ref.softcap(x.data(), 5.0f, want.data(), n);
        check_close(y.data(), want.data(), n, 2e-6f, 2e-6f, "softcap " + label(*k, n, off));
      }
}

TEST_CASE("dot, sum of squares, sum: within rounding of the double-accumulated reference") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(3);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        Buf a(n, off), b(n, off);
        fill(a.data(), n, rng);
        fill(b.data(), n, rng);
        double mag = 0, sab = 0;
        for (int64_t i = 0; i < n; ++i) {
          mag += std::fabs(a[i] * b[i]) + a[i] * a[i];
          sab += std::fabs(a[i]);
        }
        const float tol = 1e-6f * static_cast<float>(mag) + 1e-7f;
        CAPTURE(label(*k, n, off));
        CHECK(std::fabs(k->dot(a.data(), b.data(), n) - ref.dot(a.data(), b.data(), n)) <= tol);
        CHECK(std::fabs(k->sum_squares(a.data(), n) - ref.sum_squares(a.data(), n)) <= tol);
        CHECK(std::fabs(k->sum(a.data(), n) - ref.sum(a.data(), n)) <= 1e-6f * static_cast<float>(sab) + 1e-7f);
      }
}

TEST_CASE("rmsnorm (with and without weight) and softmax") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(4);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        Buf x(n, off), w(n, off), y(n, off), want(n, 0);
        fill(x.data(), n, rng, -30.0f, 30.0f);
        fill(w.data(), n, rng);
        const std::string at = label(*k, n, off);
        k->rmsnorm(x.data(), w.data(), y.data(), n, 1e-6f);
        ref.rmsnorm(x.data(), w.data(), want.data(), n, 1e-6f);
        check_close(y.data(), want.data(), n, 1e-5f, 1e-6f, "rmsnorm " + at);
        k->rmsnorm(x.data(), nullptr, y.data(), n, 1e-6f);
        ref.rmsnorm(x.data(), nullptr, want.data(), n, 1e-6f);
        check_close(y.data(), want.data(), n, 1e-5f, 1e-6f, "rmsnorm (no weight) " + at);
        std::vector<float> in_place(x.data(), x.data() + n);  // Gemma 3n's per-head norms run in place
        k->rmsnorm(in_place.data(), nullptr, in_place.data(), n, 1e-6f);
        check_close(in_place.data(), want.data(), n, 1e-5f, 1e-6f, "rmsnorm in place " + at);
        k->softmax(x.data(), y.data(), n);
        ref.softmax(x.data(), want.data(), n);
        check_close(y.data(), want.data(), n, 1e-5f, 1e-9f, "softmax " + at);
        double total = 0;
        for (int64_t i = 0; i < n; ++i) total += y[i];
        if (n) CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
        k->softmax(x.data(), x.data(), n);  // in place
        check_close(x.data(), want.data(), n, 1e-5f, 1e-9f, "softmax in place " + at);
      }
}

TEST_CASE("softmax survives huge logits (stability)") {
  for (const ops::Kernels* k : simd_tables()) {
    std::vector<float> x = {1e30f, 1e30f, -1e30f, 0.0f, 1e30f}, y(5);
    k->softmax(x.data(), y.data(), 5);
    CHECK(y[0] == doctest::Approx(1.0 / 3));
    CHECK(y[2] == 0.0f);
  }
}

TEST_CASE("rope (NeoX rotate-half) over awkward half-widths") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(5);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t h : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        const int64_t hd = 2 * h;
        Buf x(hd, off), want(hd, 0), c(h, off), s(h, off);
        fill(x.data(), hd, rng);
        ops::rope_angles(1234, 10000.0f, hd, c.data(), s.data());
        std::memcpy(want.data(), x.data(), static_cast<size_t>(hd) * 4);
        k->rope_neox(x.data(), c.data(), s.data(), hd);
        ref.rope_neox(want.data(), c.data(), s.data(), hd);
        check_close(x.data(), want.data(), hd, 1e-6f, 1e-6f, "rope " + label(*k, h, off));
      }
}

TEST_CASE("rope angles follow theta^(-2i/hd) and position 0 is the identity") {
  std::vector<float> c(4), s(4);
  ops::rope_angles(0, 10000.0f, 8, c.data(), s.data());
  for (int i = 0; i < 4; ++i) {
    CHECK(c[i] == 1.0f);
    CHECK(s[i] == 0.0f);
  }
  ops::rope_angles(3, 10000.0f, 8, c.data(), s.data());
  CHECK(c[1] == doctest::Approx(std::cos(3.0 / std::pow(10000.0, 2.0 / 8))).epsilon(1e-6));
  CHECK(s[3] == doctest::Approx(std::sin(3.0 / std::pow(10000.0, 6.0 / 8))).epsilon(1e-6));
}

TEST_CASE("axpy on int8 values times scales (minus offsets): the scalar reference, and axpy's bits on the value") {
  // q in [-128, 127] and s an f16 value (as a Q8_0 / Q4_0 block scale): s * q is exact in f32,
  // so each table must give exactly what its own f32 axpy gives on that product.
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(7);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        std::vector<int8_t> q(static_cast<size_t>(n + off));
        for (auto& v : q) v = static_cast<int8_t>(rng());
        Buf s(n, off), w(n, 0), y0(n, off), y1(n, 0), y2(n, 0), want(n, 0);
        std::uniform_real_distribution<float> u(-0.05f, 0.05f);
        for (int64_t i = 0; i < n; ++i) {
          s[i] = fp16_to_fp32(fp32_to_fp16(u(rng)));
          w[i] = s[i] * static_cast<float>(q[static_cast<size_t>(i + off)]);
        }
        fill(y0.data(), n, rng);
        // From y0: the table's kernel (y1), the scalar one (want), the table's axpy on w (y2).
        auto check = [&](const std::string& name, auto simd, auto scalar) {
          for (Buf* y : {&y1, &y2, &want}) std::memcpy(y->data(), y0.data(), static_cast<size_t>(n) * 4);
          simd(y1.data());
          scalar(want.data());
          check_close(y1.data(), want.data(), n, 1e-6f, 1e-6f, name + " " + label(*k, n, off));
          k->axpy(0.83f, w.data(), y2.data(), n);
          CHECK_MESSAGE(std::memcmp(y1.data(), y2.data(), static_cast<size_t>(n) * 4) == 0,
                        name << " != axpy on its values, " << label(*k, n, off));
        };
        const int8_t* qp = q.data() + off;
        check(
            "axpy_i8s", [&](float* y) { k->axpy_i8s(0.83f, qp, s.data(), y, n); },
            [&](float* y) { ref.axpy_i8s(0.83f, qp, s.data(), y, n); });
        // With offsets t (dmin · m: an f16 value times 0..63): x = s · q - t, one rounding.
        Buf t(n, 0);
        for (int64_t i = 0; i < n; ++i) {
          t[i] = fp16_to_fp32(fp32_to_fp16(u(rng))) * static_cast<float>(rng() % 64);
          w[i] = s[i] * static_cast<float>(qp[i]) - t[i];
        }
        check(
            "axpy_i8so", [&](float* y) { k->axpy_i8so(0.83f, qp, s.data(), t.data(), y, n); },
            [&](float* y) { ref.axpy_i8so(0.83f, qp, s.data(), t.data(), y, n); });
      }
}

TEST_CASE("f16 and bf16 rows convert exactly, and axpy reads them") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(6);
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        std::vector<uint16_t> h(static_cast<size_t>(n + off));
        for (auto& v : h) v = static_cast<uint16_t>(rng());
        for (auto& v : h)
          if ((v & 0x7c00) == 0x7c00) v &= 0xbfff;  // no inf/nan patterns: compare as numbers
        Buf y(n, 0), want(n, 0);
        k->cvt_f16(h.data() + off, y.data(), n);
        ref.cvt_f16(h.data() + off, want.data(), n);
        check_close(y.data(), want.data(), n, 0, 0, "cvt_f16 " + label(*k, n, off));
        for (auto& v : h) v &= 0xbfff;  // keep bf16 exponents finite
        k->cvt_bf16(h.data() + off, y.data(), n);
        ref.cvt_bf16(h.data() + off, want.data(), n);
        check_close(y.data(), want.data(), n, 0, 0, "cvt_bf16 " + label(*k, n, off));
        // y += a * x with x in half precision: the values as above, y at a float offset too.
        Buf y0(n, off), y1(n, 0);
        fill(y0.data(), n, rng);
        for (bool bf16 : {false, true}) {
          std::memcpy(y1.data(), y0.data(), static_cast<size_t>(n) * 4);
          std::memcpy(want.data(), y0.data(), static_cast<size_t>(n) * 4);
          (bf16 ? k->axpy_bf16 : k->axpy_f16)(-0.61f, h.data() + off, y1.data(), n);
          (bf16 ? ref.axpy_bf16 : ref.axpy_f16)(-0.61f, h.data() + off, want.data(), n);
          check_close(y1.data(), want.data(), n, 1e-6f, 1e-6f,
                      std::string(bf16 ? "axpy_bf16 " : "axpy_f16 ") + label(*k, n, off));
        }
      }
}
