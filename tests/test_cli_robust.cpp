// The command line against odd inputs and environments, as a user meets them: a FIFO or a
// directory as the model, standard output that cannot be written, trace paths that must not be
// followed or clobbered, a vocabulary too small for random prompts, the profiler's overhead
// line only when asked for, and the shared option parser's checks on every subcommand.
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "runtime/gguf.h"
#include "tests/cli_test_util.h"
#include "tests/gguf_edit.h"

using namespace altup;
using namespace altup::test;

namespace {
const std::string kModel = std::string(ALTUP_FIXTURES_DIR) + "/model_k2_alternating_widened.gguf";
const char* kCommands[] = {"run", "profile", "bench", "info", "chat"};
}  // namespace

TEST_CASE("a FIFO or a directory as the model is refused at once by every subcommand") {
  TempDir dir;
  const std::string fifo = dir.path + "/model.gguf";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  for (const char* cmd : kCommands) {
    CAPTURE(std::string(cmd));
    const std::string flag = std::string(cmd) == "info" ? " " : " -m ";
    Run r = run_altup(dir, std::string(cmd) + flag + "'" + fifo + "'");  // would hang forever before
    CHECK(r.status == 1);
    CHECK(r.err.find("is a FIFO (named pipe), not a model file") != std::string::npos);
    r = run_altup(dir, std::string(cmd) + flag + "'" + dir.path + "'");
    CHECK(r.status == 1);
    CHECK(r.err.find("is a directory, not a model file") != std::string::npos);
  }
}

TEST_CASE("standard output that cannot be written is an error, not exit 0") {
  std::ifstream probe("/dev/full");
  if (!probe) return;  // no /dev/full on this system: nothing to test
  TempDir dir;
  for (const std::string& args : std::vector<std::string>{
           "run -m '" + kModel + "' -n 4 --temp 0", "info '" + kModel + "'", "bench -m '" + kModel + "' -p 4 -n 2 -r 1",
           "profile -m '" + kModel + "' --prefill 4 --decode 2", "--help", "run --help"}) {
    CAPTURE(args);
    const char* wrapper = std::getenv("ALTUP_CLI_WRAPPER");
    const std::string cmd = std::string(wrapper ? wrapper : "") + " '" + ALTUP_CLI_PATH + "' " + args +
                            " >/dev/full 2>'" + dir.path + "/err'";
    const int raw = std::system(cmd.c_str());
    CHECK(WIFEXITED(raw));
    CHECK(WEXITSTATUS(raw) == 1);
    CHECK(slurp(dir.path + "/err").find("cannot write to standard output") != std::string::npos);
  }
}

TEST_CASE("--trace writes its file whole, refuses non-regular targets and the model, follows no link") {
  TempDir dir;
  const std::string base = "profile -m '" + kModel + "' --prefill 4 --decode 1 --trace ";
  const std::string out = dir.path + "/trace.json";
  Run r = run_altup(dir, base + "'" + out + "'");
  CHECK(r.status == 0);
  CHECK(slurp(out).find("\"traceEvents\": [") != std::string::npos);
  // A symbolic link at the path (or at the old fixed PATH.tmp) is neither followed nor replaced.
  const std::string victim = dir.path + "/victim", link = dir.path + "/link.json";
  std::ofstream(victim) << "keep me";
  REQUIRE(symlink(victim.c_str(), link.c_str()) == 0);
  REQUIRE(symlink(victim.c_str(), (out + ".tmp").c_str()) == 0);
  r = run_altup(dir, base + "'" + link + "'");
  CHECK(r.status == 1);
  CHECK(r.err.find("exists and is not a regular file") != std::string::npos);
  r = run_altup(dir, base + "'" + out + "'");
  CHECK(r.status == 0);
  CHECK(slurp(victim) == "keep me");
  // A directory, and the model file itself.
  r = run_altup(dir, base + "'" + dir.path + "'");
  CHECK(r.status == 1);
  const std::string copy = dir.path + "/model.gguf";
  std::ofstream(copy, std::ios::binary) << slurp(kModel);
  r = run_altup(dir, "profile -m '" + copy + "' --prefill 4 --decode 1 --trace '" + copy + "'");
  CHECK(r.status == 1);
  CHECK(r.err.find("is the model file itself") != std::string::npos);
  CHECK(slurp(copy) == slurp(kModel));
  // No temporary file is left beside the targets (they are named TARGET.XXXXXX).
  CHECK(std::system(("ls -A '" + dir.path + "' | grep -q 'json\\.......$'").c_str()) != 0);
}

