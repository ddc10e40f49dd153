// Structurally valid GGUF files whose contents do not fit together: each row of the table
// takes a real model (a converter fixture), changes one thing, and expects the model to be
// refused before anything large is allocated, with one line that names the problem:
// in-process by Session::open, and by `altup run`, `altup profile` and `altup bench`
// (exit 1, no signal, memory bounded by the file); `altup info` still lists the file and
// names the problem.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>

#include "engine/session.h"
#include "tests/cli_test_util.h"
#include "tests/gguf_edit.h"

using namespace altup;
using namespace altup::test;

namespace {

const std::string kBase = std::string(ALTUP_FIXTURES_DIR) + "/model_k2_alternating_widened.gguf";
// K = 4, 6 layers [S, S, F, S, S, F] of width 48, the last two sharing K / V.
const std::string kGemmaBase = std::string(ALTUP_FIXTURES_DIR) + "/gemma3n_k4_multimodal_f32.gguf";

struct Row {
  const char* what;
  std::function<void(EditableGguf&, const GgufFile&)> edit;
  const char* expect;  // a part of the one-line message
};

// Rebuilds a tokenizer array with one element changed (or one dropped).
template <class T>
std::vector<uint8_t> numeric_array(const GgufFile& f, const char* key, uint32_t elem_type, int64_t change_at, T value,
                                   bool drop_last = false) {
  const GgufValue* v = f.find(key);
  Bytes b;
  const uint64_t n = v->count - (drop_last ? 1 : 0);
  b.put<uint32_t>(9).put<uint32_t>(elem_type).put<uint64_t>(n);
  for (uint64_t i = 0; i < n; ++i) b.put<T>(static_cast<int64_t>(i) == change_at ? value : v->at<T>(i));
  return b.bytes();
}
std::vector<uint8_t> token_array(const GgufFile& f, int64_t change_at, const std::string& piece) {
  const GgufValue* v = f.find("tokenizer.ggml.tokens");
  Bytes b;
  b.put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(v->count);
  for (uint64_t i = 0; i < v->count; ++i)
    b.str(static_cast<int64_t>(i) == change_at ? std::string_view(piece) : v->strings[i]);
  return b.bytes();
}

// A BOOL array value.
std::vector<uint8_t> bool_array(std::initializer_list<uint8_t> flags) {
  Bytes b;
  b.put<uint32_t>(9).put<uint32_t>(7).put<uint64_t>(flags.size());
  for (uint8_t f : flags) b.put<uint8_t>(f);
  return b.bytes();
}

const float kNaN = std::nanf(""), kInf = INFINITY;

std::vector<Row> rows() {
  using E = EditableGguf;
  using F = const GgufFile&;
  return {
      // Numbers out of range.
      {"epsilon NaN", [](E& e, F) { e.set_f32("altup.attention.layer_norm_rms_epsilon", kNaN); },
       "layer_norm_rms_epsilon = nan must be a finite number"},
      {"epsilon negative", [](E& e, F) { e.set_f32("altup.attention.layer_norm_rms_epsilon", -1e-5f); },
       "layer_norm_rms_epsilon = -1e-05 must be"},
      {"epsilon infinite", [](E& e, F) { e.set_f32("altup.attention.layer_norm_rms_epsilon", kInf); },
       "layer_norm_rms_epsilon = inf must be"},
      {"epsilon zero", [](E& e, F) { e.set_f32("altup.attention.layer_norm_rms_epsilon", 0.0f); },
       "layer_norm_rms_epsilon = 0 must be"},
      {"epsilon as u32", [](E& e, F) { e.set_u32("altup.attention.layer_norm_rms_epsilon", 1); },
       "altup.attention.layer_norm_rms_epsilon is u32, expected f32"},
      {"RoPE base zero", [](E& e, F) { e.set_f32("altup.rope.freq_base", 0.0f); }, "rope.freq_base = 0 must be"},
      {"RoPE base NaN", [](E& e, F) { e.set_f32("altup.rope.freq_base", kNaN); }, "rope.freq_base = nan must be"},
      {"RoPE base negative", [](E& e, F) { e.set_f32("altup.rope.freq_base", -10000.0f); },
       "rope.freq_base = -10000 must be"},
      {"RoPE base infinite", [](E& e, F) { e.set_f32("altup.rope.freq_base", -kInf); },
       "rope.freq_base = -inf must be"},
      {"window wraps to -1", [](E& e, F) { e.set_u64("altup.attention.sliding_window", ~0ull); },
       "sliding_window = 18446744073709551615 is out of range"},
      {"window negative i32", [](E& e, F) { e.set_i32("altup.attention.sliding_window", -4); },
       "altup.attention.sliding_window is negative (-4)"},
      {"block_count 2^20", [](E& e, F) { e.set_u32("altup.block_count", 1u << 20); },
       "altup.block_count = 1048576 is out of range"},
      {"block_count 2^12, above the layers held", [](E& e, F) { e.set_u32("altup.block_count", 4096); },
       "altup.block_count = 4096 but the file holds tensors for 3 layers"},
      {"block_count below the layers held", [](E& e, F) { e.set_u32("altup.block_count", 2); },
       "altup.block_count = 2 but the file holds tensors for 3 layers"},
      {"block_count zero", [](E& e, F) { e.set_u32("altup.block_count", 0); }, "altup.block_count = 0 is out of range"},
      {"block_count a string", [](E& e, F) { e.set_str("altup.block_count", "3"); },
       "altup.block_count is string, expected an integer"},
      {"no block_count", [](E& e, F) { e.erase("altup.block_count"); }, "missing key altup.block_count"},
      {"zero heads", [](E& e, F) { e.set_u32("altup.attention.head_count", 0); },
       "altup.attention.head_count = 0 is out of range"},
      {"zero KV heads", [](E& e, F) { e.set_u32("altup.attention.head_count_kv", 0); },
       "altup.attention.head_count_kv = 0 is out of range"},
      {"heads not divisible by KV heads", [](E& e, F) { e.set_u32("altup.attention.head_count_kv", 3); },
       "4 query heads cannot share altup.attention.head_count_kv = 3 KV heads evenly"},
      {"more KV heads than heads", [](E& e, F) { e.set_u32("altup.attention.head_count_kv", 8); },
       "cannot share altup.attention.head_count_kv = 8 KV heads"},
      {"odd head size", [](E& e, F) { e.set_u32("altup.attention.key_length", 7); }, "head size 7 is odd"},
      {"zero head size", [](E& e, F) { e.set_u32("altup.attention.key_length", 0); },
       "altup.attention.key_length = 0 is out of range"},
      {"head size too large", [](E& e, F) { e.set_u32("altup.attention.key_length", 1u << 20); },
       "altup.attention.key_length = 1048576 is out of range"},
      {"value length differs", [](E& e, F) { e.set_u32("altup.attention.value_length", 16); },
       "altup.attention.value_length = 16 differs from the key length 8"},
      {"width not a multiple of heads, no key_length",
       [](E& e, F) {
         e.erase("altup.attention.key_length");
         e.set_u32("altup.attention.head_count", 3);
         e.set_u32("altup.attention.head_count_kv", 1);
       },
       "altup.embedding_length = 32 is not a multiple of altup.attention.head_count = 3"},
      {"head size disagrees with q",
       [](E& e, F) {
         e.set_u32("altup.attention.key_length", 10);
         e.set_u32("altup.attention.value_length", 10);
       },
       "blk.0.attn_q.weight: shape [32, 32], expected [40, 32]"},
      {"width disagrees with tensors", [](E& e, F) { e.set_u32("altup.embedding_length", 30); },
       "token_embd.weight: shape [320, 64], expected [320, 60]"},
      {"width zero", [](E& e, F) { e.set_u32("altup.embedding_length", 0); },
       "altup.embedding_length = 0 is out of range"},
      {"FFN width disagrees", [](E& e, F) { e.set_u32("altup.feed_forward_length", 64); },
       "blk.0.ffn_gate.weight: shape [48, 32], expected [64, 32]"},
      {"context zero", [](E& e, F) { e.set_u32("altup.context_length", 0); },
       "altup.context_length = 0 is out of range"},
      {"context beyond any", [](E& e, F) { e.set_u64("altup.context_length", 1ull << 40); },
       "altup.context_length = 1099511627776 is out of range"},
      {"K zero", [](E& e, F) { e.set_u32("altup.altup.num_inputs", 0); }, "altup.altup.num_inputs = 0 is out of range"},
      {"K nine", [](E& e, F) { e.set_u32("altup.altup.num_inputs", 9); }, "altup.altup.num_inputs = 9 is out of range"},
      {"K as a string", [](E& e, F) { e.set_str("altup.altup.num_inputs", "2"); },
       "altup.altup.num_inputs is string, expected an integer"},
      {"K disagrees with the coefficients", [](E& e, F) { e.set_u32("altup.altup.num_inputs", 3); },
       "token_embd.weight: shape [320, 64], expected [320, 96]"},
      {"alternating not a bool", [](E& e, F) { e.set_u32("altup.altup.alternating", 1); },
       "altup.altup.alternating is u32, expected bool"},
      {"unknown embedding mode", [](E& e, F) { e.set_str("altup.altup.embedding", "stacked"); },
       "altup.altup.embedding = 'stacked' is neither widened nor recycled"},
      {"unknown output mode", [](E& e, F) { e.set_str("altup.altup.output", "mean"); },
       "altup.altup.output = 'mean' is neither sum nor concat"},
      {"unknown activation", [](E& e, F) { e.set_str("altup.ffn_activation", "relu"); },
       "altup.ffn_activation = 'relu' is neither swiglu nor geglu"},
      {"tied flag not a bool", [](E& e, F) { e.set_str("altup.tie_word_embeddings", "no"); },
       "altup.tie_word_embeddings is string, expected bool"},
      // The vocabulary and the tokenizer.
      {"vocab_size disagrees with the tokenizer", [](E& e, F) { e.set_u32("altup.vocab_size", 321); },
       "altup.vocab_size = 321 but the tokenizer has 320 tokens"},
      {"vocab_size zero", [](E& e, F) { e.set_u32("altup.vocab_size", 0); }, "altup.vocab_size = 0 is out of range"},
      {"scores one short",
       [](E& e, F f) {
         e.set_raw("tokenizer.ggml.scores", numeric_array<float>(f, "tokenizer.ggml.scores", 6, -1, 0, true));
       },
       "tokenizer arrays disagree: 320 tokens, 319 scores, 320 types"},
      {"a NaN score",
       [](E& e, F f) {
         e.set_raw("tokenizer.ggml.scores", numeric_array<float>(f, "tokenizer.ggml.scores", 6, 7, kNaN));
       },
       "tokenizer.ggml.scores[7] is not a finite number"},
      {"an unknown token type",
       [](E& e, F f) {
         e.set_raw("tokenizer.ggml.token_type", numeric_array<int32_t>(f, "tokenizer.ggml.token_type", 5, 9, 42));
       },
       "token 9 has unknown type 42"},
      {"a malformed byte token",
       [](E& e, F f) {
         const GgufValue* types = f.find("tokenizer.ggml.token_type");
         int64_t byte_at = -1;
         for (uint64_t i = 0; i < types->count && byte_at < 0; ++i)
           if (types->at<int32_t>(i) == 6) byte_at = static_cast<int64_t>(i);
         e.set_raw("tokenizer.ggml.tokens", token_array(f, byte_at, "<0xZZ>"));
       },
       "is not of the form <0xAB>"},
      {"BOS id out of range", [](E& e, F) { e.set_u32("tokenizer.ggml.bos_token_id", 320); },
       "tokenizer.ggml.bos_token_id 320 is not a token id"},
      {"EOS id out of range", [](E& e, F) { e.set_u32("tokenizer.ggml.eos_token_id", 1u << 31); },
       "tokenizer.ggml.eos_token_id 2147483648 is not a token id"},
      {"unknown id negative", [](E& e, F) { e.set_i32("tokenizer.ggml.unknown_token_id", -1); },
       "tokenizer.ggml.unknown_token_id is negative (-1)"},
      {"add_bos_token not a bool", [](E& e, F) { e.set_u32("tokenizer.ggml.add_bos_token", 1); },
       "tokenizer.ggml.add_bos_token is u32, expected bool"},
      {"add_bos_token without a BOS id",
       [](E& e, F) {
         e.set_bool("tokenizer.ggml.add_bos_token", true);
         e.erase("tokenizer.ggml.bos_token_id");
       },
       "add_bos_token is true but the file has no tokenizer.ggml.bos_token_id"},
      {"add_space_prefix not a bool", [](E& e, F) { e.set_str("tokenizer.ggml.add_space_prefix", "yes"); },
       "tokenizer.ggml.add_space_prefix is string, expected bool"},
      {"another tokenizer model", [](E& e, F) { e.set_str("tokenizer.ggml.model", "gpt2"); },
       "tokenizer model 'gpt2' is not supported"},
      // Tensors against the weight list.
      {"a missing tensor", [](E& e, F) { e.erase_tensor("blk.1.ffn_up.weight"); },
       "missing tensor blk.1.ffn_up.weight [48, 32]"},
      {"a matrix in a dtype without kernels",
       [](E& e, F) {
         e.retype("blk.2.ffn_gate.weight", DType::Q8_1, {32, 48});
       },
       "blk.2.ffn_gate.weight: dtype Q8_1 is not supported here"},
      {"a norm that is not f32", [](E& e, F) { e.retype("output_norm.weight", DType::F16, {32}); },
       "output_norm.weight: dtype F16 is not supported here"},
      {"a tensor of another architecture",
       [](E& e, F) {
         e.tensors.push_back({"rope_freqs.weight", {4}, DType::F32, std::vector<uint8_t>(16, 0)});
       },
       "tensor rope_freqs.weight is not part of the altup architecture"},
      {"an extra layer's tensor",
       [](E& e, F) {
         e.tensors.push_back({"blk.3.attn_norm.weight", {32}, DType::F32, std::vector<uint8_t>(128, 0)});
       },
       "altup.block_count = 3 but the file holds tensors for 4 layers"},
      // Architecture.
      {"no architecture", [](E& e, F) { e.erase("general.architecture"); }, "the file has no general.architecture"},
      {"an unknown architecture", [](E& e, F) { e.set_str("general.architecture", "mamba"); },
       "unknown architecture 'mamba'"},
  };
}

std::vector<Row> gemma3n_rows() {
  using E = EditableGguf;
  using F = const GgufFile&;
  const char* kPattern = "gemma3n.attention.sliding_window_pattern";
  return {
      {"K = 1", [](E& e, F) { e.set_u32("gemma3n.altup.num_inputs", 1); },
       "altup.num_inputs = 1 is out of range [2, 8]"},
      {"active stream past K", [](E& e, F) { e.set_u32("gemma3n.altup.active_idx", 4); },
       "altup.active_idx = 4 is out of range [0, 3]"},
      {"every layer shares K / V", [](E& e, F) { e.set_u32("gemma3n.attention.shared_kv_layers", 6); },
       "shared_kv_layers = 6 is out of range [0, 5]"},
      {"a short layer pattern",
       [=](E& e, F f) { e.set_raw(kPattern, numeric_array<uint8_t>(f, kPattern, 7, -1, 0, true)); },
       "sliding_window_pattern has 5 entries for 6 layers"},
      {"sliding layers without a window", [](E& e, F) { e.set_u32("gemma3n.attention.sliding_window", 0); },
       "sliding-window layers need gemma3n.attention.sliding_window > 0"},
      {"a shared full layer with no full layer before it",
       [=](E& e, F f) { e.set_raw(kPattern, numeric_array<uint8_t>(f, kPattern, 7, 2, 1)); }, "layer 5 shares K / V"},
      {"an FFN width of 0",
       [](E& e, F f) {
         e.set_raw("gemma3n.feed_forward_length", numeric_array<int32_t>(f, "gemma3n.feed_forward_length", 5, 2, 0));
       },
       "feed_forward_length[2] = 0 is out of range"},
      {"FFN widths as floats",
       [](E& e, F) {
         Bytes b;
         b.put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(6);
         for (int i = 0; i < 6; ++i) b.put<float>(64.0f);
         e.set_raw("gemma3n.feed_forward_length", b.bytes());
       },
       "feed_forward_length is an array of f32"},
      {"a NaN sparsity multiplier",
       [](E& e, F f) {
         e.set_raw("gemma3n.activation_sparsity_scale",
                   numeric_array<float>(f, "gemma3n.activation_sparsity_scale", 6, 0, kNaN));
       },
       "activation_sparsity_scale[0] = nan is neither -inf"},
      {"a per-layer input width of 0", [](E& e, F) { e.set_u32("gemma3n.embedding_length_per_layer_input", 0); },
       "embedding_length_per_layer_input = 0 is out of range"},
      {"no per-layer embedding table", [](E& e, F) { e.erase_tensor("per_layer_token_embd.weight"); },
       "missing or malformed tensor per_layer_token_embd.weight"},
      {"a per-layer table longer than the vocabulary",
       [](E& e, F) {
         e.retype("per_layer_token_embd.weight", DType::F32, {48, 299});
       },
       "per_layer_token_embd.weight has 299 rows"},
      {"a LAuReL rank wider than the model",
       [](E& e, F) {
         e.retype("blk.0.laurel_l.weight", DType::F32, {48, 49});
       },
       "LAuReL rank of 49"},
      {"stream projections for K = 3",
       [](E& e, F) {
         e.retype("altup_proj.weight", DType::F32, {48, 48, 2});
       },
       "altup_proj.weight"},
      {"no q-norm in a shared layer", [](E& e, F) { e.erase_tensor("blk.5.attn_q_norm.weight"); },
       "blk.5.attn_q_norm.weight"},
      {"a NaN correct coefficient",
       [](E& e, F) {
         const float nan = kNaN;
         std::memcpy(e.tensor("blk.1.altup_correct_coef.weight")->data.data() + 8, &nan, 4);
       },
       "blk.1.altup_correct_coef.weight holds nan"},
      {"an output head (Gemma 3n ties it)",
       [](E& e, F) {
         e.tensors.push_back({"output.weight", {48, 298}, DType::F32, std::vector<uint8_t>(48 * 298 * 4)});
       },
       "tensor output.weight is not part of the gemma3n architecture"},
  };
}

// A StagFormer of 2 stacks of 2 layers, separate weights (4 blk.N.* layers, cross.0-1.*).
const std::string kStagBase = std::string(ALTUP_FIXTURES_DIR) + "/stagformer_p2_separate.gguf";

std::vector<Row> stagformer_rows() {
  using E = EditableGguf;
  using F = const GgufFile&;
  return {
      {"no stacks", [](E& e, F) { e.set_u32("stagformer.stack_count", 0); }, "stack_count = 0 is out of range"},
      {"3 stacks of 4 layers", [](E& e, F) { e.set_u32("stagformer.stack_count", 3); },
       "4 layers do not split into stagformer.stack_count = 3 stacks"},
      {"shared weights with one stack",
       [](E& e, F) {
         e.set_u32("stagformer.stack_count", 1);
         e.set_bool("stagformer.shared_weights", true);
       },
       "there is no other stack to share with"},
      {"a cross window with one stack",
       [](E& e, F) {
         e.set_u32("stagformer.stack_count", 1);
         e.set_u32("stagformer.cross_window", 5);
       },
       "cross_window = 5 but a single stack has no cross-attention"},
      {"one stack that leaves cross-attention weights unused", [](E& e, F) { e.set_u32("stagformer.stack_count", 1); },
       "is not part of the stagformer architecture"},
      {"no sharing flag", [](E& e, F) { e.erase("stagformer.shared_weights"); }, "stagformer.shared_weights"},
      {"shared weights with 4 layers a stack",
       [](E& e, F) {
         e.set_bool("stagformer.shared_weights", true);  // 2 stacks of the 4 stored layers: cross.2-3 missing
       },
       "cross.2.attn_norm.weight"},
      {"no cross-attention query", [](E& e, F) { e.erase_tensor("cross.1.attn_q.weight"); }, "cross.1.attn_q.weight"},
      {"no memory norm", [](E& e, F) { e.erase_tensor("stack.0.mem_norm.weight"); }, "stack.0.mem_norm.weight"},
      {"a cross-attention key of the wrong width",
       [](E& e, F) {
         e.retype("cross.0.attn_k.weight", DType::F32, {32, 8});
       },
       "cross.0.attn_k.weight"},
      {"an unknown activation", [](E& e, F) { e.set_str("stagformer.ffn_activation", "relu"); },
       "ffn_activation = 'relu' is neither"},
  };
}

// An AltUp K = 2 model with a mixture of 4 experts (2 used) in each of its 3 layers.
const std::string kMoeBase = std::string(ALTUP_FIXTURES_DIR) + "/model_k2_moe.gguf";

std::vector<Row> moe_rows() {
  using E = EditableGguf;
  using F = const GgufFile&;
  return {
      {"more experts used than there are", [](E& e, F) { e.set_u32("altup.expert_used_count", 5); },
       "expert_used_count = 5 is out of range [1, 4]"},
      {"no expert used", [](E& e, F) { e.set_u32("altup.expert_used_count", 0); },
       "expert_used_count = 0 is out of range [1, 4]"},
      {"too many experts", [](E& e, F) { e.set_u32("altup.expert_count", 100000); },
       "expert_count = 100000 is out of range"},
      {"experts without a count of those used", [](E& e, F) { e.erase("altup.expert_used_count"); },
       "altup.expert_used_count"},
      {"no router", [](E& e, F) { e.erase_tensor("blk.1.ffn_gate_inp.weight"); }, "blk.1.ffn_gate_inp.weight"},
      {"3 experts stacked where 4 are counted",
       [](E& e, F) {
         e.retype("blk.0.ffn_up_exps.weight", DType::F32, {32, 48, 3});
       },
       "blk.0.ffn_up_exps.weight"},
      {"experts used of none", [](E& e, F) { e.set_u32("altup.expert_count", 0); },
       "expert_used_count = 2 but the file has no experts"},
      {"experts in no layer",
       [](E& e, F) {
         e.set_raw("altup.expert_layers", bool_array({0, 0, 0}));
       },
       "altup.expert_layers gives the experts to no layer"},
      {"expert layers one short",
       [](E& e, F) {
         e.set_raw("altup.expert_layers", bool_array({1, 1}));
       },
       "altup.expert_layers has 2 entries for 3 layers"},
      {"expert layers as integers", [](E& e, F) { e.set_u32("altup.expert_layers", 1); }, "altup.expert_layers"},
      {"a dense layer 0 whose FFN is stored as experts",
       [](E& e, F) {
         e.set_raw("altup.expert_layers", bool_array({0, 1, 1}));
       },
       "blk.0.ffn_gate.weight"},
      {"expert layers without experts",
       [](E& e, F) {
         e.set_u32("altup.expert_count", 0);
         e.set_u32("altup.expert_used_count", 0);
         e.set_raw("altup.expert_layers", bool_array({1, 1, 1}));
       },
       "altup.expert_layers names layers for experts the file does not have"},
      {"no experts at all: the dense FFN is missing",
       [](E& e, F) {
         e.set_u32("altup.expert_count", 0);
         e.set_u32("altup.expert_used_count", 0);
       },
       "blk.0.ffn_gate.weight"},
  };
}

// A K = 1 model with Sequence-AltUp strides [1, 2, 2, 1].
const std::string kSeqBase = std::string(ALTUP_FIXTURES_DIR) + "/seq_k1_s2_inner.gguf";

std::vector<Row> seq_rows() {
  using E = EditableGguf;
  using F = const GgufFile&;
  const char* key = "altup.sequence.stride";
  return {
      {"a stride of 0", [=](E& e, F f) { e.set_raw(key, numeric_array<int32_t>(f, key, 5, 1, 0)); },
       "altup.sequence.stride[1] = 0 is out of range [1, 64]"},
      {"a stride of 65", [=](E& e, F f) { e.set_raw(key, numeric_array<int32_t>(f, key, 5, 2, 65)); },
       "altup.sequence.stride[2] = 65 is out of range [1, 64]"},
      {"a negative stride", [=](E& e, F f) { e.set_raw(key, numeric_array<int32_t>(f, key, 5, 2, -2)); },
       "altup.sequence.stride[2] = -2 is out of range"},
      {"strides one short", [=](E& e, F f) { e.set_raw(key, numeric_array<int32_t>(f, key, 5, -1, 0, true)); },
       "altup.sequence.stride has 3 entries for 4 layers"},
      {"strides as floats",
       [=](E& e, F) {
         Bytes b;
         b.put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(4);
         for (int i = 0; i < 4; ++i) b.put<float>(2.0f);
         e.set_raw(key, b.bytes());
       },
       "altup.sequence.stride is an array of f32"},
      {"a single stride, not one per layer", [=](E& e, F) { e.set_u32(key, 2); },
       "altup.sequence.stride must be an array"},
      {"strides whose least common multiple is past 64",
       [=](E& e, F) {
         Bytes b;
         b.put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(4);
         for (int32_t k : {1, 9, 8, 1}) b.put<int32_t>(k);
         e.set_raw(key, b.bytes());
       },
       "least common multiple exceeds 64"},
      {"a strided layer without its coefficients", [](E& e, F) { e.erase_tensor("blk.2.seq_coef.weight"); },
       "blk.2.seq_coef.weight"},
      {"two coefficients where three are read", [](E& e, F) { e.retype("blk.1.seq_coef.weight", DType::F32, {2}); },
       "blk.1.seq_coef.weight"},
      {"coefficients on a dense layer", [=](E& e, F f) { e.set_raw(key, numeric_array<int32_t>(f, key, 5, 1, 1)); },
       "tensor blk.1.seq_coef.weight is not part of the altup architecture"},
      {"a strided layer with a sliding window", [](E& e, F) { e.set_u32("altup.attention.sliding_window", 8); },
       "a Sequence-AltUp layer has full attention"},
  };
}

// Each base model with its table of edits.
struct Table {
  const std::string* base;
  std::vector<Row> rows;
};
std::vector<Table> tables() {
  return {{&kBase, rows()},
          {&kGemmaBase, gemma3n_rows()},
          {&kStagBase, stagformer_rows()},
          {&kMoeBase, moe_rows()},
          {&kSeqBase, seq_rows()}};
}

std::string write_case(const TempDir& dir, size_t k, const Row& row, const GgufFile& base) {
  EditableGguf e = EditableGguf::from(base);
  row.edit(e, base);
  const std::string path = dir.path + "/case" + std::to_string(k) + ".gguf";
  const auto bytes = e.write();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace

TEST_CASE("the base models and their unedited rewrites load, so every row fails for its own reason") {
  TempDir dir;
  for (const Table& t : tables()) {
    auto base = GgufFile::open(*t.base);
    REQUIRE(base.ok());
    const std::string path = write_case(dir, 0, {"none", [](EditableGguf&, const GgufFile&) {}, ""}, **base);
    auto s = Session::open(path);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  }
  CHECK(rows().size() >= 40);
  CHECK(gemma3n_rows().size() >= 15);
}

TEST_CASE("every inconsistent model is refused in-process with one line naming the problem") {
  TempDir dir;
  for (const Table& t : tables()) {
    auto base = GgufFile::open(*t.base);
    REQUIRE(base.ok());
    std::set<std::string> messages;
    const auto& table = t.rows;
    for (size_t k = 0; k < table.size(); ++k) {
      const Row& row = table[k];
      const std::string what = row.what;
      CAPTURE(what);
      const std::string path = write_case(dir, k, row, **base);
      auto file = GgufFile::open(path);
      REQUIRE_MESSAGE(file.ok(),
                      "the edit must leave a structurally valid GGUF: " << (file.ok() ? "" : file.error().message));
      auto s = Session::open(path);
      REQUIRE_FALSE(s.ok());
      const std::string& msg = s.error().message;
      CAPTURE(msg);
      CHECK(msg.find(row.expect) != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
      messages.insert(msg);
    }
    CHECK(messages.size() == table.size());  // no two rows read the same
  }
}

TEST_CASE("run, profile and bench refuse each one (exit 1, one line, no signal, bounded memory); info names it") {
  TempDir dir;
  for (const Table& t : tables()) {
    auto base = GgufFile::open(*t.base);
    REQUIRE(base.ok());
    // Peak RSS is checked where it means something: a native release build (sanitizers and
    // emulators have large fixed costs of their own).
#if defined(__SANITIZE_ADDRESS__)
    const bool check_rss = false;
#else
    const bool check_rss = std::getenv("ALTUP_CLI_WRAPPER") == nullptr || !*std::getenv("ALTUP_CLI_WRAPPER");
#endif
    const auto& table = t.rows;
    for (size_t k = 0; k < table.size(); ++k) {
      const Row& row = table[k];
      const std::string what = row.what;
      CAPTURE(what);
      const std::string path = write_case(dir, k, row, **base);
      for (const char* cmd : {"run -n 4 -p hi", "profile --prefill 8 --decode 2", "bench -p 8 -n 4 -r 1"}) {
        const std::string command = cmd;
        CAPTURE(command);
        RunRss r = run_altup_rss(dir, std::string(cmd) + " -m '" + path + "'");
        CAPTURE(r.err);
        CHECK(r.status == 1);
        CHECK_FALSE(r.signaled);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(row.expect) != std::string::npos);
        CHECK(r.out.empty());
        if (check_rss) CHECK(r.peak_kib < 96 * 1024);  // the file is 221 KiB; the program alone ~15 MiB
      }
      RunRss info = run_altup_rss(dir, "info --no-tensors '" + path + "'");
      CHECK(info.status == 0);
      CHECK(info.out.find("tensors (") != std::string::npos);
      CHECK(info.out.find("refused: ") != std::string::npos);
      CHECK(info.out.find(row.expect) != std::string::npos);
    }
  }
}
