// Attention against NumPy's softmax(Q·Kᵀ·scale + mask)·V (fixtures/make_attention_fixtures.py):
// GQA, MQA, sliding windows, prefill, decode, and a chunk after earlier tokens; on every SIMD
// table, with the determinism contract of op_test_util.h; the tiled prefill path against the
// row path and the reference over awkward shapes and row / key blocks, on every table; its
// gemm_tile kernel against the scalar reference at awkward sizes and misaligned starts; the
// scalar reference; the tiled path handing back a long prompt's scratch; kv_store.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "ops/attention.h"
#include "ops/gemm_tile.h"
#include "tests/op_test_util.h"

using namespace altup;
using namespace altup::test;

namespace {

struct AttnCase {
  std::string name;
  ops::AttentionShape s;
  int64_t T = 0;
  std::vector<int32_t> positions;
  std::vector<float> q, k, v, out;
};

std::vector<AttnCase> load_cases() {
  std::ifstream txt(ALTUP_FIXTURES_DIR "/attention_cases.txt");
  std::ifstream bin(ALTUP_FIXTURES_DIR "/attention_cases.bin", std::ios::binary);
  REQUIRE(txt.good());
  REQUIRE(bin.good());
  std::vector<AttnCase> cases;
  std::string line;
  auto read = [&](std::vector<float>& v, int64_t n) {
    v.resize(static_cast<size_t>(n));
    bin.read(reinterpret_cast<char*>(v.data()), n * 4);
    REQUIRE(bin.good());
  };
  while (std::getline(txt, line)) {
    std::istringstream ss(line);
    AttnCase c;
    std::string pos;
    ss >> c.name >> c.T >> c.s.n_heads >> c.s.n_kv_heads >> c.s.head_dim >> c.s.ctx >> c.s.scale >> c.s.window >> pos;
    std::istringstream ps(pos);
    for (std::string p; std::getline(ps, p, ',');) c.positions.push_back(std::stoi(p));
    const int64_t qn = c.T * c.s.n_heads * c.s.head_dim, kn = c.s.n_kv_heads * c.s.ctx * c.s.head_dim;
    read(c.q, qn);
    read(c.k, kn);
    read(c.v, kn);
    read(c.out, qn);
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

TEST_CASE("attention matches NumPy on every SIMD table; threads keep the determinism contract") {
  const auto cases = load_cases();
  REQUIRE(cases.size() == 10);
  for (const auto& c : cases) {
    CAPTURE(c.name);
    std::vector<float> want(c.out.size());
    ops::ref::attention(c.s, c.q.data(), c.k.data(), c.v.data(), c.positions.data(), c.T, want.data());
    check_close(want.data(), c.out.data(), static_cast<int64_t>(want.size()), 1e-5f, 1e-5f, "reference " + c.name);
    for (const ops::Kernels* k : all_tables()) {
      std::vector<float> y1(c.out.size()), y2(c.out.size()), y2again(c.out.size());
      const std::string at = std::string("attention ") + k->isa + " " + c.name;
      REQUIRE(ops::attention(c.s, c.q.data(), c.k.data(), c.v.data(), c.positions.data(), c.T, y1.data(), 1, k).ok());
      REQUIRE(ops::attention(c.s, c.q.data(), c.k.data(), c.v.data(), c.positions.data(), c.T, y2.data(), 2, k).ok());
      REQUIRE(
          ops::attention(c.s, c.q.data(), c.k.data(), c.v.data(), c.positions.data(), c.T, y2again.data(), 2, k).ok());
      check_close(y1.data(), c.out.data(), static_cast<int64_t>(y1.size()), 1e-5f, 1e-5f, at);
      check_close(y2.data(), c.out.data(), static_cast<int64_t>(y2.size()), 1e-5f, 1e-5f, at + " (2 threads)");
      check_thread_agreement(y1.data(), y2.data(), static_cast<int64_t>(y1.size()), /*via_onednn=*/false, at);
      CHECK(std::memcmp(y2.data(), y2again.data(), y2.size() * 4) == 0);
    }
  }
}

TEST_CASE("gemm_tile matches its scalar reference on every SIMD table, at awkward sizes and starts") {
  std::mt19937 rng(5);
  for (const ops::Kernels* k : simd_tables()) {
    const int64_t L = k->lanes;
    for (int64_t m : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{9}})
      for (int64_t n : {int64_t{0}, int64_t{1}, L - 1, L, L + 1, 2 * L, 2 * L + 1, 5 * L + 3, int64_t{131}})
        for (int64_t kk : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{64}, int64_t{65}, int64_t{200}})
          for (bool acc : {false, true}) {
            const int off = static_cast<int>((m + n + kk) % 4);    // every start, across the sizes
            const int64_t lda = kk + 3, ldb = n + 5, ldc = n + 2;  // padded rows: strides are honoured
            Buf a(m * lda, off), b(kk * ldb, (off + 1) % 4), c(m * ldc, (off + 2) % 4);
            fill(a.data(), m * lda, rng);
            fill(b.data(), kk * ldb, rng);
            fill(c.data(), m * ldc, rng);
            std::vector<float> want(c.data(), c.data() + m * ldc);
            ops::ref::gemm_tile(a.data(), lda, b.data(), ldb, want.data(), ldc, m, n, kk, acc);
            k->gemm_tile(a.data(), lda, b.data(), ldb, c.data(), ldc, m, n, kk, acc);
            const std::string at = std::string(k->isa) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                   " k=" + std::to_string(kk) + (acc ? " accumulate" : "");
            // Sums of up to 200 products of values in [-3, 3], in float against double.
            check_close(c.data(), want.data(), m * ldc, 1e-5f, 2e-4f, at);
          }
  }
}

TEST_CASE("attention's tiled path agrees with the row path and the reference on every table") {
  struct Shape {
    int64_t T, H, Hkv, hd, ctx, window, first, block;
  };
  // Awkward sizes: hd 1 and 17, one query, MQA and MHA, windows, chunks after a filled cache,
  // blocks that do not divide the rows or keys (block 0: 128 rows and 128 keys, crossed by
  // the last three shapes).
  const Shape shapes[] = {
      {1, 2, 1, 17, 9, 0, 5, 0},      {32, 4, 2, 16, 40, 0, 0, 0},   {33, 8, 2, 64, 64, 0, 0, 7},
      {40, 3, 3, 1, 50, 5, 0, 0},     {37, 6, 1, 24, 120, 0, 70, 8}, {64, 4, 2, 80, 64, 13, 0, 5},
      {50, 2, 2, 33, 300, 0, 200, 0}, {200, 4, 1, 16, 256, 0, 0, 0}, {90, 8, 2, 8, 400, 150, 300, 0}};
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  for (const Shape& sh : shapes) {
    ops::AttentionShape s;
    s.n_heads = sh.H;
    s.n_kv_heads = sh.Hkv;
    s.head_dim = sh.hd;
    s.ctx = sh.ctx;
    s.window = sh.window;
    s.scale = 1.0f / std::sqrt(static_cast<float>(sh.hd));
    CAPTURE(sh.T);
    CAPTURE(sh.hd);
    CAPTURE(sh.block);
    std::vector<float> q(sh.T * sh.H * sh.hd), k(sh.Hkv * sh.ctx * sh.hd), v(k.size());
    for (auto* vec : {&q, &k, &v})
      for (float& x : *vec) x = nd(rng);
    std::vector<int32_t> pos(sh.T);
    for (int64_t t = 0; t < sh.T; ++t) pos[t] = static_cast<int32_t>(sh.first + t);
    std::vector<float> want(q.size()), rows(q.size()), tiles(q.size()), tiles1(q.size());
    ops::ref::attention(s, q.data(), k.data(), v.data(), pos.data(), sh.T, want.data());
    for (const ops::Kernels* table : all_tables()) {
      const std::string at = std::string(table->isa);
      REQUIRE(ops::attention(s, q.data(), k.data(), v.data(), pos.data(), sh.T, rows.data(), 2, table,
                             ops::AttentionPath::rows)
                  .ok());
      check_close(rows.data(), want.data(), static_cast<int64_t>(q.size()), 1e-5f, 1e-5f, at + " rows path");
      REQUIRE(ops::attention(s, q.data(), k.data(), v.data(), pos.data(), sh.T, tiles.data(), 2, table,
                             ops::AttentionPath::tiles, sh.block)
                  .ok());
      check_close(tiles.data(), want.data(), static_cast<int64_t>(q.size()), 1e-5f, 1e-5f, at + " tiled path");
      REQUIRE(ops::attention(s, q.data(), k.data(), v.data(), pos.data(), sh.T, tiles1.data(), 1, table,
                             ops::AttentionPath::tiles, sh.block)
                  .ok());
      check_thread_agreement(tiles1.data(), tiles.data(), static_cast<int64_t>(q.size()), false, at + " tiled path");
    }
  }
}

TEST_CASE("a ring cache (position p in slot p % slots) gives what the full cache gives, on both paths") {
  // Sliding window 13, ring of 13 + 40 slots; calls of 1, 7 and 40 tokens at positions that
  // wrap around the ring several times, stored through kv_store as a session would.
  const int64_t H = 4, Hkv = 2, hd = 24, window = 13, slots = window + 40, total = 400;
  std::mt19937 rng(17);
  std::normal_distribution<float> nd;
  ops::AttentionShape full, ring;
  full.n_heads = ring.n_heads = H;
  full.n_kv_heads = ring.n_kv_heads = Hkv;
  full.head_dim = ring.head_dim = hd;
  full.window = ring.window = window;
  full.scale = ring.scale = 0.2f;
  full.ctx = total;
  ring.ctx = slots;
  ring.ring = true;
  std::vector<float> kf(Hkv * total * hd), vf(kf.size()), kr(Hkv * slots * hd), vr(kr.size());
  int64_t at = 0;
  for (int64_t T : {40, 1, 7, 40, 40, 1, 40, 33, 40, 40, 1, 40, 40, 7, 30}) {
    if (at + T > total) break;
    CAPTURE(at);
    CAPTURE(T);
    std::vector<float> q(T * H * hd), k(T * Hkv * hd), v(k.size());
    for (auto* vec : {&q, &k, &v})
      for (float& x : *vec) x = nd(rng);
    std::vector<int32_t> pos(T);
    for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(at + t);
    REQUIRE(ops::kv_store(full, k.data(), pos.data(), T, kf.data()).ok());
    REQUIRE(ops::kv_store(full, v.data(), pos.data(), T, vf.data()).ok());
    REQUIRE(ops::kv_store(ring, k.data(), pos.data(), T, kr.data()).ok());
    REQUIRE(ops::kv_store(ring, v.data(), pos.data(), T, vr.data()).ok());
    std::vector<float> want(q.size()), ref(q.size()), rows(q.size()), tiles(q.size());
    ops::ref::attention(full, q.data(), kf.data(), vf.data(), pos.data(), T, want.data());
    ops::ref::attention(ring, q.data(), kr.data(), vr.data(), pos.data(), T, ref.data());
    check_close(ref.data(), want.data(), static_cast<int64_t>(q.size()), 1e-6f, 1e-6f, "reference on the ring");
    REQUIRE(ops::attention(ring, q.data(), kr.data(), vr.data(), pos.data(), T, rows.data(), 2, nullptr,
                           ops::AttentionPath::rows)
                .ok());
    check_close(rows.data(), want.data(), static_cast<int64_t>(q.size()), 1e-5f, 1e-5f, "rows path on the ring");
    for (int64_t block : {0, 6}) {  // 6: key blocks that end at the ring's wrap and across it
      REQUIRE(ops::attention(ring, q.data(), kr.data(), vr.data(), pos.data(), T, tiles.data(), 2, nullptr,
                             ops::AttentionPath::tiles, block)
                  .ok());
      check_close(tiles.data(), want.data(), static_cast<int64_t>(q.size()), 1e-5f, 1e-5f, "tiled path on the ring");
    }
    at += T;
  }
  CHECK(at > 3 * slots);
  // A call whose keys do not fit the ring is refused, not wrapped over itself.
  std::vector<int32_t> pos(slots);
  for (int64_t t = 0; t < slots; ++t) pos[t] = static_cast<int32_t>(500 + t);
  std::vector<float> q(slots * H * hd), out(q.size());
  const Status st = ops::attention(ring, q.data(), kr.data(), vr.data(), pos.data(), slots, out.data(), 1);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("the ring holds 53") != std::string::npos);
}

