// Helpers the subcommands share: peak memory, random prompt tokens, writing a file so a
// failed run leaves nothing half-written, and noticing when stdout cannot be written.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace altup::cli {

inline double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// Resident memory now (VmRSS), in MiB; 0 where /proc is not there.
inline double rss_mib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long long pages = 0, resident = 0;
  const bool ok = std::fscanf(f, "%lld %lld", &pages, &resident) == 2;
  std::fclose(f);
  return ok ? static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20) : 0;
}

// n random token ids for a vocabulary of V; ids 0..2 (usually <unk>, <s>, </s>) are skipped
// where the vocabulary is large enough to have others.
inline std::vector<int32_t> random_tokens(std::mt19937& rng, int64_t n, int64_t V) {
  const int64_t lo = V > 3 ? 3 : 0;
  std::uniform_int_distribution<int64_t> pick(lo, V - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(pick(rng));
  return t;
}

// A file the command reads, which none of its outputs may replace: `what` names it in the
// message ("the model file", "the token file").
struct Input {
  std::string path;
  const char* what;
};

// Writes `text` to `path` through a fresh temporary file beside it (created exclusively, so no
// link is followed) and a rename. Refuses a `path` that exists and is not a regular file (a
// directory, FIFO, device or symbolic link) or that is the same file as one of `inputs` (the
// same inode, whatever links or relative paths lead to it). On failure nothing is left behind
// and `*why` says what went wrong.
bool write_file_atomic(const std::string& path, const std::string& text, const std::vector<Input>& inputs,
                       std::string* why);

// The checks write_file_atomic makes, and that the output's folder exists, without writing:
// for a command to refuse a bad output path before its work rather than after it.
bool check_output_path(const std::string& path, const std::vector<Input>& inputs, std::string* why);

// A file written piece by piece and put in place only when complete: a temporary file beside
// `path`, renamed over it by commit(); anything not committed is removed. Refuses the same
// targets as write_file_atomic.
class AtomicFile {
 public:
  AtomicFile() = default;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  bool open(const std::string& path, const std::vector<Input>& inputs, std::string* why);
  bool write(const void* data, size_t n, std::string* why);
  bool commit(std::string* why);

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// The whole of a file (or a FIFO, or standard input as /dev/stdin) read into *out; a directory,
// an unreadable path or a read error is false with *why naming it. Never throws.
bool read_file(const std::string& path, std::string* out, std::string* why);

// The header of a NumPy .npy file (format 1.0) for a C-order array of `descr` ("<f4", "<i4").
std::string npy_header(const char* descr, const std::vector<int64_t>& shape);

// False (with a message on stderr) when stdout has failed, e.g. a full disk or a closed pipe.
bool stdout_ok(const char* command);

}  // namespace altup::cli
