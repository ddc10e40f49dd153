// `altup run`: generate text from a prompt, streaming it as it comes, then one summary line
// (prefill and decode tokens/s, peak memory) on stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/options.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "runtime/threading.h"

namespace altup::cli {
namespace {

constexpr const char* kDefaultPrompt = "And it came to pass";

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: altup run [-m MODEL.gguf] [-p PROMPT] [options]\n\n"
               "Generates text from PROMPT with the model, printing it as it is generated, then one\n"
               "summary line on stderr: prefill and decode tokens/s and peak memory.\n\n"
               "options:\n"
               "  -m, --model FILE       GGUF model (default: the shipped demo model,\n"
               "                         %s)\n"
               "  -p, --prompt TEXT      prompt (default: \"%s\")\n"
               "  -n, --n-predict N      tokens to generate at most (default 128); stops early at\n"
               "                         the end-of-sequence token or a full context\n"
               "  -t, --threads N        threads (default: all %d cores)\n"
               "  -c, --ctx N            context length (default: the model's)\n"
               "      --temp T           temperature; 0 = greedy (default 0.8)\n"
               "      --top-k K          keep the K most likely tokens; 0 = off (default 40)\n"
               "      --top-p P          keep the most likely tokens up to probability P; 1 = off (default 0.95)\n"
               "      --min-p P          drop tokens below P x the most likely one; 0 = off (default 0.05)\n"
               "      --repeat-penalty R penalty for the last --repeat-last-n tokens; 1 = off (default 1.1)\n"
               "      --repeat-last-n N  (default 64)\n"
               "      --seed S           random seed (default: a random one, printed in the summary)\n"
               "  -h, --help             show this help\n\n"
               "Exit status: 0 on success, 1 if the model cannot be loaded or run (one line on\n"
               "stderr says why), 2 for bad usage.\n",
               ALTUP_DEFAULT_MODEL[0] ? ALTUP_DEFAULT_MODEL : "(none built in)", kDefaultPrompt, available_threads());
}

}  // namespace

