#include "models/submodel.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>

namespace altup {

namespace {
// Every refusal here is of the caller's choice, not of the file.
Error choice_error(std::string message) { return make_error(std::move(message), ErrorKind::BadChoice); }

const char* const kTable =
#include "models/data/gemma3n_submodels.inc"
    ;

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A non-negative decimal integer, all of `s`.
bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::strtoll(s.c_str(), nullptr, 10);
  return true;
}

// "0-3,7" without a limit, for the compiled-in table (checked against the file later).
std::vector<int64_t> table_list(const std::string& text) {
  if (text == "-") return {};
  auto v = parse_index_list(text, int64_t{1} << 30, "table");
  return v ? *v : std::vector<int64_t>{};
}
}  // namespace

std::string SubmodelChoice::describe() const {
  if (!name.empty()) return name;
  std::string s;
  if (!skip_layers.empty()) s += "skip layers " + skip_layers;
  if (!ffn_widths.empty()) s += (s.empty() ? "" : ", ") + std::string("FFN widths ") + ffn_widths;
  return s.empty() ? "the whole model" : s;
}

const std::vector<PublishedSubmodel>& published_submodels() {
  static const std::vector<PublishedSubmodel> table = [] {
    std::vector<PublishedSubmodel> t;
    std::istringstream in(kTable);
    for (std::string line; std::getline(in, line);) {
      line = trim(line);
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      PublishedSubmodel p;
      std::string layers, skip, full;
      fields >> p.name >> layers >> skip >> full >> p.source_score;
      parse_int(layers, &p.file_layers);
      p.skip = table_list(skip);
      p.full_width = table_list(full);
      t.push_back(std::move(p));
    }
    return t;
  }();
  return table;
}

const PublishedSubmodel* find_published(const std::string& name) {
  for (const PublishedSubmodel& p : published_submodels())
    if (p.name == name) return &p;
  return nullptr;
}

Result<std::vector<int64_t>> parse_index_list(const std::string& text, int64_t limit, const char* what) {
  std::set<int64_t> out;
  if (!text.empty() && text.back() == ',')  // getline yields no empty last item
    return choice_error(std::string(what) + ": '' is not a layer index or a range A-B (A <= B) in '" + text + "'");
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item = trim(item);
    const size_t dash = item.find('-');
    int64_t a = 0, b = 0;
    const bool ok = dash == std::string::npos
                        ? parse_int(item, &a) && (b = a, true)
                        : parse_int(trim(item.substr(0, dash)), &a) && parse_int(trim(item.substr(dash + 1)), &b);
    if (!ok || a > b)
      return choice_error(std::string(what) + ": '" + item + "' is not a layer index or a range A-B (A <= B) in '" +
                          text + "'");
    if (b >= limit)
      return choice_error(std::string(what) + ": layer " + std::to_string(b) +
                          " is out of range: the model has layers 0.." + std::to_string(limit - 1));
    for (int64_t i = a; i <= b; ++i) out.insert(i);
  }
  if (out.empty()) return choice_error(std::string(what) + ": no layer index in '" + text + "'");
  return std::vector<int64_t>(out.begin(), out.end());
}

Result<std::vector<int64_t>> parse_width_list(const std::string& text) {
  std::vector<int64_t> out;
  if (!text.empty() && text.back() == ',')
    return choice_error("--ffn-widths: '' is not a positive width in '" + text + "'");
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item = trim(item);
    int64_t w = 0;
    if (!parse_int(item, &w) || w < 1)
      return choice_error("--ffn-widths: '" + item + "' is not a positive width in '" + text + "'");
    out.push_back(w);
  }
  if (out.empty()) return choice_error("--ffn-widths: no width in '" + text + "'");
  return out;
}

