// The C interface (include/altup.h) as an app uses it, and as an app misuses it: every bad
// call in the table returns its error code and a message, and nothing crashes (this test
// also runs under ASan + UBSan, where a use of freed memory would be reported).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <string>
#include <vector>

#include "altup.h"
#include "tests/cli_test_util.h"

namespace {

const std::string kModel = std::string(ALTUP_FIXTURES_DIR) + "/model_k2_alternating_widened.gguf";

struct Fixture {
  altup_model* model = nullptr;
  altup_session* session = nullptr;
  Fixture() {
    REQUIRE(altup_model_open(kModel.c_str(), &model) == ALTUP_OK);
    altup_session_options o = altup_session_default_options();
    o.temperature = 0;
    o.threads = 1;
    REQUIRE(altup_session_create(model, &o, &session) == ALTUP_OK);
  }
  ~Fixture() {
    altup_session_free(session);
    altup_model_free(model);
  }
};

}  // namespace

TEST_CASE("open, inspect, tokenize, evaluate, sample, generate, truncate, profile, free") {
  altup_model* model = nullptr;
  REQUIRE(altup_model_open(kModel.c_str(), &model) == ALTUP_OK);
  altup_model_info info;
  REQUIRE(altup_model_get_info(model, &info) == ALTUP_OK);
  CHECK(std::string(info.architecture) == "altup");
  CHECK(info.vocab_size == 320);
  CHECK(info.context_length == 64);
  CHECK(info.bos_token == 1);
  CHECK(info.eos_token == 2);

  size_t n = 0;
  CHECK(altup_tokenize(model, "And God said", 12, 1, nullptr, 0, &n) == ALTUP_ERR_BUFFER_TOO_SMALL);
  std::vector<int32_t> ids(n);
  REQUIRE(altup_tokenize(model, "And God said", 12, 1, ids.data(), ids.size(), &n) == ALTUP_OK);
  CHECK(ids[0] == 1);
  size_t len = 0;
  CHECK(altup_detokenize(model, ids.data(), n, nullptr, 0, &len) == ALTUP_ERR_BUFFER_TOO_SMALL);
  std::string text(len + 1, '\0');
  REQUIRE(altup_detokenize(model, ids.data(), n, text.data(), text.size(), &len) == ALTUP_OK);
  CHECK(std::string(text.c_str()) == "And God said");

  altup_session_options o = altup_session_default_options();
  o.temperature = 0;
  o.profile = 1;
  altup_session* s = nullptr;
  REQUIRE(altup_session_create(model, &o, &s) == ALTUP_OK);
  REQUIRE(altup_eval(s, ids.data(), n) == ALTUP_OK);
  const float* logits = nullptr;
  int32_t V = 0;
  REQUIRE(altup_get_logits(s, &logits, &V) == ALTUP_OK);
  CHECK(V == 320);
  int32_t greedy = -1;
  REQUIRE(altup_sample(s, &greedy) == ALTUP_OK);
  CHECK(greedy == static_cast<int32_t>(std::max_element(logits, logits + V) - logits));
  int64_t past = 0, ctx = 0;
  REQUIRE(altup_session_position(s, &past, &ctx) == ALTUP_OK);
  CHECK(past == static_cast<int64_t>(n));
  CHECK(ctx == 64);

  // Generating after a truncation back to the prompt gives the same tokens again.
  std::vector<int32_t> first, second;
  auto collect = [](int32_t token, const char*, void* user) {
    if (token >= 0) static_cast<std::vector<int32_t>*>(user)->push_back(token);
    return 0;
  };
  altup_stop_reason stop;
  REQUIRE(altup_generate(s, "", 6, collect, &first, &stop) == ALTUP_OK);
  CHECK(stop == ALTUP_STOP_LENGTH);
  CHECK(first.size() == 6);
  CHECK(first[0] == greedy);
  REQUIRE(altup_truncate(s, static_cast<int64_t>(n) - 1) == ALTUP_OK);
  REQUIRE(altup_eval(s, &ids[n - 1], 1) == ALTUP_OK);  // the prompt's last token again
  REQUIRE(altup_generate(s, "", 6, collect, &second, &stop) == ALTUP_OK);
  CHECK(second == first);

  const char* json = nullptr;
  REQUIRE(altup_profile_json(s, &json) == ALTUP_OK);
  CHECK(std::string(json).find("\"attn_q\"") != std::string::npos);
  REQUIRE(altup_profile_clear(s) == ALTUP_OK);
  CHECK(std::string(altup_system_info()).find("kernel table") != std::string::npos);
  CHECK(std::string(altup_version()) == "0.1.0");

  // The model may be freed first; the session keeps what it needs alive.
  REQUIRE(altup_model_free(model) == ALTUP_OK);
  REQUIRE(altup_reset(s) == ALTUP_OK);
  REQUIRE(altup_eval(s, ids.data(), n) == ALTUP_OK);
  REQUIRE(altup_session_free(s) == ALTUP_OK);
}

