// `altup eval`: fp32 logits for every position of a prompt or of a list of token ids, written
// as a NumPy .npy file [T, V] with the ids beside it, so a conversion can be checked against
// the framework it came from. Works for every architecture the runtime loads.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/options.h"
#include "cli/util.h"
#include "engine/session.h"

namespace altup::cli {
namespace {

// Token ids separated by spaces, commas or newlines; anything else is an error naming it.
bool read_token_file(const std::string& path, std::vector<int32_t>* ids, std::string* why) {
  std::string text;
  if (!read_file(path, &text, why)) return false;
  size_t k = 0;
  while (k < text.size()) {
    const char c = text[k];
    if (c == ' ' || c == ',' || c == '\n' || c == '\r' || c == '\t') {
      ++k;
      continue;
    }
    const size_t start = k;
    if (c == '-') ++k;
    long long v = 0;
    while (k < text.size() && text[k] >= '0' && text[k] <= '9' && v < (1ll << 40)) v = v * 10 + (text[k++] - '0');
    const bool separated =
        k == text.size() || text[k] == ' ' || text[k] == ',' || text[k] == '\n' || text[k] == '\r' || text[k] == '\t';
    if (k == start + (c == '-') || !separated) {
      const size_t end = std::min(text.find_first_of(" ,\r\n\t", start), start + 20);
      *why = path + ": '" + text.substr(start, end - start) + "' at byte " + std::to_string(start) +
             " is not a token id (ids are integers separated by spaces, commas or newlines)";
      return false;
    }
    v = c == '-' ? -v : v;
    ids->push_back(static_cast<int32_t>(std::max<long long>(std::min<long long>(v, INT32_MAX), INT32_MIN)));
  }
  if (ids->empty()) {
    *why = path + " holds no token ids";
    return false;
  }
  return true;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  std::string prompt, tokens_file, logits_out, tokens_out;
  ModelOptions opening;
  bool have_prompt = false, have_tokens = false;
  CommandSpec spec{
      "eval",
      "[-m MODEL.gguf] (-p TEXT | --tokens FILE) --logits-out F.npy [options]",
      "Evaluates a prompt, or a list of token ids, and writes the fp32 logits of every\n"
      "position as a NumPy .npy file [T, vocabulary], and the token ids [T] (int32) beside\n"
      "it: for checking a conversion against the framework it came from. A prompt is\n"
      "tokenized with the model's BOS rule; ids from FILE are used as given (no BOS added).",
      {
          text("-p", "--prompt", &prompt, "TEXT", "text to evaluate"),
          text(nullptr, "--tokens", &tokens_file, "FILE",
               "token ids to evaluate, separated by spaces, commas or\nnewlines"),
          text(nullptr, "--logits-out", &logits_out, "F.npy", "where the logits go (written whole or not at all)"),
          text(nullptr, "--tokens-out", &tokens_out, "F.npy",
               "where the token ids go (default: the logits' name with\n.npy replaced by .tokens.npy)"),
      },
      "Exit status: 0 on success, 1 if the model, the ids or the output files are refused (one\n"
      "line on stderr says why; no output file is left), 2 for bad usage."};
  spec.options[0].given = &have_prompt;
  spec.options[1].given = &have_tokens;
  opening.add_to(spec.options, "context length (default: the number of tokens)");
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (opening.missing("eval")) return 2;
  const std::string& model = opening.model;
  if (have_prompt == have_tokens) {
    std::fprintf(stderr, "altup eval: give either -p TEXT or --tokens FILE (see 'altup eval --help')\n");
    return 2;
  }
  if (logits_out.empty()) {
    std::fprintf(stderr, "altup eval: --logits-out F.npy is required (see 'altup eval --help')\n");
    return 2;
  }
  if (tokens_out.empty()) {
    const bool npy = logits_out.size() > 4 && logits_out.compare(logits_out.size() - 4, 4, ".npy") == 0;
    tokens_out = (npy ? logits_out.substr(0, logits_out.size() - 4) : logits_out) + ".tokens.npy";
  }
  if (tokens_out == logits_out) {
    std::fprintf(stderr, "altup eval: --tokens-out and --logits-out name the same file\n");
    return 2;
  }
  const std::shared_ptr<const LoadedModel> loaded = opening.load("eval");
  if (!loaded) return 1;
  std::vector<int32_t> ids;
  std::string why;
  if (have_tokens) {
    if (!read_token_file(tokens_file, &ids, &why)) {
      std::fprintf(stderr, "altup eval: error: %s\n", why.c_str());
      return 1;
    }
  } else {
    ids = loaded->tokenizer.encode(prompt, loaded->tokenizer.add_bos());
    if (ids.empty()) {
      std::fprintf(stderr, "altup eval: error: the prompt has no tokens\n");
      return 1;
    }
  }
  const int64_t T = static_cast<int64_t>(ids.size()), V = loaded->model->vocab_size();
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= V) {
      std::fprintf(stderr, "altup eval: error: token %d at position %lld is outside the vocabulary [0, %lld)\n", ids[t],
                   static_cast<long long>(t), static_cast<long long>(V));
      return 1;
    }
  const std::unique_ptr<Session> session = opening.open("eval", loaded, opening.ctx > 0 ? opening.ctx : T);
  if (!session) return 1;
  if (T > session->ctx()) {
    std::fprintf(stderr, "altup eval: error: %lld tokens do not fit the context of %lld (%s)\n",
                 static_cast<long long>(T), static_cast<long long>(session->ctx()), context_hint(*session).c_str());
    return 1;
  }
  // Chunk by chunk straight into the file: memory stays at one chunk's logits however long.
  AtomicFile logits_file, ids_file;
  const std::string header = npy_header("<f4", {T, V});
  const std::vector<Input> inputs = {{model, "the model file"}, {tokens_file, "the token file"}};
  if (!logits_file.open(logits_out, inputs, &why) || !logits_file.write(header.data(), header.size(), &why)) {
    std::fprintf(stderr, "altup eval: error: --logits-out: %s\n", why.c_str());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t t = 0; t < T; t += kPrefillChunk) {
    const int64_t n = std::min(kPrefillChunk, T - t);
    auto l = session->eval(std::vector<int32_t>(ids.begin() + t, ids.begin() + t + n), /*all_logits=*/true);
    if (!l) {
      std::fprintf(stderr, "altup eval: error: %s\n", l.error().message.c_str());
      return 1;
    }
    if (!logits_file.write(*l, static_cast<size_t>(n * V) * sizeof(float), &why)) {
      std::fprintf(stderr, "altup eval: error: --logits-out: %s\n", why.c_str());
      return 1;
    }
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string ids_header = npy_header("<i4", {T});
  if (!ids_file.open(tokens_out, inputs, &why) || !ids_file.write(ids_header.data(), ids_header.size(), &why) ||
      !ids_file.write(ids.data(), ids.size() * sizeof(int32_t), &why) || !logits_file.commit(&why) ||
      !ids_file.commit(&why)) {
    std::fprintf(stderr, "altup eval: error: %s\n", why.c_str());
    return 1;
  }
  std::fprintf(stderr, "altup eval: %lld positions x %lld logits -> %s, ids -> %s (%.1f tok/s, %d threads)\n",
               static_cast<long long>(T), static_cast<long long>(V), logits_out.c_str(), tokens_out.c_str(), T / sec,
               session->threads());
  return 0;
}

}  // namespace altup::cli
