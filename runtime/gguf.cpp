#include "runtime/gguf.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "runtime/mapped_file.h"

namespace altup {

struct GgufFile::Storage {
  std::unique_ptr<MappedFile> mapped;
  std::vector<uint8_t> owned;
};

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                      // empty key len, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, 1 dim, type, offset

std::string at_offset(uint64_t off) { return " at offset " + std::to_string(off); }

// A bounds-checked reader over the file's bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, uint64_t n) : p_(p), n_(n) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return n_ - pos_; }

  Status need(uint64_t bytes, const char* what) const {
    if (bytes > left())
      return make_error(std::string("truncated ") + what + at_offset(pos_) + ": need " + std::to_string(bytes) +
                        " bytes, " + std::to_string(left()) + " left");
    return {};
  }
  template <class T>
  Status read(T* out, const char* what) {
    ALTUP_TRY(need(sizeof(T), what));
    std::memcpy(out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return {};
  }
  Status read_string(std::string_view* out, const char* what) {
    uint64_t len;
    ALTUP_TRY(read(&len, what));
    if (len > left())
      return make_error(std::string("truncated ") + what + at_offset(pos_ - 8) + ": length " + std::to_string(len) +
                        " but " + std::to_string(left()) + " bytes left");
    *out = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return {};
  }
  const uint8_t* here() const { return p_ + pos_; }
  void skip(uint64_t n) { pos_ += n; }

 private:
  const uint8_t* p_;
  uint64_t n_;
  uint64_t pos_ = 0;
};

uint64_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL: return 1;
    case GgufType::U16:
    case GgufType::I16: return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32: return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64: return 8;
    default: return 0;  // string, array: variable size
  }
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// Decode one scalar into the value's u/i/f fields.
void decode_scalar(GgufType t, const uint8_t* p, GgufValue* v) {
  auto get = [p](auto x) {
    std::memcpy(&x, p, sizeof x);
    return x;
  };
  switch (t) {
    case GgufType::U8: v->u = get(uint8_t{}); break;
    case GgufType::I8: v->i = get(int8_t{}); break;
    case GgufType::U16: v->u = get(uint16_t{}); break;
    case GgufType::I16: v->i = get(int16_t{}); break;
    case GgufType::U32: v->u = get(uint32_t{}); break;
    case GgufType::I32: v->i = get(int32_t{}); break;
    case GgufType::U64: v->u = get(uint64_t{}); break;
    case GgufType::I64: v->i = get(int64_t{}); break;
    case GgufType::F32: v->f = get(float{}); break;
    case GgufType::F64: v->f = get(double{}); break;
    case GgufType::BOOL: v->u = get(uint8_t{}); break;
    default: break;
  }
}

Status read_value(Cursor& c, GgufType type, GgufValue* v, const std::string& key, int depth) {
  v->type = type;
  if (type == GgufType::STRING) return c.read_string(&v->str, "string value");
  if (type != GgufType::ARRAY) {
    const uint64_t n = scalar_size(type);
    ALTUP_TRY(c.need(n, "metadata value"));
    if (type == GgufType::BOOL && *c.here() > 1)
      return make_error("key " + key + ": bool value " + std::to_string(*c.here()) + " is not 0 or 1");
    decode_scalar(type, c.here(), v);
    c.skip(n);
    return {};
  }
  if (depth >= kMaxArrayDepth)
    return make_error("key " + key + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  uint32_t et;
  ALTUP_TRY(c.read(&et, "array header"));
  if (!known_type(et)) return make_error("key " + key + ": array of unknown value type " + std::to_string(et));
  v->elem_type = static_cast<GgufType>(et);
  ALTUP_TRY(c.read(&v->count, "array header"));
  // Every element takes at least this many bytes; checking first means an absurd count
  // fails here instead of in an allocation.
  const uint64_t min_elem = v->elem_type == GgufType::STRING  ? 8
                            : v->elem_type == GgufType::ARRAY ? 12
                                                              : scalar_size(v->elem_type);
  if (v->count > c.left() / min_elem)
    return make_error("key " + key + ": array of " + std::to_string(v->count) + " elements" + at_offset(c.pos()) +
                      " cannot fit in the " + std::to_string(c.left()) + " bytes left");
  if (v->elem_type == GgufType::STRING) {
    v->strings.resize(v->count);
    for (auto& s : v->strings) ALTUP_TRY(c.read_string(&s, "string array element"));
  } else if (v->elem_type == GgufType::ARRAY) {
    v->items.resize(v->count);
    for (auto& item : v->items) ALTUP_TRY(read_value(c, GgufType::ARRAY, &item, key, depth + 1));
  } else {
    if (v->elem_type == GgufType::BOOL)
      for (uint64_t k = 0; k < v->count; ++k)
        if (c.here()[k] > 1) return make_error("key " + key + ": bool array element is not 0 or 1");
    v->raw = c.here();
    c.skip(v->count * min_elem);
  }
  return {};
}

std::string quoted(std::string_view s, size_t max_len = 60) {
  std::string out = "\"";
  for (size_t k = 0; k < s.size() && k < max_len; ++k) {
    const unsigned char ch = static_cast<unsigned char>(s[k]);
    if (ch == '\n')
      out += "\\n";
    else if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20 || ch == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", ch);
      out += b;
    } else
      out += static_cast<char>(ch);
  }
  if (s.size() > max_len) out += "...";
  return out + "\"";
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    const unsigned char c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else
      return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Reject overlong forms, surrogates and code points past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
    i += len;
  }
  return true;
}

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  const auto k = static_cast<uint32_t>(t);
  return k < std::size(names) ? names[k] : std::string_view("unknown");
}

