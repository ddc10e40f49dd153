// `altup perplexity`: perplexity of a text, and the KL divergence of a model's predictions
// from a reference model's, scored as llama.cpp's llama-perplexity scores them so the two
// tools' figures compare on the same file and text:
//   - the text is tokenized whole (with BOS where the vocabulary adds one) and cut into
//     chunks of N tokens (--ctx); each chunk is evaluated from an empty cache, its first token
//     replaced by BOS where the vocabulary adds one;
//   - only the second half of each chunk is scored: the logits at positions N/2 .. N-2
//     predict the tokens at N/2 + 1 .. N-1, so every scored token has at least N/2 of context.
// PPL = exp(mean NLL), +/- PPL x the standard error of the mean NLL.
// --kl-divergence-base F saves the reference model's log-probabilities of every scored
// position (and the tokens); --kl-divergence reads them back and compares another model
// (a quantized one, say) on the same tokens: mean KLD(reference || model), top-1 agreement,
// and the ratio of the two perplexities.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/options.h"
#include "cli/util.h"
#include "engine/session.h"

namespace altup::cli {
namespace {

// Base file: "ALTUPKL1", then int64 n_ctx, n_vocab, n_chunks, then n_chunks x n_ctx int32
// token ids (as evaluated, BOS substituted), then for every chunk and every scored position
// (n_ctx - 1 - n_ctx / 2 of them) n_vocab float32 log-probabilities.
constexpr char kMagic[8] = {'A', 'L', 'T', 'U', 'P', 'K', 'L', '1'};

// log-softmax of one row, in double for the sums: out[i] = x[i] - max - log(sum exp(x - max)).
void log_softmax(const float* x, int64_t V, std::vector<float>* out) {
  float mx = x[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, x[i]);
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(static_cast<double>(x[i]) - mx);
  const double lse = mx + std::log(s);
  out->resize(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) (*out)[i] = static_cast<float>(static_cast<double>(x[i]) - lse);
}

struct Mean {  // running mean and standard error
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double v) {
    sum += v;
    sum2 += v * v;
    ++n;
  }
  double mean() const { return n ? sum / static_cast<double>(n) : 0; }
  double stderr_of_mean() const {
    if (n < 2) return 0;
    const double m = mean(), var = sum2 / static_cast<double>(n) - m * m;
    return var > 0 ? std::sqrt(var / static_cast<double>(n - 1)) : 0;
  }
};

// The reference file of --kl-divergence: header checked against the model and its length.
struct BaseFile {
  std::ifstream in;
  int64_t n_ctx = 0, n_vocab = 0, n_chunks = 0;
  std::vector<int32_t> tokens;

  bool open(const std::string& path, int64_t model_vocab, std::string* why) {
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      return fail(why, path + " is not a regular file (a base file is read twice: once for its size)");
    in.open(path, std::ios::binary);
    if (!in) return fail(why, "cannot read " + path);
    char magic[8];
    int64_t h[3];
    in.read(magic, 8);
    in.read(reinterpret_cast<char*>(h), sizeof h);
    if (!in || std::memcmp(magic, kMagic, 8) != 0)
      return fail(why, path + " is not a file written by 'altup perplexity --kl-divergence-base'");
    n_ctx = h[0], n_vocab = h[1], n_chunks = h[2];
    if (n_ctx < 4 || n_ctx > kMaxContextOption || n_vocab < 1 || n_vocab > (int64_t{1} << 31) || n_chunks < 1 ||
        n_chunks > (int64_t{1} << 31))
      return fail(why, path + ": implausible header (ctx " + std::to_string(n_ctx) + ", vocabulary " +
                           std::to_string(n_vocab) + ", chunks " + std::to_string(n_chunks) + ")");
    if (n_vocab != model_vocab)
      return fail(why, path + " holds a vocabulary of " + std::to_string(n_vocab) + ", the model has " +
                           std::to_string(model_vocab));
    // Expected size, with overflow checks (the header is untrusted).
    const uint64_t scored = static_cast<uint64_t>(n_ctx - 1 - n_ctx / 2);
    uint64_t ntok, rows, vals, bytes, total;
    if (mul_overflows(static_cast<uint64_t>(n_chunks), static_cast<uint64_t>(n_ctx), &ntok) ||
        mul_overflows(static_cast<uint64_t>(n_chunks), scored, &rows) ||
        mul_overflows(rows, static_cast<uint64_t>(n_vocab), &vals) || mul_overflows(vals, 4, &bytes) ||
        add_overflows(bytes, 8 + sizeof h + ntok * 4, &total))
      return fail(why, path + ": sizes in the header overflow");
    in.seekg(0, std::ios::end);
    const auto size = static_cast<uint64_t>(in.tellg());
    if (size != total)
      return fail(why, path + " is " + std::to_string(size) + " bytes; its header says " + std::to_string(total) +
                           " (truncated or not this format)");
    in.seekg(static_cast<std::streamoff>(8 + sizeof h));
    tokens.resize(ntok);
    in.read(reinterpret_cast<char*>(tokens.data()), static_cast<std::streamsize>(ntok * 4));
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] < 0 || tokens[i] >= n_vocab)
        return fail(why, path + ": token " + std::to_string(tokens[i]) + " at " + std::to_string(i) +
                             " is outside the vocabulary");
    return static_cast<bool>(in) || fail(why, "cannot read " + path);
  }
  bool next_row(std::vector<float>* row, std::string* why) {
    row->resize(static_cast<size_t>(n_vocab));
    in.read(reinterpret_cast<char*>(row->data()), n_vocab * 4);
    return static_cast<bool>(in) || fail(why, "the base file ended early");
  }
  static bool fail(std::string* why, const std::string& msg) {
    *why = msg;
    return false;
  }
};

