#include "cli/model_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

// The shipped demo model and the folder the program is built in (set by cli/meson.build).
#ifndef ALTUP_DEFAULT_MODEL
#define ALTUP_DEFAULT_MODEL ""
#endif
#ifndef ALTUP_BUILD_DIR
#define ALTUP_BUILD_DIR ""
#endif

namespace altup::cli {

const std::string& default_model() {
  static const std::string model = [] {
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !*ALTUP_BUILD_DIR) return std::string();
    const std::string path(exe, static_cast<size_t>(n));
    const std::string dir = path.substr(0, path.find_last_of('/'));
    struct stat a {
    }, b{};
    const bool in_build =
        stat(dir.c_str(), &a) == 0 && stat(ALTUP_BUILD_DIR, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    return in_build ? std::string(ALTUP_DEFAULT_MODEL) : std::string();
  }();
  return model;
}

void ModelOptions::add_to(std::vector<Option>& o, const char* ctx_help, long long ctx_min, const char* model_help) {
  static const std::string default_help = std::string("GGUF model (default: the shipped demo model,\n") +
                                          (default_model().empty() ? "none for an installed altup" : default_model()) +
                                          ")";
  std::vector<Option> group = {
      text("-m", "--model", &model, "FILE", model_help ? model_help : default_help.c_str()),
      integer("-t", "--threads", &threads, 1, 1024, "N", "threads (default: every available core)"),
  };
  if (ctx_help) group.push_back(integer("-c", "--ctx", &ctx, ctx_min, kMaxContextOption, "N", ctx_help));
  for (const Option& s : submodel_options(submodel)) group.push_back(s);
  o.insert(o.begin(), group.begin(), group.end());  // first in every command's help
}

std::vector<Option> submodel_options(SubmodelChoice& choice) {
  return {
      text(nullptr, "--submodel", &choice.name, "NAME",
           "run a published MatFormer sub-model of the file, e.g. E2B\n"
           "or E2.98B-block of Gemma 3n E4B (`altup info -m FILE`\nlists them; docs/matformer.md)"),
      text(nullptr, "--skip-layers", &choice.skip_layers, "LIST",
           "leave out these layers (file indices; ranges: 20-24)"),
      text(nullptr, "--ffn-widths", &choice.ffn_widths, "LIST",
           "FFN width of each kept layer in order, or one for all\n"
           "(a prefix of the stored width: MatFormer)"),
  };
}

bool ModelOptions::missing(const char* command) const {
  if (!model.empty()) return false;
  std::fprintf(stderr, "altup %s: no model: pass -m MODEL.gguf\n", command);
  return true;
}

SessionOptions ModelOptions::session_options(int64_t context) const {
  SessionOptions opt;
  opt.threads = static_cast<int>(threads);
  opt.ctx = context;
  opt.tune_decode_threads = tune_decode_threads;
  return opt;
}

std::shared_ptr<const LoadedModel> ModelOptions::load(const char* command) const {
  auto loaded = LoadedModel::load(model, submodel);
  if (loaded) return *loaded;
  std::fprintf(stderr, "altup %s: error: %s: %s\n", command, model.c_str(), loaded.error().message.c_str());
  return nullptr;
}

namespace {
void warn_long_context(const char* command, const Session& s) {
  if (s.ctx() > s.model().context_length())
    std::fprintf(stderr,
                 "altup %s: warning: a context of %lld tokens is longer than the %lld the model was trained for; "
                 "what it predicts past that is not what it learned\n",
                 command, static_cast<long long>(s.ctx()), static_cast<long long>(s.model().context_length()));
}
}  // namespace

std::string context_hint(const Session& s) {
  return "--ctx gives more; the model was trained for " + std::to_string(s.model().context_length());
}

std::unique_ptr<Session> ModelOptions::open(const char* command, int64_t context) const {
  std::shared_ptr<const LoadedModel> loaded = load(command);
  return loaded ? open(command, std::move(loaded), context) : nullptr;
}

std::unique_ptr<Session> ModelOptions::open(const char* command, std::shared_ptr<const LoadedModel> loaded,
                                            int64_t context) const {
  auto session = Session::create(std::move(loaded), session_options(context));
  if (session) {
    warn_long_context(command, **session);
    return std::move(*session);
  }
  std::fprintf(stderr, "altup %s: error: %s: %s\n", command, model.c_str(), session.error().message.c_str());
  return nullptr;
}

}  // namespace altup::cli