Result<DecoderSpec> select_submodel(const DecoderSpec& full, const SubmodelChoice& choice) {
  const int64_t L = full.size();
  std::vector<int64_t> skip, widths;  // widths: per kept layer, filled below
  bool half_default = false;
  std::vector<int64_t> full_kept;  // a published configuration's whole-width kept layers
  if (!choice.name.empty()) {
    if (!choice.skip_layers.empty() || !choice.ffn_widths.empty())
      return choice_error("--submodel names a whole configuration: give it alone, or --skip-layers / --ffn-widths");
    const PublishedSubmodel* p = find_published(choice.name);
    if (!p) {
      std::string names;
      for (const PublishedSubmodel& q : published_submodels()) names += (names.empty() ? "" : ", ") + q.name;
      return choice_error("--submodel: unknown configuration '" + choice.name + "' (known: " + names + ")");
    }
    if (p->file_layers != L)
      return choice_error("--submodel " + p->name + " is defined for a " + std::to_string(p->file_layers) +
                          "-layer model (Gemma 3n E4B); this one has " + std::to_string(L) +
                          " layers: choose with --skip-layers / --ffn-widths instead");
    skip = p->skip;
    full_kept = p->full_width;
    half_default = true;
  } else if (!choice.skip_layers.empty()) {
    auto s = parse_index_list(choice.skip_layers, L, "--skip-layers");
    if (!s) return s.error();
    skip = std::move(*s);
  }

  // Producers: the layers whose caches shared-cache layers read. Leaving one out would leave
  // its readers without K / V.
  std::vector<bool> skipped(static_cast<size_t>(L), false);
  for (int64_t s : skip) skipped[static_cast<size_t>(s)] = true;
  for (int64_t i = 0; i < L; ++i) {
    if (!skipped[static_cast<size_t>(i)]) continue;
    for (int64_t j = i + 1; j < L; ++j)
      if (full[j].attention == AttentionKind::shared_cache && full[j].kv_source == i)
        return choice_error("layer " + std::to_string(i) +
                            " cannot be skipped: it computes the K / V cache that layer " + std::to_string(j) +
                            " and the other shared-cache layers of its kind read");
  }

  DecoderSpec sub;
  sub.file_layers = full.file_layers;
  std::vector<int64_t> new_index(static_cast<size_t>(L), -1);
  for (int64_t i = 0; i < L; ++i) {
    if (skipped[static_cast<size_t>(i)]) continue;
    new_index[static_cast<size_t>(i)] = sub.size();
    LayerSpec s = full[i];
    if (s.attention == AttentionKind::shared_cache)
      s.kv_source = static_cast<int>(new_index[static_cast<size_t>(s.kv_source)]);
    sub.layers.push_back(s);
  }
  const int64_t kept = sub.size();
  if (kept == 0) return choice_error("--skip-layers leaves no layer");

  if (half_default) {
    for (int64_t k : full_kept)
      if (k >= kept)
        return choice_error("--submodel " + choice.name + " widens kept layer " + std::to_string(k) + " of " +
                            std::to_string(kept));
    for (int64_t i = 0; i < kept; ++i) {
      const bool whole = std::find(full_kept.begin(), full_kept.end(), i) != full_kept.end();
      widths.push_back(whole ? sub[i].ffn_in_file : sub[i].ffn_in_file / 2);
    }
  } else if (!choice.ffn_widths.empty()) {
    auto w = parse_width_list(choice.ffn_widths);
    if (!w) return w.error();
    if (w->size() != 1 && static_cast<int64_t>(w->size()) != kept)
      return choice_error("--ffn-widths has " + std::to_string(w->size()) + " widths for " + std::to_string(kept) +
                          " kept layers: give one per kept layer, in order, or one for all");
    for (int64_t i = 0; i < kept; ++i) widths.push_back((*w)[w->size() == 1 ? 0 : static_cast<size_t>(i)]);
  }
  for (int64_t i = 0; i < static_cast<int64_t>(widths.size()); ++i) {
    LayerSpec& s = sub.layers[static_cast<size_t>(i)];
    if (widths[static_cast<size_t>(i)] > s.ffn_in_file)
      return choice_error("--ffn-widths: kept layer " + std::to_string(i) + " (file layer " +
                          std::to_string(s.weights) + ") stores " + std::to_string(s.ffn_in_file) + " FFN units; " +
                          std::to_string(widths[static_cast<size_t>(i)]) + " is more");
    s.ffn = widths[static_cast<size_t>(i)];
  }
  ALTUP_TRY(sub.check());
  return sub;
}

}  // namespace altup
