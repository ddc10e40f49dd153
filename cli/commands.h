// Subcommands of the `altup` program. Each takes the arguments after its name and returns
// the process exit status: 0 success, 1 failure (a message on stderr), 2 bad usage.
#pragma once

namespace altup::cli {

int cmd_info(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_profile(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);

}  // namespace altup::cli
