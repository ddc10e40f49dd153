/* altup.h: the C interface of altup.cpp (C99; no C++ types or exceptions cross it).
 *
 * Open a model (a GGUF file), create sessions on it, tokenize, evaluate tokens, read
 * logits, sample, generate with a per-token callback, reset or truncate the KV cache, read
 * the per-layer profile of the last calls, free everything.
 *
 * Errors. Every function that can fail returns an altup_status; ALTUP_OK is 0. The message
 * of the last failure is kept per thread (altup_last_error()) and per session
 * (altup_session_last_error()); both strings stay valid until the next failing call on the
 * same thread / session. Null pointers, handles already freed, token ids outside the
 * vocabulary, a full context and out-of-range options are errors, never crashes.
 *
 * Threads. A model is read-only once opened: any number of sessions, on any threads, may
 * share it. A session must be used by one thread at a time (calls on different sessions may
 * run in parallel). Free every session of a model before the model; a model freed while
 * sessions still use it stays alive until the last of them is freed.
 *
 * Handles. A freed handle is recognised and refused with ALTUP_ERR_INVALID_HANDLE, unless
 * its address has since been given to a new handle of the same kind.
 *
 * Link with `pkg-config --cflags --libs altup`.
 */
#ifndef ALTUP_H
#define ALTUP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALTUP_API_VERSION 1

typedef enum altup_status {
  ALTUP_OK = 0,
  ALTUP_ERR_INVALID_ARGUMENT = 1, /* a null pointer, or an option out of range */
  ALTUP_ERR_INVALID_HANDLE = 2,   /* a handle that is not (or no longer) open */
  ALTUP_ERR_IO = 3,               /* the file cannot be opened, read or mapped */
  ALTUP_ERR_INVALID_MODEL = 4,    /* malformed GGUF, unknown architecture, failed validation */
  ALTUP_ERR_OUT_OF_MEMORY = 5,    /* e.g. the KV cache for the context does not fit */
  ALTUP_ERR_TOKEN_OUT_OF_RANGE = 6,
  ALTUP_ERR_CONTEXT_FULL = 7,     /* the tokens do not fit the session's context */
  ALTUP_ERR_BUFFER_TOO_SMALL = 8, /* the size needed is returned through the size pointer */
  ALTUP_ERR_NUMERIC = 9,          /* NaN or Inf logits */
  ALTUP_ERR_NO_LOGITS = 10,       /* nothing evaluated yet (or since the last reset) */
  ALTUP_ERR_INTERNAL = 11
} altup_status;

typedef struct altup_model altup_model;
typedef struct altup_session altup_session;

/* A short name for a status ("invalid handle"); never NULL. */
const char* altup_status_name(altup_status status);
/* The message of this thread's last failed call ("" if none); never NULL. */
const char* altup_last_error(void);
/* The library's version, e.g. "0.1.0". */
const char* altup_version(void);

/* ---- models ---- */

/* Opens and validates a GGUF model. On failure *out is set to NULL. */
altup_status altup_model_open(const char* path, altup_model** out);

/* A MatFormer sub-model of the file (docs/matformer.md), in the CLI's words: `name` a
 * published configuration ("E2B", "E2.98B-block"; --submodel), or `skip_layers` ("20-24,30";
 * --skip-layers) and / or `ffn_widths` (one per kept layer, or one for all; --ffn-widths).
 * NULL or "" leaves a field unset; all unset is the whole model. */
typedef struct altup_submodel {
  const char* name;
  const char* skip_layers;
  const char* ffn_widths;
} altup_submodel;
/* altup_model_open for the sub-model `submodel` names (NULL: the whole model). A choice the
 * file cannot satisfy is ALTUP_ERR_INVALID_ARGUMENT, with the reason in altup_last_error(). */
altup_status altup_model_open_submodel(const char* path, const altup_submodel* submodel, altup_model** out);
/* NULL is accepted and ignored; a handle already freed is an error. */
altup_status altup_model_free(altup_model* model);

typedef struct altup_model_info {
  const char* architecture; /* "altup", "llama"; valid while the model is open */
  int32_t vocab_size;
  int64_t context_length; /* the context the model was made for */
  uint64_t weight_bytes;
  int32_t bos_token; /* -1 if the model has none */
  int32_t eos_token; /* -1 if the model has none */
  int32_t add_bos;   /* 1 if prompts start with bos_token */
} altup_model_info;
altup_status altup_model_get_info(const altup_model* model, altup_model_info* out);

/* Text (UTF-8, `len` bytes) to token ids. With add_bos != 0 the model's BOS token comes first
 * (if it has one). Writes at most `capacity` ids to `tokens` (which may be NULL when
 * capacity is 0) and the count to *n_tokens; if they do not fit, returns
 * ALTUP_ERR_BUFFER_TOO_SMALL with the count needed in *n_tokens. */