TEST_CASE("the tiled path hands back a long prompt's scratch and keeps a short one's") {
  // 32 queries after 40,000 keys of 64: Kᵀ alone is 10 MiB, past the 8 MiB kept per thread.
  const int64_t T = 32, H = 2, hd = 64, first = 40000, ctx = first + T;
  ops::AttentionShape s;
  s.n_heads = H;
  s.n_kv_heads = 1;
  s.head_dim = hd;
  s.ctx = ctx;
  s.scale = 0.125f;
  std::mt19937 rng(23);
  std::normal_distribution<float> nd;
  std::vector<float> q(T * H * hd), k(ctx * hd), v(k.size()), out(q.size()), want(q.size());
  for (auto* vec : {&q, &k, &v})
    for (float& x : *vec) x = nd(rng);
  std::vector<int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(first + t);
  REQUIRE(
      ops::attention(s, q.data(), k.data(), v.data(), pos.data(), T, out.data(), 2, nullptr, ops::AttentionPath::tiles)
          .ok());
  ops::ref::attention(s, q.data(), k.data(), v.data(), pos.data(), T, want.data());
  check_close(out.data(), want.data(), static_cast<int64_t>(q.size()), 1e-5f, 1e-5f, "40,000 keys");
  CHECK(ops::attention_scratch_bytes() <= (size_t{8} << 20));
  // A short prompt's scratch stays for the next chunk: nothing to allocate again.
  for (int32_t& p : pos) p -= static_cast<int32_t>(first);
  REQUIRE(
      ops::attention(s, q.data(), k.data(), v.data(), pos.data(), T, out.data(), 2, nullptr, ops::AttentionPath::tiles)
          .ok());
  const size_t kept = ops::attention_scratch_bytes();
  CHECK(kept >= static_cast<size_t>(T * H * hd + hd * T) * sizeof(float));
  CHECK(kept <= (size_t{8} << 20));
}

