// `altup run` as a user runs it: text on stdout, one summary line on stderr, clear errors.
#include <doctest/doctest.h>

#include <fstream>

#include "tests/cli_test_util.h"

using namespace altup::test;

namespace {
const std::string kModel = std::string(ALTUP_FIXTURES_DIR) + "/model_k2_alternating_widened.gguf";
}

TEST_CASE("run generates, prints the prompt then the continuation, and a summary line") {
  TempDir dir;
  Run r = run_altup(dir, "run -m '" + kModel + "' -p 'And God said' -n 12 --temp 0 -t 1");
  CHECK(r.status == 0);
  CHECK(r.out.rfind("And God said", 0) == 0);
  CHECK(r.out.size() > std::string("And God said\n").size());
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.find("| prefill ") != std::string::npos);
  CHECK(r.err.find("decode 11 tokens") != std::string::npos);
  CHECK(r.err.find("peak RSS") != std::string::npos);
  // Greedy is deterministic; so is sampling with a seed.
  Run again = run_altup(dir, "run -m '" + kModel + "' -p 'And God said' -n 12 --temp 0 -t 2");
  CHECK(again.out == r.out);
  Run s1 = run_altup(dir, "run -m '" + kModel + "' -p x -n 20 --seed 5");
  Run s2 = run_altup(dir, "run -m '" + kModel + "' -p x -n 20 --seed 5");
  CHECK(s1.out == s2.out);
}

TEST_CASE("run: errors name the problem and exit non-zero") {
  TempDir dir;
  Run r = run_altup(dir, "run -m /nonexistent.gguf");
  CHECK(r.status == 1);
  CHECK(r.err == "altup run: error: /nonexistent.gguf: cannot open /nonexistent.gguf: No such file or directory\n");
  r = run_altup(dir, "run -m '" + std::string(ALTUP_FIXTURES_DIR) + "/all_types.gguf'");
  CHECK(r.status == 1);
  CHECK(r.err.find("unknown architecture 'test'") != std::string::npos);
  r = run_altup(dir, "run -m '" + kModel + "' --ctx 4 -p 'a prompt that is much longer than four tokens'");
  CHECK(r.status == 1);
  CHECK(r.err.find("the context holds 4") != std::string::npos);
  CHECK(r.out.empty());
  r = run_altup(dir, "run -m '" + kModel + "' -n -3");
  CHECK(r.status == 2);
  CHECK(r.err == "altup run: -n '-3' is not an integer from 0 to 1073741824\n");
  r = run_altup(dir, "run --temp");
  CHECK(r.status == 2);
  r = run_altup(dir, "run --bogus");
  CHECK(r.status == 2);
  r = run_altup(dir, "run --help");
  CHECK(r.status == 0);
  CHECK(r.out.find("--repeat-penalty") != std::string::npos);
}

TEST_CASE("run stops when the context is full") {
  TempDir dir;
  Run r = run_altup(dir, "run -m '" + kModel + "' --ctx 10 -p hello -n 100 --temp 0");
  CHECK(r.status == 0);
  CHECK(r.err.find("stop: context full") != std::string::npos);
}

TEST_CASE("run refuses a context whose KV cache cannot fit, and does not touch the cache up front") {
  TempDir dir;
  // The demo model keeps 6 layers x 2 x 2 KV heads x 32 floats = 3 KiB of cache per token:
  // 48 GiB for 16M tokens. Refused exactly when that is more than the memory available.
  unsigned long long avail_kib = 0;
  {
    std::ifstream mi("/proc/meminfo");
    std::string key;
    while (mi >> key && key != "MemAvailable:") mi.ignore(1 << 10, '\n');
    mi >> avail_kib;
  }
  REQUIRE(avail_kib > 0);
  const bool fits = avail_kib * 1024ull >= (48ull << 30);
  Run r = run_altup(dir, "run --ctx 16777216 -p hi -n 2 --temp 0");
  if (!fits) {
    CHECK(r.status == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("a context of 16777216 tokens needs 49152 MiB of KV cache") != std::string::npos);
    CHECK(r.err.find("MiB of memory are available") != std::string::npos);
  } else {
    CHECK(r.status == 0);
  }
  // A context of a million tokens reserves 3 GiB of cache; memory follows the tokens held
  // (checked in a native build; emulators add their own).
  RunRss big = run_altup_rss(dir, "run --ctx 1048576 -p hi -n 4 --temp 0");
  CHECK(big.status == 0);
  if (!std::getenv("ALTUP_CLI_WRAPPER") || !*std::getenv("ALTUP_CLI_WRAPPER")) CHECK(big.peak_kib < 256 * 1024);
}

