// Zero-filled memory that the OS backs only when it is first written. KV caches are sized for
// the whole context up front (the graph addresses them by position), but a run that holds 100
// tokens of a 100k context should cost memory for 100 tokens: these pages arrive as they are
// used. Also what the session measures a context against: available_memory_bytes().
#pragma once

#include <cstdint>

#include "runtime/error.h"

namespace altup {

class ZeroPages {
 public:
  ZeroPages() = default;
  ZeroPages(ZeroPages&& o) noexcept : data_(o.data_), bytes_(o.bytes_) { o.data_ = nullptr, o.bytes_ = 0; }
  ZeroPages& operator=(ZeroPages&& o) noexcept;
  ZeroPages(const ZeroPages&) = delete;
  ZeroPages& operator=(const ZeroPages&) = delete;
  ~ZeroPages();

  // Reserves `bytes` of address space; an error (never an exception) if it cannot.
  static Result<ZeroPages> reserve(uint64_t bytes);

  float* floats() const { return static_cast<float*>(data_); }
  uint64_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  uint64_t bytes_ = 0;
};

// Memory the system can give this process now without swapping (MemAvailable), or 0 if unknown.
uint64_t available_memory_bytes();

}  // namespace altup
