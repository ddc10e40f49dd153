#include "models/hparam_reader.h"

#include <algorithm>

namespace altup {

// The sizes every transformer file states the same way. Checked in dependency order, each
// against the ones before it, so the first message names the key that is wrong.
Status HParamReader::sizes(TransformerSizes* z) const {
  ALTUP_TRY(count("embedding_length", 1, kMaxWidth, &z->d));
  ALTUP_TRY(count("block_count", 1, kMaxLayers, &z->n_layers));
  ALTUP_TRY(count("attention.head_count", 1, kMaxHeads, &z->n_heads));
  ALTUP_TRY(count("context_length", 1, kMaxContext, &z->ctx));
  z->n_kv_heads = z->n_heads;
  ALTUP_TRY(optional_count("attention.head_count_kv", 1, kMaxHeads, &z->n_kv_heads));
  if (z->n_kv_heads > z->n_heads || z->n_heads % z->n_kv_heads)
    return make_error(key("attention.head_count") + " = " + std::to_string(z->n_heads) + " query heads cannot share " +
                      key("attention.head_count_kv") + " = " + std::to_string(z->n_kv_heads) + " KV heads evenly");
  if (f_.find(key("attention.key_length"))) {
    ALTUP_TRY(count("attention.key_length", 1, kMaxHeadDim, &z->head_dim));
  } else {
    if (z->d % z->n_heads)
      return make_error(key("embedding_length") + " = " + std::to_string(z->d) + " is not a multiple of " +
                        key("attention.head_count") + " = " + std::to_string(z->n_heads) + " (and no " +
                        key("attention.key_length") + " gives the head size)");
    z->head_dim = z->d / z->n_heads;
  }
  if (z->head_dim % 2)
    return make_error("head size " + std::to_string(z->head_dim) + " is odd; RoPE rotates pairs of values");
  int64_t value_len = z->head_dim;
  ALTUP_TRY(optional_count("attention.value_length", 1, kMaxHeadDim, &value_len));
  if (value_len != z->head_dim)
    return make_error(key("attention.value_length") + " = " + std::to_string(value_len) +
                      " differs from the key length " + std::to_string(z->head_dim) +
                      " (this runtime needs them equal)");
  ALTUP_TRY(positive("attention.layer_norm_rms_epsilon", 1, &z->eps));
  auto tokens = f_.get_array("tokenizer.ggml.tokens", GgufType::STRING);
  z->vocab = tokens ? static_cast<int64_t>((*tokens)->count) : 0;
  if (f_.find(key("vocab_size"))) {
    ALTUP_TRY(count("vocab_size", 1, kMaxVocab, &z->vocab));
    if (tokens && static_cast<int64_t>((*tokens)->count) != z->vocab)
      return make_error(key("vocab_size") + " = " + std::to_string(z->vocab) + " but the tokenizer has " +
                        std::to_string((*tokens)->count) + " tokens");
  }
  if (z->vocab <= 0 || z->vocab > kMaxVocab)
    return make_error("the vocabulary size " + std::to_string(z->vocab) + " is unknown or out of range (no " +
                      key("vocab_size") + ", and tokenizer.ggml.tokens gives none in [1, " + std::to_string(kMaxVocab) +
                      "])");
  return {};
}

int64_t blk_index(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  name.remove_prefix(4);
  int64_t l = 0;
  size_t k = 0;
  while (k < name.size() && k < 10 && name[k] >= '0' && name[k] <= '9') l = l * 10 + (name[k++] - '0');
  return k > 0 && k < name.size() && name[k] == '.' ? l : -1;
}

int64_t layers_in_file(const GgufFile& f) {
  int64_t n = 0;
  for (const auto& t : f.tensors()) n = std::max(n, blk_index(t.name) + 1);
  return n;
}

Status HParamReader::activation(ops::Act* out) const {
  auto act = f_.get_string(key("ffn_activation"));
  if (!act) return act.error();
  if (*act == "swiglu")
    *out = ops::Act::Silu;
  else if (*act == "geglu")
    *out = ops::Act::GeluTanh;
  else
    return make_error(key("ffn_activation") + " = '" + std::string(*act) + "' is neither swiglu nor geglu");
  return {};
}

Status HParamReader::per_layer_counts(const char* k, int64_t layers, int64_t lo, int64_t hi,
                                      std::vector<int64_t>* out) const {
  const GgufValue* v = f_.find(key(k));
  if (!v || v->type != GgufType::ARRAY) return make_error(key(k) + " must be an array of i32 or u32, one per layer");
  if (v->elem_type != GgufType::I32 && v->elem_type != GgufType::U32)
    return make_error(key(k) + " is an array of " + std::string(gguf_type_name(v->elem_type)) +
                      ", expected i32 or u32 (one per layer)");
  if (static_cast<int64_t>(v->count) != layers)
    return make_error(key(k) + " has " + std::to_string(v->count) + " entries for " + std::to_string(layers) +
                      " layers");
  out->assign(static_cast<size_t>(layers), 0);
  for (int64_t l = 0; l < layers; ++l) {
    const auto i = static_cast<uint64_t>(l);
    // (each branch widened on its own: a common type of int32 and uint32 would wrap -2 to 2^32 - 2)
    const int64_t x = v->elem_type == GgufType::I32 ? static_cast<int64_t>(v->at<int32_t>(i))
                                                    : static_cast<int64_t>(v->at<uint32_t>(i));
    if (x < lo || x > hi)
      return make_error(key(k) + "[" + std::to_string(l) + "] = " + std::to_string(x) + " is out of range [" +
                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
    (*out)[static_cast<size_t>(l)] = x;
  }
  return {};
}

Status HParamReader::per_layer_flags(const char* k, int64_t layers, std::vector<bool>* out) const {
  auto v = f_.get_array(key(k), GgufType::BOOL);
  if (!v) return v.error();
  if (static_cast<int64_t>((*v)->count) != layers)
    return make_error(key(k) + " has " + std::to_string((*v)->count) + " entries for " + std::to_string(layers) +
                      " layers");
  out->assign(static_cast<size_t>(layers), false);
  for (int64_t l = 0; l < layers; ++l)
    (*out)[static_cast<size_t>(l)] = (*v)->at<uint8_t>(static_cast<uint64_t>(l)) != 0;
  return {};
}

}  // namespace altup
