#include "cli/options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace altup::cli {

Option flag(const char* s, const char* l, bool* target, const char* help) {
  return {s, l, Option::Kind::flag, target, nullptr, help};
}
Option text(const char* s, const char* l, std::string* target, const char* value, const char* help) {
  return {s, l, Option::Kind::text, target, value, help};
}
Option integer(const char* s, const char* l, long long* target, long long lo, long long hi, const char* value,
               const char* help) {
  Option o{s, l, Option::Kind::integer, target, value, help};
  o.min_int = lo;
  o.max_int = hi;
  return o;
}
Option real(const char* s, const char* l, double* target, double lo, double hi, const char* value, const char* help,
            bool open_min) {
  Option o{s, l, Option::Kind::real, target, value, help};
  o.min_real = lo;
  o.max_real = hi;
  o.open_min = open_min;
  return o;
}
Option choice(const char* s, const char* l, std::string* target, const char* choices, const char* help) {
  Option o{s, l, Option::Kind::choice, target, "F", help};
  o.choices = choices;
  return o;
}

namespace {

bool parse_integer(const char* s, long long lo, long long hi, long long* out) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (!s[0] || *end || errno == ERANGE || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_real(const char* s, const Option& o, double* out) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (!s[0] || *end || !std::isfinite(v) || v > o.max_real || v < o.min_real || (o.open_min && v == o.min_real))
    return false;
  *out = v;
  return true;
}

bool in_choices(std::string_view v, std::string_view choices) {
  while (!choices.empty()) {
    const size_t bar = choices.find('|');
    if (choices.substr(0, bar) == v) return true;
    if (bar == std::string_view::npos) break;
    choices.remove_prefix(bar + 1);
  }
  return false;
}

// What a value must be, for messages: "an integer from 1 to 1024", "one of table|csv|json".
std::string expected(const Option& o) {
  char buf[160];
  switch (o.kind) {
    case Option::Kind::integer:
      std::snprintf(buf, sizeof buf, "an integer from %lld to %lld", o.min_int, o.max_int);
      return buf;
    case Option::Kind::real:
      std::snprintf(buf, sizeof buf, "a number %s %g and <= %g", o.open_min ? ">" : ">=", o.min_real, o.max_real);
      return buf;
    case Option::Kind::choice: return std::string("one of ") + o.choices;
    default: return "a value";
  }
}

std::string names(const Option& o) {
  return o.short_name ? std::string(o.short_name) + ", " + o.long_name : std::string("    ") + o.long_name;
}

}  // namespace

void print_usage(const CommandSpec& spec, std::FILE* out) {
  std::fprintf(out, "usage: altup %s %s\n\n%s\n\noptions:\n", spec.name, spec.synopsis, spec.description);
  for (const Option& o : spec.options) {
    std::string left = "  " + names(o);
    if (o.value_name) left += std::string(" ") + o.value_name;
    std::string help = o.help;
    char range[96] = "";
    if (o.kind == Option::Kind::integer)
      std::snprintf(range, sizeof range, " [%lld..%lld]", o.min_int, o.max_int);
    else if (o.kind == Option::Kind::real)
      std::snprintf(range, sizeof range, " %s%g..%g]", o.open_min ? "(" : "[", o.min_real, o.max_real);
    else if (o.kind == Option::Kind::choice)
      std::snprintf(range, sizeof range, " {%s}", o.choices);
    help += range;
    // Continuation lines of the help line up under its first line.
    const int col = 26;
    std::fprintf(out, "%-*s", col, left.c_str());
    if (static_cast<int>(left.size()) >= col) std::fprintf(out, "\n%-*s", col, "");
    for (size_t k = 0; k < help.size(); ++k) {
      std::fputc(help[k], out);
      if (help[k] == '\n') std::fprintf(out, "%-*s", col, "");
    }
    std::fputc('\n', out);
  }
  std::fprintf(out, "  -h, --help              show this help\n");
  if (spec.footer && *spec.footer) std::fprintf(out, "\n%s\n", spec.footer);
}

Parsed parse_options(const CommandSpec& spec, int argc, char** argv, std::FILE* out, std::FILE* err) {
  size_t positionals = 0;
  for (int k = 0; k < argc; ++k) {
    const std::string_view a = argv[k] ? argv[k] : "";
    if (a == "-h" || a == "--help") {
      print_usage(spec, out);
      return Parsed::help;
    }
    if (a.empty() || a[0] != '-' || a == "-") {
      if (!spec.positionals || positionals >= spec.max_positionals) {
        std::fprintf(err, "altup %s: unexpected argument '%s' (see 'altup %s --help')\n", spec.name,
                     std::string(a).c_str(), spec.name);
        return Parsed::usage_error;
      }
      spec.positionals->emplace_back(a);
      ++positionals;
      continue;
    }
    // --name=value is accepted too.
    std::string_view name = a, inline_value;
    bool has_inline = false;
    if (a.substr(0, 2) == "--")
      if (const size_t eq = a.find('='); eq != std::string_view::npos) {
        name = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
        has_inline = true;
      }
    const Option* opt = nullptr;
    for (const Option& o : spec.options)
      if ((o.short_name && name == o.short_name) || name == o.long_name) opt = &o;
    if (!opt) {
      std::fprintf(err, "altup %s: unknown option '%s' (see 'altup %s --help')\n", spec.name, std::string(name).c_str(),
                   spec.name);
      return Parsed::usage_error;
    }
    if (opt->given) *opt->given = true;
    if (opt->kind == Option::Kind::flag) {
      if (has_inline) {
        std::fprintf(err, "altup %s: %s takes no value\n", spec.name, opt->long_name);
        return Parsed::usage_error;
      }
      *static_cast<bool*>(opt->target) = true;
      continue;
    }
    std::string value;
    if (has_inline) {
      value = inline_value;
    } else if (k + 1 < argc && argv[k + 1]) {
      value = argv[++k];
    } else {
      std::fprintf(err, "altup %s: %s needs a value (see 'altup %s --help')\n", spec.name, std::string(name).c_str(),
                   spec.name);
      return Parsed::usage_error;
    }
    bool ok = true;
    switch (opt->kind) {
      case Option::Kind::text: *static_cast<std::string*>(opt->target) = value; break;
      case Option::Kind::integer:
        ok = parse_integer(value.c_str(), opt->min_int, opt->max_int, static_cast<long long*>(opt->target));
        break;
      case Option::Kind::real: ok = parse_real(value.c_str(), *opt, static_cast<double*>(opt->target)); break;
      case Option::Kind::choice:
        ok = in_choices(value, opt->choices);
        if (ok) *static_cast<std::string*>(opt->target) = value;
        break;
      default: break;
    }
    if (!ok) {
      std::fprintf(err, "altup %s: %s '%s' is not %s\n", spec.name, std::string(name).c_str(), value.c_str(),
                   expected(*opt).c_str());
      return Parsed::usage_error;
    }
  }
  return Parsed::ok;
}

}  // namespace altup::cli
