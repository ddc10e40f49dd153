// `altup`: the command-line front end. Subcommands are listed in one table, so `altup --help`
// always matches what exists.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "altup.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/util.h"
#include "ops/bf16_rate.h"
#include "ops/isa.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"run", "generate text from a prompt (streams it, then prints speed and memory)", altup::cli::cmd_run},
    {"chat", "a multi-turn conversation with a Gemma chat model (one KV cache for all turns)", altup::cli::cmd_chat},
    {"profile", "time every op of a prefill and decode steps, per layer and per op; Chrome trace",
     altup::cli::cmd_profile},
    {"bench", "prefill and decode tokens/s over repetitions (median, min, max), load time, memory",
     altup::cli::cmd_bench},
    {"perplexity", "perplexity of a text, and KL divergence from a reference model (as llama-perplexity)",
     altup::cli::cmd_perplexity},
    {"eval", "logits of every position of a prompt or token list, as a NumPy .npy file", altup::cli::cmd_eval},
    {"info", "describe a GGUF file: architecture, hyper-parameters, tokenizer, tensors", altup::cli::cmd_info},
};

void print_help(std::FILE* out) {
  std::fprintf(out,
               "usage: altup <command> [options]\n\n"
               "altup.cpp runs AltUp transformer language models on the CPU.\n\n"
               "commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-11s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\n'altup <command> --help' (or 'altup help <command>') describes a command's options;\n"
               "'altup --version' prints the version.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help(stderr);
    return 2;
  }
  const std::string_view name = argv[1];
  if (name == "--version" || name == "-V") {
    std::printf("altup %s\n", altup_version());
    return altup::cli::stdout_ok("--version") ? 0 : 1;
  }
  if (name == "help" && argc > 2) {  // `altup help CMD` is `altup CMD --help`
    for (const Command& c : kCommands)
      if (std::string_view(argv[2]) == c.name) {
        char help[] = "--help";
        char* args[] = {help, nullptr};
        return c.run(1, args);
      }
    std::fprintf(stderr, "altup: unknown command '%s' (see 'altup --help')\n", argv[2]);
    return 2;
  }
  if (name == "-h" || name == "--help" || name == "help") {
    print_help(stdout);
    return altup::cli::stdout_ok("--help") ? 0 : 1;
  }
  if (const std::string& problem = altup::ops::isa_cap_problem(); !problem.empty())
    std::fprintf(stderr, "altup: warning: %s\n", problem.c_str());
  if (const std::string& problem = altup::ops::bf16_native_problem(); !problem.empty())
    std::fprintf(stderr, "altup: warning: %s\n", problem.c_str());
  altup::cli::interrupt::install();
  altup::cli::interrupt::set_immediate(true);  // a command that can stop gracefully says so
  for (const Command& c : kCommands)
    if (name == c.name) {
      int status = 1;
      try {
        status = c.run(argc - 2, argv + 2);
      } catch (const std::exception& e) {  // a last resort: every known failure is reported before this
        std::fprintf(stderr, "altup %s: internal error: %s\n", c.name, e.what());
        return 1;
      }
      // Output that could not be written is a failure, whatever the command thought.
      if (status == 0 && !altup::cli::stdout_ok(c.name)) return 1;
      return status;
    }
  std::fprintf(stderr, "altup: unknown command '%s' (see 'altup --help')\n", argv[1]);
  return 2;
}