// `altup run`, the C API (and so the Python binding, tests/python/test_runtime_binding.py)
// all run engine/generate.h's loop: the same greedy text, and the same stop.
using altup::test::Run;
using altup::test::run_altup;
using altup::test::TempDir;
TEST_CASE("altup_generate's greedy text equals altup run's, to the same stop") {
  const std::string demo = std::string(ALTUP_FIXTURES_DIR) + "/../../demo/kjv-altup-k2.gguf";
  for (const char* prompt : {"And God said", "In the beginning"})
    for (int n : {1, 17, 40}) {
      CAPTURE(prompt);
      CAPTURE(n);
      TempDir dir;
      const Run run =
          run_altup(dir, "run -m '" + demo + "' -p '" + prompt + "' -n " + std::to_string(n) + " --temp 0 -t 1");
      REQUIRE(run.status == 0);
      altup_model* model = nullptr;
      altup_session* s = nullptr;
      REQUIRE(altup_model_open(demo.c_str(), &model) == ALTUP_OK);
      altup_session_options o = altup_session_default_options();
      o.temperature = 0;
      o.threads = 1;
      REQUIRE(altup_session_create(model, &o, &s) == ALTUP_OK);
      std::string text;
      auto collect = [](int32_t, const char* piece, void* user) {
        *static_cast<std::string*>(user) += piece;
        return 0;
      };
      altup_stop_reason stop;
      REQUIRE(altup_generate(s, prompt, n, collect, &text, &stop) == ALTUP_OK);
      CHECK(run.out == prompt + text + "\n");
      CHECK(stop == ALTUP_STOP_LENGTH);
      CHECK(run.err.find("stop: length") != std::string::npos);
      altup_session_free(s);
      altup_model_free(model);
    }
}

TEST_CASE("a callback that stops early, and a full context") {
  Fixture f;
  int calls = 0;
  // (token -1 is the flush of an unfinished character at the end, not a token)
  auto stop_at_3 = [](int32_t token, const char*, void* user) {
    return token >= 0 && ++*static_cast<int*>(user) >= 3 ? 1 : 0;
  };
  altup_stop_reason stop;
  REQUIRE(altup_generate(f.session, "And", 50, stop_at_3, &calls, &stop) == ALTUP_OK);
  CHECK(stop == ALTUP_STOP_CALLBACK);
  CHECK(calls == 3);
  REQUIRE(altup_generate(f.session, "", 1000, nullptr, nullptr, &stop) == ALTUP_OK);
  CHECK(stop == ALTUP_STOP_CONTEXT_FULL);
  int64_t past = 0;
  REQUIRE(altup_session_position(f.session, &past, nullptr) == ALTUP_OK);
  CHECK(past == 64);
  const int32_t one = 5;
  CHECK(altup_eval(f.session, &one, 1) == ALTUP_ERR_CONTEXT_FULL);
  CHECK(std::string(altup_last_error()).find("do not fit the context of 64") != std::string::npos);
  CHECK(std::string(altup_session_last_error(f.session)) == altup_last_error());
}