TEST_CASE("attention rejects positions outside the cache and heads that cannot be grouped") {
  ops::AttentionShape s;
  s.n_heads = 4;
  s.n_kv_heads = 3;
  s.head_dim = 8;
  s.ctx = 4;
  std::vector<float> q(32), kv(96), out(32);
  int32_t pos[] = {0};
  auto r = ops::attention(s, q.data(), kv.data(), kv.data(), pos, 1, out.data(), 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("cannot share") != std::string::npos);
  s.n_kv_heads = 2;
  pos[0] = 4;
  r = ops::attention(s, q.data(), kv.data(), kv.data(), pos, 1, out.data(), 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "position 4 is outside the context of 4");
}

TEST_CASE("kv_store writes each token's heads at its position in the [H_kv, ctx, hd] cache") {
  ops::AttentionShape s;
  s.n_heads = 2;
  s.n_kv_heads = 2;
  s.head_dim = 3;
  s.ctx = 5;
  std::vector<float> kv = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // [T=2, H_kv=2, hd=3]
  std::vector<float> cache(2 * 5 * 3, 0.0f);
  int32_t pos[] = {3, 4};
  REQUIRE(ops::kv_store(s, kv.data(), pos, 2, cache.data()).ok());
  CHECK(cache[(0 * 5 + 3) * 3 + 0] == 1);   // token 0, head 0
  CHECK(cache[(1 * 5 + 3) * 3 + 2] == 6);   // token 0, head 1
  CHECK(cache[(0 * 5 + 4) * 3 + 1] == 8);   // token 1, head 0
  CHECK(cache[(1 * 5 + 4) * 3 + 0] == 10);  // token 1, head 1
  CHECK(cache[0] == 0);
}
