// Small helpers the subcommands share: strict number parsing, peak memory, writing a file
// through a temporary name so a failed run leaves nothing half-written.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>

// The shipped demo model, used when no -m is given (set by cli/meson.build).
#ifndef ALTUP_DEFAULT_MODEL
#define ALTUP_DEFAULT_MODEL ""
#endif

namespace altup::cli {

inline bool parse_int(const char* s, long long lo, long long hi, long long* out) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (!s[0] || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

inline bool parse_float(const char* s, double lo, double hi, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (!s[0] || *end || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

inline double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// Writes `text` to `path` via `path.tmp` and a rename; false (with errno set) on failure.
inline bool write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace altup::cli