std::string GgufValue::to_string(size_t max_items) const {
  auto scalar = [](GgufType t, const GgufValue& v) -> std::string {
    switch (t) {
      case GgufType::U8:
      case GgufType::U16:
      case GgufType::U32:
      case GgufType::U64: return std::to_string(v.u);
      case GgufType::I8:
      case GgufType::I16:
      case GgufType::I32:
      case GgufType::I64: return std::to_string(v.i);
      case GgufType::F32:
      case GgufType::F64: {
        char b[32];
        std::snprintf(b, sizeof b, "%.9g", v.f);
        return b;
      }
      case GgufType::BOOL: return v.u ? "true" : "false";
      case GgufType::STRING: return quoted(v.str);
      default: return "?";
    }
  };
  if (type != GgufType::ARRAY) return scalar(type, *this);
  std::string s = "[" + std::to_string(count) + " x " + std::string(gguf_type_name(elem_type)) + "]";
  const uint64_t shown = std::min<uint64_t>(count, max_items);
  s += " {";
  for (uint64_t k = 0; k < shown; ++k) {
    if (k) s += ", ";
    if (elem_type == GgufType::STRING) {
      s += quoted(strings[k], 24);
    } else if (elem_type == GgufType::ARRAY) {
      s += items[k].to_string(2);
    } else {
      GgufValue e;
      decode_scalar(elem_type, raw + k * scalar_size(elem_type), &e);
      s += scalar(elem_type, e);
    }
  }
  if (count > shown) s += ", ...";
  return s + "}";
}

bool GgufFile::mapped() const { return storage_ && storage_->mapped != nullptr; }

