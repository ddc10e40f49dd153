// AltUp mixing (predict, correct, magnitude matching) and Gaussian top-k sparsity: the SIMD
// kernels against the scalar references at awkward sizes, K = 1..8, misaligned starts, in
// place; the whole-ring ops against NumPy (fixtures/make_altup_fixtures.py) on every table,
// with 1 and 2 threads identical.
#include <cstring>
#include <fstream>
#include <sstream>

#include "ops/altup_mix.h"
#include "ops/sparsity.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

TEST_CASE("predict and correct kernels match the references for K = 1..8") {
  const ops::Kernels& ref = ops::scalar_kernels();
  std::mt19937 rng(20);
  for (const ops::Kernels* k : simd_tables())
    for (int K = 1; K <= 8; ++K)
      for (int64_t n : awkward_sizes(k->lanes))
        for (int off : {0, 3}) {
          std::vector<Buf> x, got, want;
          for (int b = 0; b < K; ++b) {
            x.emplace_back(n, off);
            got.emplace_back(n, off);
            want.emplace_back(n, 0);
            fill(x[b].data(), n, rng);
          }
          std::vector<float> p(static_cast<size_t>(K * K)), g(static_cast<size_t>(K));
          fill(p.data(), K * K, rng);
          fill(g.data(), K, rng);
          std::vector<const float*> xs;
          std::vector<float*> gs, ws;
          for (int b = 0; b < K; ++b) {
            xs.push_back(x[b].data());
            gs.push_back(got[b].data());
            ws.push_back(want[b].data());
          }
          const std::string at = label(*k, n, off) + " K=" + std::to_string(K);
          k->altup_predict(xs.data(), gs.data(), p.data(), K, n);
          ref.altup_predict(xs.data(), ws.data(), p.data(), K, n);
          for (int b = 0; b < K; ++b) check_close(gs[b], ws[b], n, 1e-5f, 1e-5f, "predict " + at);
          std::vector<float> y(static_cast<size_t>(n));
          fill(y.data(), n, rng);
          const int j = K - 1;
          k->altup_correct(gs.data(), y.data(), g.data(), K, j, n);
          ref.altup_correct(ws.data(), y.data(), g.data(), K, j, n);
          for (int b = 0; b < K; ++b) check_close(gs[b], ws[b], n, 1e-5f, 1e-5f, "correct " + at);
          // In place: the ring is both input and output of predict.
          std::vector<float*> xin;
          for (int b = 0; b < K; ++b) xin.push_back(x[b].data());
          ref.altup_predict(xs.data(), ws.data(), p.data(), K, n);
          k->altup_predict(xs.data(), xin.data(), p.data(), K, n);
          for (int b = 0; b < K; ++b) check_close(xin[b], ws[b], n, 1e-5f, 1e-5f, "predict in place " + at);
        }
}

TEST_CASE("whole-ring predict, correct and magnitude matching match NumPy on every table") {
  std::ifstream txt(ALTUP_FIXTURES_DIR "/altup_cases.txt");
  std::ifstream bin(ALTUP_FIXTURES_DIR "/altup_cases.bin", std::ios::binary);
  REQUIRE(txt.good());
  REQUIRE(bin.good());
  auto read = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    bin.read(reinterpret_cast<char*>(v.data()), n * 4);
    REQUIRE(bin.good());
    return v;
  };
  std::string line;
  int cases = 0;
  while (std::getline(txt, line)) {
    std::istringstream ss(line);
    std::string name;
    int K, j, per_token;
    int64_t T, d;
    float eps;
    ss >> name >> K >> T >> d >> j >> per_token >> eps;
    CAPTURE(name);
    const auto x = read(K * T * d), p = read(per_token ? T * K * K : K * K), g = read(per_token ? T * K : K),
               y = read(T * d), predicted = read(K * T * d), corrected = read(K * T * d), matched = read(T * d);
    for (const ops::Kernels* k : all_tables())
      for (int threads : {1, 2}) {
        const std::string at = std::string(k->isa) + " threads=" + std::to_string(threads) + " " + name;
        std::vector<float> ring = x;
        REQUIRE(ops::altup_predict(ring.data(), ring.data(), p.data(), per_token, K, T, d, threads, k).ok());
        check_close(ring.data(), predicted.data(), K * T * d, 1e-5f, 1e-5f, "predict " + at);
        REQUIRE(ops::altup_correct(ring.data(), y.data(), g.data(), per_token, K, j, T, d, threads, k).ok());
        check_close(ring.data(), corrected.data(), K * T * d, 1e-5f, 1e-5f, "correct " + at);
        std::vector<float> ym = y;
        ops::magnitude_match(x.data(), ym.data(), T, d, eps, threads, k);  // x_0 is the first T*d floats
        check_close(ym.data(), matched.data(), T * d, 1e-5f, 1e-6f, "magnitude " + at);
      }
    ++cases;
  }
  CHECK(cases == 5);
}

