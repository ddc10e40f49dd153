// `altup chat`: a multi-turn conversation with a Gemma chat model. One session and one KV
// cache last the whole conversation, so each turn prefills only its own new tokens. Messages
// come one per line from stdin: typed at a "> " prompt in a terminal, or piped.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#if defined(ALTUP_HAVE_LIBEDIT)
#include <editline/readline.h>
#endif

#include "cli/commands.h"
#include "cli/generate.h"
#include "cli/interrupt.h"
#include "cli/model_options.h"
#include "cli/options.h"
#include "cli/util.h"
#include "engine/chat.h"
#include "engine/sampler.h"
#include "engine/session.h"

namespace altup::cli {

namespace {
// One line of input: in a terminal with a "> " prompt, line editing and history (libedit)
// where the build has it; otherwise a plain read.
bool read_line(bool interactive, std::string* line) {
#if defined(ALTUP_HAVE_LIBEDIT)
  if (interactive) {
    char* l = readline("> ");
    if (!l) return false;
    *line = l;
    if (*l) add_history(l);
    std::free(l);
    return true;
  }
#endif
  if (interactive) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
  }
  return static_cast<bool>(std::getline(std::cin, *line));
}
}  // namespace

int cmd_chat(int argc, char** argv) {
  std::string system;
  long long n_predict = 512;
  ModelOptions opening;
  SamplingOptions sampling;
  bool quiet = false;
  CommandSpec spec{
      "chat",
      "-m MODEL.gguf [--system TEXT] [options]",
      "A conversation with a Gemma chat model (its vocabulary has <start_of_turn> /\n"
      "<end_of_turn>). Each line read from standard input is one user message, wrapped in\n"
      "Gemma's turn template; the model's reply is printed as it is generated and ends at\n"
      "<end_of_turn>. The KV cache is kept across turns, so a turn prefills only its own\n"
      "tokens. In a terminal a \"> \" prompt is shown; input may also be piped. A line\n"
      "\"/reset\" starts a new conversation; end of input (Ctrl-D) or \"/exit\" ends it.\n"
      "Ctrl-C stops a reply and keeps the conversation; at the prompt it leaves (exit 130).\n"
      "After each reply one line on stderr gives the turn's new tokens, the context in use\n"
      "and the speeds (--quiet leaves it out).",
      {
          text(nullptr, "--system", &system, "TEXT", "system instruction (opens the first user message)"),
          integer("-n", "--n-predict", &n_predict, 1, 1 << 30, "N", "tokens per reply at most (default 512)"),
          flag("-q", "--quiet", &quiet, "no per-turn line on stderr"),
      },
      "Exit status: 0 when the input ends, 1 if the model cannot be loaded or is not a Gemma\n"
      "chat model, or if a turn failed (e.g. the conversation outgrew the context), 2 for\n"
      "bad usage."};
  opening.add_to(spec.options, "context length for the whole conversation (default: the\nmodel's)", 1,
                 "GGUF model (a Gemma chat model)");
  sampling.add_to(spec.options);
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (opening.missing("chat")) return 2;
  const SamplerParams sp = sampling.params();

  const std::unique_ptr<Session> session = opening.open("chat", opening.ctx);
  if (!session) return 1;
  Session& s = *session;
  const Tokenizer& tok = s.tokenizer();
  auto tmpl = ChatTemplate::gemma(tok);
  if (!tmpl) {
    std::fprintf(stderr, "altup chat: error: %s: %s%s\n", opening.model.c_str(), tmpl.error().message.c_str(),
                 opening.model == default_model() ? " (the shipped demo model only continues text: pass -m with a "
                                                    "Gemma chat model, or use 'altup run')"
                                                  : "");
    return 1;
  }
  const std::vector<int32_t> stops = {tok.eos(), tmpl->end_of_turn()};
  const bool interactive = isatty(STDIN_FILENO);
  Sampler sampler(sp, tok.vocab_size());
  std::vector<int32_t> history;  // every token of the conversation (the repetition window)
  int status = 0, turn = 0;
  int32_t pending = -1;
  std::string line;
  using clock = std::chrono::steady_clock;
  constexpr const char* kHelp =
      "Type a message and Enter. /reset starts a new conversation, /exit (or Ctrl-D) leaves, /help shows this.\n"
      "Ctrl-C stops a reply; at the prompt it leaves.\n";
  if (interactive && !quiet) std::fprintf(stderr, "altup chat: %s\n%s", opening.model.c_str(), kHelp);
  for (;;) {
    if (!read_line(interactive, &line) || line == "/exit") break;
    if (line == "/help") {
      std::fputs(kHelp, stderr);
      continue;
    }
    if (line == "/reset") {
      s.reset();
      history.clear();
      turn = 0;
      pending = -1;
      if (!quiet) std::fprintf(stderr, "[a new conversation]\n");
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // The previous reply's last token, when it was cut short before being fed, goes first.
    std::vector<int32_t> ids;
    if (pending >= 0 && turn > 0) ids.push_back(pending);
    const auto turn_ids = tmpl->user_turn(line, system, turn == 0, /*close_previous=*/true);
    ids.insert(ids.end(), turn_ids.begin(), turn_ids.end());
    if (s.n_past() + static_cast<int64_t>(ids.size()) >= s.ctx()) {
      std::fprintf(stderr,
                   "altup chat: error: this turn needs %zu more tokens; the conversation holds %lld of %lld "
                   "(\"/reset\" starts over; %s)\n",
                   ids.size(), static_cast<long long>(s.n_past()), static_cast<long long>(s.ctx()),
                   context_hint(s).c_str());
      status = 1;
      continue;
    }
    // Ctrl-C from here ends the reply and keeps the conversation; at the prompt it leaves.
    interrupt::clear();
    interrupt::set_immediate(false);
    const auto t0 = clock::now();
    auto logits = s.eval(ids);
    if (!logits) {
      std::fprintf(stderr, "altup chat: error: %s\n", logits.error().message.c_str());
      return 1;
    }
    const double prefill_s = std::chrono::duration<double>(clock::now() - t0).count();
    history.insert(history.end(), ids.begin(), ids.end());
    Tokenizer::Stream stream(tok);
    GenerateOptions gen;
    gen.max_tokens = n_predict;
    gen.stop_ids = stops;
    gen.feed_last = false;  // a reply cut short: its last token goes in with the next turn
    const Printed printed = print_reply(s, sampler, *logits, history, gen, stream, "chat");
    if (!printed.ok) return 1;
    const Generation& r = printed.g;
    const bool interrupted = interrupt::requested();
    interrupt::clear();
    interrupt::set_immediate(true);
    pending = r.unfed;
    std::fputs((stream.finish() + "\n").c_str(), stdout);
    if (!stdout_ok("chat")) return 1;
    ++turn;
    if (!quiet) {
      const long long decoded = r.tokens > 1 ? r.tokens - 1 : 0;
      std::fprintf(stderr,
                   "[turn %d: prefill %zu new tokens, %.1f tok/s | reply %lld tokens, %.1f tok/s | context %lld of "
                   "%lld | stop: %s]\n",
                   turn, ids.size(), static_cast<double>(ids.size()) / prefill_s, static_cast<long long>(r.tokens),
                   decoded > 0 ? decoded / r.decode_s : 0.0, static_cast<long long>(s.n_past()),
                   static_cast<long long>(s.ctx()), interrupted ? "interrupted" : stop_reason_name(r.stop));
    }
    if (r.stop == StopReason::context_full) {
      std::fprintf(stderr, "altup chat: the context is full; \"/reset\" starts a new conversation\n");
      status = 1;
    }
  }
  if (interactive) std::fputs("\n", stdout);
  return stdout_ok("chat") ? status : 1;
}

}  // namespace altup::cli
