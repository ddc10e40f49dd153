#include "cli/model_options.h"

#include <cstdio>

namespace altup::cli {

void ModelOptions::add_to(std::vector<Option>& o, const char* ctx_help, long long ctx_min, const char* model_help) {
  static const std::string default_help = std::string("GGUF model (default: the shipped demo model,\n") +
                                          (ALTUP_DEFAULT_MODEL[0] ? ALTUP_DEFAULT_MODEL : "none built in") + ")";
  std::vector<Option> group = {
      text("-m", "--model", &model, "FILE", model_help ? model_help : default_help.c_str()),
      integer("-t", "--threads", &threads, 1, 1024, "N", "threads (default: every available core)"),
  };
  if (ctx_help) group.push_back(integer("-c", "--ctx", &ctx, ctx_min, kMaxContextOption, "N", ctx_help));
  o.insert(o.begin(), group.begin(), group.end());  // first in every command's help
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
  return opt;
}

std::shared_ptr<const LoadedModel> ModelOptions::load(const char* command) const {
  auto loaded = LoadedModel::load(model);
  if (loaded) return *loaded;
  std::fprintf(stderr, "altup %s: error: %s: %s\n", command, model.c_str(), loaded.error().message.c_str());
  return nullptr;
}

std::unique_ptr<Session> ModelOptions::open(const char* command, int64_t context) const {
  auto session = Session::open(model, session_options(context));
  if (session) return std::move(*session);
  std::fprintf(stderr, "altup %s: error: %s: %s\n", command, model.c_str(), session.error().message.c_str());
  return nullptr;
}

std::unique_ptr<Session> ModelOptions::open(const char* command, std::shared_ptr<const LoadedModel> loaded,
                                            int64_t context) const {
  auto session = Session::create(std::move(loaded), session_options(context));
  if (session) return std::move(*session);
  std::fprintf(stderr, "altup %s: error: %s: %s\n", command, model.c_str(), session.error().message.c_str());
  return nullptr;
}

}  // namespace altup::cli
