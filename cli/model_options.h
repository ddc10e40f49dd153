// The options every command that opens a model shares (-m, -t, -c), with one wording, one
// range and one error line for each, the way SamplingOptions serves `run` and `chat`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/options.h"
#include "engine/session.h"

namespace altup::cli {

// The model used when no -m is given: the shipped demo model, for the program in its build
// folder only. An installed `altup` has none (its source tree may be gone or elsewhere).
const std::string& default_model();

// --submodel, --skip-layers and --ffn-widths into `choice` (also `altup info`'s).
std::vector<Option> submodel_options(SubmodelChoice& choice);

struct ModelOptions {
  std::string model = default_model();
  long long threads = 0, ctx = 0;
  bool tune_decode_threads = true;  // SessionOptions::tune_decode_threads
  SubmodelChoice submodel;          // --submodel / --skip-layers / --ffn-widths

  // Puts -m and -t, and -c when ctx_help is given (accepting ctx_min and up), first in the
  // command's options, and the sub-model options (--submodel, --skip-layers, --ffn-widths)
  // after them. model_help replaces the default "GGUF model (default: the shipped demo
  // model, PATH)".
  void add_to(std::vector<Option>& options, const char* ctx_help = nullptr, long long ctx_min = 1,
              const char* model_help = nullptr);

  // No -m and no model built in: one line, and the command exits 2.
  bool missing(const char* command) const;
  // The session options for a context of ctx tokens (0: the model's).
  SessionOptions session_options(int64_t ctx) const;
  // The model or a session on it; on failure one line "altup CMD: error: FILE: why" on
  // stderr and null.
  std::shared_ptr<const LoadedModel> load(const char* command) const;
  // A context longer than the model was trained for is allowed, with one warning line.
  std::unique_ptr<Session> open(const char* command, int64_t ctx) const;
  std::unique_ptr<Session> open(const char* command, std::shared_ptr<const LoadedModel> loaded, int64_t ctx) const;
};

// The one hint every "does not fit the context" message ends with.
std::string context_hint(const Session& s);

}  // namespace altup::cli
