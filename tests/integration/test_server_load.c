/* tests/integration/test_server_load.c - the real daemon under load and
 * against clients that misbehave in time rather than in syntax.
 *
 * Owns: the integration tests of pipelining (10,000 requests in one write,
 * framings mixed), pipelines ended by a half-close, QUIT or a framing error
 * while replies are piled up, requests arriving a byte at a time, 500
 * clients at once, clients that flood without reading (backpressure and a
 * bounded RSS), random garbage on fresh connections, maxclients, and a
 * SIGTERM while clients are busy.  Every hostile step is followed by checks
 * on a well-behaved connection, usually one that holds a lock, because the
 * spec promises that no client can stall another or lose lock state.
 * What single commands answer is in test_server.c, bad input in
 * test_server_errors.c, busy polling (which must run alone) in
 * test_busy_poll.c.
 *
 * As there, each test forks its own daemon and ends with srv_finish(),
 * which asserts a clean exit (under valgrind: no error, no leak).  Sizes
 * shrink under valgrind only where the daemon would otherwise spend
 * minutes; no test asserts speed.
 */
#include "tests/integration/itest.h"

#include <stdint.h>

/* ---- pipelining and many clients ---- */

/* n requests in one write, cycling through ACQUIRE, IS_LOCKED, RELEASE and
 * PING <i> on fresh keys, in framing fr (-1: the framing rotates per
 * request); then every reply is checked in order. */
static void pipeline_run(int fd, int n, int fr)
{
    struct itest_buf b = { 0 };
    char key[32], num[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "p%d", i / 4);
        snprintf(num, sizeof(num), "%d", i);
        const char *cmd[] = { "ACQUIRE", "IS_LOCKED", "RELEASE", "PING" };
        const char *argv[2] = { cmd[i % 4], i % 4 == 3 ? num : key };
        size_t lens[2] = { strlen(argv[0]), strlen(argv[1]) };
        encode_req(&b, fr >= 0 ? fr : i % FR_COUNT, 2, argv, lens);
    }
    ck_assert_int_eq(tc_sendn(fd, b.p, b.len), 0);
    free(b.p);

    struct rd *r = calloc(1, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    r->fd = fd;
    char line[128], want[64];
    long long last = 0;
    for (int i = 0; i < n; i++) {
        long len = rd_line(r, line, sizeof(line));
        REQUIRE(len > 0, "reply %d of %d missing", i, n);
        switch (i % 4) {
        case 0: {
            long long t = strtoll(line + 1, NULL, 10);
            REQUIRE(line[0] == ':' && t > last, "reply %d: %s after %lld", i,
                    line, last);
            last = t;
            break;
        }
        case 1:
        case 2:
            REQUIRE(strcmp(line, ":1") == 0, "reply %d: %s", i, line);
            break;
        case 3:
            snprintf(num, sizeof(num), "%d", i);
            snprintf(want, sizeof(want), "$%zu", strlen(num));
            REQUIRE(strcmp(line, want) == 0, "reply %d: %s", i, line);
            REQUIRE(rd_line(r, line, sizeof(line)) > 0 &&
                    strcmp(line, num) == 0,
                    "reply %d: bulk %s", i, line);
            break;
        }
    }
    ck_assert_msg(r->beg == r->end, "bytes after the last reply");
    free(r);
}

START_TEST(test_pipeline_10k)
{
    srv_start(NULL);
    int fd = conn_new();
    pipeline_run(fd, 10000, FR_RESP);
    pipeline_run(fd, 10000, FR_INLINE);
    tc_send(fd, "PING\r\n");
    EXPECT(fd, "+PONG\r\n");
    ck_assert_int_eq(stat1(fd, "locks_held"), 0);
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_pipeline_mixed)
{
    srv_start(NULL);
    int fd = conn_new();
    pipeline_run(fd, 3000, -1);
    ck_assert_int_eq(stat1(fd, "acquired"), 750);
    close(fd);
    srv_finish();
}
END_TEST

/* Sends all of out while reading what comes back (so neither side can
 * block the other), then (with shut_wr) shuts the write side, and reads
 * until the daemon closes.  Returns the bytes read into in (NUL-terminated). */
