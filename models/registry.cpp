// GGUF architecture name -> model. The one place that knows every architecture.
#include <cstring>

#include "models/altup.h"
#include "models/gemma3n.h"
#include "models/stagformer.h"

namespace altup {

namespace {
struct Arch {
  const char* name;
  Result<std::unique_ptr<Model>> (*load)(const GgufFile&, std::string_view, const SubmodelChoice&);
};

Result<std::unique_ptr<Model>> load_altup(const GgufFile& f, std::string_view arch, const SubmodelChoice& choice) {
  auto m = AltUpModel::load(f, arch, choice);
  if (!m) return m.error();
  return std::unique_ptr<Model>(std::move(*m));
}

Result<std::unique_ptr<Model>> load_gemma3n(const GgufFile& f, std::string_view, const SubmodelChoice& choice) {
  auto m = Gemma3nModel::load(f, choice);
  if (!m) return m.error();
  return std::unique_ptr<Model>(std::move(*m));
}

Result<std::unique_ptr<Model>> load_stagformer(const GgufFile& f, std::string_view, const SubmodelChoice& choice) {
  auto m = StagFormerModel::load(f, choice);
  if (!m) return m.error();
  return std::unique_ptr<Model>(std::move(*m));
}

// llama.cpp's "llama" is the dense (K = 1) case of "altup" with adjacent-pair RoPE.
constexpr Arch kArchs[] = {
    {"altup", load_altup}, {"llama", load_altup}, {"gemma3n", load_gemma3n}, {"stagformer", load_stagformer}};
}  // namespace

std::string known_architectures() {
  std::string s;
  for (const Arch& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

Result<std::unique_ptr<Model>> load_model(const GgufFile& file, const SubmodelChoice& choice) {
  const std::string_view arch = file.architecture();
  if (arch.empty()) return make_error("the file has no general.architecture");
  for (const Arch& a : kArchs)
    if (arch == a.name) return a.load(file, arch, choice);
  return make_error("unknown architecture '" + std::string(arch) + "' (this build runs: " + known_architectures() +
                    ")");
}

}  // namespace altup
