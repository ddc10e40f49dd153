#include "runtime/zero_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace altup {

ZeroPages& ZeroPages::operator=(ZeroPages&& o) noexcept {
  if (this != &o) {
    this->~ZeroPages();
    data_ = o.data_;
    bytes_ = o.bytes_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

ZeroPages::~ZeroPages() {
  if (data_) munmap(data_, bytes_);
}

Result<ZeroPages> ZeroPages::reserve(uint64_t bytes) {
  ZeroPages z;
  if (bytes == 0) return z;
  // Anonymous private pages read as zeros and are backed on first write; MAP_NORESERVE keeps
  // a large, mostly unused reservation from counting against the commit limit.
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return make_error("cannot reserve " + std::to_string(bytes >> 20) + " MiB: " + std::strerror(errno),
                      ErrorKind::OutOfMemory);
  z.data_ = p;
  z.bytes_ = bytes;
  return z;
}

uint64_t available_memory_bytes() {
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found) return static_cast<uint64_t>(kib) * 1024;
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

}  // namespace altup
