#include "cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace altup::cli::interrupt {

namespace {
constexpr int kSlots = 8;
constexpr size_t kPathMax = 4096;
volatile sig_atomic_t g_requested = 0, g_immediate = 0;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];

[[noreturn]] void leave() {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load()) unlink(g_paths[i]);
  const char nl = '\n';
  (void)!write(STDOUT_FILENO, &nl, 1);
  _exit(130);
}

void on_signal(int) {
  if (g_requested || g_immediate) leave();
  g_requested = 1;
}
}  // namespace

void install() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool requested() { return g_requested != 0; }
void clear() { g_requested = 0; }
void set_immediate(bool immediate) { g_immediate = immediate ? 1 : 0; }

void register_temp(const char* path) {
  if (std::strlen(path) >= kPathMax) return;
  for (int i = 0; i < kSlots; ++i)
    if (!g_used[i].load()) {
      std::strcpy(g_paths[i], path);
      g_used[i].store(true);
      return;
    }
}

void unregister_temp(const char* path) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load() && std::strcmp(g_paths[i], path) == 0) {
      g_used[i].store(false);
      return;
    }
}

}  // namespace altup::cli::interrupt