int cmd_run(int argc, char** argv) {
  std::string model = ALTUP_DEFAULT_MODEL, prompt = kDefaultPrompt;
  long long n_predict = 128, threads = 0, ctx = 0;
  SamplerParams sp;
  bool seed_given = false;
  for (int k = 0; k < argc; ++k) {
    const std::string_view a = argv[k];
    auto value = [&]() -> const char* {
      if (k + 1 >= argc) {
        std::fprintf(stderr, "altup run: %s needs a value (see 'altup run --help')\n", argv[k]);
        return nullptr;
      }
      return argv[++k];
    };
    auto bad = [&](const char* v, const char* what) {
      std::fprintf(stderr, "altup run: %s '%s' is not %s\n", argv[k - 1], v, what);
      return 2;
    };
    const char* v = nullptr;
    long long i;
    double f;
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "-m" || a == "--model") {
      if (!(v = value())) return 2;
      model = v;
    } else if (a == "-p" || a == "--prompt") {
      if (!(v = value())) return 2;
      prompt = v;
    } else if (a == "-n" || a == "--n-predict") {
      if (!(v = value())) return 2;
      if (!parse_int(v, 0, 1 << 30, &n_predict)) return bad(v, "a count >= 0");
    } else if (a == "-t" || a == "--threads") {
      if (!(v = value())) return 2;
      if (!parse_int(v, 1, 1024, &threads)) return bad(v, "a thread count from 1 to 1024");
    } else if (a == "-c" || a == "--ctx") {
      if (!(v = value())) return 2;
      if (!parse_int(v, 1, 1 << 24, &ctx)) return bad(v, "a context length >= 1");
    } else if (a == "--temp") {
      if (!(v = value())) return 2;
      if (!parse_float(v, 0, 100, &f)) return bad(v, "a temperature from 0 to 100");
      sp.temperature = static_cast<float>(f);
    } else if (a == "--top-k") {
      if (!(v = value())) return 2;
      if (!parse_int(v, 0, 1 << 30, &i)) return bad(v, "a count >= 0");
      sp.top_k = static_cast<int>(i);
    } else if (a == "--top-p") {
      if (!(v = value())) return 2;
      if (!parse_float(v, 0, 1, &f) || f == 0) return bad(v, "a probability in (0, 1]");
      sp.top_p = static_cast<float>(f);
    } else if (a == "--min-p") {
      if (!(v = value())) return 2;
      if (!parse_float(v, 0, 1, &f)) return bad(v, "a probability in [0, 1]");
      sp.min_p = static_cast<float>(f);
    } else if (a == "--repeat-penalty") {
      if (!(v = value())) return 2;
      if (!parse_float(v, 0.01, 100, &f)) return bad(v, "a penalty from 0.01 to 100");
      sp.repeat_penalty = static_cast<float>(f);
    } else if (a == "--repeat-last-n") {
      if (!(v = value())) return 2;
      if (!parse_int(v, 0, 1 << 30, &i)) return bad(v, "a count >= 0");
      sp.repeat_last_n = static_cast<int>(i);
    } else if (a == "--seed") {
      if (!(v = value())) return 2;
      if (!parse_int(v, 0, (1ll << 62), &i)) return bad(v, "a seed >= 0");
      sp.seed = static_cast<uint64_t>(i);
      seed_given = true;
    } else {
      std::fprintf(stderr, "altup run: unknown argument '%s' (see 'altup run --help')\n", argv[k]);
      return 2;
    }
  }
  if (model.empty()) {
    std::fprintf(stderr, "altup run: no model: pass -m MODEL.gguf\n");
    return 2;
  }
  if (!seed_given) sp.seed = std::random_device{}();

  using clock = std::chrono::steady_clock;
  const auto t_load = clock::now();
  SessionOptions opt;
  opt.threads = static_cast<int>(threads);
  opt.ctx = ctx;
  auto session = Session::open(model, opt);
  if (!session) {
    std::fprintf(stderr, "altup run: error: %s: %s\n", model.c_str(), session.error().message.c_str());
    return 1;
  }
  Session& s = **session;
  const Tokenizer& tok = s.tokenizer();
  std::vector<int32_t> tokens = tok.encode(prompt, tok.add_bos());
  if (static_cast<int64_t>(tokens.size()) > s.ctx()) {
    std::fprintf(
        stderr,
        "altup run: error: the prompt is %zu tokens; the context holds %lld (use --ctx, up to the model's %lld)\n",
        tokens.size(), static_cast<long long>(s.ctx()), static_cast<long long>(s.model().context_length()));
    return 1;
  }
  const double load_s = std::chrono::duration<double>(clock::now() - t_load).count();

  // The prompt text is printed as given; the continuation is streamed after it.
  std::fputs(prompt.c_str(), stdout);
  std::fflush(stdout);
  Tokenizer::Stream stream(tok);
  for (int32_t id : tokens) (void)stream.push(id);  // so spacing after the prompt is right

  Sampler sampler(sp, tok.vocab_size());
  const auto t0 = clock::now();
  auto logits = s.eval(tokens);
  if (!logits) {
    std::fprintf(stderr, "\naltup run: error: %s\n", logits.error().message.c_str());
    return 1;
  }
  const double prefill_s = std::chrono::duration<double>(clock::now() - t0).count();
  const auto n_prompt = static_cast<long long>(tokens.size());

  long long generated = 0;
  const char* stop = "length";
  const auto t1 = clock::now();
  while (generated < n_predict) {
    const int32_t next = sampler.sample(*logits, tokens);
    tokens.push_back(next);
    ++generated;
    if (next == tok.eos()) {
      stop = "end of sequence";
      break;
    }
    const std::string text = stream.push(next);
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    if (generated == n_predict) break;
    if (s.n_past() >= s.ctx()) {
      stop = "context full";
      break;
    }
    logits = s.eval({next});
    if (!logits) {
      std::fprintf(stderr, "\naltup run: error: %s\n", logits.error().message.c_str());
      return 1;
    }
  }
  const double decode_s = std::chrono::duration<double>(clock::now() - t1).count();
  std::fputs((stream.finish() + "\n").c_str(), stdout);
  std::fflush(stdout);
  // Decode speed counts the tokens that needed a forward pass of their own.
  const long long decoded = generated > 1 ? generated - 1 : 0;
  std::fprintf(stderr,
               "altup run: load %.2f s | prefill %lld tokens, %.1f tok/s | decode %lld tokens, %.1f tok/s | "
               "peak RSS %.1f MiB | %d threads, seed %llu, stop: %s\n",
               load_s, n_prompt, n_prompt / prefill_s, decoded, decoded > 0 ? decoded / decode_s : 0.0, peak_rss_mib(),
               s.threads(), static_cast<unsigned long long>(sp.seed), stop);
  return 0;
}

}  // namespace altup::cli