TEST_CASE("profile prints its overhead line only when --overhead asks for it") {
  TempDir dir;
  Run r = run_altup(dir, "profile -m '" + kModel + "' --prefill 4 --decode 2");
  CHECK(r.status == 0);
  CHECK(r.err.find("overhead") == std::string::npos);
  r = run_altup(dir, "profile -m '" + kModel + "' --prefill 4 --decode 2 --overhead");
  CHECK(r.status == 0);
  CHECK(r.err.find("profiler overhead on decode") != std::string::npos);
}

TEST_CASE("profile's per-node table names every op a node name runs") {
  // The Gemma 3n fixture's sparse layers compute ffn_up as matmul_masked, the others as
  // matmul; the summed row must say both, not whichever layer came last.
  TempDir dir;
  const std::string m = std::string(ALTUP_FIXTURES_DIR) + "/gemma3n_k4_multimodal_f32.gguf";
  Run r = run_altup(dir, "profile -m '" + m + "' --prefill 4 --decode 1");
  REQUIRE(r.status == 0);
  const size_t row = r.out.find("\n  ffn_up ");
  REQUIRE(row != std::string::npos);
  const std::string line = r.out.substr(row + 1, r.out.find('\n', row + 1) - row - 1);
  CAPTURE(line);
  CHECK(line.find(" matmul_masked/matmul ") != std::string::npos);  // layer 0 is sparse
}

TEST_CASE("profile and bench work on a vocabulary of three tokens or fewer") {
  // The tokenizer and the embedding / output tensors cut to 3 tokens.
  TempDir dir;
  auto f = GgufFile::open(kModel);
  REQUIRE(f.ok());
  EditableGguf e = EditableGguf::from(**f);
  const int V = 3;
  e.set_u32("altup.vocab_size", V);
  Bytes tokens, scores, types;
  tokens.put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(V);
  scores.put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(V);
  types.put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(V);
  const char* pieces[] = {"<unk>", "<s>", "</s>"};
  const int32_t kinds[] = {2, 3, 3};
  for (int i = 0; i < V; ++i) {
    tokens.str(pieces[i]);
    scores.put<float>(0);
    types.put<int32_t>(kinds[i]);
  }
  e.set_raw("tokenizer.ggml.tokens", tokens.bytes());
  e.set_raw("tokenizer.ggml.scores", scores.bytes());
  e.set_raw("tokenizer.ggml.token_type", types.bytes());
  for (const char* name : {"token_embd.weight", "output.weight"}) {
    auto* t = e.tensor(name);
    t->ne[1] = V;
    t->data.resize(static_cast<size_t>(t->ne[0]) * V * 4);
  }
  const std::string path = dir.path + "/tiny_vocab.gguf";
  const auto bytes = e.write();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  Run r = run_altup(dir, "profile -m '" + path + "' --prefill 8 --decode 2");
  CHECK(r.status == 0);
  r = run_altup(dir, "bench -m '" + path + "' -p 8 -n 4 -r 1");
  CHECK(r.status == 0);
  CHECK(r.out.find("pp8") != std::string::npos);
}

TEST_CASE("every subcommand checks its numeric options with one line and exit 2") {
  TempDir dir;
  const char* bad[][2] = {
      {"run", "-t 0"},
      {"run", "-t 1025"},
      {"run", "-c 0"},
      {"run", "-c 99999999999"},
      {"run", "--temp -1"},
      {"run", "--temp inf"},
      {"run", "--top-p 0"},
      {"run", "--top-p 1.5"},
      {"run", "--min-p -0.1"},
      {"run", "--repeat-penalty 0"},
      {"run", "-n 1e3"},
      {"run", "--seed -1"},
      {"run", "--top-k x"},
      {"run", "-n"},
      {"profile", "--prefill 0"},
      {"profile", "--decode -1"},
      {"profile", "--format xml"},
      {"profile", "-t 0"},
      {"profile", "--ctx 0"},
      {"bench", "-p -1"},
      {"bench", "-r 0"},
      {"bench", "-r 1001"},
      {"bench", "-o yaml"},
      {"bench", "-p 0 -n 0"},
      {"bench", "-t"},
      {"info", "--no-tensors=1 x"},
      {"info", "a b"},
      {"run", "stray"},
      {"profile", "--overhead=yes"},
      {"chat", "-n 0"},
      {"chat", "--temp -1"},
      {"chat", "stray"},
      {"run", "--chat=1"},
  };
  for (const auto& b : bad) {
    const std::string args = std::string(b[0]) + " " + b[1];
    CAPTURE(args);
    Run r = run_altup(dir, args);
    CHECK(r.status == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind(std::string("altup ") + b[0] + ": ", 0) == 0);
    CHECK(r.out.empty());
  }
  // --name=value works like --name value.
  Run r = run_altup(dir, "run -m '" + kModel + "' --n-predict=3 --temp=0 -p hi");
  CHECK(r.status == 0);
}

