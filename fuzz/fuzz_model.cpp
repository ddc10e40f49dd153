// libFuzzer target: model loading and validation from a GGUF in memory (Session::open: the
// architecture's hyper-parameters, weight list, tokenizer), then, for a file that passes, a
// two-token prefill and one decode step, and the fuzzed tokenizer on a fixed text. A model
// the validation lets through must run without a crash or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = altup::GgufFile::parse(std::vector<uint8_t>(data, data + size));
  if (!f) return 0;
  altup::SessionOptions opt;
  opt.ctx = 8;  // the model's own context length is validated, but not allocated here
  opt.threads = 1;
  auto s = altup::Session::open(std::move(*f), opt);
  if (!s) return 0;
  altup::Session& sess = **s;
  const auto ids = sess.tokenizer().encode("ab c \xc3\xa9\n", true);
  (void)sess.tokenizer().decode(ids);
  const int32_t V = static_cast<int32_t>(sess.model().vocab_size());
  if (sess.eval({0, V - 1}, /*all_logits=*/true)) (void)sess.eval({V / 2});
  return 0;
}
