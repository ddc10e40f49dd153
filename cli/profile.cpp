// `altup profile`: where the time goes, layer by layer and op by op, for a prefill and a
// number of decode steps; AltUp's predict / correct shown per layer and in total.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/options.h"
#include "cli/util.h"
#include "engine/profiler.h"
#include "models/decoder.h"
#include "engine/session.h"

namespace altup::cli {
namespace {}  // namespace

int cmd_profile(int argc, char** argv) {
  std::string prompt, format = "table", trace;
  long long prefill = 128, decode = 32;
  ModelOptions opening;
  bool have_prompt = false, no_warmup = false, overhead = false;
  CommandSpec spec{"profile",
                   "[-m MODEL.gguf] [-p PROMPT | --prefill N] [--decode N] [options]",
                   "Runs a prefill (the prompt, or N random tokens) and N greedy decode steps with every\n"
                   "node timed, then prints where the time went: per layer by category (attention, FFN,\n"
                   "AltUp predict, AltUp correct, ...) and per op (calls, total ms, share, GFLOP/s, GB/s),\n"
                   "prefill and decode apart. The last line compares the ops' total with wall time.",
                   {
                       text("-p", "--prompt", &prompt, "TEXT", "prompt to prefill"),
                       integer(nullptr, "--prefill", &prefill, 1, kMaxContextOption, "N",
                               "prefill N random tokens instead (default 128)"),
                       integer(nullptr, "--decode", &decode, 0, kMaxContextOption, "N", "decode steps (default 32)"),
                       choice(nullptr, "--format", &format, "table|csv|json", "output on stdout (default table)"),
                       text(nullptr, "--trace", &trace, "FILE",
                            "also write a Chrome trace (Trace Event Format JSON) that opens\n"
                            "in Perfetto or chrome://tracing (written whole or not at all)"),
                       flag(nullptr, "--no-warmup", &no_warmup,
                            "time the very first run too (by default one untimed prefill\n"
                            "and decode step run first, so one-time setup such as oneDNN's\n"
                            "kernel creation is not counted)"),
                       flag(nullptr, "--overhead", &overhead,
                            "also measure the profiler's own cost: the decode steps are\n"
                            "rerun 5 times each with and without it, interleaved"),
                   },
                   "Exit status: 0 on success, 1 if the model cannot be loaded or run, 2 for bad usage."};
  spec.options[0].given = &have_prompt;
  opening.add_to(spec.options, "context length (default: prefill + decode)");
  opening.tune_decode_threads = false;  // every step on -t threads, so the profile shows that count
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (opening.missing("profile")) return 2;
  const std::string& model = opening.model;
  if (std::string why; !trace.empty() && !check_output_path(trace, {{model, "the model file"}}, &why)) {
    std::fprintf(stderr, "altup profile: error: --trace: %s\n", why.c_str());  // before the work, not after
    return 1;
  }
  const bool warmup = !no_warmup;
  // Random prefill: the context is sized to fit it and the decode steps; a prompt: the
  // model's context unless --ctx says otherwise.
  const std::unique_ptr<Session> session = opening.open("profile", opening.ctx > 0 ? opening.ctx
                                                                   : have_prompt   ? 0
                                                                                   : prefill + decode);
  if (!session) return 1;
  std::vector<int32_t> tokens;
  if (have_prompt) {
    tokens = session->tokenizer().encode(prompt, session->tokenizer().add_bos());
  } else {
    std::mt19937 rng(1);
    tokens = random_tokens(rng, prefill, session->model().vocab_size());
  }
  const long long need = static_cast<long long>(tokens.size()) + decode;
  if (session->ctx() < need) {
    std::fprintf(stderr, "altup profile: error: %lld tokens (prefill + decode) do not fit the context of %lld (%s)\n",
                 need, static_cast<long long>(session->ctx()), context_hint(*session).c_str());
    return 1;
  }
  Session& s = *session;
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
  if (const auto* dec = dynamic_cast<const Decoder*>(&s.model())) {
    std::vector<int> stacks;
    for (const LayerSpec& l : dec->spec().layers) stacks.push_back(l.stack);
    prof.set_stacks(std::move(stacks));
  }
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
  double overhead_pct = 0;
  const bool measure_overhead = overhead && decode > 0;
  if (measure_overhead) {
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
  if (!stdout_ok("profile")) return 1;
  if (std::string why;
      !trace.empty() && !write_file_atomic(trace, prof.chrome_trace(), {{model, "the model file"}}, &why)) {
    std::fprintf(stderr, "altup profile: error: --trace: %s\n", why.c_str());
    return 1;
  }
  std::fprintf(stderr,
               "altup profile: %s, %d threads | prefill %zu tokens: ops %.3f ms of %.3f ms wall | decode %lld steps: "
               "ops %.3f ms of %.3f ms wall\n",
               model.c_str(), s.threads(), tokens.size(), prof.total_ms("prefill"), wall_ms[0], decode,
               prof.total_ms("decode"), wall_ms[1]);
  if (measure_overhead)
    std::fprintf(stderr, "altup profile: profiler overhead on decode: %+.2f%% (median of 5 runs with vs without)\n",
                 overhead_pct);
  return 0;
}

}  // namespace altup::cli