altup_status altup_tokenize(const altup_model* model, const char* text, size_t len, int add_bos, int32_t* tokens,
                            size_t capacity, size_t* n_tokens);
/* Token ids to text, written with a terminating NUL to `text` (capacity bytes). *len gets the
 * text's length without the NUL; ALTUP_ERR_BUFFER_TOO_SMALL if len + 1 > capacity. */
altup_status altup_detokenize(const altup_model* model, const int32_t* tokens, size_t n_tokens, char* text,
                              size_t capacity, size_t* len);

/* ---- sessions ---- */

typedef struct altup_session_options {
  int64_t context;      /* tokens; 0: the model's context length */
  int32_t threads;      /* 0: every available core */
  float temperature;    /* 0: greedy */
  int32_t top_k;        /* 0: off */
  float top_p;          /* 1: off; must be in (0, 1] */
  float min_p;          /* 0: off */
  float repeat_penalty; /* 1: off */
  int32_t repeat_last_n;
  uint64_t seed;
  int32_t profile; /* 1: time every op (read with altup_profile_json) */
} altup_session_options;

/* The defaults (the same as `altup run`: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * repeat penalty 1.1 over 64 tokens, seed 0, no profiling). */
altup_session_options altup_session_default_options(void);

/* A session: KV cache, sampler and profile of its own. options may be NULL (defaults). */
altup_status altup_session_create(altup_model* model, const altup_session_options* options, altup_session** out);
altup_status altup_session_free(altup_session* session);
/* This session's last error message ("" if none); NULL for an invalid handle. */
const char* altup_session_last_error(const altup_session* session);

/* Feeds tokens at the end of the sequence and computes the logits of the last one. On
 * failure the sequence is as it was before the call. */
altup_status altup_eval(altup_session* session, const int32_t* tokens, size_t n_tokens);
/* The logits of the last evaluated token: *logits points at *n_vocab floats owned by the
 * session, valid until its next eval, sample, generate, reset, truncate or free. */
altup_status altup_get_logits(altup_session* session, const float** logits, int32_t* n_vocab);
/* Samples the next token from the last logits with the session's sampler (the repetition
 * penalty looks at the tokens evaluated so far). Does not evaluate it. */
altup_status altup_sample(altup_session* session, int32_t* token);

/* Called once per generated token with its id and the text it completes (UTF-8, possibly
 * empty while a multi-byte character is unfinished). Return 0 to go on, non-zero to stop.
 * If generation ends inside an unfinished character, one last call with token -1 carries
 * its bytes as U+FFFD (its return value is ignored). */
typedef int (*altup_token_callback)(int32_t token, const char* text, void* user_data);

typedef enum altup_stop_reason {
  ALTUP_STOP_LENGTH = 0,       /* max_tokens generated */
  ALTUP_STOP_END_OF_TEXT = 1,  /* the model's end-of-sequence token */
  ALTUP_STOP_CONTEXT_FULL = 2, /* the context has no room left */
  ALTUP_STOP_CALLBACK = 3      /* the callback asked to stop */
} altup_stop_reason;

/* Evaluates `prompt` (tokenized with the model's BOS rule when the session is empty, without
 * BOS when it continues a sequence) and generates up to max_tokens tokens, calling
 * `callback` (may be NULL) for each. `stop` (may be NULL) says why it ended. */
altup_status altup_generate(altup_session* session, const char* prompt, int32_t max_tokens,
                            altup_token_callback callback, void* user_data, altup_stop_reason* stop);

/* Tokens in the session's sequence, and its context length. */
altup_status altup_session_position(const altup_session* session, int64_t* n_past, int64_t* context);
/* Forget the sequence. */
altup_status altup_reset(altup_session* session);
/* Keep the first n_keep tokens of the sequence (n_keep <= the tokens held). A model with
 * sliding-window ring caches (Gemma 3n) can take back at most 512 tokens this way; beyond
 * that it fails with ALTUP_ERR_INVALID_ARGUMENT and the sequence is unchanged. */
altup_status altup_truncate(altup_session* session, int64_t n_keep);

/* The profile of the calls since profiling started or was last cleared, as the JSON that
 * `altup profile --format json` prints (per layer, per op, totals). Needs options.profile. The
 * string is owned by the session and valid until its next call. */
altup_status altup_profile_json(altup_session* session, const char** json);
altup_status altup_profile_clear(altup_session* session);

/* The kernel table in use, the CPU features seen, oneDNN's version and threads, as text
 * (what `altup info --system` prints); never NULL, owned by the library. */
const char* altup_system_info(void);

#ifdef __cplusplus
}
#endif

#endif /* ALTUP_H */
