// Sequence-AltUp's correction (ops/seq_altup.h) on every kernel table against the formula in
// double (ref::seq_correct), at awkward widths, misaligned starts, K = 1..3, every phase of a
// call's first position and 1 and 2 threads; the state rows of earlier anchors read back; a
// stride of 1 makes every row its layer's output exactly; and mismatched rows are refused.
#include <cstring>
#include <numeric>

#include "ops/seq_altup.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

struct Case {
  int K;
  int64_t T, d, k, pos0, slots;
};

// The anchors' rows and everything else of one call, random.
struct Data {
  Data(const Case& c, int offset, std::mt19937& rng)
      : ring(c.K * c.T * c.d, offset), state(c.K * c.slots * c.d, offset), pos(static_cast<size_t>(c.T)) {
    p = {c.k, ops::seq_first_anchor(c.pos0, c.k)};
    A = ops::seq_anchor_count(c.T, p.first, c.k);
    ya.resize(static_cast<size_t>(c.K * A * c.d));
    fill(ring.data(), c.K * c.T * c.d, rng);
    fill(state.data(), c.K * c.slots * c.d, rng);  // earlier anchors' rows
    fill(ya.data(), static_cast<int64_t>(ya.size()), rng);
    std::iota(pos.begin(), pos.end(), static_cast<int32_t>(c.pos0));
  }
  Buf ring, state;
  std::vector<int32_t> pos;
  std::vector<float> ya;
  ops::SeqParams p;
  int64_t A = 0;
};

const float kCoef[3] = {0.9f, 0.2f, 1.1f};

}  // namespace

TEST_CASE("seq_correct: every table equals the formula in double") {
  std::mt19937 rng(17);
  for (const ops::Kernels* t : all_tables())
    for (int64_t d : awkward_sizes(t->lanes))
      for (int K : {1, 2, 3})
        for (int64_t k : {2, 3, 4})
          for (int64_t pos0 : {int64_t{0}, int64_t{1}, k - 1, 2 * k + 1})
            for (int64_t T : {int64_t{1}, k - 1, 2 * k + 1})
              for (int threads : {1, 2}) {
                if (d > 200 && (K > 1 || T > 1)) continue;  // the largest width once per table is enough
                const int off = kMisalignments[static_cast<size_t>(rng() % 4)];
                const Case c{K, T, d, k, pos0, (pos0 + T + k - 1) / k + 1};
                CAPTURE(t->isa);
                CAPTURE(d);
                CAPTURE(K);
                CAPTURE(k);
                CAPTURE(pos0);
                CAPTURE(T);
                std::mt19937 r1(static_cast<unsigned>(rng()));
                Data got(c, off, r1);
                Data want = got;  // the same numbers (the reference cares for no alignment)
                REQUIRE(ops::seq_correct(got.ring.data(), got.A ? got.ya.data() : nullptr, kCoef, got.state.data(),
                                         got.pos.data(), K, T, got.A, c.slots, d, got.p, threads, t)
                            .ok());
                ops::ref::seq_correct(want.ring.data(), want.ya.data(), kCoef, want.state.data(), want.pos.data(), K, T,
                                      want.A, c.slots, d, want.p);
                check_close(got.ring.data(), want.ring.data(), K * T * d, 1e-5f, 1e-5f, "ring");
                check_close(got.state.data(), want.state.data(), K * c.slots * d, 1e-5f, 1e-5f, "state");
              }
}

TEST_CASE("seq_correct: an anchor takes the layer's output, a token its anchor's correction") {
  // Rows at positions 5..9 with stride 4: 5, 6, 7 read the anchor at 4 from the state (slot 1),
  // 8 is an anchor (slot 2), 9 reads it.
  const int64_t d = 3, T = 5, slots = 4;
  std::vector<float> ring(T * d, 2.0f), state(slots * d, 0.0f), ya(d, 5.0f);
  for (int64_t i = 0; i < d; ++i) ring[3 * d + i] = 1.0f;  // the anchor's x_a
  for (int64_t i = 0; i < d; ++i) state[1 * d + i] = 0.5f;
  const std::vector<int32_t> pos = {5, 6, 7, 8, 9};
  const ops::SeqParams p{4, ops::seq_first_anchor(5, 4)};
  REQUIRE(p.first == 3);
  REQUIRE(ops::seq_correct(ring.data(), ya.data(), kCoef, state.data(), pos.data(), 1, T, 1, slots, d, p, 1).ok());
  const float c8 = kCoef[1] * 1.0f + kCoef[2] * (5.0f - (kCoef[0] + kCoef[1]) * 1.0f);  // β x_a + γ (y_a − (α+β) x_a)
  for (int64_t i = 0; i < d; ++i) {
    CHECK(ring[0 * d + i] == doctest::Approx(kCoef[0] * 2.0f + 0.5f));
    CHECK(ring[2 * d + i] == doctest::Approx(kCoef[0] * 2.0f + 0.5f));
    CHECK(ring[3 * d + i] == 5.0f);
    CHECK(ring[4 * d + i] == doctest::Approx(kCoef[0] * 2.0f + c8));
    CHECK(state[2 * d + i] == doctest::Approx(c8));
  }
}

TEST_CASE("seq_correct: a stride of 1 makes every row the layer's output, bit for bit") {
  std::mt19937 rng(3);
  for (const ops::Kernels* t : all_tables()) {
    const Case c{2, 7, 37, 1, 11, 20};
    Data x(c, 1, rng);
    REQUIRE(x.A == 7);
    REQUIRE(ops::seq_correct(x.ring.data(), x.ya.data(), kCoef, x.state.data(), x.pos.data(), c.K, c.T, x.A, c.slots,
                             c.d, x.p, 2, t)
                .ok());
    CHECK(std::memcmp(x.ring.data(), x.ya.data(), x.ya.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("seq_correct: rows that do not match the anchors the graph was built for are refused") {
  std::vector<float> ring(4 * 2), state(8 * 2), ya(2);
  const std::vector<int32_t> pos = {1, 2, 3, 4};
  // Built for positions from 0 (anchors at rows 0 and 2) but run at 1..4 (anchors at rows 1, 3).
  CHECK_FALSE(ops::seq_correct(ring.data(), ya.data(), kCoef, state.data(), pos.data(), 1, 4, 1, 8, 2, {2, 0}, 1).ok());
  // A position past the state's slots.
  const std::vector<int32_t> far = {20, 21, 22, 23};
  CHECK_FALSE(ops::seq_correct(ring.data(), nullptr, kCoef, state.data(), far.data(), 1, 4, 0, 8, 2, {5, 0}, 1).ok());
  // Positions that are not consecutive.
  const std::vector<int32_t> gap = {1, 2, 5, 6};
  CHECK_FALSE(ops::seq_correct(ring.data(), nullptr, kCoef, state.data(), gap.data(), 1, 4, 0, 8, 2, {8, 0}, 1).ok());
}
