// libFuzzer target: the command line's option parser (cli/options.h) on arbitrary argument
// lists (the input split at NUL bytes), with a table holding every kind of option and
// positional arguments, and its --help rendering.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/options.h"

using namespace altup::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args(1);
  for (size_t k = 0; k < size; ++k) {
    if (data[k] == 0)
      args.emplace_back();
    else
      args.back() += static_cast<char>(data[k]);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::string model, prompt, format = "table";
  long long n = 0, threads = 0;
  double temp = 0.8, top_p = 0.95;
  bool flag_a = false, seen_prompt = false;
  std::vector<std::string> positionals;
  CommandSpec spec{"fuzz",
                   "[options] [FILE]",
                   "A command with every kind of option.",
                   {
                       text("-m", "--model", &model, "FILE", "a file"),
                       text("-p", "--prompt", &prompt, "TEXT", "text\nover two lines"),
                       integer("-n", "--n-predict", &n, 0, 1 << 30, "N", "a count"),
                       integer("-t", "--threads", &threads, 1, 1024, "N", "threads"),
                       real(nullptr, "--temp", &temp, 0, 100, "T", "a number"),
                       real(nullptr, "--top-p", &top_p, 0, 1, "P", "open at 0", true),
                       choice(nullptr, "--format", &format, "table|csv|json", "one of three"),
                       flag(nullptr, "--flag", &flag_a, "a flag"),
                   },
                   "footer",
                   &positionals,
                   1};
  spec.options[1].given = &seen_prompt;
  static std::FILE* sink = std::fopen("/dev/null", "w");
  const Parsed p = parse_options(spec, static_cast<int>(argv.size()), argv.data(), sink, sink);
  // What a successful parse promises: every value inside its range and choices.
  if (p == Parsed::ok) {
    if (n < 0 || n > (1 << 30) || (threads != 0 && (threads < 1 || threads > 1024))) __builtin_trap();
    if (!(temp >= 0 && temp <= 100) || !(top_p > 0 && top_p <= 1)) __builtin_trap();
    if (format != "table" && format != "csv" && format != "json") __builtin_trap();
    if (positionals.size() > 1) __builtin_trap();
  }
  return 0;
}
