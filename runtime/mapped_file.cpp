#include "runtime/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace altup {

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the
  // type check below then refuses it. (It changes nothing for regular files.)
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return make_error("cannot open " + path + ": " + std::strerror(errno), ErrorKind::Io);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error("cannot stat " + path + ": " + std::strerror(e), ErrorKind::Io);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* what = S_ISDIR(st.st_mode)                          ? "a directory"
                       : S_ISFIFO(st.st_mode)                       ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISSOCK(st.st_mode)                       ? "a socket"
                                                                    : "not a regular file";
    return make_error(path + " is " + what + ", not a model file", ErrorKind::Io);
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return make_error("cannot map " + path + ": " + std::strerror(e), ErrorKind::Io);
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void release_mapped_rows(const void* table, uint64_t table_bytes, const void* p, uint64_t n) {
  constexpr uintptr_t kWindow = uintptr_t{2} << 20;  // the largest folio a fault may map
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto t0 = reinterpret_cast<uintptr_t>(table), t1 = t0 + table_bytes;
  const auto lo = std::max((reinterpret_cast<uintptr_t>(p)) / kWindow * kWindow, (t0 + page - 1) / page * page);
  const auto hi = std::min((reinterpret_cast<uintptr_t>(p) + n + kWindow - 1) / kWindow * kWindow, t1 / page * page);
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

}  // namespace altup