static size_t exchange_to_close(int fd, const char *out, size_t outlen,
                                char *in, size_t cap, int shut_wr)
{
    size_t sent = 0, got = 0;
    int shut = !shut_wr;
    tc_set_nonblock(fd, 1);
    for (;;) {
        if (sent == outlen && !shut) { /* only with shut_wr */
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        struct pollfd p = { fd, POLLIN | (sent < outlen ? POLLOUT : 0), 0 };
        int pr = poll(&p, 1, TS_READ_TIMEOUT_S * 1000);
        REQUIRE(pr > 0, "stalled: sent %zu of %zu, read %zu", sent, outlen,
                got);
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, out + sent, outlen - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            REQUIRE(got + 1 < cap, "more than %zu bytes came back", cap);
            ssize_t r = recv(fd, in + got, cap - 1 - got, 0);
            if (r == 0)
                break;
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            REQUIRE(r > 0, "recv: %s", strerror(errno));
            got += (size_t)r;
        }
    }
    tc_set_nonblock(fd, 0);
    in[got] = '\0';
    return got;
}

/* Long pipelines whose replies pile up past the daemon's pause mark, ended
 * three ways: the client shuts its write side (as nc -N does), sends QUIT,
 * or sends broken framing.  Every reply owed comes, in order, then the
 * close; nothing after the QUIT or the framing error runs. */
START_TEST(test_half_close)
{
    static const char *const ends[] = {
        "ACQUIRE hc\r\nIS_LOCKED hc\r\n",
        "ACQUIRE hq SESSION\r\nQUIT\r\nACQUIRE after\r\n",
        "ACQUIRE hp SESSION\r\n*abc\r\nACQUIRE after\r\n",
    };
    static const char *const tails[] = {
        ":1\r\n", "+OK\r\n", "-PROTO invalid multibulk count\r\n",
    };
    const size_t n = slow_mode() ? 50000 : 200000;
    srv_start(NULL);
    struct itest_buf b = { 0 }, want = { 0 };
    for (size_t i = 0; i < n; i++) {
        buf_str(&b, "PING\r\n");
        buf_str(&want, "+PONG\r\n");
    }
    size_t cap = want.len + 4096, pings = b.len;
    char *in = malloc(cap);
    ck_assert_ptr_nonnull(in);
    for (int e = 0; e < 3; e++) {
        int fd = conn_new();
        b.len = pings;
        buf_str(&b, ends[e]);
        size_t got = exchange_to_close(fd, b.p, b.len, in, cap, e == 0);
        close(fd);
        long long t = 0;
        int used = 0;
        ck_assert_msg(got > want.len && memcmp(in, want.p, want.len) == 0 &&
                      sscanf(in + want.len, ":%lld\r\n%n", &t, &used) == 1 &&
                      t > 0 && strcmp(in + want.len + used, tails[e]) == 0,
                      "ending %d: %zu bytes came back, %zu PONGs, a token and "
                      "\"%s\" expected", e, got, n, itest_esc(tails[e]));
    }
    int fd = conn_new();
    tc_send(fd, "IS_LOCKED hc\r\nIS_LOCKED hq\r\nIS_LOCKED hp\r\n"
                "IS_LOCKED after\r\n");
    EXPECT(fd, ":1\r\n:0\r\n:0\r\n:0\r\n");
    close(fd);
    free(in);
    free(b.p);
    free(want.p);
    srv_finish();
}
END_TEST

