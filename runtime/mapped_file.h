// A read-only memory mapping of a whole file. Weights are used straight from the mapping:
// loading a model costs page-ins, not copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/error.h"

namespace altup {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// After reading [p, p + n) of a read-only file mapping (a row of a table that is only ever
// looked up, a token at a time), drops the process's mapping of the pages around it, inside
// [table, table + table_bytes): the page cache keeps them, but they stop counting as resident.
// A kernel with large page-cache folios maps up to 2 MiB around every row read, so without
// this a table meant to stay out of memory becomes resident token by token. Only for file
// mappings: on ordinary memory it would discard the data. A hint: failures are ignored.
void release_mapped_rows(const void* table, uint64_t table_bytes, const void* p, uint64_t n);

}  // namespace altup
