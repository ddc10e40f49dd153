// `altup profile`: where the time goes, layer by layer and op by op, for a prefill and a
// number of decode steps; AltUp's predict / correct shown per layer and in total.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/options.h"
#include "runtime/profiler.h"
#include "runtime/session.h"

namespace altup::cli {
namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: altup profile [-m MODEL.gguf] [-p PROMPT | --prefill N] [--decode N] [options]\n\n"
               "Runs a prefill (the prompt, or N random tokens) and N greedy decode steps with every\n"
               "node timed, then prints where the time went: per layer by category (attention, FFN,\n"
               "AltUp predict, AltUp correct, ...) and per op (calls, total ms, share, GFLOP/s, GB/s),\n"
               "prefill and decode apart. The last line compares the ops' total with wall time.\n\n"
               "options:\n"
               "  -m, --model FILE     GGUF model (default: the shipped demo model)\n"
               "  -p, --prompt TEXT    prompt to prefill\n"
               "      --prefill N      prefill N random tokens instead (default 128)\n"
               "      --decode N       decode steps (default 32)\n"
               "  -t, --threads N      threads (default: all cores)\n"
               "  -c, --ctx N          context length (default: prefill + decode)\n"
               "      --format F       table (default), csv or json, on stdout\n"
               "      --trace FILE     also write a Chrome trace (Trace Event Format JSON) that opens\n"
               "                       in Perfetto or chrome://tracing\n"
               "      --no-warmup      time the very first run too (by default one untimed prefill\n"
               "                       and decode step run first, so one-time setup such as oneDNN's\n"
               "                       kernel creation is not counted)\n"
               "      --overhead       also measure the profiler's own cost: the decode steps are\n"
               "                       rerun 5 times each with and without it, interleaved\n"
               "  -h, --help           show this help\n");
}

}  // namespace

