#include "cli/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace altup::cli {

bool write_file_atomic(const std::string& path, const std::string& text, const std::string& protect, std::string* why) {
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      *why = path + " exists and is not a regular file (a directory, link, FIFO or device); not replacing it";
      return false;
    }
    struct stat pst {};
    if (!protect.empty() && stat(protect.c_str(), &pst) == 0 && pst.st_dev == st.st_dev && pst.st_ino == st.st_ino) {
      *why = path + " is the model file itself; not overwriting it";
      return false;
    }
  }
  std::string tmp = path + ".XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) {
    *why = "cannot create a temporary file beside " + path + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  const int write_errno = errno;
  fchmod(fd, 0644);  // mkstemp makes it 0600; an output file is an ordinary file
  const bool closed = ::close(fd) == 0;
  if (done != text.size() || !closed) {
    *why = "cannot write " + tmp + ": " + std::strerror(done != text.size() ? write_errno : errno);
    unlink(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool stdout_ok(const char* command) {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  const int e = errno;
  std::fprintf(stderr, "altup %s: error: cannot write to standard output: %s\n", command,
               e ? std::strerror(e) : "write error");
  return false;
}

}  // namespace altup::cli
