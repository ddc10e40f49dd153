#include "cli/util.h"

#include "cli/interrupt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace altup::cli {

namespace {

// Why `path` must not be replaced, or "" if it may.
std::string refuse_target(const std::string& path, const std::vector<Input>& inputs) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "";
  if (!S_ISREG(st.st_mode))
    return path + " exists and is not a regular file (a directory, link, FIFO or device); not replacing it";
  for (const Input& in : inputs) {
    struct stat ist {};
    if (!in.path.empty() && stat(in.path.c_str(), &ist) == 0 && ist.st_dev == st.st_dev && ist.st_ino == st.st_ino)
      return path + " is " + in.what + " itself; not overwriting it";
  }
  return "";
}

}  // namespace

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) {
    unlink(tmp_.c_str());
    interrupt::unregister_temp(tmp_.c_str());
  }
}

bool AtomicFile::open(const std::string& path, const std::vector<Input>& inputs, std::string* why) {
  if (std::string r = refuse_target(path, inputs); !r.empty()) {
    *why = r;
    return false;
  }
  std::string tmp = path + ".XXXXXX";
  fd_ = mkstemp(tmp.data());
  if (fd_ < 0) {
    *why = "cannot create a temporary file beside " + path + ": " + std::strerror(errno);
    return false;
  }
  fchmod(fd_, 0644);  // mkstemp makes it 0600; an output file is an ordinary file
  path_ = path;
  tmp_ = tmp;
  interrupt::register_temp(tmp_.c_str());  // removed if Ctrl-C ends the program
  return true;
}

bool AtomicFile::write(const void* data, size_t n, std::string* why) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *why = "cannot write " + tmp_ + ": " + std::strerror(w < 0 ? errno : ENOSPC);
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool AtomicFile::commit(std::string* why) {
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    *why = "cannot write " + tmp_ + ": " + std::strerror(errno);
    return false;
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    *why = "cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno);
    return false;
  }
  interrupt::unregister_temp(tmp_.c_str());
  tmp_.clear();
  return true;
}

bool check_output_path(const std::string& path, const std::vector<Input>& inputs, std::string* why) {
  if (std::string r = refuse_target(path, inputs); !r.empty()) {
    *why = r;
    return false;
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *why = path + ": the folder " + dir + " does not exist";
    return false;
  }
  return true;
}

bool read_file(const std::string& path, std::string* out, std::string* why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    *why = path + " is a directory, not a file";
    return false;
  }
  out->clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = "cannot read " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& text, const std::vector<Input>& inputs,
                       std::string* why) {
  AtomicFile f;
  return f.open(path, inputs, why) && f.write(text.data(), text.size(), why) && f.commit(why);
}

std::string npy_header(const char* descr, const std::vector<int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (int64_t d : shape) dict += std::to_string(d) + ", ";
  if (shape.size() > 1) dict.resize(dict.size() - 1);  // "(T, V)"; a 1-d shape keeps "(T,)"
  if (shape.size() > 1)
    dict.back() = ')';
  else
    dict += ")";
  dict += ", }";
  // Magic, version 1.0, a little-endian u16 header length; the whole header padded with
  // spaces to a multiple of 64 bytes and ended by a newline.
  std::string h = std::string("\x93NUMPY\x01\x00", 8);
  const size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - 10 - dict.size() - 1, ' ');
  dict += '\n';
  h += static_cast<char>(dict.size() & 0xff);
  h += static_cast<char>(dict.size() >> 8);
  return h + dict;
}

bool stdout_ok(const char* command) {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  const int e = errno;
  std::fprintf(stderr, "altup %s: error: cannot write to standard output: %s\n", command,
               e ? std::strerror(e) : "write error");
  return false;
}

}  // namespace altup::cli
