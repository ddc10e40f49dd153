// Graph, planner and executor: tensors that are alive together never share bytes, the arena
// is as small as possible on a chain, results equal a naive evaluation with a buffer per
// tensor, hooks see every node begin and end in order, and a section's branches run at once
// on shares of the threads.
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "runtime/executor.h"

using namespace altup;

namespace {

// Test ops over f32 tensors of equal length; their one parameter is a factor.
struct Factor {
  float value = 0;
};
float factor(const Node& n) {
  Factor f;
  n.params.get(&f);
  return f.value;
}
Status run_fill(const Node& n, ExecContext& ctx) {
  const TensorView& y = ctx.output(n);
  for (int64_t i = 0; i < y.numel(); ++i) y.as<float>()[i] = factor(n) + static_cast<float>(i);
  return {};
}
Status run_add(const Node& n, ExecContext& ctx) {
  const TensorView& y = ctx.output(n);
  for (int64_t i = 0; i < y.numel(); ++i) {
    float s = 0;
    for (size_t k = 0; k < n.inputs.size(); ++k) s += ctx.input(n, k).as<float>()[i % ctx.input(n, k).numel()];
    y.as<float>()[i] = s * factor(n);
  }
  return {};
}
Status run_fail(const Node&, ExecContext&) { return make_error("deliberate failure"); }
const OpDef kFill = {"fill", run_fill};
const OpDef kAdd = {"add", run_add};
const OpDef kFail = {"fail", run_fail};

OpParams scale(float s) { return Factor{s}; }

struct Recorder : ExecHooks {
  std::vector<std::string> events;
  void on_begin(const Node& n, size_t k) override { events.push_back("begin " + n.name + " " + std::to_string(k)); }
  void on_end(const Node& n, size_t k) override { events.push_back("end " + n.name + " " + std::to_string(k)); }
};

// Lifetimes computed here, independently of the planner: [first node, last node] touching
// the tensor's root, outputs to the end; a touch inside a section of branches counts for the
// whole section, whose nodes run at once.
bool alive_together(const Graph& g, TensorId a, TensorId b) {
  auto span = [&](TensorId t) {
    int first = -1, last = -1;
    for (int k = 0; k < static_cast<int>(g.nodes().size()); ++k) {
      bool uses = g.root_of(g.nodes()[k].output) == t;
      for (TensorId in : g.nodes()[k].inputs) uses |= g.root_of(in) == t;
      if (!uses) continue;
      int lo = k, hi = k;
      for (const Section& s : g.sections())
        if (k >= s.first && k < s.end) lo = s.first, hi = s.end - 1;
      if (first < 0 || lo < first) first = lo;
      last = std::max(last, hi);
    }
    if (g.tensor(t).is_output) last = static_cast<int>(g.nodes().size());
    return std::pair{first, last};
  };
  auto [a0, a1] = span(a);
  auto [b0, b1] = span(b);
  return a0 >= 0 && b0 >= 0 && a0 <= b1 && b0 <= a1;
}

void check_no_live_overlap(const Graph& g, const MemoryPlan& p) {
  for (TensorId a = 0; a < static_cast<TensorId>(g.tensors().size()); ++a)
    for (TensorId b = a + 1; b < static_cast<TensorId>(g.tensors().size()); ++b) {
      if (p.offsets[a] == kNotInArena || p.offsets[b] == kNotInArena) continue;
      if (!alive_together(g, a, b)) continue;
      const bool disjoint = p.offsets[a] + p.sizes[a] <= p.offsets[b] || p.offsets[b] + p.sizes[b] <= p.offsets[a];
      CAPTURE(g.tensor(a).name);
      CAPTURE(g.tensor(b).name);
      REQUIRE(disjoint);
    }
}

}  // namespace

