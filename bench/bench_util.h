// Timing and reporting for the benchmarks: medians of repeated runs, one JSON object per
// result on stdout (machine-readable), a readable line per result on stderr.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace altup::bench {

// Median seconds of fn() over at least `min_reps` runs and at least `min_seconds` in all,
// after one warm-up run.
inline double median_seconds(const std::function<void()>& fn, int min_reps = 5, double min_seconds = 0.2) {
  using clock = std::chrono::steady_clock;
  fn();
  std::vector<double> t;
  const auto start = clock::now();
  while (static_cast<int>(t.size()) < min_reps ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(clock::now() - t0).count());
    if (t.size() > 100000) break;
  }
  std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

struct Measurement {
  std::string name;
  double seconds = 0;
  double value = 0;      // in `unit`
  std::string unit;      // "GB/s", "GFLOP/s", "ratio", ...
  double fraction = -1;  // of the matching measured peak; < 0: not applicable
  std::string target;    // e.g. ">= 0.80 of read bandwidth"; empty: none
  int pass = -1;         // 1 / 0 for results with a target, -1 otherwise

  Measurement(std::string n, double s, double v, std::string u, double f = -1)
      : name(std::move(n)), seconds(s), value(v), unit(std::move(u)), fraction(f) {}
  Measurement& with_target(std::string t, bool ok) {
    target = std::move(t);
    pass = ok;
    return *this;
  }
};

inline void report(const Measurement& r) {
  std::printf("{\"name\": \"%s\", \"seconds\": %.9g, \"value\": %.6g, \"unit\": \"%s\"", r.name.c_str(), r.seconds,
              r.value, r.unit.c_str());
  if (r.fraction >= 0) std::printf(", \"fraction_of_peak\": %.4f", r.fraction);
  if (!r.target.empty()) std::printf(", \"target\": \"%s\", \"pass\": %s", r.target.c_str(), r.pass ? "true" : "false");
  std::printf("}\n");
  std::fflush(stdout);
  std::fprintf(stderr, "%-44s %10.3f %-8s", r.name.c_str(), r.value, r.unit.c_str());
  if (r.fraction >= 0) std::fprintf(stderr, "  %5.1f%% of peak", 100 * r.fraction);
  if (!r.target.empty()) std::fprintf(stderr, "  target %s: %s", r.target.c_str(), r.pass ? "PASS" : "MISS");
  std::fprintf(stderr, "\n");
}

}  // namespace altup::bench
