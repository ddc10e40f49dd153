// The GGUF reader against files written by llama.cpp's `gguf` Python package. What each file
// holds is recorded by that package's own reader in fixtures/gguf_expected.txt
// (fixtures/make_gguf_fixtures.py makes both).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/gguf.h"
#include "tests/gguf_builder.h"

using namespace altup;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream ss(s);
  while (std::getline(ss, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

std::string unhex(const std::string& h) {
  if (h == "-") return "";
  std::string out;
  for (size_t k = 0; k + 1 < h.size(); k += 2) out += static_cast<char>(std::stoi(h.substr(k, 2), nullptr, 16));
  return out;
}

const std::map<std::string, GgufType> kTypeByName = {
    {"UINT8", GgufType::U8},      {"INT8", GgufType::I8},    {"UINT16", GgufType::U16},  {"INT16", GgufType::I16},
    {"UINT32", GgufType::U32},    {"INT32", GgufType::I32},  {"FLOAT32", GgufType::F32}, {"BOOL", GgufType::BOOL},
    {"STRING", GgufType::STRING}, {"UINT64", GgufType::U64}, {"INT64", GgufType::I64},   {"FLOAT64", GgufType::F64},
};

// Compare one scalar (or array element, read from `raw`) with its recorded text.
void check_scalar(GgufType t, const GgufValue& v, const std::string& want) {
  switch (t) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
    case GgufType::BOOL: CHECK(v.u == std::stoull(want)); break;
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64: CHECK(v.i == std::stoll(want)); break;
    case GgufType::F32: CHECK(static_cast<float>(v.f) == std::stof(want)); break;
    case GgufType::F64: CHECK(v.f == std::stod(want)); break;
    case GgufType::STRING: CHECK(std::string(v.str) == unhex(want)); break;
    default: FAIL("unexpected type");
  }
}

GgufValue element(const GgufValue& arr, uint64_t k) {
  GgufValue e;
  e.type = arr.elem_type;
  switch (arr.elem_type) {
    case GgufType::U8:
    case GgufType::BOOL: e.u = arr.at<uint8_t>(k); break;
    case GgufType::I8: e.i = arr.at<int8_t>(k); break;
    case GgufType::U16: e.u = arr.at<uint16_t>(k); break;
    case GgufType::I16: e.i = arr.at<int16_t>(k); break;
    case GgufType::U32: e.u = arr.at<uint32_t>(k); break;
    case GgufType::I32: e.i = arr.at<int32_t>(k); break;
    case GgufType::U64: e.u = arr.at<uint64_t>(k); break;
    case GgufType::I64: e.i = arr.at<int64_t>(k); break;
    case GgufType::F32: e.f = arr.at<float>(k); break;
    case GgufType::F64: e.f = arr.at<double>(k); break;
    case GgufType::STRING: e.str = arr.strings[k]; break;
    default: break;
  }
  return e;
}

}  // namespace

TEST_CASE("reads every fixture exactly as the gguf package reads it") {
  std::ifstream in(ALTUP_FIXTURES_DIR "/gguf_expected.txt");
  REQUIRE(in.good());
  std::unique_ptr<GgufFile> file;
  std::string line;
  int files = 0, kvs = 0, tensors = 0;
  while (std::getline(in, line)) {
    const auto f = split(line, '\t');
    if (f[0] == "file") {
      auto r = GgufFile::open(std::string(ALTUP_FIXTURES_DIR) + "/" + f[1]);
      REQUIRE_MESSAGE(r.ok(), f[1] << ": " << (r.ok() ? "" : r.error().message));
      file = std::move(*r);
      CHECK(file->metadata().size() == std::stoull(f[2]));
      CHECK(file->tensors().size() == std::stoull(f[3]));
      CHECK(file->alignment() == std::stoull(f[4]));
      CHECK(file->data_offset() == std::stoull(f[5]));
      ++files;
    } else if (f[0] == "kv") {
      CAPTURE(f[1]);
      const GgufValue* v = file->find(f[1]);
      REQUIRE(v != nullptr);
      if (f[2] == "array") {
        REQUIRE(v->type == GgufType::ARRAY);
        if (f[3] == "array") {
          CHECK(v->elem_type == GgufType::ARRAY);
        } else {
          const GgufType et = kTypeByName.at(f[3]);
          REQUIRE(v->elem_type == et);
          REQUIRE(v->count == std::stoull(f[4]));
          const auto items = split(f[5], ',');
          for (uint64_t k = 0; k < v->count; ++k) check_scalar(et, element(*v, k), items[k]);
        }
      } else {
        REQUIRE(v->type == kTypeByName.at(f[2]));
        check_scalar(v->type, *v, f[3]);
      }
      ++kvs;
    } else if (f[0] == "tensor") {
      CAPTURE(f[1]);
      const GgufTensorInfo* t = file->tensor(f[1]);
      REQUIRE(t != nullptr);
      CHECK(dtype_name(t->dtype) == f[2]);
      const auto dims = split(f[3], ',');
      REQUIRE(t->shape.ndim == static_cast<int>(dims.size()));
      for (size_t d = 0; d < dims.size(); ++d) CHECK(t->shape[static_cast<int>(d)] == std::stoll(dims[d]));
      CHECK(t->nbytes == std::stoull(f[4]));
      CHECK(t->offset == std::stoull(f[5]));
      // Decode the whole tensor with the runtime's decoder and compare with gguf's dequantize.
      std::vector<float> values(static_cast<size_t>(t->shape.numel()));
      const int64_t rows = t->shape.rows(), cols = t->shape.inner();
      const uint64_t rb = *row_bytes(t->dtype, static_cast<uint64_t>(cols));
      for (int64_t r = 0; r < rows; ++r)
        REQUIRE(dequantize_row(t->dtype, t->data + r * rb, values.data() + r * cols, static_cast<uint64_t>(cols)).ok());
      double sum = 0;
      for (float x : values) sum += x;
      CHECK(sum == doctest::Approx(std::stod(f[6])).epsilon(1e-9));
      const auto head = split(f[7], ',');
      for (size_t k = 0; k < head.size(); ++k) CHECK(values[k] == std::stof(head[k]));
      ++tensors;
    }
  }
  CHECK(files == 3);
  CHECK(kvs >= 40);
  CHECK(tensors == 22);
}

