// Runs the `altup` binary as a user would (through the emulator in cross builds) and
// captures its exit status, stdout and stderr.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace altup::test {

struct Run {
  int status = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/altup_cli_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

inline Run run_altup(const TempDir& dir, const std::string& args) {
  const std::string out = dir.path + "/stdout", err = dir.path + "/stderr";
  // Cross builds run the binary through an emulator (ALTUP_CLI_WRAPPER, set by meson).
  const char* wrapper = std::getenv("ALTUP_CLI_WRAPPER");
  const std::string cmd =
      std::string(wrapper ? wrapper : "") + " '" + ALTUP_CLI_PATH + "' " + args + " >'" + out + "' 2>'" + err + "'";
  Run r;
  const int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// Like run_altup, also reporting the command's peak resident memory (KiB) and whether a
// signal ended it.
struct RunRss : Run {
  long peak_kib = 0;
  bool signaled = false;
};
inline RunRss run_altup_rss(const TempDir& dir, const std::string& args) {
  const std::string out = dir.path + "/stdout", err = dir.path + "/stderr";
  const char* wrapper = std::getenv("ALTUP_CLI_WRAPPER");
  const std::string cmd = "exec " + std::string(wrapper ? wrapper : "") + " '" + ALTUP_CLI_PATH + "' " + args + " >'" +
                          out + "' 2>'" + err + "'";
  RunRss r;
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int raw = 0;
  rusage ru{};
  if (pid > 0 && wait4(pid, &raw, 0, &ru) == pid) {
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.signaled = WIFSIGNALED(raw);
    r.peak_kib = ru.ru_maxrss;
  }
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace altup::test