GgufFile::~GgufFile() = default;

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->storage_ = std::make_unique<Storage>();
  f->bytes_ = (*mapped)->data();
  f->size_ = (*mapped)->size();
  f->storage_->mapped = std::move(*mapped);
  return parse_bytes(std::move(f));
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(std::vector<uint8_t> bytes) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->storage_ = std::make_unique<Storage>();
  f->storage_->owned = std::move(bytes);
  f->bytes_ = f->storage_->owned.data();
  f->size_ = f->storage_->owned.size();
  return parse_bytes(std::move(f));
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse_bytes(std::unique_ptr<GgufFile> f) {
  Cursor c(f->bytes_, f->size_);

  // Header: magic, version, tensor count, metadata count.
  uint32_t magic;
  if (f->size_ < 4) return make_error("not a GGUF file: only " + std::to_string(f->size_) + " bytes");
  ALTUP_TRY(c.read(&magic, "header"));
  if (magic != kMagic) {
    std::string got(reinterpret_cast<const char*>(f->bytes_), 4);
    return make_error("not a GGUF file: bad magic " + quoted(got) + " (expected \"GGUF\")");
  }
  ALTUP_TRY(c.read(&f->version_, "header"));
  if (f->version_ == 0x03000000u || f->version_ == 0x02000000u)
    return make_error("big-endian GGUF files are not supported");
  if (f->version_ != 2 && f->version_ != 3)
    return make_error("unsupported GGUF version " + std::to_string(f->version_) + " (expected 3)");
  uint64_t n_tensors, n_kv;
  ALTUP_TRY(c.read(&n_tensors, "header"));
  ALTUP_TRY(c.read(&n_kv, "header"));
  if (n_kv > c.left() / kMinKvBytes)
    return make_error("metadata count " + std::to_string(n_kv) + " cannot fit in a file of " +
                      std::to_string(f->size_) + " bytes");
  if (n_tensors > c.left() / kMinTensorInfoBytes)
    return make_error("tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " +
                      std::to_string(f->size_) + " bytes");

  // Metadata.
  f->kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const uint64_t key_at = c.pos();
    std::string_view key;
    ALTUP_TRY(c.read_string(&key, "metadata key"));
    if (key.empty()) return make_error("metadata key #" + std::to_string(k) + " is empty" + at_offset(key_at));
    if (!is_valid_utf8(key))
      return make_error("metadata key #" + std::to_string(k) + at_offset(key_at) + " is not valid UTF-8");
    std::string name(key);
    if (f->kv_index_.count(name)) return make_error("duplicate metadata key " + name);
    uint32_t type;
    ALTUP_TRY(c.read(&type, "metadata value type"));
    if (!known_type(type)) return make_error("key " + name + " has unknown value type " + std::to_string(type));
    GgufValue v;
    ALTUP_TRY(read_value(c, static_cast<GgufType>(type), &v, name, 0));
    f->kv_index_.emplace(name, f->kv_.size());
    f->kv_.emplace_back(std::move(name), std::move(v));
  }

  if (const GgufValue* a = f->find("general.alignment")) {
    if (a->type != GgufType::U32)
      return make_error("key general.alignment is " + std::string(gguf_type_name(a->type)) + ", expected u32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      return make_error("general.alignment " + std::to_string(a->u) + " is not a power of two");
    f->alignment_ = a->u;
  }

  // Tensor infos.
  f->tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    const uint64_t info_at = c.pos();
    std::string_view name;
    ALTUP_TRY(c.read_string(&name, "tensor name"));
    const std::string label = "tensor #" + std::to_string(k);
    if (name.empty()) return make_error(label + " has an empty name" + at_offset(info_at));
    if (!is_valid_utf8(name)) return make_error(label + " name is not valid UTF-8" + at_offset(info_at));
    GgufTensorInfo t;
    t.name = std::string(name);
    if (f->tensor_index_.count(t.name)) return make_error("duplicate tensor name " + t.name);
    uint32_t n_dims;
    ALTUP_TRY(c.read(&n_dims, "tensor info"));
    if (n_dims == 0 || n_dims > kMaxDims)
      return make_error("tensor " + t.name + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    uint64_t ne[kMaxDims];
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ALTUP_TRY(c.read(&ne[d], "tensor info"));
      if (ne[d] > static_cast<uint64_t>(INT64_MAX) || mul_overflows(numel, ne[d], &numel) ||
          numel > static_cast<uint64_t>(INT64_MAX))
        return make_error("tensor " + t.name + ": element count overflows");
    }
    uint32_t type;
    ALTUP_TRY(c.read(&type, "tensor info"));
    if (!dtype_traits(type)) return make_error("tensor " + t.name + " has unknown type " + std::to_string(type));
    t.dtype = static_cast<DType>(type);
    ALTUP_TRY(c.read(&t.offset, "tensor info"));
    if (t.offset % f->alignment_ != 0)
      return make_error("tensor " + t.name + ": offset " + std::to_string(t.offset) +
                        " is not a multiple of the alignment " + std::to_string(f->alignment_));
    t.shape.ndim = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) t.shape.dims[n_dims - 1 - d] = static_cast<int64_t>(ne[d]);
    auto bytes = tensor_bytes(t.dtype, t.shape);
    if (!bytes)
      return make_error("tensor " + t.name + " " + t.shape.str() + " " + std::string(dtype_name(t.dtype)) + ": " +
                        bytes.error().message);
    t.nbytes = *bytes;
    f->tensor_index_.emplace(t.name, f->tensors_.size());
    f->tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment.
  uint64_t data_offset = c.pos();
  const uint64_t rem = data_offset % f->alignment_;
  if (rem && add_overflows(data_offset, f->alignment_ - rem, &data_offset)) return make_error("data offset overflows");
  f->data_offset_ = data_offset;
  if (!f->tensors_.empty() && data_offset > f->size_)
    return make_error("truncated: the data section would start at offset " + std::to_string(data_offset) +
                      " but the file has " + std::to_string(f->size_) + " bytes");

  for (auto& t : f->tensors_) {
    uint64_t begin, end;
    if (add_overflows(data_offset, t.offset, &begin) || add_overflows(begin, t.nbytes, &end) || end > f->size_)
      return make_error("tensor " + t.name + ": data at offset " + std::to_string(t.offset) + " (" +
                        std::to_string(t.nbytes) + " bytes) runs past the end of the file (" +
                        std::to_string(f->size_) + " bytes)");
    t.data = f->bytes_ + begin;
  }

  // No two tensors may share bytes.
  std::vector<const GgufTensorInfo*> order;
  for (const auto& t : f->tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto* prev = order[k - 1];
    if (prev->nbytes > 0 && prev->offset + prev->nbytes > order[k]->offset)
      return make_error("tensors " + prev->name + " and " + order[k]->name + " overlap (" + prev->name + " needs " +
                        std::to_string(prev->nbytes) + " bytes from offset " + std::to_string(prev->offset) + ", " +
                        order[k]->name + " starts at " + std::to_string(order[k]->offset) + ")");
  }
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view GgufFile::architecture() const {
  const GgufValue* v = find("general.architecture");
  return v && v->type == GgufType::STRING ? v->str : std::string_view();
}

