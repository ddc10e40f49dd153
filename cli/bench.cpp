// `altup bench`: prefill and decode speed the way llama-bench measures them. ppN: one
// prompt of N random tokens in a fresh context; tgN: N tokens decoded one at a time from an
// empty context. Each test is repeated; median, min and max tokens/s are reported, with the
// load time and peak RSS. Text (a markdown table) or JSON.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/options.h"
#include "cli/util.h"
#include "engine/session.h"

namespace altup::cli {
namespace {

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  std::string output = "text";
  long long n_prompt = 512, n_gen = 128, reps = 5, depth = 0;
  ModelOptions opening;
  CommandSpec spec{"bench",
                   "[-m MODEL.gguf] [-p N] [-n N] [-d N] [-r N] [-t N] [-o text|json]",
                   "Measures prefill (ppN: one N-token prompt of random tokens, fresh context) and decode\n"
                   "(tgN: N tokens one at a time from an empty context) speed, as llama-bench does; each\n"
                   "test repeated -r times, reporting median, min and max tokens/s, plus load time and\n"
                   "peak RSS. With -d N each test starts after N tokens already in the context (filled\n"
                   "once, untimed; each repetition then takes its own tokens back).",
                   {
                       integer("-p", "--n-prompt", &n_prompt, 0, kMaxContextOption, "N",
                               "prompt tokens for the prefill test; 0 skips it (default 512)"),
                       integer("-n", "--n-gen", &n_gen, 0, kMaxContextOption, "N",
                               "tokens for the decode test; 0 skips it (default 128)"),
                       integer("-d", "--depth", &depth, 0, kMaxContextOption, "N",
                               "tokens already in the context when each test starts\n(default 0)"),
                       integer("-r", "--repetitions", &reps, 1, 1000, "N", "repetitions of each test (default 5)"),
                       choice("-o", "--output", &output, "text|json", "output format (default text)"),
                   },
                   "Exit status: 0 on success, 1 if the model cannot be loaded or run, 2 for bad usage."};
  opening.add_to(spec.options);
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (opening.missing("bench")) return 2;
  const std::string& model = opening.model;
  if (n_prompt == 0 && n_gen == 0) {
    std::fprintf(stderr, "altup bench: nothing to measure: -p and -n are both 0\n");
    return 2;
  }
  using clock = std::chrono::steady_clock;
  const auto t_load = clock::now();
  const std::unique_ptr<Session> session =
      opening.open("bench", depth + std::max<long long>(std::max(n_prompt, n_gen), 1));
  if (!session) return 1;
  const double load_s = std::chrono::duration<double>(clock::now() - t_load).count();
  Session& s = *session;
  std::mt19937 rng(42);
  // The context the tests start from: filled once, and again only when a test went further
  // back than the model's sliding-window rings can take back.
  const std::vector<int32_t> fill = random_tokens(rng, depth, s.model().vocab_size());
  auto refill = [&]() -> bool {
    s.reset();
    if (depth == 0) return true;
    auto l = s.eval(fill);
    if (!l)
      std::fprintf(stderr, "altup bench: error: filling the context to depth %lld: %s\n", depth,
                   l.error().message.c_str());
    return l.ok();
  };
  if (depth > 0 && !refill()) return 1;

