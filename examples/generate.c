/* Generates text with altup.cpp's C API.
 *   cc generate.c $(pkg-config --cflags --libs altup) -o generate
 *   ./generate MODEL.gguf "And God said" 32 */
#include <altup.h>
#include <stdio.h>
#include <stdlib.h>

static int print_token(int32_t token, const char* text, void* user) {
  (void)token;
  (void)user;
  fputs(text, stdout); /* streamed as each token is generated */
  fflush(stdout);
  return 0; /* non-zero would stop the generation */
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.gguf PROMPT [TOKENS]\n", argv[0]);
    return 2;
  }
  altup_model* model = NULL;
  altup_session* session = NULL;
  altup_stop_reason stop;
  altup_session_options opt = altup_session_default_options();
  opt.temperature = 0; /* greedy: the same text every time */
  if (altup_model_open(argv[1], &model) != ALTUP_OK ||
      altup_session_create(model, &opt, &session) != ALTUP_OK) {
    fprintf(stderr, "error: %s\n", altup_last_error());
    altup_model_free(model);
    return 1;
  }
  fputs(argv[2], stdout);
  altup_status st = altup_generate(session, argv[2], argc > 3 ? atoi(argv[3]) : 32, print_token, NULL, &stop);
  printf("\n");
  if (st != ALTUP_OK) fprintf(stderr, "error: %s\n", altup_last_error());
  altup_session_free(session);
  altup_model_free(model);
  return st == ALTUP_OK ? 0 : 1;
}