namespace {
Result<const GgufValue*> typed(const GgufFile& f, std::string_view key, GgufType want) {
  const GgufValue* v = f.find(key);
  if (!v) return make_error("missing key " + std::string(key));
  if (v->type != want)
    return make_error("key " + std::string(key) + " is " + std::string(gguf_type_name(v->type)) + ", expected " +
                      std::string(gguf_type_name(want)));
  return v;
}
}  // namespace

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  auto v = typed(*this, key, GgufType::U32);
  if (!v) return v.error();
  return static_cast<uint32_t>((*v)->u);
}
Result<int32_t> GgufFile::get_i32(std::string_view key) const {
  auto v = typed(*this, key, GgufType::I32);
  if (!v) return v.error();
  return static_cast<int32_t>((*v)->i);
}
Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  auto v = typed(*this, key, GgufType::U64);
  if (!v) return v.error();
  return (*v)->u;
}
Result<float> GgufFile::get_f32(std::string_view key) const {
  auto v = typed(*this, key, GgufType::F32);
  if (!v) return v.error();
  return static_cast<float>((*v)->f);
}
Result<bool> GgufFile::get_bool(std::string_view key) const {
  auto v = typed(*this, key, GgufType::BOOL);
  if (!v) return v.error();
  return (*v)->u != 0;
}
Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  auto v = typed(*this, key, GgufType::STRING);
  if (!v) return v.error();
  return (*v)->str;
}
Result<uint64_t> GgufFile::get_count(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return make_error("missing key " + std::string(key));
  switch (v->type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64: return v->u;
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      if (v->i < 0) return make_error("key " + std::string(key) + " is negative (" + std::to_string(v->i) + ")");
      return static_cast<uint64_t>(v->i);
    default:
      return make_error("key " + std::string(key) + " is " + std::string(gguf_type_name(v->type)) +
                        ", expected an integer");
  }
}
Result<const GgufValue*> GgufFile::get_array(std::string_view key, GgufType elem) const {
  auto v = typed(*this, key, GgufType::ARRAY);
  if (!v) return v.error();
  if ((*v)->elem_type != elem)
    return make_error("key " + std::string(key) + " is an array of " + std::string(gguf_type_name((*v)->elem_type)) +
                      ", expected an array of " + std::string(gguf_type_name(elem)));
  return *v;
}

}  // namespace altup
