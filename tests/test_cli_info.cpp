// `altup info` as a user runs it: valid files list their contents; every malformed file gives
// exactly one error line naming the file and the problem, a non-zero exit, and nothing on stdout.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "tests/malformed_cases.h"

namespace {

struct Run {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
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

Run run_altup(const TempDir& dir, const std::string& args) {
  const std::string out = dir.path + "/stdout", err = dir.path + "/stderr";
  // Cross builds run the binary through an emulator (ALTUP_CLI_WRAPPER, set by meson).
  const char* wrapper = std::getenv("ALTUP_CLI_WRAPPER");
  const std::string cmd = std::string(wrapper ? wrapper : "") + " '" + ALTUP_CLI_PATH + "' " + args + " >'" + out +
                          "' 2>'" + err + "'";
  Run r;
  const int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("info lists a llama.cpp-style file: architecture, hyper-parameters, tokenizer, tensors, totals") {
  TempDir dir;
  Run r = run_altup(dir, "info " ALTUP_FIXTURES_DIR "/llama_like.gguf");
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  for (const char* want : {"GGUF v3, alignment 32", "architecture           llama", "llama.block_count",
                           "llama.attention.head_count_kv", "tokens                 262 x string",
                           "bos id                 1  \"<s>\"", "blk.0.ffn_gate.weight", "Q4_0", "[96, 64]",
                           "parameters             64448", "tensors                12"}) {
    const std::string wanted = want;
    CAPTURE(wanted);
    CHECK(r.out.find(want) != std::string::npos);
  }
}

TEST_CASE("info handles every metadata type and a non-default alignment") {
  TempDir dir;
  Run r = run_altup(dir, "info " ALTUP_FIXTURES_DIR "/all_types.gguf");
  CHECK(r.status == 0);
  CHECK(r.out.find("test.arr_nested") != std::string::npos);
  CHECK(r.out.find("[2 x array]") != std::string::npos);
  CHECK(r.out.find("-9000000000000000000") != std::string::npos);
  r = run_altup(dir, "info --no-tensors " ALTUP_FIXTURES_DIR "/aligned64.gguf");
  CHECK(r.status == 0);
  CHECK(r.out.find("alignment 64") != std::string::npos);
  CHECK(r.out.find("  name ") == std::string::npos);  // no tensor table
}

TEST_CASE("info: each malformed file gives one error line and exit status 1") {
  TempDir dir;
  for (const auto& c : altup::test::malformed_cases()) {
    const std::string what = c.what;
    CAPTURE(what);
    const std::string path = dir.path + "/bad.gguf";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(c.bytes.data()),
                                                static_cast<std::streamsize>(c.bytes.size()));
    Run r = run_altup(dir, "info '" + path + "'");
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind("altup info: error: " + path + ": ", 0) == 0);
    CAPTURE(r.err);
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("info: missing files, directories and bad usage") {
  TempDir dir;
  Run r = run_altup(dir, "info /nonexistent/model.gguf");
  CHECK(r.status == 1);
  CHECK(r.err == "altup info: error: /nonexistent/model.gguf: cannot open /nonexistent/model.gguf: No such file or directory\n");
  r = run_altup(dir, "info " + dir.path);
  CHECK(r.status == 1);
  CHECK(r.err.find("is not a regular file") != std::string::npos);
  r = run_altup(dir, "info");
  CHECK(r.status == 2);
  r = run_altup(dir, "info --bogus x.gguf");
  CHECK(r.status == 2);
  CHECK(r.err.find("unknown option '--bogus'") != std::string::npos);
  r = run_altup(dir, "info --help");
  CHECK(r.status == 0);
  CHECK(r.out.find("usage: altup info") != std::string::npos);
  r = run_altup(dir, "--help");
  CHECK(r.status == 0);
  CHECK(r.out.find("info ") != std::string::npos);
  r = run_altup(dir, "frobnicate");
  CHECK(r.status == 2);
}