// One line rewritten in place on a terminal; a line per chunk in a log.
void progress(int64_t done, int64_t total, double sec, double ppl) {
  static const bool tty = isatty(2);
  const double eta = done ? sec / static_cast<double>(done) * static_cast<double>(total - done) : 0;
  std::fprintf(stderr, "%saltup perplexity: chunk %lld/%lld, PPL so far %.4f, %.0f s left%s", tty ? "\r" : "",
               static_cast<long long>(done), static_cast<long long>(total), ppl, eta,
               !tty || done == total ? "\n" : "   ");
  std::fflush(stderr);
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
  std::string text_file, base_file;
  long long max_chunks = 0;
  ModelOptions opening;
  opening.ctx = 512;
  bool kld = false;
  CommandSpec spec{
      "perplexity",
      "[-m MODEL.gguf] -f TEXT [--ctx N] [--chunks N] [--kl-divergence-base F [--kl-divergence]]",
      "Perplexity of a text file, scored as llama.cpp's llama-perplexity does: chunks of N\n"
      "tokens, each from an empty cache with BOS first, the second half of each scored. With\n"
      "--kl-divergence-base F the log-probabilities of every scored position are saved to F;\n"
      "with --kl-divergence as well, the model is compared with the one that wrote F on the\n"
      "same tokens and chunks (taken from F: -f and --ctx are refused): mean KL divergence,\n"
      "top-1 agreement and the ratio of the two perplexities.",
      {
          text("-f", "--file", &text_file, "TEXT", "the text to score (UTF-8)"),
          integer(nullptr, "--chunks", &max_chunks, 1, 1ll << 30, "N", "score at most N chunks (default: all)"),
          text(nullptr, "--kl-divergence-base", &base_file, "F",
               "save the log-probabilities to F (written whole or not at\nall); with --kl-divergence, read them"),
          flag(nullptr, "--kl-divergence", &kld, "compare with the model that wrote --kl-divergence-base"),
      },
      "The last lines name the results: 'PPL = X +/- E', and with --kl-divergence 'Mean KLD'.\n"
      "Exit status: 0 on success, 1 if the model, text or base file is refused (one line on\n"
      "stderr says why; no partial base file is left), 2 for bad usage."};
  opening.add_to(spec.options, "tokens per chunk (default 512)", 4);
  bool ctx_given = false;
  for (Option& o : spec.options)
    if (std::string(o.long_name) == "--ctx") o.given = &ctx_given;
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (kld && (ctx_given || !text_file.empty())) {
    std::fprintf(stderr,
                 "altup perplexity: --kl-divergence scores the tokens and chunks the base file holds; "
                 "-f and --ctx cannot be given with it\n");
    return 2;
  }
  if (opening.missing("perplexity")) return 2;
  const std::string& model = opening.model;
  if (kld && base_file.empty()) {
    std::fprintf(stderr, "altup perplexity: --kl-divergence needs --kl-divergence-base F\n");
    return 2;
  }
  if (!kld && text_file.empty()) {
    std::fprintf(stderr, "altup perplexity: -f TEXT is required (see 'altup perplexity --help')\n");
    return 2;
  }
  const std::shared_ptr<const LoadedModel> loaded = opening.load("perplexity");
  if (!loaded) return 1;
  const int64_t V = loaded->model->vocab_size();
  std::string why;
  BaseFile base;
  std::vector<int32_t> tokens;
  int64_t n_ctx = opening.ctx, n_chunks = 0;
  if (kld) {
    if (!base.open(base_file, V, &why)) {
      std::fprintf(stderr, "altup perplexity: error: %s\n", why.c_str());
      return 1;
    }
    n_ctx = base.n_ctx;
    n_chunks = base.n_chunks;
    if (max_chunks > 0) n_chunks = std::min<int64_t>(n_chunks, max_chunks);
    tokens = base.tokens;
  } else {
    std::string text;
    if (!read_file(text_file, &text, &why)) {
      std::fprintf(stderr, "altup perplexity: error: %s\n", why.c_str());
      return 1;
    }
    tokens = loaded->tokenizer.encode(text, loaded->tokenizer.add_bos());
    if (static_cast<int64_t>(tokens.size()) < 2 * n_ctx) {
      std::fprintf(stderr,
                   "altup perplexity: error: %s has %zu tokens; a context of %lld needs at least %lld (two chunks,\n"
                   "as llama-perplexity asks): give a longer text or a smaller --ctx\n",
                   text_file.c_str(), tokens.size(), opening.ctx, 2 * opening.ctx);
      return 1;
    }
    n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
    if (max_chunks > 0) n_chunks = std::min<int64_t>(n_chunks, max_chunks);
    const bool bos = loaded->tokenizer.add_bos();
    for (int64_t c = 0; c < n_chunks && bos; ++c) tokens[c * n_ctx] = loaded->tokenizer.bos();
    tokens.resize(static_cast<size_t>(n_chunks * n_ctx));
  }
  const std::unique_ptr<Session> session = opening.open("perplexity", loaded, n_ctx);
  if (!session) return 1;
  AtomicFile out;
  const bool save = !base_file.empty() && !kld;
  if (save) {
    const int64_t h[3] = {n_ctx, V, n_chunks};
    if (!out.open(base_file, {{model, "the model file"}, {text_file, "the text file"}}, &why) ||
        !out.write(kMagic, 8, &why) || !out.write(h, sizeof h, &why) ||
        !out.write(tokens.data(), tokens.size() * 4, &why)) {
      std::fprintf(stderr, "altup perplexity: error: --kl-divergence-base: %s\n", why.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "altup perplexity: %lld chunks of %lld tokens, %lld positions scored per chunk, %d threads\n",
               static_cast<long long>(n_chunks), static_cast<long long>(n_ctx),
               static_cast<long long>(n_ctx - 1 - n_ctx / 2), session->threads());
  Mean nll, base_nll, kl, top1;
  std::vector<float> lp, blp;
  const int64_t first = n_ctx / 2;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < n_chunks; ++c) {
    session->reset();
    const auto begin = tokens.begin() + c * n_ctx;
    auto logits = session->eval(std::vector<int32_t>(begin, begin + n_ctx), /*all_logits=*/true);
    if (!logits) {
      std::fprintf(stderr, "\naltup perplexity: error: %s\n", logits.error().message.c_str());
      return 1;
    }
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const int32_t next = begin[j + 1];
      log_softmax(*logits + j * V, V, &lp);
      nll.add(-static_cast<double>(lp[next]));
      if (save && !out.write(lp.data(), lp.size() * 4, &why)) {
        std::fprintf(stderr, "\naltup perplexity: error: --kl-divergence-base: %s\n", why.c_str());
        return 1;
      }
      if (kld) {
        if (!base.next_row(&blp, &why)) {
          std::fprintf(stderr, "\naltup perplexity: error: %s\n", why.c_str());
          return 1;
        }
        base_nll.add(-static_cast<double>(blp[next]));
        double d = 0;  // KL(base || model) = sum p_base (log p_base - log p_model)
        for (int64_t i = 0; i < V; ++i)
          if (blp[i] > -80.0f) d += std::exp(static_cast<double>(blp[i])) * (static_cast<double>(blp[i]) - lp[i]);
        kl.add(d);
        const auto top = [&](const std::vector<float>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); };
        top1.add(top(lp) == top(blp) ? 1.0 : 0.0);
      }
    }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress(c + 1, n_chunks, sec, std::exp(nll.mean()));
  }
  if (save && !out.commit(&why)) {
    std::fprintf(stderr, "altup perplexity: error: --kl-divergence-base: %s\n", why.c_str());
    return 1;
  }
  const double ppl = std::exp(nll.mean());
  std::printf("chunks: %lld x %lld tokens, %lld positions scored\n", static_cast<long long>(n_chunks),
              static_cast<long long>(n_ctx), static_cast<long long>(nll.n));
  if (kld) {
    const double bppl = std::exp(base_nll.mean());
    std::printf("PPL(base)  = %.4f +/- %.5f\n", bppl, bppl * base_nll.stderr_of_mean());
    std::printf("PPL ratio  = %.6f\n", ppl / bppl);
    std::printf("Same top-1 = %.3f +/- %.3f %%\n", 100 * top1.mean(), 100 * top1.stderr_of_mean());
    std::printf("Mean KLD   = %.6f +/- %.6f\n", kl.mean(), kl.stderr_of_mean());
  }
  std::printf("PPL = %.4f +/- %.5f\n", ppl, ppl * nll.stderr_of_mean());
  return 0;
}

}  // namespace altup::cli
