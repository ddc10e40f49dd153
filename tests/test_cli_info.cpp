// `altup info` as a user runs it: valid files list their contents; every malformed file gives
// exactly one error line naming the file and the problem, a non-zero exit, and nothing on stdout.
#include <doctest/doctest.h>

#include <fstream>

#include "tests/cli_test_util.h"
#include "tests/malformed_cases.h"

using namespace altup::test;

TEST_CASE("info lists a llama.cpp-style file: architecture, hyper-parameters, tokenizer, tensors, totals") {
  TempDir dir;
  Run r = run_altup(dir, "info " ALTUP_FIXTURES_DIR "/llama_like.gguf");
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  for (const char* want :
       {"GGUF v3, alignment 32", "architecture           llama", "llama.block_count", "llama.attention.head_count_kv",
        "tokens                 262 x string", "bos id                 1  \"<s>\"", "blk.0.ffn_gate.weight", "Q4_0",
        "[96, 64]", "parameters             64448", "tensors                12"}) {
    const std::string wanted = want;
    CAPTURE(wanted);
    CHECK(r.out.find(want) != std::string::npos);
  }
}

TEST_CASE("info --ctx prints the memory a context takes, by part") {
  TempDir dir;
  Run r = run_altup(dir, "info --no-tensors --ctx 200 " ALTUP_FIXTURES_DIR "/gemma3n_k4_multimodal_f32.gguf");
  CHECK(r.status == 0);
  for (const char* want :
       {"ok: runs as 'gemma3n'", "memory for a context of 200 tokens", "weights read per token", "read a row per token",
        "KV cache, full                 200.00 KiB", "decoding, ", "for a 200-token prefill chunk", "while decoding"}) {
    const std::string wanted = want;
    CAPTURE(wanted);
    CHECK(r.out.find(want) != std::string::npos);
  }
  r = run_altup(dir, "info --ctx 0 " ALTUP_FIXTURES_DIR "/gemma3n_k4_multimodal_f32.gguf");
  CHECK(r.status == 2);
}

TEST_CASE("info says how a StagFormer's decode step runs its stacks") {
  TempDir dir;
  const std::pair<const char*, const char*> cases[] = {
      {"stagformer_p2_separate.gguf", "every stack at once, each on a group of the threads where that measures faster"},
      {"stagformer_p2_shared.gguf", "every stack at once, one multi-row pass through each shared weight"},
  };
  for (const auto& [file, want] : cases) {
    CAPTURE(file);
    Run r = run_altup(dir, std::string("info --no-tensors " ALTUP_FIXTURES_DIR "/") + file);
    CHECK(r.status == 0);
    CHECK(r.out.find(want) != std::string::npos);
  }
  setenv("ALTUP_STAGGER", "0", 1);
  Run r = run_altup(dir, "info --no-tensors " ALTUP_FIXTURES_DIR "/stagformer_p2_separate.gguf");
  unsetenv("ALTUP_STAGGER");
  CHECK(r.out.find("decode step            the stacks one after the other") != std::string::npos);
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
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(c.bytes.data()), static_cast<std::streamsize>(c.bytes.size()));
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
  CHECK(r.err ==
        "altup info: error: /nonexistent/model.gguf: cannot open /nonexistent/model.gguf: No such file or directory\n");
  r = run_altup(dir, "info " + dir.path);
  CHECK(r.status == 1);
  CHECK(r.err.find("is a directory, not a model file") != std::string::npos);
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

TEST_CASE("info --system describes the kernel table, CPU, oneDNN and threads") {
  TempDir dir;
  Run r = run_altup(dir, "info --system");
  CHECK(r.status == 0);
  for (const char* part : {"kernel table", "compiled tables", "CPU features", "oneDNN", "threads"})
    CHECK(r.out.find(part) != std::string::npos);
  r = run_altup(dir, "info --system some.gguf");
  CHECK(r.status == 2);
  CHECK(r.err == "altup info: --system takes no file\n");
}
