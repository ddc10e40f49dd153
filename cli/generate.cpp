#include "cli/generate.h"

#include <cstdio>
#include <random>
#include <string>

#include "cli/interrupt.h"
#include "cli/util.h"

namespace altup::cli {

namespace {
// "TEXT (default 0.8)" from the engine's defaults, so the help cannot drift from them.
std::string with_default(const char* text, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  const std::string t(text);
  const bool joined = t.empty() || t.back() == '\n';  // a default on a line of its own: no space
  return t + (joined ? "" : " ") + "(default " + buf + ")";
}
Option real_option(const char* name, double* target, const SamplingRange& r, const char* value, const char* help) {
  return real(nullptr, name, target, r.lo, r.hi, value, help, r.open_lo);
}
Option int_option(const char* name, long long* target, const SamplingRange& r, const char* value, const char* help) {
  return integer(nullptr, name, target, static_cast<long long>(r.lo), static_cast<long long>(r.hi), value, help);
}
}  // namespace

void SamplingOptions::add_to(std::vector<Option>& o) {
  namespace r = sampling_range;
  // The help lines live as long as the options (static: one set per process is enough).
  static const std::string temp_help = with_default("temperature; 0 = greedy", defaults.temperature);
  static const std::string top_k_help = with_default("keep the K most likely tokens; 0 = off", defaults.top_k);
  static const std::string top_p_help =
      with_default("keep the most likely tokens up to probability P;\n1 = off", defaults.top_p);
  static const std::string min_p_help =
      with_default("drop tokens below P x the most likely one; 0 = off\n", defaults.min_p);
  static const std::string penalty_help =
      with_default("penalty for the last --repeat-last-n tokens; 1 = off\n", defaults.repeat_penalty);
  static const std::string last_n_help = with_default("", defaults.repeat_last_n);
  o.push_back(real_option("--temp", &temp, r::temperature, "T", temp_help.c_str()));
  o.push_back(int_option("--top-k", &top_k, r::top_k, "K", top_k_help.c_str()));
  o.push_back(real_option("--top-p", &top_p, r::top_p, "P", top_p_help.c_str()));
  o.push_back(real_option("--min-p", &min_p, r::min_p, "P", min_p_help.c_str()));
  o.push_back(real_option("--repeat-penalty", &repeat_penalty, r::repeat_penalty, "R", penalty_help.c_str()));
  o.push_back(int_option("--repeat-last-n", &repeat_last_n, r::repeat_last_n, "N", last_n_help.c_str()));
  o.push_back(integer(nullptr, "--seed", &seed, 0, 1ll << 62, "S", "random seed (default: a random one)"));
  o.back().given = &seed_given;
}

SamplerParams SamplingOptions::params() const {
  SamplerParams sp;
  sp.temperature = static_cast<float>(temp);
  sp.top_k = static_cast<int>(top_k);
  sp.top_p = static_cast<float>(top_p);
  sp.min_p = static_cast<float>(min_p);
  sp.repeat_penalty = static_cast<float>(repeat_penalty);
  sp.repeat_last_n = static_cast<int>(repeat_last_n);
  sp.seed = seed_given ? static_cast<uint64_t>(seed) : std::random_device{}();
  return sp;
}

Printed print_reply(Session& s, Sampler& sampler, const float* logits, std::vector<int32_t>& history,
                    const GenerateOptions& options, Tokenizer::Stream& stream, const char* command) {
  Printed p;
  auto g = generate(s, sampler, logits, history, options, stream, [&](int32_t, const std::string& text) {
    std::fputs(text.c_str(), stdout);
    p.ok = stdout_ok(command);               // (it flushes: the text appears as it is made)
    return p.ok && !interrupt::requested();  // Ctrl-C ends the reply after this piece
  });
  if (!g) {
    std::fprintf(stderr, "\naltup %s: error: %s\n", command, g.error().message.c_str());
    p.ok = false;
    return p;
  }
  p.g = *g;
  return p;
}

}  // namespace altup::cli