TEST_CASE("K = 1 with p = [[1]] and g = [1] is exactly the dense layer: x' = y") {
  std::vector<float> ring = {1, 2, 3, 4}, y = {9, 8, 7, 6};
  const float p = 1.0f, g = 1.0f;
  REQUIRE(ops::altup_predict(ring.data(), ring.data(), &p, false, 1, 1, 4, 1).ok());
  REQUIRE(ops::altup_correct(ring.data(), y.data(), &g, false, 1, 0, 1, 4, 1).ok());
  CHECK(ring == y);
}

TEST_CASE("AltUp ops reject block counts and active blocks out of range") {
  std::vector<float> ring(36), y(4), c(81);
  CHECK_FALSE(ops::altup_predict(ring.data(), ring.data(), c.data(), false, 9, 1, 4, 1).ok());
  CHECK_FALSE(ops::altup_predict(ring.data(), ring.data(), c.data(), false, 0, 1, 4, 1).ok());
  auto s = ops::altup_correct(ring.data(), y.data(), c.data(), false, 3, 3, 1, 4, 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "active block 3 is outside 0..2");
}

TEST_CASE("icdf_normal matches tabulated quantiles of the standard normal") {
  CHECK(ops::icdf_normal(0.5) == doctest::Approx(0.0).epsilon(1e-15));
  CHECK(ops::icdf_normal(0.95) == doctest::Approx(1.6448536269514722).epsilon(1e-13));
  CHECK(ops::icdf_normal(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-13));
  CHECK(ops::icdf_normal(0.01) == doctest::Approx(-2.3263478740408408).epsilon(1e-13));
  CHECK(ops::icdf_normal(0.999) == doctest::Approx(3.090232306167813).epsilon(1e-12));
  CHECK(ops::icdf_normal(1e-10) == doctest::Approx(-6.361340902404056).epsilon(1e-10));
}

TEST_CASE("gaussian top-k: every table matches the reference, and ~p of a normal row is zeroed") {
  std::mt19937 rng(21);
  const float z = static_cast<float>(ops::icdf_normal(0.95));
  for (const ops::Kernels* k : simd_tables())
    for (int64_t n : awkward_sizes(k->lanes))
      for (int off : kMisalignments) {
        Buf x(2 * n, off), y(2 * n, off), want(2 * n, 0);
        fill(x.data(), 2 * n, rng, 50.0f, 56.0f);  // a large mean: the two-pass variance matters
        ops::gaussian_topk(x.data(), y.data(), 2, n, z, 1, k);
        ops::ref::gaussian_topk(x.data(), want.data(), n, z);
        ops::ref::gaussian_topk(x.data() + n, want.data() + n, n, z);
        check_close(y.data(), want.data(), 2 * n, 1e-4f, 1e-4f, "gaussian_topk " + label(*k, n, off));
      }
  std::normal_distribution<float> normal(1.0f, 2.0f);
  std::vector<float> x(100000), y(100000);
  for (auto& v : x) v = normal(rng);
  ops::gaussian_topk(x.data(), y.data(), 1, 100000, z, 2);
  int zeros = 0;
  for (float v : y) zeros += v == 0.0f;
  CHECK(zeros / 100000.0 == doctest::Approx(0.95).epsilon(0.01));
}
