// Ctrl-C (SIGINT) and SIGTERM for the commands, as llama-cli does it: the first one asks the
// running command to stop where it can (the reply ends, the summary is printed, exit 130); a
// second one, or the first where the command said it may leave at once, removes the
// temporary files still registered and exits with 130 straight away. The handler only sets
// a flag, unlinks and exits: all async-signal-safe.
#pragma once

namespace altup::cli::interrupt {

void install();
// Whether a stop was asked for since install() or the last clear().
bool requested();
void clear();
// true: the next signal leaves at once (a command waiting for input, or with nothing to end
// gracefully); false: it only sets the flag.
void set_immediate(bool immediate);
// Temporary files removed when a signal makes the program leave (AtomicFile registers its own).
void register_temp(const char* path);
void unregister_temp(const char* path);

}  // namespace altup::cli::interrupt
