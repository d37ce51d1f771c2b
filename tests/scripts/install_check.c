/* tests/scripts/install_check.c - a program built by tests/scripts/install.sh
 * against an installed libcachify-client, with nothing but
 * `pkg-config --cflags --libs cachify-client` (so it includes <cachify.h>,
 * not client/cachify.h).
 *
 *     install_check URL          run the checks on URL; exit 0 when all pass
 *     install_check --free-port  print a free TCP port on 127.0.0.1
 *     install_check --ping URL   exit 0 when URL answers PING
 *
 * Owns: proving an installed copy is usable: the sync API, a wait that is
 * granted when a lock expires, a wait that times out, and the decorator
 * with its companions.
 */
#include <arpa/inet.h>
#include <cachify.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "install_check: line %d: %s failed\n", __LINE__, \
                    #cond);                                                  \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static const struct cachify_lock_opts nowait = CACHIFY_LOCK_OPTS_DEFAULT;

CACHIFY_LOCKED_FN(int, twice, (struct cachify *h, int n), (h, n),
                  ("twice-%d", n), &nowait)
{
    /* Held while the body runs. */
    return twice_is_locked(h, h, n) == 1 ? 2 * n : -1;
}

static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return 1;
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    struct cachify_lock_opts short_exp = {1, 0, 200, 0, 0};
    struct cachify_lock_opts wait5s = {0, 5000, CACHIFY_EXP_DEFAULT, 0, 0};
    struct cachify_lock_opts wait100 = {0, 100, CACHIFY_EXP_DEFAULT, 0, 0};
    struct cachify *a, *b;
    char err[256];
    uint64_t t1, t2;
    int r = 0;

    if (argc == 2 && strcmp(argv[1], "--free-port") == 0)
        return free_port();
    if (argc == 3 && strcmp(argv[1], "--ping") == 0) {
        if (cachify_open(&a, argv[2], NULL, err, sizeof err) != CACHIFY_OK)
            return 1;
        r = cachify_ping(a);
        cachify_close(a);
        return r == CACHIFY_OK ? 0 : 1;
    }
    CHECK(argc == 2);
    CHECK(strcmp(CACHIFY_CLIENT_VERSION, "0.3.0") == 0);
    if (cachify_open(&a, argv[1], NULL, err, sizeof err) != CACHIFY_OK ||
        cachify_open(&b, argv[1], NULL, err, sizeof err) != CACHIFY_OK) {
        fprintf(stderr, "install_check: %s: %s\n", argv[1], err);
        return 1;
    }
    /* Sync API. */
    CHECK(cachify_acquire(a, "inst", &short_exp, &t1) == CACHIFY_OK);
    CHECK(cachify_acquire(b, "inst", NULL, &t2) == CACHIFY_LOCKED);
    CHECK(strcmp(cachify_errstr(b), "inst is already locked!") == 0);
    /* Waiting: granted when a's lock expires after 200 ms. */
    CHECK(cachify_acquire(b, "inst", &wait5s, &t2) == CACHIFY_OK);
    CHECK(t2 > t1);
    CHECK(cachify_release(a, "inst", t1) == 0);
    CHECK(cachify_acquire(a, "inst", &wait100, &t1) == CACHIFY_TIMEOUT);
    CHECK(cachify_release(b, "inst", t2) == 1);
    /* Decorator and companions. */
    CHECK(twice(a, &r, a, 21) == CACHIFY_OK && r == 42);
    CHECK(cachify_acquire(b, "twice-5", NULL, &t2) == CACHIFY_OK);
    CHECK(twice_is_locked(a, a, 5) == 1);
    CHECK(twice(a, &r, a, 5) == CACHIFY_LOCKED);
    CHECK(strcmp(cachify_errstr(a), "twice-5 is already locked!") == 0);
    CHECK(twice_release(a, a, 5) == 1);
    CHECK(twice_is_locked(a, a, 5) == 0);
    cachify_close(a);
    cachify_close(b);
    printf("install_check: %s: ok\n", argv[1]);
    return 0;
}
