// The C interface (include/altup.h) over the C++ library: handles own a LoadedModel or a
// Session; every entry point checks its arguments and handles, turns C++ errors and
// exceptions into a status and a message, and never lets an exception cross into C.
#include "altup.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "api/system_info.h"
#include "engine/generate.h"
#include "engine/profiler.h"
#include "engine/sampler.h"
#include "engine/session.h"

struct altup_model {
  std::shared_ptr<const altup::LoadedModel> loaded;
  std::string arch;
};

struct altup_session {
  std::unique_ptr<altup::Session> session;
  std::unique_ptr<altup::Sampler> sampler;
  std::unique_ptr<altup::Profiler> profiler;
  std::vector<int32_t> history;  // the tokens of the sequence, for the repetition penalty
  std::vector<float> logits;     // the last token's, copied: valid until the next call
  std::string last_error, profile_json;
};

namespace {

thread_local std::string t_last_error;

// Live handles: a freed (or never issued) pointer is refused instead of dereferenced.
std::mutex g_handles_mu;
std::unordered_set<const void*> g_handles;

bool live(const void* h) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  return h && g_handles.count(h);
}
void track(const void* h) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  g_handles.insert(h);
}
bool untrack(const void* h) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  return g_handles.erase(h) == 1;
}

altup_status fail(altup_status st, const std::string& msg, altup_session* s = nullptr) {
  t_last_error = msg;
  if (s) s->last_error = msg;
  return st;
}

// The status a library error stands for; anything not marked otherwise is a model the
// runtime refuses (malformed, inconsistent, unsupported).
altup_status classify(const altup::Error& e) {
  switch (e.kind) {
    case altup::ErrorKind::Io: return ALTUP_ERR_IO;
    case altup::ErrorKind::OutOfMemory: return ALTUP_ERR_OUT_OF_MEMORY;
    case altup::ErrorKind::ContextFull: return ALTUP_ERR_CONTEXT_FULL;
    case altup::ErrorKind::TokenOutOfRange: return ALTUP_ERR_TOKEN_OUT_OF_RANGE;
    case altup::ErrorKind::NonFinite: return ALTUP_ERR_NUMERIC;
    case altup::ErrorKind::BadChoice: return ALTUP_ERR_INVALID_ARGUMENT;
    case altup::ErrorKind::Other: break;
  }
  return ALTUP_ERR_INVALID_MODEL;
}

// Runs `body`, turning any escaping exception into a status.
template <class F>
altup_status guarded(altup_session* s, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(ALTUP_ERR_OUT_OF_MEMORY, "out of memory", s);
  } catch (const std::exception& e) {
    return fail(ALTUP_ERR_INTERNAL, std::string("internal error: ") + e.what(), s);
  } catch (...) {
    return fail(ALTUP_ERR_INTERNAL, "internal error", s);
  }
}

#define CHECK_SESSION(s)                                                                     \
  do {                                                                                       \
    if (!(s)) return fail(ALTUP_ERR_INVALID_ARGUMENT, "the session is NULL");                \
    if (!live(s)) return fail(ALTUP_ERR_INVALID_HANDLE, "the session is not open (freed?)"); \
  } while (0)
#define CHECK_MODEL(m)                                                                     \
  do {                                                                                     \
    if (!(m)) return fail(ALTUP_ERR_INVALID_ARGUMENT, "the model is NULL");                \
    if (!live(m)) return fail(ALTUP_ERR_INVALID_HANDLE, "the model is not open (freed?)"); \
  } while (0)

// Evaluates tokens and keeps the last token's logits and the history in step.
altup_status eval_tokens(altup_session* s, const int32_t* tokens, size_t n) {
  const std::vector<int32_t> batch(tokens, tokens + n);
  auto r = s->session->eval(batch);
  if (!r) return fail(classify(r.error()), r.error().message, s);
  const int64_t V = s->session->model().vocab_size();
  s->logits.assign(*r, *r + V);
  s->history.insert(s->history.end(), batch.begin(), batch.end());
  return ALTUP_OK;
}

}  // namespace

