// libFuzzer target: the GGUF reader on arbitrary bytes. Every file either parses, with every
// value and tensor then readable within bounds, or gives an error; nothing else.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = altup::GgufFile::parse(std::vector<uint8_t>(data, data + size));
  if (!f) return 0;
  const altup::GgufFile& file = **f;
  size_t sink = 0;
  for (const auto& [key, value] : file.metadata()) sink += value.to_string().size() + key.size();
  for (const auto& t : file.tensors()) {
    // Touch the first and last byte of each tensor: the reader promised they are in the file.
    if (t.nbytes) sink += t.data[0] + t.data[t.nbytes - 1];
    sink += file.tensor(t.name) == &t;
  }
  (void)file.get_count("general.alignment");
  (void)file.architecture();
  return static_cast<int>(sink & 0);
}