TEST_CASE("planner: a chain gets the optimal arena (the most bytes alive at any one node)") {
  for (auto sizes : std::vector<std::vector<int64_t>>{{16, 16, 16, 16},
                                                      {64, 16, 64, 16, 64},
                                                      {16, 32, 48, 32, 16},
                                                      {128, 16, 16, 112, 32, 64, 16},
                                                      {48, 80, 16, 96, 16, 16, 80, 48}}) {
    Graph g;
    TensorId x = g.add_node(&kFill, {}, "n0", 0, DType::F32, {sizes[0]});
    for (size_t k = 1; k < sizes.size(); ++k)
      x = g.add_node(&kAdd, {x}, "n" + std::to_string(k), static_cast<int>(k), DType::F32, {sizes[k]}, scale(1));
    g.mark_output(x);
    auto p = plan_memory(g);
    REQUIRE(p.ok());
    // Node k reads tensor k-1 and writes tensor k; the output stays alive at the end.
    uint64_t optimum = sizes.back() * 4;
    for (size_t k = 1; k < sizes.size(); ++k) optimum = std::max<uint64_t>(optimum, 4 * (sizes[k - 1] + sizes[k]));
    CAPTURE(sizes.size());
    CHECK(p->arena_bytes == optimum);
    check_no_live_overlap(g, *p);
  }
}

TEST_CASE("planner + executor on random graphs: no live overlap, results equal a naive evaluation") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    Graph g;
    std::vector<TensorId> ids;
    std::vector<std::vector<float>> naive;  // one buffer per tensor
    const int64_t n = 16 * (1 + static_cast<int64_t>(rng() % 8));
    TensorId in = g.add_input("in", DType::F32, {n});
    std::vector<float> input(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) input[i] = static_cast<float>(i % 7) - 3.0f;
    ids.push_back(in);
    naive.push_back(input);
    const int nodes = 5 + static_cast<int>(rng() % 25);
    for (int k = 0; k < nodes; ++k) {
      std::vector<TensorId> inputs;
      std::vector<size_t> picks;
      const int fan = 1 + static_cast<int>(rng() % 3);
      for (int j = 0; j < fan; ++j) {
        const size_t pick = rng() % ids.size();
        inputs.push_back(ids[pick]);
        picks.push_back(pick);
      }
      const float s = 0.5f + static_cast<float>(rng() % 3) * 0.25f;
      ids.push_back(g.add_node(&kAdd, inputs, "add", k, DType::F32, {n}, scale(s)));
      std::vector<float> out(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        float acc = 0;
        for (size_t p : picks) acc += naive[p][i];
        out[i] = acc * s;
      }
      naive.push_back(out);
    }
    // A few outputs, somewhere in the graph.
    std::vector<size_t> outs = {ids.size() - 1, 1 + rng() % (ids.size() - 1)};
    for (size_t o : outs) g.mark_output(ids[o]);

    auto ex = Executor::create(g);
    REQUIRE(ex.ok());
    check_no_live_overlap(g, (*ex)->plan());
    CHECK((*ex)->plan().arena_bytes >= (*ex)->plan().lower_bound);
    (*ex)->bind_input(in, input.data());
    REQUIRE((*ex)->run(1).ok());
    for (size_t o : outs) {
      const TensorView& v = (*ex)->tensor(ids[o]);
      for (int64_t i = 0; i < n; ++i) REQUIRE(v.as<float>()[i] == naive[o][i]);
    }
  }
}