extern "C" {

const char* altup_status_name(altup_status status) {
  switch (status) {
    case ALTUP_OK: return "ok";
    case ALTUP_ERR_INVALID_ARGUMENT: return "invalid argument";
    case ALTUP_ERR_INVALID_HANDLE: return "invalid handle";
    case ALTUP_ERR_IO: return "cannot read the file";
    case ALTUP_ERR_INVALID_MODEL: return "invalid model";
    case ALTUP_ERR_OUT_OF_MEMORY: return "out of memory";
    case ALTUP_ERR_TOKEN_OUT_OF_RANGE: return "token id out of range";
    case ALTUP_ERR_CONTEXT_FULL: return "context full";
    case ALTUP_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case ALTUP_ERR_NUMERIC: return "non-finite logits";
    case ALTUP_ERR_NO_LOGITS: return "no logits yet";
    case ALTUP_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* altup_last_error(void) { return t_last_error.c_str(); }

const char* altup_version(void) { return ALTUP_VERSION_STRING; }

altup_status altup_model_open(const char* path, altup_model** out) {
  return altup_model_open_submodel(path, nullptr, out);
}

altup_status altup_model_open_submodel(const char* path, const altup_submodel* submodel, altup_model** out) {
  if (!out) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_model_open: out is NULL");
  *out = nullptr;
  if (!path) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_model_open: path is NULL");
  return guarded(nullptr, [&] {
    altup::SubmodelChoice choice;
    if (submodel) {
      auto text = [](const char* s) { return std::string(s ? s : ""); };
      choice = {text(submodel->name), text(submodel->skip_layers), text(submodel->ffn_widths)};
    }
    auto m = altup::LoadedModel::load(path, choice);
    if (!m) return fail(classify(m.error()), std::string(path) + ": " + m.error().message);
    auto* h = new altup_model{std::move(*m), ""};
    h->arch = std::string(h->loaded->model->arch());
    track(h);
    *out = h;
    return ALTUP_OK;
  });
}

altup_status altup_model_free(altup_model* model) {
  if (!model) return ALTUP_OK;
  if (!untrack(model)) return fail(ALTUP_ERR_INVALID_HANDLE, "altup_model_free: the model is not open (freed twice?)");
  delete model;  // sessions keep the loaded model alive through their shared_ptr
  return ALTUP_OK;
}

altup_status altup_model_get_info(const altup_model* model, altup_model_info* out) {
  CHECK_MODEL(model);
  if (!out) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_model_get_info: out is NULL");
  const altup::LoadedModel& m = *model->loaded;
  out->architecture = model->arch.c_str();
  out->vocab_size = static_cast<int32_t>(m.model->vocab_size());
  out->context_length = m.model->context_length();
  out->weight_bytes = m.model->weight_bytes();
  out->bos_token = m.tokenizer.bos();
  out->eos_token = m.tokenizer.eos();
  out->add_bos = m.tokenizer.add_bos() && m.tokenizer.bos() >= 0;
  return ALTUP_OK;
}

altup_status altup_tokenize(const altup_model* model, const char* text, size_t len, int add_bos, int32_t* tokens,
                            size_t capacity, size_t* n_tokens) {
  CHECK_MODEL(model);
  if (!n_tokens) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_tokenize: n_tokens is NULL");
  if (!text && len) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_tokenize: text is NULL");
  if (!tokens && capacity) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_tokenize: tokens is NULL");
  return guarded(nullptr, [&] {
    const auto ids = model->loaded->tokenizer.encode(std::string_view(text ? text : "", len), add_bos != 0);
    *n_tokens = ids.size();
    if (ids.size() > capacity)
      return fail(ALTUP_ERR_BUFFER_TOO_SMALL, "altup_tokenize: " + std::to_string(ids.size()) +
                                                  " tokens do not fit a buffer of " + std::to_string(capacity));
    std::copy(ids.begin(), ids.end(), tokens);
    return ALTUP_OK;
  });
}

altup_status altup_detokenize(const altup_model* model, const int32_t* tokens, size_t n_tokens, char* text,
                              size_t capacity, size_t* len) {
  CHECK_MODEL(model);
  if (!len) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_detokenize: len is NULL");
  if (!tokens && n_tokens) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_detokenize: tokens is NULL");
  if (!text && capacity) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_detokenize: text is NULL");
  const int32_t V = model->loaded->tokenizer.vocab_size();
  for (size_t k = 0; k < n_tokens; ++k)
    if (tokens[k] < 0 || tokens[k] >= V)
      return fail(ALTUP_ERR_TOKEN_OUT_OF_RANGE, "altup_detokenize: token id " + std::to_string(tokens[k]) +
                                                    " is outside the vocabulary [0, " + std::to_string(V) + ")");
  return guarded(nullptr, [&] {
    const std::string s = model->loaded->tokenizer.decode(std::vector<int32_t>(tokens, tokens + n_tokens));
    *len = s.size();
    if (s.size() + 1 > capacity)
      return fail(ALTUP_ERR_BUFFER_TOO_SMALL, "altup_detokenize: " + std::to_string(s.size() + 1) +
                                                  " bytes do not fit a buffer of " + std::to_string(capacity));
    std::memcpy(text, s.c_str(), s.size() + 1);
    return ALTUP_OK;
  });
}

altup_session_options altup_session_default_options(void) {
  const altup::SamplerParams sp;
  altup_session_options o;
  o.context = 0;
  o.threads = 0;
  o.temperature = sp.temperature;
  o.top_k = sp.top_k;
  o.top_p = sp.top_p;
  o.min_p = sp.min_p;
  o.repeat_penalty = sp.repeat_penalty;
  o.repeat_last_n = sp.repeat_last_n;
  o.seed = 0;
  o.profile = 0;
  return o;
}

altup_status altup_session_create(altup_model* model, const altup_session_options* options, altup_session** out) {
  if (!out) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_session_create: out is NULL");
  *out = nullptr;
  CHECK_MODEL(model);
  const altup_session_options o = options ? *options : altup_session_default_options();
  // The same ranges as the command line's options.
  std::string bad;
  if (o.context < 0 || o.context > (1ll << 24))
    bad = "context must be 0 (the model's) to 16777216";
  else if (o.threads < 0 || o.threads > 1024)
    bad = "threads must be 0 (all cores) to 1024";
  altup::SamplerParams sp;
  sp.temperature = o.temperature;
  sp.top_k = o.top_k;
  sp.top_p = o.top_p;
  sp.min_p = o.min_p;
  sp.repeat_penalty = o.repeat_penalty;
  sp.repeat_last_n = o.repeat_last_n;
  sp.seed = o.seed;
  if (altup::Status st = altup::check(sp); bad.empty() && !st.ok()) bad = st.error().message;
  if (!bad.empty()) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_session_create: " + bad);
  return guarded(nullptr, [&] {
    altup::SessionOptions so;
    so.ctx = o.context;
    so.threads = o.threads;
    auto s = altup::Session::create(model->loaded, so);
    if (!s) return fail(classify(s.error()), s.error().message);
    auto h = std::make_unique<altup_session>();
    h->session = std::move(*s);
    h->sampler = std::make_unique<altup::Sampler>(sp, static_cast<int32_t>(h->session->model().vocab_size()));
    if (o.profile) {
      h->profiler = std::make_unique<altup::Profiler>();
      h->session->set_hooks(h->profiler.get());
    }
    track(h.get());
    *out = h.release();
    return ALTUP_OK;
  });
}

altup_status altup_session_free(altup_session* session) {
  if (!session) return ALTUP_OK;
  if (!untrack(session))
    return fail(ALTUP_ERR_INVALID_HANDLE, "altup_session_free: the session is not open (freed twice?)");
  delete session;
  return ALTUP_OK;
}

const char* altup_session_last_error(const altup_session* session) {
  return live(session) ? session->last_error.c_str() : nullptr;
}

altup_status altup_eval(altup_session* session, const int32_t* tokens, size_t n_tokens) {
  CHECK_SESSION(session);
  if (!tokens || n_tokens == 0) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_eval: no tokens", session);
  return guarded(session, [&] { return eval_tokens(session, tokens, n_tokens); });
}

altup_status altup_get_logits(altup_session* session, const float** logits, int32_t* n_vocab) {
  CHECK_SESSION(session);
  if (!logits || !n_vocab) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_get_logits: NULL output", session);
  if (session->logits.empty())
    return fail(ALTUP_ERR_NO_LOGITS, "altup_get_logits: nothing has been evaluated", session);
  *logits = session->logits.data();
  *n_vocab = static_cast<int32_t>(session->logits.size());
  return ALTUP_OK;
}

altup_status altup_sample(altup_session* session, int32_t* token) {
  CHECK_SESSION(session);
  if (!token) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_sample: token is NULL", session);
  if (session->logits.empty()) return fail(ALTUP_ERR_NO_LOGITS, "altup_sample: nothing has been evaluated", session);
  return guarded(session, [&] {
    *token = session->sampler->sample(session->logits.data(), session->history);
    return ALTUP_OK;
  });
}

altup_status altup_generate(altup_session* session, const char* prompt, int32_t max_tokens,
                            altup_token_callback callback, void* user_data, altup_stop_reason* stop) {
  CHECK_SESSION(session);
  if (!prompt) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_generate: prompt is NULL", session);
  if (max_tokens < 0) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_generate: max_tokens is negative", session);
  return guarded(session, [&]() -> altup_status {
    altup::Session& s = *session->session;
    const altup::Tokenizer& tok = s.tokenizer();
    const bool fresh = s.n_past() == 0;
    auto ids = tok.encode(prompt, fresh && tok.add_bos());
    if (ids.empty() && session->logits.empty())
      return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_generate: the prompt has no tokens and nothing was evaluated",
                  session);
    if (!ids.empty())
      if (altup_status st = eval_tokens(session, ids.data(), ids.size()); st != ALTUP_OK) return st;
    // The stream sees the sequence so far, so the first new piece is spaced as in the text.
    altup::Tokenizer::Stream stream(tok);
    for (int32_t id : session->history) (void)stream.push(id);
    altup::GenerateOptions gen;
    gen.max_tokens = max_tokens;
    gen.stop_ids = {tok.eos()};
    gen.feed_last = true;  // the session's logits stay those of the next token: a later call goes on
    auto g = altup::generate(
        s, *session->sampler, session->logits.data(), session->history, gen, stream,
        [&](int32_t id, const std::string& text) { return !callback || callback(id, text.c_str(), user_data) == 0; });
    // The history holds what was fed (a stop token, or the token a full context left unfed, is not).
    session->history.resize(static_cast<size_t>(s.n_past()));
    if (!g) return fail(classify(g.error()), g.error().message, session);
    session->logits.assign(g->logits, g->logits + s.model().vocab_size());
    altup_stop_reason why = ALTUP_STOP_LENGTH;
    switch (g->stop) {
      case altup::StopReason::length: why = ALTUP_STOP_LENGTH; break;
      case altup::StopReason::end_of_sequence:
      case altup::StopReason::end_of_turn: why = ALTUP_STOP_END_OF_TEXT; break;
      case altup::StopReason::context_full: why = ALTUP_STOP_CONTEXT_FULL; break;
      case altup::StopReason::caller: why = ALTUP_STOP_CALLBACK; break;
    }
    // Bytes of a character left unfinished at the end come out as U+FFFD, as `altup run` prints them.
    if (const std::string tail = stream.finish(); callback && !tail.empty()) callback(-1, tail.c_str(), user_data);
    if (stop) *stop = why;
    return ALTUP_OK;
  });
}

altup_status altup_session_position(const altup_session* session, int64_t* n_past, int64_t* context) {
  CHECK_SESSION(session);
  if (n_past) *n_past = session->session->n_past();
  if (context) *context = session->session->ctx();
  return ALTUP_OK;
}

altup_status altup_reset(altup_session* session) {
  CHECK_SESSION(session);
  session->session->reset();
  session->history.clear();
  session->logits.clear();
  return ALTUP_OK;
}

altup_status altup_truncate(altup_session* session, int64_t n_keep) {
  CHECK_SESSION(session);
  if (n_keep < 0 || n_keep > session->session->n_past())
    return fail(ALTUP_ERR_INVALID_ARGUMENT,
                "altup_truncate: n_keep " + std::to_string(n_keep) + " is not in [0, " +
                    std::to_string(session->session->n_past()) + "] (the tokens held)",
                session);
  if (altup::Status st = session->session->truncate(n_keep); !st.ok())
    return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_truncate: " + st.error().message, session);
  session->history.resize(static_cast<size_t>(n_keep));
  session->logits.clear();  // they belonged to a token that is gone
  return ALTUP_OK;
}

altup_status altup_profile_json(altup_session* session, const char** json) {
  CHECK_SESSION(session);
  if (!json) return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_profile_json: json is NULL", session);
  if (!session->profiler)
    return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_profile_json: the session was created without profile = 1", session);
  return guarded(session, [&] {
    session->profile_json = session->profiler->json();
    *json = session->profile_json.c_str();
    return ALTUP_OK;
  });
}

altup_status altup_profile_clear(altup_session* session) {
  CHECK_SESSION(session);
  if (!session->profiler)
    return fail(ALTUP_ERR_INVALID_ARGUMENT, "altup_profile_clear: the session was created without profile = 1",
                session);
  return guarded(session, [&] {
    session->profiler = std::make_unique<altup::Profiler>();
    session->session->set_hooks(session->profiler.get());
    return ALTUP_OK;
  });
}

const char* altup_system_info(void) {
  static const std::string info = altup::system_info();
  return info.c_str();
}

}  // extern "C"