  struct Test {
    std::string name;
    long long n;
    std::vector<double> tps;
  };
  std::vector<Test> tests;
  if (n_prompt > 0) tests.push_back({"pp" + std::to_string(n_prompt), n_prompt, {}});
  if (n_gen > 0) tests.push_back({"tg" + std::to_string(n_gen), n_gen, {}});
  const auto t_start = clock::now();
  bool shown = false;  // a progress line is on the terminal
  for (Test& test : tests) {
    const bool prefill = test.name[0] == 'p';
    for (long long r = -1; r < reps; ++r) {  // r = -1: warm-up, not counted
      if (depth == 0)
        s.reset();
      else if (!s.truncate(depth).ok() && !refill())
        return 1;
      const auto toks = random_tokens(rng, test.n, s.model().vocab_size());
      const auto t0 = clock::now();
      if (prefill) {
        auto l = s.eval(toks);
        if (!l) {
          std::fprintf(stderr, "altup bench: error: %s\n", l.error().message.c_str());
          return 1;
        }
      } else {
        for (int32_t t : toks) {
          auto l = s.eval({t});
          if (!l) {
            std::fprintf(stderr, "altup bench: error: %s\n", l.error().message.c_str());
            return 1;
          }
        }
      }
      const double sec = std::chrono::duration<double>(clock::now() - t0).count();
      if (r >= 0) test.tps.push_back(static_cast<double>(test.n) / sec);
      // Progress on stderr once a run takes a while: one line rewritten on a terminal.
      if (std::chrono::duration<double>(clock::now() - t_start).count() > 2.0) {
        static const bool tty = isatty(2);
        std::fprintf(stderr, "%saltup bench: %s %s %lld/%lld, %.2f t/s%s", tty ? "\r" : "", test.name.c_str(),
                     r < 0 ? "warm-up" : "repetition", r < 0 ? 0 : r + 1, reps, static_cast<double>(test.n) / sec,
                     tty ? "   " : "\n");
        shown = true;
      }
    }
  }
  if (shown && isatty(2)) std::fputs("\n", stderr);
  const double rss = peak_rss_mib(), rss_end = rss_mib();  // the latter: what decoding keeps
  const double size_mib = static_cast<double>(s.model().weight_bytes()) / (1 << 20);
  if (output == "json") {
    // The path is the user's: escape it so the output stays JSON whatever it holds.
    std::string path_json;
    for (unsigned char c : model) {
      if (c == '"' || c == '\\') {
        path_json += '\\';
        path_json += static_cast<char>(c);
      } else if (c < 0x20) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", c);
        path_json += esc;
      } else {
        path_json += static_cast<char>(c);
      }
    }
    std::printf(
        "{\"model\": \"%s\", \"arch\": \"%s\", \"weights_mib\": %.3f, \"threads\": %d, \"decode_threads\": %d, "
        "\"decode_branches\": %s, \"load_s\": %.4f, \"peak_rss_mib\": %.2f, \"rss_end_mib\": %.2f, \"repetitions\": "
        "%lld, \"depth\": %lld, "
        "\"tests\": [",
        path_json.c_str(), std::string(s.model().arch()).c_str(), size_mib, s.threads(), s.decode_threads(),
        s.decode_branches() ? "true" : "false", load_s, rss, rss_end, reps, depth);
    for (size_t i = 0; i < tests.size(); ++i) {
      const Stats st = stats_of(tests[i].tps);
      std::printf(
          "%s{\"test\": \"%s\", \"n\": %lld, \"tokens_per_s\": {\"median\": %.4f, \"min\": %.4f, \"max\": %.4f}, "
          "\"runs\": [",
          i ? ", " : "", tests[i].name.c_str(), tests[i].n, st.median, st.min, st.max);
      for (size_t j = 0; j < tests[i].tps.size(); ++j) std::printf("%s%.4f", j ? ", " : "", tests[i].tps[j]);
      std::printf("]}");
    }
    std::printf("]}\n");
  } else {
    std::printf("| model | arch | weights | threads | test | t/s (median) | min | max |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const Test& t : tests) {
      const Stats st = stats_of(t.tps);
      std::printf("| %s | %s | %.2f MiB | %d | %s | %.2f | %.2f | %.2f |\n", model.c_str(),
                  std::string(s.model().arch()).c_str(), size_mib, s.threads(), t.name.c_str(), st.median, st.min,
                  st.max);
    }
    std::printf("\nload %.3f s, peak RSS %.1f MiB (%.1f MiB at the end), %lld repetitions (after one warm-up each)%s\n",
                load_s, rss, rss_end, reps,
                depth > 0 ? (", each after " + std::to_string(depth) + " tokens of context").c_str() : "");
  }
  return stdout_ok("bench") ? 0 : 1;
}

}  // namespace altup::cli