TEST_CASE("views: nodes write ring slots in place and the ring lives as long as any slot") {
  // A ring of K = 3 slots of [2, 16] f32, as the AltUp state is kept.
  Graph g;
  const int64_t K = 3, T = 2, d = 16;
  TensorId ring = g.add_node(&kFill, {}, "ring_init", -1, DType::F32, {K, T, d}, scale(0));
  std::vector<TensorId> slot;
  for (int64_t k = 0; k < K; ++k)
    slot.push_back(
        g.add_view("slot" + std::to_string(k), ring, static_cast<uint64_t>(k * T * d * 4), DType::F32, {T, d}));
  TensorId tmp = g.add_node(&kAdd, {slot[0], slot[2]}, "mix", 0, DType::F32, {T, d}, scale(1));
  g.add_node_into(&kAdd, {tmp}, slot[1], "write_slot1", 0, scale(2));
  TensorId big = g.add_node(&kFill, {}, "other", 1, DType::F32, {K, T, d}, scale(100));
  TensorId out = g.add_node(&kAdd, {slot[1], big}, "read_slot1", 1, DType::F32, {T, d}, scale(1));
  g.mark_output(out);
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  check_no_live_overlap(g, (*ex)->plan());
  REQUIRE((*ex)->run(1).ok());
  // ring_init writes 0, 1, 2, ...; slot0[i] = i, slot2[i] = 2*T*d + i.
  for (int64_t i = 0; i < T * d; ++i) {
    const float slot1 = 2.0f * (static_cast<float>(i) + static_cast<float>(2 * T * d + i));
    CHECK((*ex)->tensor(out).as<float>()[i] == slot1 + 100.0f + static_cast<float>(i));
  }
}

TEST_CASE("executor hooks see begin and end of every node, in order; errors name the node") {
  Graph g;
  TensorId a = g.add_node(&kFill, {}, "fill", -1, DType::F32, {16}, scale(1));
  TensorId b = g.add_node(&kAdd, {a}, "attn_norm", 0, DType::F32, {16}, scale(1));
  TensorId c = g.add_node(&kAdd, {b, a}, "ffn", 0, DType::F32, {16}, scale(1));
  g.mark_output(c);
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  Recorder rec;
  REQUIRE((*ex)->run(2, &rec).ok());
  CHECK(rec.events == std::vector<std::string>{"begin fill 0", "end fill 0", "begin attn_norm 1", "end attn_norm 1",
                                               "begin ffn 2", "end ffn 2"});
  CHECK((*ex)->run(1).ok());  // and without hooks

  Graph bad;
  TensorId x = bad.add_node(&kFill, {}, "fill", -1, DType::F32, {16}, scale(1));
  bad.mark_output(bad.add_node(&kFail, {x}, "broken", 3, DType::F32, {16}));
  auto ex2 = Executor::create(bad);
  REQUIRE(ex2.ok());
  Recorder rec2;
  Status s = (*ex2)->run(1, &rec2);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "broken (layer 3): deliberate failure");
  CHECK(rec2.events.back() == "end broken 1");
}

TEST_CASE("validate rejects graphs that read before writing or write what they must not") {
  {
    Graph g;
    TensorId w = g.add_weight("w", TensorView::contiguous(DType::F32, {16}, nullptr));
    (void)w;
    CHECK(g.validate().error().message == "weight w has no data");
  }
  {
    Graph g;
    float data[16] = {};
    TensorId w = g.add_weight("w", TensorView::contiguous(DType::F32, {16}, data));
    g.add_node_into(&kAdd, {w}, w, "clobber", 0);
    CHECK(g.validate().error().message.find("writes into w, which is not an activation") != std::string::npos);
  }
  {
    Graph g;
    TensorId a = g.add_node(&kFill, {}, "a", -1, DType::F32, {16});
    TensorId later = g.add_node(&kFill, {}, "later", -1, DType::F32, {16});
    g.add_node(&kAdd, {a}, "reader", 0, DType::F32, {16});
    g.add_node_into(&kFill, {}, a, "rewrite", 0);
    (void)later;
    CHECK(g.validate().error().message.find("which another node already wrote") != std::string::npos);
  }
  {
    Graph g;
    TensorId ring = g.add_input("ring", DType::F32, {16});
    g.add_view("too_far", ring, 32, DType::F32, {16});
    CHECK(g.validate().error().message.find("does not fit inside ring") != std::string::npos);
  }
  {
    Graph g;
    g.add_node(&kAdd, {5}, "dangling", 0, DType::F32, {16});
    CHECK(g.validate().error().message.find("reads an unknown tensor id 5") != std::string::npos);
  }
}