/* Requests that arrive one byte per segment are parsed the same. */
START_TEST(test_byte_by_byte)
{
    static const char script[] =
        "PING\r\n*2\r\n$4\r\nPING\r\n$4\r\na\r\nb\r\n"
        "ACQUIRE \"b b\" TTL 5000\r\n*2\r\n$9\r\nIS_LOCKED\r\n$3\r\nb b\r\n"
        "\r\n\nPING \"x\\x41\"\n*1\r\n$4\r\nPING\r\n";
    srv_start(NULL);
    int fd = conn_new();
    for (size_t i = 0; i < sizeof(script) - 1; i++) {
        REQUIRE(tc_sendn(fd, script + i, 1) == 0, "send byte %zu", i);
        usleep(500);
    }
    EXPECT(fd, "+PONG\r\n$4\r\na\r\nb\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    EXPECT(fd, ":1\r\n$2\r\nxA\r\n+PONG\r\n");
    close(fd);
    srv_finish();
}
END_TEST

#define MANY_CLIENTS 500

START_TEST(test_many_clients)
{
    static int fds[MANY_CLIENTS];
    static long long toks[MANY_CLIENTS];
    srv_start(NULL);
    for (int i = 0; i < MANY_CLIENTS; i++)
        fds[i] = conn_new();
    char line[64];
    for (int i = 0; i < MANY_CLIENTS; i++) {
        snprintf(line, sizeof(line), "ACQUIRE client%d TTL 60000\r\n", i);
        REQUIRE(tc_send(fds[i], line) == 0, "send on client %d", i);
    }
    for (int i = 0; i < MANY_CLIENTS; i++) {
        REQUIRE(tc_read_int(fds[i], &toks[i]) == 0 && toks[i] > 0,
                "client %d: %s", i, tc_last());
        for (int j = 0; j < i; j++)
            REQUIRE(toks[j] != toks[i], "clients %d and %d share a token",
                    j, i);
    }
    int fd = conn_new();
    ck_assert_int_eq(stat_poll(fd, "clients", MANY_CLIENTS + 1, 10),
                     MANY_CLIENTS + 1);
    ck_assert_int_eq(stat1(fd, "locks_held"), MANY_CLIENTS);

    /* All of them race for one key: exactly one wins. */
    for (int i = 0; i < MANY_CLIENTS; i++)
        REQUIRE(tc_send(fds[i], "ACQUIRE contended\r\n") == 0, "send %d", i);
    int winners = 0;
    char reply[128];
    for (int i = 0; i < MANY_CLIENTS; i++) {
        long n = tc_read_reply(fds[i], reply, sizeof(reply));
        REQUIRE(n > 0, "client %d: no reply", i);
        if (reply[0] == ':')
            winners++;
        else
            REQUIRE(strcmp(reply, "-LOCKED contended is already locked!\r\n")
                    == 0, "client %d: %s", i, tc_last());
    }
    ck_assert_int_eq(winners, 1);
    for (int i = 0; i < MANY_CLIENTS; i++)
        close(fds[i]);
    ck_assert_int_eq(stat_poll(fd, "clients", 1, 20), 1);
    tc_send(fd, "PING\r\nIS_LOCKED client499\r\n");
    EXPECT(fd, "+PONG\r\n:1\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* ---- clients that do not read ---- */

/* The RSS the daemon may grow by while a client floods it without reading.
 * Its own buffers are a few hundred KiB per client; under ASan or valgrind
 * freed blocks wait in a quarantine, which made it grow ~16 MiB here.  The
 * bound is three times that, and still below the 52 MB flood, so a daemon
 * that buffered the flood would fail it. */
#define RSS_GROWTH_MAX_KIB (48L * 1024)

/* A pipeline of PINGs with 4 KiB messages (~52 MB in all) is pushed at the
 * daemon without reading a byte.  The daemon must stop reading it (the
 * client stalls long before it has sent everything), keep answering another
 * client, and keep its memory bounded; then the client reads everything,
 * complete and in order. */
START_TEST(test_slow_reader)
{
    enum { MSG = 4096, PER_CHUNK = 16, NREQ = 12800 };
    char head[64];
    srv_start(NULL);
    long rss0 = ts_rss_kib(g_ts.pid);
    ck_assert_int_gt(rss0, 0);
    int other = conn_new();
    int slow = conn_new();

    /* One request and its reply; the streams repeat them. */
    struct itest_buf req = { 0 }, rep = { 0 };
    snprintf(head, sizeof(head), "*2\r\n$4\r\nPING\r\n$%d\r\n", MSG);
    buf_str(&req, head);
    snprintf(head, sizeof(head), "$%d\r\n", MSG);
    buf_str(&rep, head);
    for (int i = 0; i < MSG; i++) {
        char ch = (char)('a' + i % 26);
        buf_add(&req, &ch, 1);
        buf_add(&rep, &ch, 1);
    }
    buf_str(&req, "\r\n");
    buf_str(&rep, "\r\n");
    struct itest_buf chunk = { 0 };
    for (int i = 0; i < PER_CHUNK; i++)
        buf_add(&chunk, req.p, req.len);
    const size_t total = (size_t)NREQ * req.len;
    const size_t total_rep = (size_t)NREQ * rep.len;

    /* Phase 1: push until the daemon stops taking bytes for a second. */
    tc_set_nonblock(slow, 1);
    size_t sent = 0;
    int idle = 0;
    while (sent < total && idle < 2) {
        size_t off = sent % chunk.len, n = chunk.len - off;
        if (n > total - sent)
            n = total - sent;
        ssize_t w = send(slow, chunk.p + off, n, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            idle = 0;
            continue;
        }
        ck_assert_msg(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                                errno == EINTR),
                      "send: %s", strerror(errno));
        struct pollfd p = { slow, POLLOUT, 0 };
        if (poll(&p, 1, 500) == 0)
            idle++;
    }
    /* The kernel's socket buffers hold a few MB (7 MB here); the daemon
     * must not take the rest. */
    ck_assert_msg(sent < total, "the daemon took all %zu bytes without the "
                  "client reading: no backpressure", total);

    /* Another client is served meanwhile. */
    double t0 = mono_s();
    for (int i = 0; i < 10; i++) {
        tc_send(other, "PING\r\n");
        EXPECT(other, "+PONG\r\n");
    }
    double took = mono_s() - t0;
    ck_assert_msg(took < 10, "10 PINGs took %.1f s next to the flood", took);
    long rss1 = ts_rss_kib(g_ts.pid);
    if (getenv("ITEST_VERBOSE"))
        fprintf(stderr, "slow reader: stalled after %zu of %zu bytes; 10 "
                "PINGs took %.3f s; daemon RSS %ld -> %ld KiB\n", sent, total,
                took, rss0, rss1);
    ck_assert_msg(rss1 > 0 && rss1 - rss0 < RSS_GROWTH_MAX_KIB,
                  "daemon RSS grew from %ld to %ld KiB", rss0, rss1);

    /* Phase 2: read everything while sending the rest. */
    size_t got = 0;
    char *in = malloc(1 << 18);
    ck_assert_ptr_nonnull(in);
    while (got < total_rep) {
        struct pollfd p = { slow, POLLIN | (sent < total ? POLLOUT : 0), 0 };
        int pr = poll(&p, 1, TS_READ_TIMEOUT_S * 1000);
        ck_assert_msg(pr > 0, "stalled after %zu of %zu reply bytes", got,
                      total_rep);
        if ((p.revents & POLLOUT) && sent < total) {
            size_t off = sent % chunk.len, n = chunk.len - off;
            if (n > total - sent)
                n = total - sent;
            ssize_t w = send(slow, chunk.p + off, n, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(slow, in, 1 << 18, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            ck_assert_msg(r > 0, "connection lost after %zu reply bytes", got);
            for (ssize_t i = 0; i < r; i++)
                REQUIRE(in[i] == rep.p[(got + (size_t)i) % rep.len],
                        "reply byte %zu is wrong", got + (size_t)i);
            got += (size_t)r;
        }
    }
    free(in);
    ck_assert_uint_eq(sent, total);
    tc_set_nonblock(slow, 0);
    tc_send(slow, "PING\r\n");
    EXPECT(slow, "+PONG\r\n"); /* nothing extra came before it */
    close(slow);
    ck_assert_int_eq(stat_poll(other, "clients", 1, 10), 1);
    tc_send(other, "PING\r\n");
    EXPECT(other, "+PONG\r\n");
    free(req.p);
    free(rep.p);
    free(chunk.p);
    close(other);
    srv_finish();
}
END_TEST

/* A client floods small PINGs without reading, then just closes: its SESSION
 * lock is freed and the daemon carries on. */
START_TEST(test_unread_close)
{
    srv_start(NULL);
    long rss0 = ts_rss_kib(g_ts.pid);
    int other = conn_new();
    int fd = conn_new();
    tc_send(fd, "ACQUIRE flood SESSION\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    struct itest_buf b = { 0 };
    for (int i = 0; i < 8192; i++)
        buf_str(&b, "PING\r\n");
    tc_set_nonblock(fd, 1);
    size_t sent = 0;
    int idle = 0;
    while (sent < (size_t)(16 << 20) && idle < 2) {
        ssize_t w = send(fd, b.p + sent % b.len, b.len - sent % b.len,
                         MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        struct pollfd p = { fd, POLLOUT, 0 };
        if (poll(&p, 1, 500) == 0)
            idle++;
    }
    free(b.p);
    tc_send(other, "PING\r\n");
    EXPECT(other, "+PONG\r\n");
    long rss1 = ts_rss_kib(g_ts.pid);
    if (getenv("ITEST_VERBOSE"))
        fprintf(stderr, "unread close: %zu bytes taken; daemon RSS %ld -> "
                "%ld KiB\n", sent, rss0, rss1);
    ck_assert_msg(rss1 - rss0 < RSS_GROWTH_MAX_KIB,
                  "daemon RSS grew from %ld to %ld KiB", rss0, rss1);
    close(fd);
    ck_assert_int_eq(poll_int(other, "IS_LOCKED flood\r\n", 0, 20), 0);
    ck_assert_int_eq(stat_poll(other, "clients", 1, 20), 1);
    close(other);
    srv_finish();
}
END_TEST

/* ---- garbage ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: small, seedable, good enough for garbage. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Fills b with n bytes of garbage: pure random bytes for odd seeds, and
 * for even seeds a random mix of protocol fragments, which reaches deeper
 * into the parser and the commands. */
static void garbage(struct itest_buf *b, uint64_t seed, size_t n)
{
    static const char *const frags[] = {
        "*", "$", "-1", "0", "1", "2", "3", "1024", "4294967296",
        "99999999999999999999", "\r\n", "\r\n", "\n", "\r", "\"", "\\",
        "\\x", "4f", " ", " ", "\t", "PING", "ACQUIRE", "RELEASE",
        "IS_LOCKED", "EXTEND", "PTTL", "TTL", "STATS", "HELP", "AUTH",
        "TTL", "WAIT", "FOREVER", "SESSION", "g1", "g2", "\0", "\xff",
        "*2\r\n$4\r\nPING\r\n", "*3\r\n$7\r\nACQUIRE\r\n$2\r\ng1\r\n",
    };
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    b->len = 0;
    while (b->len < n) {
        uint64_t r = rng_next(&s);
        if (seed % 2) {
            unsigned char ch = (unsigned char)(r >> 24);
            buf_add(b, &ch, 1);
        } else {
            const char *f = frags[(r >> 24) % (sizeof(frags) /
                                               sizeof(frags[0]))];
            buf_add(b, f, f[0] ? strlen(f) : 1);
        }
    }
}

START_TEST(test_garbage)
{
    const int seeds = slow_mode() ? 6 : 16;
    srv_start(NULL);
    int holder = conn_new();
    tc_send(holder, "ACQUIRE held SESSION TTL FOREVER\r\n");
    long long t = READ_INT(holder);
    struct itest_buf b = { 0 };
    char *all = malloc(1 << 22);
    ck_assert_ptr_nonnull(all);
    for (int seed = 1; seed <= seeds; seed++) {
        garbage(&b, (uint64_t)seed, 64 * 1024);
        int fd = conn_new();
        /* The daemon may stop reading (a waiting ACQUIRE, a framing error):
         * whatever it does not take is dropped at the close. */
        tc_set_nonblock(fd, 1);
        size_t sent = 0;
        while (sent < b.len) {
            ssize_t w = send(fd, b.p + sent, b.len - sent, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
        tc_set_nonblock(fd, 0);
        shutdown(fd, SHUT_WR);
        long n = read_to_close(fd, all, 1 << 22);
        close(fd);
        ck_assert_msg(n >= 0, "seed %d: the daemon did not close the "
                      "connection after EOF", seed);
        /* Replies are RESP: each line starts with a type byte. */
        ck_assert_msg(n == 0 || strchr("+-:$*", all[0]),
                      "seed %d: reply starts with 0x%02x", seed,
                      (unsigned char)all[0]);
        tc_send(holder, "PING\r\nIS_LOCKED held\r\n");
        if (tc_expect(holder, "+PONG\r\n:1\r\n") != 0)
            ck_abort_msg("seed %d: the holder got \"%s\"", seed, tc_last());
    }
    free(all);
    free(b.p);
    ck_assert_int_eq(stat_poll(holder, "clients", 1, 20), 1);
    char line[64];
    snprintf(line, sizeof(line), "RELEASE held %lld\r\n", t);
    tc_send(holder, line);
    EXPECT(holder, ":1\r\n");
    close(holder);
    srv_finish();
}
END_TEST

/* ---- maxclients ---- */

START_TEST(test_maxclients)
{
    int fds[5];
    SRV_START("--maxclients", "5");
    fds[0] = conn_new();
    /* ts_start's probe connection may not be reaped yet: wait for it. */
    ck_assert_int_eq(stat_poll(fds[0], "clients", 1, 10), 1);
    for (int i = 1; i < 5; i++) {
        fds[i] = conn_new();
        tc_send(fds[i], "PING\r\n");
        EXPECT(fds[i], "+PONG\r\n");
    }
    int extra = conn_new();
    EXPECT_CLOSE(extra, "-LIMIT max number of clients reached\r\n");
    close(extra);
    /* A client that talks first (redis-cli does) still reads the reason;
     * a reset after it counts as the close. */
    extra = conn_new();
    tc_send(extra, "PING\r\n");
    EXPECT_CLOSE(extra, "-LIMIT max number of clients reached\r\n");
    close(extra);
    for (int i = 0; i < 5; i++) {
        tc_send(fds[i], "PING\r\n");
        EXPECT(fds[i], "+PONG\r\n");
    }
    ck_assert_int_ge(stat1(fds[0], "rejected_clients"), 1);
    /* A freed slot is taken again. */
    close(fds[4]);
    ck_assert_int_eq(stat_poll(fds[0], "clients", 4, 10), 4);
    fds[4] = conn_new();
    tc_send(fds[4], "PING\r\n");
    EXPECT(fds[4], "+PONG\r\n");
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    srv_finish();
}
END_TEST

/* ---- stopping with busy clients ---- */

/* SIGTERM while clients hold SESSION locks, wait in queues, are half way
 * through a request, or have unread replies piled up: the daemon still
 * stops cleanly (exit 0; under valgrind, nothing leaked) and closes them. */
START_TEST(test_shutdown_busy)
{
    enum { HOLDERS = 20, WAITERS = 5 };
    int holders[HOLDERS], waiters[WAITERS];
    char line[64];
    srv_start(NULL);
    for (int i = 0; i < HOLDERS; i++) {
        holders[i] = conn_new();
        snprintf(line, sizeof(line), "ACQUIRE s%d %s\r\n", i,
                 i % 2 ? "SESSION" : "TTL FOREVER");
        tc_send(holders[i], line);
        ck_assert_int_gt(READ_INT(holders[i]), 0);
    }
    for (int i = 0; i < WAITERS; i++) {
        waiters[i] = conn_new();
        tc_send(waiters[i], i % 2 ? "ACQUIRE s1 WAIT FOREVER\r\n"
                                  : "ACQUIRE s0 WAIT 600000 SESSION\r\n");
    }
    int partial = conn_new();
    tc_send(partial, "*3\r\n$7\r\nACQUIRE\r\n$2\r\nab");
    int quoted = conn_new();
    tc_send(quoted, "PING \"half a word");
    int flood = conn_new();
    struct itest_buf b = { 0 };
    for (int i = 0; i < 4096; i++)
        buf_str(&b, "PING\r\n");
    tc_set_nonblock(flood, 1);
    for (int i = 0; i < 64; i++)
        if (send(flood, b.p, b.len, MSG_NOSIGNAL) < 0)
            break;
    free(b.p);
    int probe = conn_new();
    ck_assert_int_eq(stat_poll(probe, "waiters", WAITERS, 10), WAITERS);
    close(probe);

    srv_finish();
    for (int i = 0; i < HOLDERS; i++) {
        ck_assert_msg(tc_closed(holders[i]), "holder %d not closed", i);
        close(holders[i]);
    }
    for (int i = 0; i < WAITERS; i++) {
        ck_assert_msg(tc_closed(waiters[i]), "waiter %d not closed", i);
        close(waiters[i]);
    }
    ck_assert(tc_closed(partial));
    ck_assert(tc_closed(quoted));
    tc_set_nonblock(flood, 0);
    ck_assert(tc_closed(flood));
    close(partial);
    close(quoted);
    close(flood);
}
END_TEST

static Suite *load_suite(void)
{
    Suite *s = suite_create("server_load");
    TCase *tc = itest_tcase(s, "pipelining");
    tcase_add_test(tc, test_pipeline_10k);
    tcase_add_test(tc, test_pipeline_mixed);
    tcase_add_test(tc, test_half_close);
    tcase_add_test(tc, test_byte_by_byte);
    tcase_add_test(tc, test_many_clients);

    tc = itest_tcase(s, "hostile");
    tcase_add_test(tc, test_slow_reader);
    tcase_add_test(tc, test_unread_close);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_maxclients);
    tcase_add_test(tc, test_shutdown_busy);
    return s;
}

int main(void)
{
    return itest_main(load_suite());
}