TEST_CASE("bench -o json stays JSON when the model path holds quotes and backslashes") {
  TempDir dir;
  const std::string odd = dir.path + "/we\"ird\\name.gguf";
  std::ofstream(odd, std::ios::binary) << slurp(kModel);
  Run r = run_altup(dir, "bench -m '" + odd + "' -p 4 -n 2 -r 1 -o json");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"model\": \"" + dir.path + "/we\\\"ird\\\\name.gguf\"") != std::string::npos);
}

TEST_CASE("bench -d measures after a filled context; on Gemma 3n's rings too") {
  TempDir dir;
  for (const std::string& m : {kModel, std::string(ALTUP_FIXTURES_DIR) + "/gemma3n_k4_wide_f16.gguf"}) {
    Run r = run_altup(dir, "bench -m '" + m + "' -p 8 -n 4 -d 40 -r 2 -o json");
    CAPTURE(r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find("\"depth\": 40") != std::string::npos);
    CHECK(r.out.find("\"test\": \"pp8\"") != std::string::npos);
  }
  // More than the rings can take back: the context is filled again between repetitions.
  Run r = run_altup(dir, "bench -m '" + std::string(ALTUP_FIXTURES_DIR) +
                             "/gemma3n_k4_wide_f16.gguf' -p 600 -n 0 -d 40 -r 2 -o json");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"test\": \"pp600\"") != std::string::npos);
}

TEST_CASE("every command that opens a model shares one option group: the same -m / -t lines and error line") {
  TempDir dir;
  const Run ref = run_altup(dir, "run --help");
  REQUIRE(ref.status == 0);
  auto line_of = [](const std::string& help, const char* opt) {
    const size_t at = help.find(opt);
    return at == std::string::npos ? std::string() : help.substr(at, help.find('\n', at) - at);
  };
  for (const char* cmd : {"run", "chat", "eval", "perplexity", "bench", "profile"}) {
    CAPTURE(std::string(cmd));
    const Run help = run_altup(dir, std::string(cmd) + " --help");
    REQUIRE(help.status == 0);
    CHECK(line_of(help.out, "-t, --threads N") == line_of(ref.out, "-t, --threads N"));
    CHECK(help.out.find("  -m, --model FILE") != std::string::npos);
    // The group comes first in every command's options.
    CHECK(help.out.find("-m, --model") < help.out.find("-h, --help"));
    const std::string args = std::string(cmd) + " -m '" + dir.path + "/missing.gguf'" +
                             (std::string(cmd) == "eval" ? " -p x --logits-out '" + dir.path + "/l.npy'" : "") +
                             (std::string(cmd) == "perplexity" ? " -f '" + kModel + "'" : "");
    const Run r = run_altup(dir, args + " </dev/null");
    CHECK(r.status == 1);
    CHECK(r.err.rfind(std::string("altup ") + cmd + ": error: " + dir.path + "/missing.gguf: ", 0) == 0);
  }
}