namespace {

// Ops for the branch tests. "meet": each of two nodes waits (up to 5 s) for the other to have
// started, and writes 1 if it did: two meets in different branches both see 1 only if the
// branches really run at once. "threads": writes ctx.threads() and the size of the team a
// parallel region of that many threads gets (nested inside a branch's group).
std::atomic<int> g_arrived{0};
Status run_meet(const Node& n, ExecContext& ctx) {
  g_arrived.fetch_add(1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (g_arrived.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  ctx.output(n).as<float>()[0] = g_arrived.load() >= 2 ? 1.0f : 0.0f;
  return {};
}
Status run_threads(const Node& n, ExecContext& ctx) {
  float* y = ctx.output(n).as<float>();
  y[0] = static_cast<float>(ctx.threads());
  int team = 0;
#pragma omp parallel num_threads(ctx.threads())
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  y[1] = static_cast<float>(team);
  return {};
}
const OpDef kMeet = {"meet", run_meet};
const OpDef kThreads = {"threads", run_threads};

}  // namespace

TEST_CASE("branches: random sections give the naive results on any number of threads, and never share bytes") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    Graph g;
    const int64_t n = 16 * (1 + static_cast<int64_t>(rng() % 4));
    std::vector<float> input(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) input[i] = static_cast<float>(i % 5) - 2.0f;
    const TensorId in = g.add_input("in", DType::F32, {n});
    std::vector<TensorId> ids{in};
    std::vector<std::vector<float>> naive{input};
    auto add = [&](std::vector<size_t> picks, float s, int branch) {
      std::vector<TensorId> inputs;
      std::vector<float> out(static_cast<size_t>(n), 0.0f);
      for (size_t p : picks) inputs.push_back(ids[p]);
      for (int64_t i = 0; i < n; ++i) {
        for (size_t p : picks) out[i] += naive[p][i];
        out[i] *= s;
      }
      ids.push_back(g.add_node(&kAdd, inputs, "add", branch, DType::F32, {n}, scale(s)));
      naive.push_back(out);
      return ids.size() - 1;
    };
    const size_t before = add({0, 0}, 0.5f, -1);
    const int branches = 2 + static_cast<int>(rng() % 3);
    std::vector<std::vector<size_t>> own(static_cast<size_t>(branches));
    // Interleaved in graph order: each new node reads what came before the section or its own
    // branch's earlier nodes.
    for (int step = 0; step < 6 * branches; ++step) {
      const int b = static_cast<int>(rng() % static_cast<unsigned>(branches));
      auto& mine = own[static_cast<size_t>(b)];
      g.branch(b);
      std::vector<size_t> picks{mine.empty() ? before : mine[rng() % mine.size()]};
      if (rng() % 2) picks.push_back(rng() % (before + 1));
      mine.push_back(add(picks, 0.75f, b));
    }
    g.join();
    std::vector<size_t> lasts;
    for (auto& mine : own) lasts.push_back(mine.empty() ? before : mine.back());
    const size_t out = add(lasts, 1.0f, -1);
    g.mark_output(ids[out]);

    auto ex = Executor::create(g);
    REQUIRE(ex.ok());
    check_no_live_overlap(g, (*ex)->plan());
    (*ex)->bind_input(in, input.data());
    for (int threads : {1, 2, 3, 5}) {
      CAPTURE(threads);
      REQUIRE((*ex)->run(threads).ok());
      for (int64_t i = 0; i < n; ++i) REQUIRE((*ex)->tensor(ids[out]).as<float>()[i] == naive[out][i]);
    }
  }
}