int cmd_profile(int argc, char** argv) {
  std::string model = ALTUP_DEFAULT_MODEL, prompt, format = "table", trace;
  long long prefill = 128, decode = 32, threads = 0, ctx = 0;
  bool have_prompt = false, warmup = true, overhead = false;
  for (int k = 0; k < argc; ++k) {
    const std::string_view a = argv[k];
    auto value = [&]() -> const char* { return k + 1 < argc ? argv[++k] : nullptr; };
    const char* v = nullptr;
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a == "--no-warmup" || a == "--overhead") {
      (a == "--no-warmup" ? warmup : overhead) = a == "--overhead";
      continue;
    }
    const bool takes_value = a == "-m" || a == "--model" || a == "-p" || a == "--prompt" || a == "--prefill" ||
                             a == "--decode" || a == "-t" || a == "--threads" || a == "-c" || a == "--ctx" ||
                             a == "--format" || a == "--trace";
    if (!takes_value) {
      std::fprintf(stderr, "altup profile: unknown argument '%s' (see 'altup profile --help')\n", argv[k]);
      return 2;
    }
    if (!(v = value())) {
      std::fprintf(stderr, "altup profile: %s needs a value\n", argv[k]);
      return 2;
    }
    bool ok = true;
    if (a == "-m" || a == "--model")
      model = v;
    else if (a == "-p" || a == "--prompt")
      prompt = v, have_prompt = true;
    else if (a == "--prefill")
      ok = parse_int(v, 1, 1 << 20, &prefill);
    else if (a == "--decode")
      ok = parse_int(v, 0, 1 << 20, &decode);
    else if (a == "-t" || a == "--threads")
      ok = parse_int(v, 1, 1024, &threads);
    else if (a == "-c" || a == "--ctx")
      ok = parse_int(v, 1, 1 << 24, &ctx);
    else if (a == "--format")
      ok = (format = v) == "table" || format == "csv" || format == "json";
    else if (a == "--trace")
      trace = v;
    if (!ok) {
      std::fprintf(stderr, "altup profile: bad value '%s' for %s\n", v, std::string(a).c_str());
      return 2;
    }
  }
  SessionOptions opt;
  opt.threads = static_cast<int>(threads);
  // Random prefill: the context is sized to fit it and the decode steps; a prompt: the
  // model's context unless --ctx says otherwise.
  opt.ctx = ctx > 0 ? ctx : have_prompt ? 0 : prefill + decode;
  auto session = Session::open(model, opt);
  if (!session) {
    std::fprintf(stderr, "altup profile: error: %s: %s\n", model.c_str(), session.error().message.c_str());
    return 1;
  }
  std::vector<int32_t> tokens;
  if (have_prompt) {
    tokens = (*session)->tokenizer().encode(prompt, (*session)->tokenizer().add_bos());
  } else {
    std::mt19937 rng(1);
    const int32_t V = (*session)->tokenizer().vocab_size();
    for (long long i = 0; i < prefill; ++i)
      tokens.push_back(3 + static_cast<int32_t>(rng() % static_cast<uint32_t>(V - 3)));
  }
  const long long need = static_cast<long long>(tokens.size()) + decode;
  if ((*session)->ctx() < need) {
    std::fprintf(stderr,
                 "altup profile: error: %lld tokens (prefill + decode) do not fit the context of %lld (--ctx)\n", need,
                 static_cast<long long>((*session)->ctx()));
    return 1;
  }
  Session& s = **session;
  const int64_t V = s.model().vocab_size();
  // Greedy decode of `steps` tokens after the current logits; returns wall ms.
  using clock = std::chrono::steady_clock;
  auto decode_steps = [&](const float* logits, long long steps, double* wall) -> Status {
    for (long long i = 0; i < steps; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
      const auto t = clock::now();
      auto l = s.eval({next});
      *wall += std::chrono::duration<double, std::milli>(clock::now() - t).count();
      if (!l) return l.error();
      logits = *l;
    }
    return {};
  };
  if (warmup) {
    auto l = s.eval(tokens);
    if (!l) {
      std::fprintf(stderr, "altup profile: error: %s\n", l.error().message.c_str());
      return 1;
    }
    double unused = 0;
    if (decode > 0) (void)decode_steps(*l, 1, &unused);
    s.reset();
  }
  Profiler prof;
  s.set_hooks(&prof);
  double wall_ms[2] = {0, 0};
  prof.set_phase("prefill");
  auto t0 = clock::now();
  auto logits = s.eval(tokens);
  wall_ms[0] = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  if (!logits) {
    std::fprintf(stderr, "altup profile: error: %s\n", logits.error().message.c_str());
    return 1;
  }
  prof.set_phase("decode");
  const std::vector<float> after_prefill(*logits, *logits + V);
  if (Status st = decode_steps(after_prefill.data(), decode, &wall_ms[1]); !st.ok()) {
    std::fprintf(stderr, "altup profile: error: %s\n", st.error().message.c_str());
    return 1;
  }
  s.set_hooks(nullptr);
  double overhead_pct = -1;
  if (overhead && decode > 0) {
    // The same decode steps from the same prefill, with and without the profiler, interleaved.
    std::vector<double> on, off;
    for (int rep = 0; rep < 5; ++rep)
      for (bool hooked : {false, true}) {
        Profiler scratch;
        s.reset();
        s.set_hooks(hooked ? &scratch : nullptr);
        double w = 0;
        auto l = s.eval(tokens);
        if (!l || !decode_steps(*l, decode, &w).ok()) {
          std::fprintf(stderr, "altup profile: error during the overhead runs\n");
          return 1;
        }
        (hooked ? on : off).push_back(w);
        s.set_hooks(nullptr);
      }
    std::sort(on.begin(), on.end());
    std::sort(off.begin(), off.end());
    overhead_pct = 100.0 * (on[2] / off[2] - 1.0);
  }
  if (format == "csv")
    std::fputs(prof.csv().c_str(), stdout);
  else if (format == "json")
    std::fputs(prof.json().c_str(), stdout);
  else
    std::fputs(prof.table().c_str(), stdout);
  if (!trace.empty() && !write_file_atomic(trace, prof.chrome_trace())) {
    std::fprintf(stderr, "altup profile: error: cannot write %s\n", trace.c_str());
    return 1;
  }
  std::fprintf(stderr,
               "altup profile: %s, %d threads | prefill %zu tokens: ops %.3f ms of %.3f ms wall | decode %lld steps: "
               "ops %.3f ms of %.3f ms wall\n",
               model.c_str(), s.threads(), tokens.size(), prof.total_ms("prefill"), wall_ms[0], decode,
               prof.total_ms("decode"), wall_ms[1]);
  if (overhead_pct > -100)
    std::fprintf(stderr, "altup profile: profiler overhead on decode: %+.2f%% (median of 5 runs with vs without)\n",
                 overhead_pct);
  return 0;
}

}  // namespace altup::cli
