// `altup info FILE.gguf`: what is in a GGUF file, for any valid GGUF (ours, the gguf Python
// package's, llama.cpp's converter's). Nothing is computed; the file is only validated and listed.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "api/system_info.h"
#include "cli/options.h"
#include "runtime/gguf.h"
#include "cli/model_options.h"
#include "engine/session.h"
#include "models/decoder.h"
#include "models/stagformer.h"

namespace altup::cli {
namespace {

std::string human_bytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

void print_tokenizer(const GgufFile& f) {
  std::printf("\ntokenizer\n");
  const GgufValue* model = f.find("tokenizer.ggml.model");
  if (!model) {
    std::printf("  (none: no tokenizer.ggml.model key)\n");
    return;
  }
  std::printf("  %-22s %s\n", "model", model->to_string().c_str());
  if (auto* v = f.find("tokenizer.ggml.pre")) std::printf("  %-22s %s\n", "pre-tokenizer", v->to_string().c_str());
  auto count_of = [&](const char* key) -> std::string {
    const GgufValue* v = f.find(key);
    if (!v) return "absent";
    if (v->type != GgufType::ARRAY) return "not an array (" + std::string(gguf_type_name(v->type)) + ")";
    return std::to_string(v->count) + " x " + std::string(gguf_type_name(v->elem_type));
  };
  std::printf("  %-22s %s\n", "tokens", count_of("tokenizer.ggml.tokens").c_str());
  std::printf("  %-22s %s\n", "scores", count_of("tokenizer.ggml.scores").c_str());
  std::printf("  %-22s %s\n", "token types", count_of("tokenizer.ggml.token_type").c_str());
  if (f.find("tokenizer.ggml.merges")) std::printf("  %-22s %s\n", "merges", count_of("tokenizer.ggml.merges").c_str());
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  for (const char* special : {"bos", "eos", "unknown", "padding", "eot"}) {
    const std::string key = std::string("tokenizer.ggml.") + special + "_token_id";
    const GgufValue* v = f.find(key);
    if (!v) continue;
    std::string text = v->to_string();
    if (tokens && tokens->type == GgufType::ARRAY && tokens->elem_type == GgufType::STRING &&
        (v->type == GgufType::U32 || v->type == GgufType::U64) && v->u < tokens->count) {
      GgufValue piece;
      piece.type = GgufType::STRING;
      piece.str = tokens->strings[v->u];
      text += "  " + piece.to_string();
    }
    std::printf("  %-22s %s\n", (std::string(special) + " id").c_str(), text.c_str());
  }
}

}  // namespace

// A model of several stacks (StagFormer): how many, of how many layers, whether they share
// weights, what the cross-attention reads, and how a decode step runs them.
void print_stacks(const Decoder& dec) {
  const DecoderSpec& spec = dec.spec();
  const int stacks = spec.layers.back().stack + 1;
  const int64_t depth = spec.size() / stacks;
  const bool shared = spec.file_layers < spec.size();
  int64_t window = 0;
  for (const LayerSpec& l : spec.layers)
    if (l.cross) window = l.cross_window;
  const std::string reads =
      window > 0 ? "the " + std::to_string(window) + " positions before the token" : "every earlier position";
  std::printf("  %-22s %d of %lld layers each, %s\n", "stacks", stacks, static_cast<long long>(depth),
              shared ? "shared weights (every stack runs the first one's layers)" : "separate weights");
  std::printf("  %-22s each stack after the first, over the previous stack's outputs at %s\n", "cross-attention",
              reads.c_str());
  const auto* stag = dynamic_cast<const StagFormerModel*>(&dec);
  if (stag && stacks > 1)
    std::printf("  %-22s %s\n", "decode step",
                !stag->concurrent() ? "the stacks one after the other"
                : shared            ? "every stack at once, one multi-row pass through each shared weight"
                                    : "every stack at once, each on a group of the threads where that measures faster "
                                      "(else one after the other)");
}

// The published sub-models (models/submodel.h) defined for this file's layer count, each loaded
// as `run` would load it: effective parameters, weights read per decoded token, and the memory
// decoding at a context of ctx tokens keeps.
void print_submodels(const std::string& path, const Model& whole, int64_t ctx) {
  const auto* dec = dynamic_cast<const Decoder*>(&whole);
  if (!dec) return;
  std::vector<const PublishedSubmodel*> fit;
  for (const PublishedSubmodel& p : published_submodels())
    if (p.file_layers == dec->spec().size() && dec->spec().size() == dec->spec().file_layers) fit.push_back(&p);
  if (fit.empty()) return;
  std::printf("\nsub-models (--submodel NAME; Google's Gemma 3n slicing table, docs/matformer.md)\n");
  std::printf("  %-14s %6s %16s %16s %16s %6s\n", "name", "layers", "effective params", "read per token",
              "decoding memory", "MMLU");
  for (const PublishedSubmodel* p : fit) {
    SessionOptions opt;
    opt.ctx = ctx;
    opt.tune_decode_threads = false;
    auto s = Session::open(path, opt, SubmodelChoice{p->name, "", ""});
    if (!s) {
      std::printf("  %-14s refused: %s\n", p->name.c_str(), s.error().message.c_str());
      continue;
    }
    auto m = (*s)->memory_estimate((*s)->ctx());
    const auto* sub = dynamic_cast<const Decoder*>(&(*s)->model());
    std::printf("  %-14s %6lld %16llu %16s %16s %6s\n", p->name.c_str(),
                static_cast<long long>(sub ? sub->spec().size() : 0),
                static_cast<unsigned long long>((*s)->model().effective_parameters()),
                m ? human_bytes(m->weights_per_token).c_str() : "?", m ? human_bytes(m->decoding()).c_str() : "?",
                p->source_score.c_str());
  }
}

int cmd_info(int argc, char** argv) {
  bool no_tensors = false, system = false;
  long long mem_ctx = 0;
  SubmodelChoice submodel;
  std::string model;  // -m FILE, as the other commands take it
  std::vector<std::string> paths;
  CommandSpec spec{"info",
                   "[--no-tensors] [sub-model options] FILE.gguf | --system",
                   "Validates FILE.gguf and prints its format, architecture, hyper-parameters\n"
                   "(the keys under '<architecture>.'), a tokenizer summary, the other metadata,\n"
                   "a table of tensors (name, dtype, shape, bytes) with totals, and a model check:\n"
                   "whether this runtime runs the file, or the one problem that stops it; for a\n"
                   "file it runs, the memory a context takes, by part. For a MatFormer model with\n"
                   "published sub-models (Gemma 3n E4B), a table of them; with --submodel,\n"
                   "--skip-layers or --ffn-widths, the check and memory are the sub-model's.",
                   {text("-m", "--model", &model, "FILE", "the file (the same as giving it as FILE.gguf)"),
                    flag(nullptr, "--no-tensors", &no_tensors, "print the totals but not the per-tensor table"),
                    integer("-c", "--ctx", &mem_ctx, 1, kMaxContextOption, "N",
                            "the context the memory section is for (default: the\nmodel's)"),
                    flag(nullptr, "--system", &system,
                         "describe this machine and build instead: the kernel table in use,\n"
                         "the CPU features seen, oneDNN's version and instruction set, threads")},
                   "Exit status: 0 for a valid GGUF file (even one the model check refuses), 1 if the\n"
                   "file cannot be read or is malformed GGUF, or a sub-model asked for cannot be\n"
                   "made of it (one line on stderr names the problem), 2 for bad usage.",
                   &paths,
                   1};
  // The sub-model options, after -c as in the other commands.
  const std::vector<Option> sub = submodel_options(submodel);
  spec.options.insert(spec.options.begin() + 3, sub.begin(), sub.end());
  if (Parsed p = parse_options(spec, argc, argv); p != Parsed::ok) return exit_status(p);
  if (!model.empty()) paths.insert(paths.begin(), model);
  if (system) {
    if (!paths.empty()) {
      std::fprintf(stderr, "altup info: --system takes no file\n");
      return 2;
    }
    std::fputs(system_info().c_str(), stdout);
    return 0;
  }
  if (paths.empty()) {
    print_usage(spec, stderr);
    return 2;
  }
  const bool tensors_table = !no_tensors;
  const char* path = paths[0].c_str();
  auto file = GgufFile::open(path);
  if (!file) {
    std::fprintf(stderr, "altup info: error: %s: %s\n", path, file.error().message.c_str());
    return 1;
  }
  const GgufFile& f = **file;
  const std::string arch(f.architecture());

  std::printf("%s\n", path);
  std::printf("  %-22s GGUF v%u, alignment %llu, data at offset %llu\n", "format", f.version(),
              static_cast<unsigned long long>(f.alignment()), static_cast<unsigned long long>(f.data_offset()));
  std::printf("  %-22s %llu bytes (%s)\n", "file size", static_cast<unsigned long long>(f.file_size()),
              human_bytes(f.file_size()).c_str());
  std::printf("  %-22s %s\n", "architecture", arch.empty() ? "(not set)" : arch.c_str());
  if (auto* v = f.find("general.name")) std::printf("  %-22s %s\n", "name", v->to_string().c_str());

  const std::string prefix = arch + ".";
  std::printf("\nhyper-parameters (%s*)\n", arch.empty() ? "<architecture>." : prefix.c_str());
  int shown = 0;
  for (const auto& [key, value] : f.metadata())
    if (!arch.empty() && starts_with(key, prefix)) {
      std::printf("  %-44s %s\n", key.c_str(), value.to_string().c_str());
      ++shown;
    }
  if (!shown) std::printf("  (none)\n");

  print_tokenizer(f);

  std::printf("\nother metadata\n");
  shown = 0;
  for (const auto& [key, value] : f.metadata()) {
    if ((!arch.empty() && starts_with(key, prefix)) || starts_with(key, "tokenizer.ggml.")) continue;
    std::printf("  %-44s %s\n", key.c_str(), value.to_string().c_str());
    ++shown;
  }
  if (!shown) std::printf("  (none)\n");

  uint64_t total_bytes = 0, total_params = 0;
  std::map<std::string_view, std::pair<uint64_t, uint64_t>> by_dtype;  // name -> (count, bytes)
  size_t name_w = 4;
  for (const auto& t : f.tensors()) name_w = std::max(name_w, t.name.size());
  std::printf("\ntensors (%zu)\n", f.tensors().size());
  if (tensors_table && !f.tensors().empty())
    std::printf("  %-*s  %-7s  %-24s  %14s\n", static_cast<int>(name_w), "name", "dtype", "shape", "bytes");
  for (const auto& t : f.tensors()) {
    total_bytes += t.nbytes;
    total_params += static_cast<uint64_t>(t.shape.numel());
    auto& agg = by_dtype[dtype_name(t.dtype)];
    agg.first += 1;
    agg.second += t.nbytes;
    if (tensors_table)
      std::printf("  %-*s  %-7s  %-24s  %14llu\n", static_cast<int>(name_w), t.name.c_str(),
                  std::string(dtype_name(t.dtype)).c_str(), t.shape.str().c_str(),
                  static_cast<unsigned long long>(t.nbytes));
  }
  std::printf("\ntotals\n");
  std::printf("  %-22s %zu\n", "tensors", f.tensors().size());
  std::printf("  %-22s %llu\n", "parameters", static_cast<unsigned long long>(total_params));
  std::printf("  %-22s %llu (%s)\n", "tensor bytes", static_cast<unsigned long long>(total_bytes),
              human_bytes(total_bytes).c_str());
  for (const auto& [name, agg] : by_dtype)
    std::printf("  %-22s %llu tensors, %s\n", std::string(name).c_str(), static_cast<unsigned long long>(agg.first),
                human_bytes(agg.second).c_str());

  // Whether this runtime would run it: the same validation `altup run` does, nothing allocated.
  std::printf("\nmodel check\n");
  SessionOptions opt;
  opt.ctx = mem_ctx;
  auto session = Session::open(std::move(*file), opt, submodel);  // the file read above, not a second mapping
  if (!session && !submodel.empty()) {
    std::printf("  refused: %s\n", session.error().message.c_str());
    std::fprintf(stderr, "altup info: error: %s: %s\n", path, session.error().message.c_str());
    return 1;
  }
  if (!session) {
    std::printf("  refused: %s\n", session.error().message.c_str());
  } else {
    const Session& s = **session;
    std::printf("  ok: runs as '%s', vocabulary %lld, context %lld (KV cache %s when full)\n",
                std::string(s.model().arch()).c_str(), static_cast<long long>(s.model().vocab_size()),
                static_cast<long long>(s.ctx()), human_bytes(s.kv_cache_bytes(s.ctx())).c_str());
    const auto* dec = dynamic_cast<const Decoder*>(&s.model());
    if (dec && dec->spec().layers.back().stack > 0) {
      print_stacks(*dec);
    } else if (dec) {
      std::string widths;  // runs: "64 x10, 128 x5"
      const auto& ls = dec->spec().layers;
      for (size_t i = 0, j = 0; i < ls.size(); i = j) {
        while (j < ls.size() && ls[j].ffn == ls[i].ffn) ++j;
        widths += (widths.empty() ? "" : ", ") + std::to_string(ls[i].ffn) + " x" + std::to_string(j - i);
      }
      std::printf("  %-22s %s: %lld of %lld layers, FFN widths %s\n", "sub-model", submodel.describe().c_str(),
                  static_cast<long long>(dec->spec().size()), static_cast<long long>(dec->spec().file_layers),
                  widths.c_str());
      for (const LayerSpec& l : ls)
        if (l.ffn_kind == FfnKind::moe) {
          std::printf("  %-22s %lld per layer, %lld used per token (Mixtral's routing)\n", "experts",
                      static_cast<long long>(l.experts), static_cast<long long>(l.experts_used));
          break;
        }
      if (dec->period() > 1) {  // Sequence-AltUp: "1, 4 x4, 1"
        std::string strides;
        for (size_t i = 0, j = 0; i < ls.size(); i = j) {
          while (j < ls.size() && ls[j].seq_stride == ls[i].seq_stride) ++j;
          strides += (strides.empty() ? "" : ", ") + std::to_string(ls[i].seq_stride) +
                     (j - i > 1 ? " x" + std::to_string(j - i) : "");
        }
        std::printf(
            "  %-22s strides %s (a layer of stride k runs on every k-th position; the other tokens "
            "are predicted and corrected from it)\n",
            "Sequence-AltUp", strides.c_str());
      }
    }
    if (const uint64_t n = s.model().effective_parameters())
      std::printf("  %-22s %llu (every weight but the token embedding tables)\n", "effective parameters",
                  static_cast<unsigned long long>(n));
    // What a run with this context keeps resident while it decodes.
    auto m = s.memory_estimate(s.ctx());
    if (m) {
      std::printf("\nmemory for a context of %lld tokens\n", static_cast<long long>(s.ctx()));
      std::printf("  %-30s %s (of %s in the file; %s read a row per token)\n", "weights read per token",
                  human_bytes(m->weights_per_token).c_str(), human_bytes(m->weights_file).c_str(),
                  human_bytes(m->row_lookup).c_str());
      if (m->weights_rewritten != 0)
        std::printf("  %-30s %s%s (weights rewritten at load, beyond the file's bytes they replace)\n",
                    "rewritten weights", m->weights_rewritten < 0 ? "-" : "+",
                    human_bytes(static_cast<uint64_t>(std::llabs(m->weights_rewritten))).c_str());
      std::printf("  %-30s %s\n", "KV cache, full", human_bytes(m->kv_cache).c_str());
      std::printf("  %-30s %s decoding, %s for a %lld-token prefill chunk\n", "activations",
                  human_bytes(m->activations_decode).c_str(), human_bytes(m->activations_prefill).c_str(),
                  static_cast<long long>(m->prefill_tokens));
      std::printf("  %-30s %s (weights read + rewritten + KV cache + the activation arenas)\n", "while decoding",
                  human_bytes(m->decoding()).c_str());
    } else {
      std::printf("  (no memory estimate: %s)\n", m.error().message.c_str());
    }
    if (submodel.empty()) print_submodels(path, s.model(), s.ctx());
  }
  return 0;
}

}  // namespace altup::cli