TEST_CASE("bad use of the API returns an error code and a message, never a crash") {
  Fixture f;
  altup_model* freed_model = nullptr;
  REQUIRE(altup_model_open(kModel.c_str(), &freed_model) == ALTUP_OK);
  altup_session* freed = nullptr;
  REQUIRE(altup_session_create(f.model, nullptr, &freed) == ALTUP_OK);
  REQUIRE(altup_session_free(freed) == ALTUP_OK);
  REQUIRE(altup_model_free(freed_model) == ALTUP_OK);
  altup_model* m = nullptr;
  altup_session* s = nullptr;
  const float* logits = nullptr;
  int32_t n_vocab = 0, token = 0, ids[4] = {1, 5, 7, 9};
  size_t n = 0;
  char buf[64];
  altup_model_info info;
  struct Row {
    const char* what;
    std::function<altup_status()> call;
    altup_status expect;
    const char* message;  // part of altup_last_error()
  };
  const int32_t out_of_range[] = {1, 320};
  const int32_t negative[] = {-1};
  const std::vector<Row> rows = {
      {"open: NULL path", [&] { return altup_model_open(nullptr, &m); }, ALTUP_ERR_INVALID_ARGUMENT, "path is NULL"},
      {"open: NULL out", [&] { return altup_model_open(kModel.c_str(), nullptr); }, ALTUP_ERR_INVALID_ARGUMENT,
       "out is NULL"},
      {"open: missing file", [&] { return altup_model_open("/nonexistent.gguf", &m); }, ALTUP_ERR_IO,
       "No such file or directory"},
      {"open: not a GGUF", [&] { return altup_model_open(ALTUP_FIXTURES_DIR "/model_cases.txt", &m); },
       ALTUP_ERR_INVALID_MODEL, "model_cases.txt"},
      {"open: a directory", [&] { return altup_model_open(ALTUP_FIXTURES_DIR, &m); }, ALTUP_ERR_IO, "is a directory"},
      {"info: NULL model", [&] { return altup_model_get_info(nullptr, &info); }, ALTUP_ERR_INVALID_ARGUMENT,
       "model is NULL"},
      {"info: freed model", [&] { return altup_model_get_info(freed_model, &info); }, ALTUP_ERR_INVALID_HANDLE,
       "not open"},
      {"info: NULL out", [&] { return altup_model_get_info(f.model, nullptr); }, ALTUP_ERR_INVALID_ARGUMENT,
       "out is NULL"},
      {"model freed twice", [&] { return altup_model_free(freed_model); }, ALTUP_ERR_INVALID_HANDLE, "freed twice"},
      {"tokenize: NULL text", [&] { return altup_tokenize(f.model, nullptr, 3, 1, ids, 4, &n); },
       ALTUP_ERR_INVALID_ARGUMENT, "text is NULL"},
      {"tokenize: NULL count", [&] { return altup_tokenize(f.model, "a", 1, 1, ids, 4, nullptr); },
       ALTUP_ERR_INVALID_ARGUMENT, "n_tokens is NULL"},
      {"tokenize: NULL buffer with room", [&] { return altup_tokenize(f.model, "a", 1, 1, nullptr, 4, &n); },
       ALTUP_ERR_INVALID_ARGUMENT, "tokens is NULL"},
      {"tokenize: buffer too small", [&] { return altup_tokenize(f.model, "And God said", 12, 1, ids, 1, &n); },
       ALTUP_ERR_BUFFER_TOO_SMALL, "do not fit a buffer of 1"},
      {"detokenize: id out of range", [&] { return altup_detokenize(f.model, out_of_range, 2, buf, 64, &n); },
       ALTUP_ERR_TOKEN_OUT_OF_RANGE, "token id 320 is outside the vocabulary [0, 320)"},
      {"detokenize: negative id", [&] { return altup_detokenize(f.model, negative, 1, buf, 64, &n); },
       ALTUP_ERR_TOKEN_OUT_OF_RANGE, "token id -1"},
      {"detokenize: freed model", [&] { return altup_detokenize(freed_model, ids, 1, buf, 64, &n); },
       ALTUP_ERR_INVALID_HANDLE, "not open"},
      {"session: NULL model", [&] { return altup_session_create(nullptr, nullptr, &s); }, ALTUP_ERR_INVALID_ARGUMENT,
       "model is NULL"},
      {"session: freed model", [&] { return altup_session_create(freed_model, nullptr, &s); }, ALTUP_ERR_INVALID_HANDLE,
       "not open"},
      {"session: top_p 0",
       [&] {
         altup_session_options o = altup_session_default_options();
         o.top_p = 0;
         return altup_session_create(f.model, &o, &s);
       },
       ALTUP_ERR_INVALID_ARGUMENT, "top_p must be in (0, 1]"},
      {"session: NaN temperature",
       [&] {
         altup_session_options o = altup_session_default_options();
         o.temperature = std::nanf("");
         return altup_session_create(f.model, &o, &s);
       },
       ALTUP_ERR_INVALID_ARGUMENT, "temperature"},
      {"session: negative threads",
       [&] {
         altup_session_options o = altup_session_default_options();
         o.threads = -2;
         return altup_session_create(f.model, &o, &s);
       },
       ALTUP_ERR_INVALID_ARGUMENT, "threads"},
      {"session: a context too large for memory",
       [&] {
         altup_session_options o = altup_session_default_options();
         o.context = 1 << 24;  // 6 GiB of cache for this model: refused only if memory lacks it
         const altup_status st = altup_session_create(f.model, &o, &s);
         if (st == ALTUP_OK) {
           altup_session_free(s);
           return ALTUP_ERR_OUT_OF_MEMORY;  // it fit here; the row is about the code when it does not
         }
         return st;
       },
       ALTUP_ERR_OUT_OF_MEMORY, ""},
      {"eval: NULL session", [&] { return altup_eval(nullptr, ids, 1); }, ALTUP_ERR_INVALID_ARGUMENT,
       "session is NULL"},
      {"eval: freed session", [&] { return altup_eval(freed, ids, 1); }, ALTUP_ERR_INVALID_HANDLE, "not open"},
      {"eval: no tokens", [&] { return altup_eval(f.session, ids, 0); }, ALTUP_ERR_INVALID_ARGUMENT, "no tokens"},
      {"eval: id out of range", [&] { return altup_eval(f.session, out_of_range, 2); }, ALTUP_ERR_TOKEN_OUT_OF_RANGE,
       "token id 320 is outside the vocabulary"},
      {"logits before any eval", [&] { return altup_get_logits(f.session, &logits, &n_vocab); }, ALTUP_ERR_NO_LOGITS,
       "nothing has been evaluated"},
      {"sample before any eval", [&] { return altup_sample(f.session, &token); }, ALTUP_ERR_NO_LOGITS,
       "nothing has been evaluated"},
      {"sample: NULL out", [&] { return altup_sample(f.session, nullptr); }, ALTUP_ERR_INVALID_ARGUMENT,
       "token is NULL"},
      {"generate: NULL prompt", [&] { return altup_generate(f.session, nullptr, 4, nullptr, nullptr, nullptr); },
       ALTUP_ERR_INVALID_ARGUMENT, "prompt is NULL"},
      {"generate: negative count", [&] { return altup_generate(f.session, "a", -1, nullptr, nullptr, nullptr); },
       ALTUP_ERR_INVALID_ARGUMENT, "max_tokens is negative"},
      {"generate: freed session", [&] { return altup_generate(freed, "a", 4, nullptr, nullptr, nullptr); },
       ALTUP_ERR_INVALID_HANDLE, "not open"},
      {"truncate: beyond the tokens held", [&] { return altup_truncate(f.session, 5); }, ALTUP_ERR_INVALID_ARGUMENT,
       "n_keep 5 is not in [0, 0]"},
      {"truncate: negative", [&] { return altup_truncate(f.session, -1); }, ALTUP_ERR_INVALID_ARGUMENT, "n_keep -1"},
      {"reset: freed session", [&] { return altup_reset(freed); }, ALTUP_ERR_INVALID_HANDLE, "not open"},
      {"profile without profiling",
       [&] {
         const char* j;
         return altup_profile_json(f.session, &j);
       },
       ALTUP_ERR_INVALID_ARGUMENT, "without profile = 1"},
      {"session freed twice", [&] { return altup_session_free(freed); }, ALTUP_ERR_INVALID_HANDLE, "freed twice"},
      {"position: a pointer that was never a session",
       [&] { return altup_session_position(reinterpret_cast<altup_session*>(&info), nullptr, nullptr); },
       ALTUP_ERR_INVALID_HANDLE, "not open"},
  };
  CHECK(rows.size() >= 30);
  for (const Row& row : rows) {
    const std::string what = row.what;
    CAPTURE(what);
    const altup_status st = row.call();
    CHECK(st == row.expect);
    CHECK(std::string(altup_status_name(st)) != "unknown status");
    if (row.message[0]) CHECK(std::string(altup_last_error()).find(row.message) != std::string::npos);
  }
  CHECK(m == nullptr);  // failed opens leave NULL
  CHECK(altup_session_last_error(freed) == nullptr);
  // The session is still usable after all of that.
  REQUIRE(altup_eval(f.session, ids, 2) == ALTUP_OK);
  CHECK(altup_model_free(nullptr) == ALTUP_OK);
  CHECK(altup_session_free(nullptr) == ALTUP_OK);
}

TEST_CASE("sessions on different threads share one model and get the same text as alone") {
  altup_model* model = nullptr;
  REQUIRE(altup_model_open(kModel.c_str(), &model) == ALTUP_OK);
  auto greedy = [&](std::vector<int32_t>* out) {
    altup_session_options o = altup_session_default_options();
    o.temperature = 0;
    o.threads = 1;
    altup_session* s = nullptr;
    if (altup_session_create(model, &o, &s) != ALTUP_OK) return;
    auto collect = [](int32_t token, const char*, void* user) {
      if (token >= 0) static_cast<std::vector<int32_t>*>(user)->push_back(token);
      return 0;
    };
    altup_generate(s, "And God said", 20, collect, out, nullptr);
    altup_session_free(s);
  };
  std::vector<int32_t> alone, a, b, c;
  greedy(&alone);
  REQUIRE(alone.size() == 20);
  std::thread t1(greedy, &a), t2(greedy, &b), t3(greedy, &c);
  t1.join();
  t2.join();
  t3.join();
  CHECK(a == alone);
  CHECK(b == alone);
  CHECK(c == alone);
  REQUIRE(altup_model_free(model) == ALTUP_OK);
}
