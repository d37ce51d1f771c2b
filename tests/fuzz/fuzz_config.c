/* tests/fuzz/fuzz_config.c - libFuzzer target for the config reader
 * (daemon/config.c): conf file text and command lines.
 *
 * Input layout: the conf file's bytes, then optionally "\0\0" and argv words
 * separated by '\0' (argv[0] is added).  The file is parsed with
 * config_load_file + config_check, then the words with config_parse_args,
 * where a word "@" names the file.  Every outcome must leave a struct that
 * config_free releases completely (LeakSanitizer), an accepted config must
 * respect its own bounds (port, maxclients, max_request >= max_line + 2,
 * ...), and every error must be one printable line.
 *
 * Sandboxing, so fuzzing cannot block on special files: the conf text lives
 * in a memfd named by /proc/self/fd/N, and a word "@pw" names a second memfd
 * holding a password line (for requirepass_file); '/' in the conf text
 * becomes '_' and any argv word holding '/' becomes the conf path, so every
 * other path is a plain name in the current directory (no /dev/stdin to
 * block on); argv bytes outside printable ASCII become '?' (a shell user's
 * own argv is not the threat, the file is).  The working directory is not
 * changed: libFuzzer reads and writes its corpus by relative paths.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n",    \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define MAX_WORDS 32
#define ERRLEN 1024

static int memfd = -1;
static char conf_path[64], pw_path[64];

static void setup_once(void)
{
    static const char pw[] = "fuzzpass\n";
    if (memfd >= 0)
        return;
    memfd = memfd_create("fuzz_config", 0);
    int pwfd = memfd_create("fuzz_config_pw", 0);
    CHECK(memfd >= 0 && pwfd >= 0);
    CHECK(write(pwfd, pw, sizeof(pw) - 1) == (ssize_t)sizeof(pw) - 1);
    snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", memfd);
    snprintf(pw_path, sizeof(pw_path), "/proc/self/fd/%d", pwfd);
}

static void write_conf(const uint8_t *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    for (size_t i = 0; i < n; i++)
        copy[i] = p[i] == '/' ? '_' : (char)p[i];
    CHECK(ftruncate(memfd, 0) == 0);
    CHECK(pwrite(memfd, copy, n, 0) == (ssize_t)n);
    free(copy);
}

static void check_error(int rc, const char *err)
{
    if (rc == 0)
        return;
    size_t n = strlen(err);
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++)
        CHECK(err[i] >= 0x20 && err[i] < 0x7f);
}

/* An accepted, checked config keeps every documented bound. */
static void check_config(const struct cachify_config *c)
{
    CHECK(c->bind && c->unixsocket && c->requirepass && c->state_file &&
          c->requirepass_file);
    CHECK(c->port >= 0 && c->port <= 65535);
    CHECK(c->maxclients >= 1);
    CHECK(c->protected_mode == 0 || c->protected_mode == 1);
    CHECK(c->timeout >= 0 && c->request_timeout >= 0 &&
          c->client_stall_timeout >= 0);
    CHECK(c->max_line >= 64 && c->max_request >= c->max_line + 2);
    CHECK(c->recovery_delay_ms >= 0);
    CHECK(c->max_ttl_ms == 0 || c->default_ttl_ms <= c->max_ttl_ms);
    CHECK(c->loglevel >= LOG_DEBUG && c->loglevel <= LOG_ERROR);
    CHECK(strlen(c->requirepass) <= 512);
    CHECK(c->requirepass_file[0] == '\0' || c->requirepass_loaded);
    for (const char *b = c->bind; *b; b++)
        CHECK(*b != ' ' || (b[1] != ' ' && b[1] != '\0'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cachify_config c;
    char err[ERRLEN];
    size_t conf_len = size, i;

    setup_once();
    for (i = 0; i + 1 < size; i++) {
        if (data[i] == 0 && data[i + 1] == 0) {
            conf_len = i;
            break;
        }
    }
    write_conf(data, conf_len);

    /* 1. The file alone. */
    CHECK(config_defaults(&c) == 0);
    err[0] = '\0';
    int rc = config_load_file(&c, conf_path, err, ERRLEN);
    if (rc == 0)
        rc = config_check(&c, err, ERRLEN);
    check_error(rc, err);
    if (rc == 0)
        check_config(&c);
    config_free(&c);

    /* 2. The command line, when there is one. */
    if (conf_len + 2 > size)
        return 0;
    char *words = malloc(size - conf_len - 2 + 1);
    CHECK(words != NULL);
    size_t wlen = size - conf_len - 2;
    memcpy(words, data + conf_len + 2, wlen);
    words[wlen] = '\0';
    char *argv[MAX_WORDS + 2];
    int argc = 0;
    argv[argc++] = "cachifyd";
    for (char *w = words; w <= words + wlen && argc <= MAX_WORDS;
         w += strlen(w) + 1) {
        for (char *p = w; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        argv[argc++] = strcmp(w, "@pw") == 0          ? pw_path
                       : strcmp(w, "@") == 0 || strchr(w, '/') ? conf_path
                                                              : w;
    }
    argv[argc] = NULL;
    enum config_action action;
    CHECK(config_defaults(&c) == 0);
    err[0] = '\0';
    rc = config_parse_args(&c, argc, argv, &action, err, ERRLEN);
    check_error(rc, err);
    if (rc == 0 && action == CONFIG_RUN)
        check_config(&c);
    config_free(&c);
    free(words);
    return 0;
}
