#include "models/decoder.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "models/weight_table.h"
#include "runtime/mapped_file.h"

namespace altup {

int64_t DecoderSpec::last_cache_writer() const {
  int64_t last = 0;
  for (int64_t i = 0; i < size(); ++i)
    if (cache_owner(i) == i) last = i;
  return last;
}

int64_t DecoderSpec::period() const {
  int64_t p = 1;
  for (const LayerSpec& s : layers) p = std::lcm(p, std::max<int64_t>(s.seq_stride, 1));
  return p;
}

Status DecoderSpec::check() const {
  if (layers.empty()) return make_error("the model has no layers");
  // The stacks whose layers read each blk.N.*: a layer of another stack may read it again
  // (StagFormer's shared weights), one of the same stack may not.
  std::vector<std::vector<int>> used(static_cast<size_t>(std::max<int64_t>(file_layers, 0)));
  int64_t period_so_far = 1;
  for (int64_t i = 0; i < size(); ++i) {
    const LayerSpec& s = (*this)[i];
    const std::string at = "layer " + std::to_string(i);
    if (s.weights < 0 || s.weights >= file_layers)
      return make_error(at + " reads blk." + std::to_string(s.weights) + ".* but the file holds layers 0.." +
                        std::to_string(file_layers - 1));
    std::vector<int>& readers = used[static_cast<size_t>(s.weights)];
    if (std::find(readers.begin(), readers.end(), s.stack) != readers.end())
      return make_error(at + " reads blk." + std::to_string(s.weights) +
                        ".*, which an earlier layer of its stack reads too");
    readers.push_back(s.stack);
    if (s.window < 0 || s.cross_window < 0) return make_error(at + " has a negative window");
    if (s.cross && s.stack == 0) return make_error(at + " cross-attends but is in the first stack");
    if (!(s.rope_base > 0)) return make_error(at + " has a RoPE base that is not positive");
    if (s.ffn < 1) return make_error(at + " has an FFN width below 1");
    if (s.ffn_in_file < s.ffn)
      return make_error(at + " uses " + std::to_string(s.ffn) + " FFN units but the file stores " +
                        std::to_string(s.ffn_in_file));
    if ((s.ffn_kind == FfnKind::moe) != (s.experts > 0) || s.experts_used < 0 || s.experts_used > s.experts ||
        (s.experts > 0 && s.experts_used < 1))
      return make_error(at + ": a mixture of experts needs 1 <= experts used <= experts, a dense FFN neither");
    if ((s.ffn_kind == FfnKind::sparse_gated) != (s.sparsity > 0) || !(s.sparsity < 1))
      return make_error(at + ": a sparse FFN needs a sparsity in (0, 1), a dense one none");
    if (s.seq_stride < 1 || s.seq_stride > ops::kMaxSeqStride)
      return make_error(at + " has a Sequence-AltUp stride of " + std::to_string(s.seq_stride) + " (1.." +
                        std::to_string(ops::kMaxSeqStride) + ")");
    if (s.seq_stride > 1) {
      if (s.attention != AttentionKind::own_cache || s.window > 0 || s.cross)
        return make_error(at + ": a Sequence-AltUp layer has full attention over a cache of its own here");
      for (int64_t j = i + 1; j < size(); ++j)
        if ((*this)[j].kv_source == i)
          return make_error("layer " + std::to_string(j) + " shares the K / V of layer " + std::to_string(i) +
                            ", whose cache holds only its Sequence-AltUp anchors");
      // (a period past the largest stride would multiply the graphs a session keeps)
      if (std::lcm(period_so_far, s.seq_stride) > ops::kMaxSeqStride)
        return make_error("the Sequence-AltUp strides' least common multiple exceeds " +
                          std::to_string(ops::kMaxSeqStride));
      period_so_far = std::lcm(period_so_far, s.seq_stride);
    }
    if (s.attention == AttentionKind::shared_cache) {
      if (s.kv_source < 0 || s.kv_source >= i)
        return make_error(at + " shares the K / V of layer " + std::to_string(s.kv_source) +
                          ", which is not an earlier layer");
      const LayerSpec& src = (*this)[s.kv_source];
      if (src.attention != AttentionKind::own_cache)
        return make_error(at + " shares the K / V of layer " + std::to_string(s.kv_source) + ", which has no cache");
      if (src.window != s.window)
        return make_error(at + " (window " + std::to_string(s.window) + ") shares the K / V of layer " +
                          std::to_string(s.kv_source) + " (window " + std::to_string(src.window) + ")");
    } else if (s.kv_source != -1) {
      return make_error(at + " has its own cache but names a K / V source");
    }
  }
  return {};
}

TensorId Pass::keep_last_row(TensorId state) {
  const CostScope cost(b, Cost::altup);                                      // the AltUp state's bookkeeping
  const TensorId last = b.slice_axis1("ring_last_token", state, Tr - 1, 1);  // [K, 1, d]
  Tr = 1;
  pos_r = b.view("pos_last", pos, {1}, T - 1);
  return last;
}

int64_t Decoder::cache_slots(int64_t i, int64_t ctx, int64_t max_tokens) const {
  const LayerSpec& owner = spec()[spec().cache_owner(i)];
  if (owner.seq_stride > 1) return (ctx + owner.seq_stride - 1) / owner.seq_stride;  // the anchors alone
  const int64_t w = owner.window;
  return w > 0 ? std::min(ctx, w + max_tokens) : ctx;
}

bool Decoder::cache_is_ring(int64_t i, int64_t ctx, int64_t max_tokens) const {
  const LayerSpec& owner = spec()[spec().cache_owner(i)];
  return owner.window > 0 && cache_slots(i, ctx, max_tokens) < ctx;
}

// The memory a cross-attending layer reads is one position behind its queries, so a window of
// w needs no more than w + max_tokens slots either.
int64_t Decoder::cross_cache_slots(int64_t i, int64_t ctx, int64_t max_tokens) const {
  const int64_t w = spec()[i].cross_window;
  return w > 0 ? std::min(ctx, w + max_tokens) : ctx;
}

// A cache per layer that owns one, [Hkv, slots, hd] for K and for V. A ring (fewer slots than
// the context) can take back slots - window positions with their keys intact.
std::vector<StateSpec> Decoder::state_specs(int64_t ctx, int64_t max_tokens) const {
  std::vector<StateSpec> s;
  const TransformerSizes& z = sizes();
  for (int64_t i = 0; i < spec().size(); ++i) {
    if (spec().cache_owner(i) == i) {
      const int64_t slots = cache_slots(i, ctx, max_tokens);
      const int64_t rollback = cache_is_ring(i, ctx, max_tokens) ? slots - spec()[i].window : -1;
      s.push_back({"kcache-" + std::to_string(i), {z.n_kv_heads, slots, z.head_dim}, rollback});
      s.push_back({"vcache-" + std::to_string(i), {z.n_kv_heads, slots, z.head_dim}, rollback});
    }
    if (spec()[i].cross) {
      const int64_t slots = cross_cache_slots(i, ctx, max_tokens);
      const int64_t rollback = slots < ctx ? slots - spec()[i].cross_window : -1;
      s.push_back({"xkcache-" + std::to_string(i), {z.n_kv_heads, slots, z.head_dim}, rollback});
      s.push_back({"xvcache-" + std::to_string(i), {z.n_kv_heads, slots, z.head_dim}, rollback});
    }
    if (const int64_t k = spec()[i].seq_stride; k > 1)  // each anchor's correction row (ops/seq_altup.h)
      s.push_back({"seqstate-" + std::to_string(i), {state_blocks(), (ctx + k - 1) / k, z.d}});
  }
  return s;
}

ForwardGraph Decoder::build(Graph& g, int64_t T, int64_t ctx, int64_t max_tokens, bool all_logits,
                            int64_t phase) const {
  const DecoderSpec& layers = spec();
  Builder b(g);
  ForwardGraph io;
  io.ids = b.input("ids", DType::I32, {T});
  io.pos = b.input("pos", DType::I32, {T});
  // The caches, looked up by layer (in state_specs' order): a shared layer gets its source's.
  Pass p{b};
  p.caches.resize(static_cast<size_t>(layers.size()));
  p.cross_caches.resize(static_cast<size_t>(layers.size()));
  p.seq_states.resize(static_cast<size_t>(layers.size()), kNoTensor);
  for (const StateSpec& s : state_specs(ctx, max_tokens)) io.states.push_back(b.state(s.name, s.shape));
  for (int64_t i = 0, next = 0; i < layers.size(); ++i) {
    auto take = [&](bool ring) {
      const KvCache c{io.states[static_cast<size_t>(next)], io.states[static_cast<size_t>(next + 1)], ring};
      next += 2;
      return c;
    };
    if (layers.cache_owner(i) == i) p.caches[static_cast<size_t>(i)] = take(cache_is_ring(i, ctx, max_tokens));
    if (layers[i].cross) p.cross_caches[static_cast<size_t>(i)] = take(cross_cache_slots(i, ctx, max_tokens) < ctx);
    if (layers[i].seq_stride > 1) p.seq_states[static_cast<size_t>(i)] = io.states[static_cast<size_t>(next++)];
  }
  for (int64_t i = 0; i < layers.size(); ++i)
    p.caches[static_cast<size_t>(i)] = p.caches[static_cast<size_t>(layers.cache_owner(i))];

  p.T = p.Tr = T;
  p.ids = io.ids;
  p.pos = p.pos_r = io.pos;
  p.all_logits = all_logits;
  p.phase = phase;
  p.x = prologue(p);
  const int64_t cut_at = !all_logits && T > 1 ? layers.last_cache_writer() : -1;
  for (int64_t i = 0; i < layers.size(); ++i) {
    b.layer(static_cast<int>(i));
    p.index = i;
    p.spec = &layers[i];
    p.cache = p.caches[static_cast<size_t>(i)];
    p.cross_cache = p.cross_caches[static_cast<size_t>(i)];
    p.seq_state = p.seq_states[static_cast<size_t>(i)];
    p.cut = i == cut_at;
    b.cost(Cost::other);  // until the hook says what its nodes are
    layer(p);
  }
  b.layer(-1);
  b.cost(Cost::other);
  io.logits = epilogue(p);
  b.output(io.logits);
  return io;
}

Status Decoder::bind(const GgufFile& f, std::string_view arch, const std::vector<WeightSpec>& list) {
  if (const int64_t held = layers_in_file(f); held != spec().file_layers)
    return make_error(std::string(arch) + ".block_count = " + std::to_string(spec().file_layers) +
                      " but the file holds tensors for " + std::to_string(held) + " layers (blk.N.* tensors)");
  auto w = bind_weights(f, list);
  if (!w) return w.error();
  // Tensors of the file's layers that the spec leaves out belong to the file, not to math this
  // runtime lacks.
  std::vector<bool> kept(static_cast<size_t>(spec().file_layers), false);
  for (const LayerSpec& s : spec().layers) kept[static_cast<size_t>(s.weights)] = true;
  std::erase_if(w->unused, [&](const std::string& name) {
    const int64_t l = blk_index(name);
    return l >= 0 && l < spec().file_layers && !kept[static_cast<size_t>(l)];
  });
  if (!w->unused.empty())
    return make_error("tensor " + w->unused.front() + " is not part of the " + std::string(arch) + " architecture" +
                      (w->unused.size() > 1 ? " (and " + std::to_string(w->unused.size() - 1) + " more)" : "") +
                      "; refusing a file that may need math this runtime does not do");
  bound_ = std::move(*w);
  for (const auto& [name, view] : bound_.views) file_weights_.push_back(name);
  return {};
}

uint64_t Decoder::unchosen_expert_bytes() const {
  uint64_t n = 0;
  for (const LayerSpec& s : spec().layers) {
    if (s.ffn_kind != FfnKind::moe) continue;
    for (const char* name : {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"}) {
      const auto it = bound_.views.find(blk(s.weights, name));
      if (it == bound_.views.end()) continue;
      const auto bytes = tensor_bytes(it->second.dtype, it->second.shape);
      if (bytes) n += *bytes / static_cast<uint64_t>(s.experts) * static_cast<uint64_t>(s.experts - s.experts_used);
    }
  }
  return n;
}

uint64_t Decoder::effective_parameters() const {
  uint64_t n = 0;
  for (const std::string& name : file_weights_)
    if (name != "token_embd.weight" && name != "per_layer_token_embd.weight")
      n += static_cast<uint64_t>(bound_.views.at(name).numel());
  return n;
}

Status Decoder::narrow_ffns(const std::function<bool(int64_t)>& strided_down, bool mapped) {
  for (int64_t i = 0; i < spec().size(); ++i) {
    const LayerSpec& s = spec()[i];
    if (s.ffn == s.ffn_in_file) continue;
    if (s.ffn_kind == FfnKind::moe)
      return make_error("layer " + std::to_string(i) + " is a mixture of experts: its FFN width cannot be narrowed",
                        ErrorKind::BadChoice);
    const int64_t m = s.ffn;
    for (const char* name : {"ffn_gate.weight", "ffn_up.weight"}) {
      TensorView& v = bound_.views.at(blk(s.weights, name));  // [F, d] -> its first m rows, [m, d]
      const uint64_t before = *tensor_bytes(v.dtype, v.shape);
      v.shape = Shape{m, v.cols()};
      bound_.total_bytes -= before - *tensor_bytes(v.dtype, v.shape);
    }
    const std::string down_name = blk(s.weights, "ffn_down.weight");
    TensorView& down = bound_.views.at(down_name);  // [d, F] -> the first m of every row, [d, m]
    const int64_t d = down.rows();
    auto prefix = row_bytes(down.dtype, static_cast<uint64_t>(m));
    if (!prefix)
      return make_error("layer " + std::to_string(i) + " (blk." + std::to_string(s.weights) + "): an FFN width of " +
                            std::to_string(m) + " splits the " + std::string(dtype_name(down.dtype)) + " blocks of " +
                            down_name + " (a multiple of " + std::to_string(traits(down.dtype).block_elems) +
                            " is needed)",
                        ErrorKind::BadChoice);
    const uint64_t stride = down.row_stride(), file_bytes = stride * static_cast<uint64_t>(d);
    TensorView narrow = down;
    narrow.shape = Shape{d, m};
    bound_.total_bytes -= file_bytes - *prefix * static_cast<uint64_t>(d);
    if (!strided_down(i)) {
      uint8_t* copy = narrowed_.emplace_back(new uint8_t[*prefix * static_cast<uint64_t>(d)]).get();
      for (int64_t r = 0; r < d; ++r)
        std::memcpy(copy + static_cast<uint64_t>(r) * *prefix, down.row<uint8_t>(r), *prefix);
      if (mapped) release_mapped_rows(down.data, file_bytes, down.data, file_bytes);
      narrow = TensorView::contiguous(down.dtype, narrow.shape, copy);
    }
    down = narrow;
  }
  return {};
}

}  // namespace altup
