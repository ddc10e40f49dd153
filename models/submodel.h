// MatFormer sub-models chosen at load (docs/matformer.md). A model trained with nested FFNs
// (MatFormer; Gemma 3n E4B holds E2B and the sizes between) runs as a smaller model when some
// layers are left out and each kept layer uses only the first m of its FFN's hidden units.
// The choice arrives as text (the CLI's --submodel / --skip-layers / --ffn-widths, the C
// API's and Python's strings alike) and becomes a DecoderSpec: the rules of the selection
// are here once, written for any file (first shared layer, producers and widths come from
// the file's own spec, never from E4B's numbers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/spec.h"
#include "runtime/error.h"

namespace altup {

struct SubmodelChoice {
  std::string name;         // a published configuration (published_submodels()), or empty
  std::string skip_layers;  // "20-24,30": the file's layer indices, ranges allowed
  std::string ffn_widths;   // one width per kept layer in order ("8192,16384,..."), or one for all
  bool empty() const { return name.empty() && skip_layers.empty() && ffn_widths.empty(); }
  // "E2B" / "skip 20-24, widths 8192": for messages and `altup info`.
  std::string describe() const;
};

// One published configuration: which file layers are left out, and which kept layers (by
// their index after the skip) keep their whole width; every other kept layer uses half.
struct PublishedSubmodel {
  std::string name;
  int64_t file_layers = 0;          // the layer count the configuration is defined for
  std::vector<int64_t> skip;        // file layer indices
  std::vector<int64_t> full_width;  // kept indices at the file's width
  std::string source_score;         // the publisher's benchmark score, as a label
};

// Google's Gemma 3n slicing table (models/data/gemma3n_submodels.txt, parsed once).
const std::vector<PublishedSubmodel>& published_submodels();
const PublishedSubmodel* find_published(const std::string& name);

// "20-24,3" -> {3, 20, 21, 22, 23, 24} (sorted, distinct); every index in [0, limit).
Result<std::vector<int64_t>> parse_index_list(const std::string& text, int64_t limit, const char* what);
// "8192,16384" -> {8192, 16384}; every width >= 1.
Result<std::vector<int64_t>> parse_width_list(const std::string& text);

// The sub-model of `full` (a spec of every file layer, in file order, each at its stored
// width) that `choice` names. Refused, one line each: an unknown name, a configuration for
// another layer count, a skip of a layer whose K / V cache later layers read (a producer), an
// index out of range, every layer skipped, a width list of the wrong length, a width above a
// layer's stored width or below 1. Shared-cache layers keep reading their producer (its new
// index); windows, RoPE bases and sparsity travel with their layer.
Result<DecoderSpec> select_submodel(const DecoderSpec& full, const SubmodelChoice& choice);

}  // namespace altup