namespace {
// Starts `altup ARGS` in the background, waits (up to 120 s) until `ready` (a shell test)
// holds, sends SIGINT and returns the exit status.
int interrupt_when(const TempDir& dir, const std::string& args, const std::string& ready) {
  const char* wrapper = std::getenv("ALTUP_CLI_WRAPPER");
  const std::string script = dir.path + "/int.sh";
  {
    std::ofstream sh(script);
    sh << "exec >'" << dir.path << "/stdout' 2>'" << dir.path << "/stderr' </dev/null\n"
       << (wrapper ? wrapper : "") << " '" << ALTUP_CLI_PATH << "' " << args << " &\n"
       << "pid=$!\n"
       << "for i in $(seq 1200); do if " << ready << " || ! kill -0 $pid 2>/dev/null; then break; fi; sleep 0.1; done\n"
       << "kill -INT $pid\n"
       << "wait $pid\n"
       << "echo $? >'" << dir.path << "/rc'\n";
  }
  std::system(("sh '" + script + "'").c_str());
  return std::atoi(slurp(dir.path + "/rc").c_str());
}
}  // namespace

TEST_CASE("Ctrl-C: run ends the text, prints its summary and exits 130; eval leaves no temporary file") {
  TempDir dir;
  // Generation long enough to be interrupted: a context far past the tokens it would need.
  const int rc = interrupt_when(dir, "run -n 1000000 -c 100000 -t 1 --temp 0",
                                "[ -s '" + dir.path + "/stdout' ] && [ $(wc -c <'" + dir.path + "/stdout') -gt 100 ]");
  CHECK(rc == 130);
  const std::string err = slurp(dir.path + "/stderr");
  CHECK(err.find("stop: interrupted") != std::string::npos);

  TempDir out;
  {
    std::ofstream ids(out.path + "/ids.txt");
    for (int i = 0; i < 300000; ++i) ids << (i * 7 % 2000 + 3) << ' ';
  }
  const int rc2 = interrupt_when(
      out, "eval --tokens '" + out.path + "/ids.txt' --logits-out '" + out.path + "/l.npy' -c 300000 -t 1",
      "ls '" + out.path + "' | grep -q 'l.npy.'");
  CHECK(rc2 == 130);
  std::system(("ls '" + out.path + "' > '" + dir.path + "/listing'").c_str());
  const std::string listing = slurp(dir.path + "/listing");
  CHECK(listing.find("l.npy") == std::string::npos);  // neither the output nor its temporary file
}

TEST_CASE("Ctrl-C in chat stops the reply and keeps the conversation") {
  TempDir dir;
  const std::string gemma = std::string(ALTUP_FIXTURES_DIR) + "/gemma3n_k4_wide_f16.gguf";
  const char* wrapper = std::getenv("ALTUP_CLI_WRAPPER");
  const std::string script = dir.path + "/chat.sh", d = "'" + dir.path + "'";
  {
    // A reply long enough to be interrupted (a context far past the model's, which warns),
    // then a second turn after the interruption, then the end of input.
    std::ofstream sh(script);
    sh << "cd " << d << "\nmkfifo in\n"
       << (wrapper ? wrapper : "") << " '" << ALTUP_CLI_PATH << "' chat -m '" << gemma
       << "' -n 1000000 -c 200000 --temp 0 -t 1 <in >stdout 2>stderr &\n"
       << "pid=$!\nexec 3>in\necho 'hello there' >&3\n"
       << "for i in $(seq 1200); do if [ $(wc -c <stdout) -gt 200 ] || ! kill -0 $pid 2>/dev/null; then break; fi; "
          "sleep 0.1; done\n"
       << "kill -INT $pid\n"
       << "for i in $(seq 1200); do if grep -q 'turn 1' stderr || ! kill -0 $pid 2>/dev/null; then break; fi; "
          "sleep 0.1; done\n"
       << "echo 'and again' >&3\n"  // the second turn: interrupted the same way
       << "for i in $(seq 1200); do if [ $(grep -c 'turn' stderr) -ge 1 ] && [ $(wc -c <stdout) -gt 600 ] || "
          "! kill -0 $pid 2>/dev/null; then break; fi; sleep 0.1; done\n"
       << "kill -INT $pid\n"
       << "for i in $(seq 1200); do if grep -q 'turn 2' stderr || ! kill -0 $pid 2>/dev/null; then break; fi; "
          "sleep 0.1; done\n"
       << "echo '/exit' >&3\nexec 3>&-\nwait $pid\necho $? >rc\n";
  }
  std::system(("sh '" + script + "'").c_str());
  CHECK(std::atoi(slurp(dir.path + "/rc").c_str()) == 0);  // the conversation went on and ended normally
  const std::string err = slurp(dir.path + "/stderr");
  CHECK(err.find("[turn 1:") != std::string::npos);
  CHECK(err.find("[turn 2:") != std::string::npos);  // the conversation went on after the first
  CHECK(err.find("stop: interrupted]") != std::string::npos);
  CHECK(err.find("stop: interrupted]", err.find("[turn 2:")) != std::string::npos);
}
