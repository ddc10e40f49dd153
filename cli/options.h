// One option parser for every subcommand. A command describes its options in a table (names,
// value kind, range, help); the same table parses the arguments, checks every value's range
// and prints --help, so the help cannot drift from what is accepted.
// Usage errors (unknown option, missing or out-of-range value) print one line and give exit
// status 2; --help prints the usage and gives 0.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace altup::cli {

// The longest context or prompt an option accepts (the models' own limit, models/altup.h).
constexpr long long kMaxContextOption = 1 << 24;

struct Option {
  enum class Kind { flag, text, integer, real, choice };
  const char* short_name;  // "-m", or nullptr
  const char* long_name;   // "--model"
  Kind kind;
  void* target;            // bool*, std::string*, long long*, double*, std::string* (choice)
  const char* value_name;  // "FILE", "N", ... (nullptr for flags)
  const char* help;        // may hold '\n' for continuation lines
  long long min_int = 0, max_int = 0;
  double min_real = 0, max_real = 0;
  bool open_min = false;     // real: value must be > min_real
  const char* choices = "";  // choice: "table|csv|json"
  bool* given = nullptr;     // set to true when the option appears
};

// Builders that read like the help table they make.
Option flag(const char* s, const char* l, bool* target, const char* help);
Option text(const char* s, const char* l, std::string* target, const char* value, const char* help);
Option integer(const char* s, const char* l, long long* target, long long lo, long long hi, const char* value,
               const char* help);
Option real(const char* s, const char* l, double* target, double lo, double hi, const char* value, const char* help,
            bool open_min = false);
Option choice(const char* s, const char* l, std::string* target, const char* choices, const char* help);

struct CommandSpec {
  const char* name;         // "run"
  const char* synopsis;     // after "usage: altup run "
  const char* description;  // paragraph(s) before the options
  std::vector<Option> options;
  const char* footer = "";  // after the options (exit status, notes)
  // Plain arguments (not starting with '-'): where they go and how many are allowed.
  std::vector<std::string>* positionals = nullptr;
  size_t max_positionals = 0;
};

enum class Parsed { ok, help, usage_error };

// Parses argv (the arguments after the subcommand's name). On usage errors one line goes to
// `err`; --help prints the usage to `out`.
Parsed parse_options(const CommandSpec& spec, int argc, char** argv, std::FILE* out = stdout, std::FILE* err = stderr);
void print_usage(const CommandSpec& spec, std::FILE* out);
// Exit status for a parse result that is not ok: 0 for help, 2 for usage errors.
inline int exit_status(Parsed p) { return p == Parsed::help ? 0 : 2; }

}  // namespace altup::cli