TEST_CASE("no command overwrites its own input: the token file, the text file, the model, through a link too") {
  TempDir dir;
  const std::string tokens = dir.path + "/ids.txt", text = dir.path + "/text.txt", link = dir.path + "/link.txt";
  {
    std::ofstream(tokens) << "1 2 3 4 5";
    std::ofstream t(text);
    for (int i = 0; i < 400; ++i) t << "And it came to pass in those days. ";
  }
  REQUIRE(symlink(tokens.c_str(), link.c_str()) == 0);
  for (const std::string& out : {tokens, link}) {
    CAPTURE(out);
    const Run r = run_altup(dir, "eval -m '" + kModel + "' --tokens '" + tokens + "' --logits-out '" + out + "'");
    CHECK(r.status == 1);
    // (a link is refused as a link, before it would be followed)
    CHECK(r.err.find(out == tokens ? "is the token file itself; not overwriting it" : "is not a regular file") !=
          std::string::npos);
    CHECK(slurp(tokens) == "1 2 3 4 5");
  }
  Run r = run_altup(dir, "eval -m '" + kModel + "' --tokens '" + tokens + "' --logits-out '" + dir.path +
                             "/l.npy' --tokens-out '" + tokens + "'");
  CHECK(r.status == 1);
  CHECK(slurp(tokens) == "1 2 3 4 5");
  const std::string before = slurp(text);
  r = run_altup(
      dir, "perplexity -m '" + kModel + "' -f '" + text + "' -c 16 --chunks 2 --kl-divergence-base '" + text + "'");
  CHECK(r.status == 1);
  CHECK(r.err.find("is the text file itself; not overwriting it") != std::string::npos);
  CHECK(slurp(text) == before);
  // Nothing else was left in the folder (no temporary files).
  int entries = 0;
  if (DIR* d = opendir(dir.path.c_str())) {
    while (dirent* e = readdir(d)) entries += e->d_name[0] != '.';
    closedir(d);
  }
  CHECK(entries == 5);  // ids.txt, text.txt, link.txt, and the captured stdout / stderr
}

TEST_CASE("a directory where a file is read is one error line, never an abort") {
  TempDir dir;
  const std::string d = "'" + dir.path + "'";
  for (const std::string& args : {"eval -m '" + kModel + "' --tokens " + d + " --logits-out '" + dir.path + "/l.npy'",
                                  "perplexity -m '" + kModel + "' -f " + d,
                                  "perplexity -m '" + kModel + "' --kl-divergence-base " + d + " --kl-divergence"}) {
    CAPTURE(args);
    const Run r = run_altup(dir, args);
    CHECK(r.status == 1);
    CHECK(r.err.find(dir.path + " is ") != std::string::npos);
    CHECK(r.err.find("terminate") == std::string::npos);
  }
}

TEST_CASE("profile estimates the work of attention, the KV stores and the embedding too") {
  TempDir dir;
  const Run r = run_altup(dir, "profile -m '" + kModel + "' --prefill 8 --decode 2 --format csv");
  REQUIRE(r.status == 0);
  // phase,layer,node,op,category,calls,total_ms,share,gflops,gbs,flop,bytes. The totals, not the
  // rates: a store can take less than the clock's tick (total_ms 0, so every rate is 0).
  int seen = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> f;
    std::istringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) f.push_back(c);
    if (f.size() != 12 || (f[3] != "attention" && f[3] != "kv_store" && f[3] != "embedding")) continue;
    CAPTURE(line);
    CHECK(std::stod(f[11]) > 0);                          // bytes moved
    if (f[3] != "kv_store") CHECK(std::stod(f[10]) > 0);  // operations (a store does none)
    ++seen;
  }
  CHECK(seen >= 4);
}

TEST_CASE("what a new user meets: --version, help CMD, a long context, refused combinations, checked paths") {
  TempDir dir;
  Run r = run_altup(dir, "--version");
  CHECK(r.status == 0);
  CHECK(r.out.rfind("altup ", 0) == 0);
  const Run help = run_altup(dir, "help bench"), direct = run_altup(dir, "bench --help");
  CHECK(help.status == 0);
  CHECK(help.out == direct.out);
  CHECK(run_altup(dir, "help nonsense").status == 2);
  r = run_altup(dir, "run -m '" + kModel + "' -n 2 -c 100 --temp 0");  // the model was trained for 64
  CHECK(r.status == 0);
  CHECK(r.err.find("warning: a context of 100 tokens is longer than the 64 the model was trained for") !=
        std::string::npos);
  r = run_altup(dir, "perplexity -m '" + kModel + "' --kl-divergence-base '" + dir.path + "/b' --kl-divergence -c 16");
  CHECK(r.status == 2);
  CHECK(r.err.find("-f and --ctx cannot be given with it") != std::string::npos);
  r = run_altup(dir, "profile -m '" + kModel + "' --prefill 4 --decode 1 --trace '" + dir.path + "/no/t.json'");
  CHECK(r.status == 1);
  CHECK(r.out.empty());  // refused before the profile ran
  CHECK(r.err.find("does not exist") != std::string::npos);
}