TEST_CASE("branches run at once, each on its group's share of the threads; with hooks, one node at a time") {
  Graph g;
  std::vector<TensorId> met, seen;
  for (int b = 0; b < 2; ++b) {
    g.branch(b);
    met.push_back(g.add_node(&kMeet, {}, "meet", b, DType::F32, {1}));
    seen.push_back(g.add_node(&kThreads, {}, "threads", b, DType::F32, {2}));
  }
  g.join();
  for (TensorId t : met) g.mark_output(t);
  for (TensorId t : seen) g.mark_output(t);
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  for (int threads : {2, 5}) {
    CAPTURE(threads);
    g_arrived = 0;
    REQUIRE((*ex)->run(threads).ok());
    for (TensorId t : met) CHECK((*ex)->tensor(t).as<float>()[0] == 1.0f);
    // Groups of threads / 2 and the rest; an op's own team in a group has the group's size.
    const float first = static_cast<float>(threads / 2), second = static_cast<float>(threads - threads / 2);
    CHECK((*ex)->tensor(seen[0]).as<float>()[0] == first);
    CHECK((*ex)->tensor(seen[1]).as<float>()[0] == second);
    CHECK((*ex)->tensor(seen[0]).as<float>()[1] == first);
    CHECK((*ex)->tensor(seen[1]).as<float>()[1] == second);
  }
  Recorder rec;
  g_arrived = 2;  // the meets would wait for each other in vain: nodes run one at a time
  REQUIRE((*ex)->run(2, &rec).ok());
  CHECK(rec.events == std::vector<std::string>{"begin meet 0", "end meet 0", "begin threads 1", "end threads 1",
                                               "begin meet 2", "end meet 2", "begin threads 3", "end threads 3"});
  CHECK((*ex)->tensor(seen[1]).as<float>()[0] == 2.0f);  // every thread
}

TEST_CASE("an error in a branch stops the run and names the node") {
  Graph g;
  const TensorId x = g.add_node(&kFill, {}, "fill", -1, DType::F32, {16}, scale(1));
  g.branch(0);
  const TensorId a = g.add_node(&kAdd, {x}, "fine", 0, DType::F32, {16}, scale(1));
  g.branch(1);
  const TensorId b = g.add_node(&kFail, {x}, "broken", 4, DType::F32, {16});
  g.join();
  g.mark_output(g.add_node(&kAdd, {a, b}, "after", -1, DType::F32, {16}, scale(1)));
  auto ex = Executor::create(g);
  REQUIRE(ex.ok());
  for (int threads : {1, 2}) {
    Status s = (*ex)->run(threads);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message == "broken (layer 4): deliberate failure");
  }
}

TEST_CASE("validate refuses branches that share data, and a section left open") {
  {
    Graph g;  // branch 1 reads what branch 0 writes
    const TensorId x = g.add_node(&kFill, {}, "x", -1, DType::F32, {16});
    g.branch(0);
    const TensorId a = g.add_node(&kAdd, {x}, "a", 0, DType::F32, {16});
    g.branch(1);
    g.add_node(&kAdd, {a}, "b", 1, DType::F32, {16});
    g.join();
    CHECK(g.validate().error().message.find("nodes a (branch 0) and b (branch 1) both touch bytes of a-0") !=
          std::string::npos);
  }
  for (uint64_t second : {32u, 64u}) {  // two branches writing rows of one tensor: overlapping, or not
    Graph g;
    const TensorId x = g.add_node(&kFill, {}, "x", -1, DType::F32, {32});
    const TensorId lo = g.add_view("lo", x, 0, DType::F32, {16});
    const TensorId hi = g.add_view("hi", x, second, DType::F32, {16});
    g.branch(0);
    g.add_node_into(&kFill, {}, lo, "write_lo", 0);
    g.branch(1);
    g.add_node_into(&kFill, {}, hi, "write_hi", 1);
    g.join();
    CAPTURE(second);
    if (second == 64)
      CHECK(g.validate().ok());
    else
      CHECK(g.validate().error().message.find("both touch bytes of x") != std::string::npos);
  }
  {
    Graph g;
    g.branch(0);
    g.add_node(&kFill, {}, "x", -1, DType::F32, {16});
    CHECK(g.validate().error().message.find("still open") != std::string::npos);
  }
}
