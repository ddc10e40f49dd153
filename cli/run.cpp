// `altup run`: generate text from a prompt, streaming it as it comes, then one summary line
// (prefill and decode tokens/s, peak memory) on stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/generate.h"
#include "cli/interrupt.h"
#include "cli/model_options.h"
#include "cli/options.h"
#include "cli/util.h"
#include "engine/chat.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "runtime/threading.h"

namespace altup::cli {
namespace {

constexpr const char* kDefaultPrompt = "And it came to pass";

}  // namespace

int cmd_run(int argc, char** argv) {
  std::string prompt = kDefaultPrompt, system;
  long long n_predict = 128;
  ModelOptions opening;
  SamplingOptions sampling;
  bool chat = false;
  CommandSpec spec{"run",
                   "[-m MODEL.gguf] [-p PROMPT] [options]",
                   "Generates text from PROMPT with the model, printing it as it is generated, then one\n"
                   "summary line on stderr: prefill and decode tokens/s and peak memory. With --chat,\n"
                   "PROMPT is one user turn of a Gemma chat and only the model's reply is printed (it\n"
                   "ends at <end_of_turn>); `altup chat` holds a whole conversation.",
                   {
                       text("-p", "--prompt", &prompt, "TEXT", "prompt (default: \"And it came to pass\")"),
                       integer("-n", "--n-predict", &n_predict, 0, 1 << 30, "N",
                               "tokens to generate at most (default 128); stops early at\n"
                               "the end-of-sequence token or a full context"),
                       flag(nullptr, "--chat", &chat, "wrap PROMPT in Gemma's chat template (one user turn)"),
                       text(nullptr, "--system", &system, "TEXT", "with --chat: a system instruction (opens the turn)"),
                   },
                   "Exit status: 0 on success, 1 if the model cannot be loaded or run (one line on\n"
                   "stderr says why), 2 for bad usage."};
  opening.add_to(spec.options,
                 "context length (default: the model's); refused if its KV\n"
                 "cache would not fit in the memory available");
  sampling.add_to(spec.options);
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (opening.missing("run")) return 2;
  const SamplerParams sp = sampling.params();

  using clock = std::chrono::steady_clock;
  const auto t_load = clock::now();
  const std::unique_ptr<Session> session = opening.open("run", opening.ctx);
  if (!session) return 1;
  Session& s = *session;
  const Tokenizer& tok = s.tokenizer();
  std::vector<int32_t> tokens, stops = {tok.eos()};
  if (chat) {
    auto tmpl = ChatTemplate::gemma(tok);
    if (!tmpl) {
      std::fprintf(stderr, "altup run: error: --chat: %s: %s\n", opening.model.c_str(), tmpl.error().message.c_str());
      return 1;
    }
    tokens = tmpl->user_turn(prompt, system, /*first=*/true, /*close_previous=*/false);
    stops.push_back(tmpl->end_of_turn());
  } else {
    if (!system.empty()) {
      std::fprintf(stderr, "altup run: --system needs --chat\n");
      return 2;
    }
    tokens = tok.encode(prompt, tok.add_bos());
  }
  if (static_cast<int64_t>(tokens.size()) > s.ctx()) {
    std::fprintf(stderr, "altup run: error: the prompt is %zu tokens; the context holds %lld (%s)\n", tokens.size(),
                 static_cast<long long>(s.ctx()), context_hint(s).c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(clock::now() - t_load).count();

  // The prompt text is printed as given and the continuation streamed after it; a chat
  // reply is printed alone.
  if (!chat) std::fputs(prompt.c_str(), stdout);
  if (!stdout_ok("run")) return 1;
  Tokenizer::Stream stream(tok);
  if (!chat)
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

  GenerateOptions gen;
  gen.max_tokens = n_predict;
  gen.stop_ids = stops;
  gen.feed_last = false;            // nothing follows the last token
  interrupt::set_immediate(false);  // Ctrl-C ends the text; the summary still comes
  const Printed reply = print_reply(s, sampler, *logits, tokens, gen, stream, "run");
  if (!reply.ok) return 1;
  const bool interrupted = interrupt::requested();
  const long long generated = reply.g.tokens;
  const char* stop = interrupted ? "interrupted" : stop_reason_name(reply.g.stop);
  const double decode_s = reply.g.decode_s;

  std::fputs((stream.finish() + "\n").c_str(), stdout);
  if (!stdout_ok("run")) return 1;
  // Decode speed counts the tokens that needed a forward pass of their own.
  const long long decoded = generated > 1 ? generated - 1 : 0;
  std::fprintf(stderr,
               "altup run: load %.2f s | prefill %lld tokens, %.1f tok/s | decode %lld tokens, %.1f tok/s | "
               "peak RSS %.1f MiB | %d threads (decode on %d%s), seed %llu, stop: %s\n",
               load_s, n_prompt, n_prompt / prefill_s, decoded, decoded > 0 ? decoded / decode_s : 0.0, peak_rss_mib(),
               s.threads(), s.decode_threads(), s.decode_branches() ? ", branches at once" : "",
               static_cast<unsigned long long>(sp.seed), stop);
  return interrupted ? 130 : 0;
}

}  // namespace altup::cli