TEST_CASE("nested arrays keep their structure") {
  auto f = GgufFile::open(ALTUP_FIXTURES_DIR "/all_types.gguf");
  REQUIRE(f.ok());
  const GgufValue* v = (*f)->find("test.arr_nested");
  REQUIRE(v);
  REQUIRE(v->elem_type == GgufType::ARRAY);
  REQUIRE(v->items.size() == 2);
  REQUIRE(v->items[0].count == 2);
  CHECK(v->items[0].at<int32_t>(0) + 0 == 1);  // gguf writes python ints in nested arrays as i32
  CHECK(v->items[1].count == 1);
}

TEST_CASE("typed getters name the key and both types") {
  auto f = GgufFile::open(ALTUP_FIXTURES_DIR "/all_types.gguf");
  REQUIRE(f.ok());
  const GgufFile& g = **f;
  CHECK(*g.get_u32("test.u32") == 4000000000u);
  CHECK(*g.get_i32("test.i32") == -2000000000);
  CHECK(*g.get_u64("test.u64") == 18000000000000000000ull);
  CHECK(*g.get_f32("test.f32") == 3.25f);
  CHECK(*g.get_bool("test.bool_true"));
  CHECK(*g.get_string("general.architecture") == "test");
  CHECK(*g.get_count("test.u8") == 200);
  CHECK(g.architecture() == "test");

  auto missing = g.get_u32("altup.block_count");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "missing key altup.block_count");
  auto wrong = g.get_f32("test.u32");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message == "key test.u32 is u32, expected f32");
  auto neg = g.get_count("test.i32");
  REQUIRE_FALSE(neg.ok());
  CHECK(neg.error().message.find("negative") != std::string::npos);
  auto arr = g.get_array("test.arr_u8", GgufType::U32);
  REQUIRE_FALSE(arr.ok());
  CHECK(arr.error().message == "key test.arr_u8 is an array of u8, expected an array of u32");
  CHECK(g.get_array("test.arr_str", GgufType::STRING).ok());
}

TEST_CASE("an empty array, which the gguf package cannot write, reads back as empty") {
  auto spec = test::valid_spec();
  spec.kvs.push_back(test::kv_i32_array("test.empty", {}));
  auto f = GgufFile::parse(test::build(spec));
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  const GgufValue* v = (*f)->find("test.empty");
  REQUIRE(v);
  CHECK(v->count == 0);
  CHECK(v->to_string() == "[0 x i32] {}");
}

TEST_CASE("tensor views are row-major with the file's dimensions reversed") {
  auto f = GgufFile::open(ALTUP_FIXTURES_DIR "/llama_like.gguf");
  REQUIRE(f.ok());
  const GgufTensorInfo* t = (*f)->tensor("blk.0.attn_k.weight");
  REQUIRE(t);
  CHECK(t->shape == Shape{32, 64});  // [out, in]
  const TensorView v = t->view();
  CHECK(v.rows() == 32);
  CHECK(v.cols() == 64);
  CHECK(v.row_stride() == 68);  // two q8_0 blocks
  CHECK(reinterpret_cast<uintptr_t>(t->data) % 32 == 0);
}
