/* tests/support/testcerts.c - see testcerts.h. */
#include "tests/support/testcerts.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static int name(char *dst, size_t cap, const char *dir, const char *file)
{
    int n = snprintf(dst, cap, "%s/%s", dir, file);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int tcert_make(struct test_certs *tc, const char *dir)
{
    const char *src = getenv("CACHIFY_SRCDIR");
    char cmd[512];
    int n = snprintf(cmd, sizeof(cmd),
                     "sh '%s/tests/support/make-test-certs.sh' '%s'",
                     src ? src : ".", dir);
    if (n < 0 || (size_t)n >= sizeof(cmd) ||
        snprintf(tc->dir, sizeof(tc->dir), "%s", dir) >= (int)sizeof(tc->dir)) {
        fprintf(stderr, "testcerts: path too long: %s\n", dir);
        return -1;
    }
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "testcerts: '%s' failed (status %d)\n", cmd, st);
        return -1;
    }
    if (name(tc->ca, sizeof(tc->ca), dir, "ca.crt") ||
        name(tc->server_crt, sizeof(tc->server_crt), dir, "server.crt") ||
        name(tc->server_key, sizeof(tc->server_key), dir, "server.key") ||
        name(tc->client_crt, sizeof(tc->client_crt), dir, "client.crt") ||
        name(tc->client_key, sizeof(tc->client_key), dir, "client.key") ||
        name(tc->rogue_ca, sizeof(tc->rogue_ca), dir, "rogue-ca.crt") ||
        name(tc->rogue_client_crt, sizeof(tc->rogue_client_crt), dir,
             "rogue-client.crt") ||
        name(tc->rogue_client_key, sizeof(tc->rogue_client_key), dir,
             "rogue-client.key")) {
        fprintf(stderr, "testcerts: path too long: %s\n", dir);
        return -1;
    }
    return 0;
}
