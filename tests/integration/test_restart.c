/* tests/integration/test_restart.c - Check suite: restarts and crashes,
 * against the real daemon.
 *
 * Owns: the state file seen from outside: clean restarts, kill -9 at every
 * kind of lease (longer than the horizon, FOREVER, extended, renewed, short
 * ones waited out, SESSION ones), kill -9 at random moments during grant
 * and extend traffic, a clean stop that fails half-way (file-size limit),
 * the answers while recovering, and the files a hostile neighbour or a
 * crafted file can put in the daemon's way.  Does not own: the engine's
 * journal hooks (engine/tests/test_locktable.c) or waiting (test_waiting.c).
 *
 * The crash checks use the bounds of test_stress.c's checker, which hold
 * whatever the scheduling: a lease granted for ttl on an ACQUIRE *sent* at
 * a ends no earlier than a + ttl on the daemon's clock (CLOCK_MONOTONIC,
 * ours too); an EXTEND key token ms answered :1 and sent at s ends no
 * earlier than s + ms.  After a crash no other grant of the key may be
 * *received* before that end, and a lease that has not ended must still be
 * held by its token (RELEASE key token answers :1).  A request whose reply
 * never came (the kill cut it) may or may not have happened: an ACQUIRE
 * may then hold its key on unknown terms (the check accepts -TIMEOUT for
 * it), a RELEASE may have ended its lease (that key is not checked).
 */
/* prlimit(2), to set the running daemon's file-size limit. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/lockitest.h"

/* Times scaled for the daemon under valgrind (~20x slower). */
static long long scaled(long long ms)
{
    return slow_mode() ? ms * 5 : ms;
}

static void args_with(const char **out, size_t cap, const char *const *more)
{
    size_t n = 0;
    out[n++] = "--state_file";
    out[n++] = g_ts.state_path;
    for (; more && *more; more++) {
        ck_assert(n + 2 < cap);
        out[n++] = *more;
    }
    out[n] = NULL;
}

/* Asserts a reply line that is an integer in [lo, hi]. */
static long long int_between(int fd, const char *cmd, long long lo,
                             long long hi)
{
    long long n = 0;
    say(fd, cmd);
    ck_assert_msg(tc_read_int(fd, &n) == 0, "%s: got \"%s\"", cmd, tc_last());
    ck_assert_msg(n >= lo && n <= hi, "%s: %lld, want %lld..%lld", cmd, n,
                  lo, hi);
    return n;
}

/* ---- clean restarts and bad files ---- */

/* Sends one RESP request built from n binary-safe arguments. */
static void say_resp(int fd, int n, const char *const *argv,
                     const size_t *lens)
{
    char buf[512];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "$%zu\r\n", lens[i]);
        ck_assert(o + lens[i] + 2 < sizeof(buf));
        memcpy(buf + o, argv[i], lens[i]);
        memcpy(buf + o + lens[i], "\r\n", 2);
        o += lens[i] + 2;
    }
    ck_assert_int_eq(tc_sendn(fd, buf, o), 0);
}

/* A key with a NUL, a 0xff and a CR: the state file must keep it exact. */
static const char bin_key[] = { 'b', '\0', (char)0xff, '\r' };

/* ACQUIRE bin_key TTL ttl on fd; returns the token. */
static long long acquire_bin(int fd, const char *ttl)
{
    const char *acq[] = { "ACQUIRE", bin_key, "TTL", ttl };
    size_t acql[] = { 7, sizeof(bin_key), 3, strlen(ttl) };
    say_resp(fd, 4, acq, acql);
    return read_token(fd);
}

/* RELEASE bin_key token on fd, which must answer :1. */
static void release_bin(int fd, long long token)
{
    char cmd[64];
    int n = snprintf(cmd, sizeof(cmd), "%lld", token);
    const char *rel[] = { "RELEASE", bin_key, cmd };
    size_t rell[] = { 7, sizeof(bin_key), (size_t)n };
    say_resp(fd, 3, rel, rell);
    EXPECT(fd, ":1\r\n");
}

static long long llmax(long long a, long long b)
{
    return a > b ? a : b;
}

/* SIGTERM writes the held locks; the next start gives them back with the
 * same tokens and what was left of their TTLs.  SESSION locks end with
 * their connections at the stop, pending waits are cut, and a clean stop
 * never triggers the recovery delay.  Keys ending in "c" are copies,
 * released after the first restart; the others are checked again after a
 * second restart. */
START_TEST(state_clean_restart)
{
    struct test_server *t = srv_init();
    const char *const args[] = { "--state_file", t->state_path,
                                 "--recovery_delay_ms", "60000", NULL };
    srv_run(args);
    int a = conn_new(), w = conn_new();
    double sent = now_ms();
    long long t1 = acquire(a, "ACQUIRE k1 TTL 60000\r\n");
    long long t2 = acquire(a, "ACQUIRE k2 TTL FOREVER\r\n");
    long long t1c = acquire(a, "ACQUIRE k1c TTL 60000\r\n");
    long long t2c = acquire(a, "ACQUIRE k2c TTL FOREVER\r\n");
    long long ts = acquire(a, "ACQUIRE sess SESSION TTL FOREVER\r\n");
    long long tbin = acquire_bin(a, "FOREVER");
    say(w, "ACQUIRE k2 WAIT FOREVER\r\n"); /* pending at the stop */
    wait_stat("waiters", 1);
    long long maxold = llmax(llmax(t1, t2), llmax(llmax(t1c, t2c),
                                                 llmax(ts, tbin)));

    srv_stop();
    ck_assert_msg(tc_closed(w), "the waiter's connection was not closed");
    close_fds(w, a, -1);
    srv_run(args);

    int b = conn_new();
    say(b, "PTTL k1\r\n");
    long long left = read_token(b);
    ck_assert_msg(left <= 60000 && left >= 60000 - (now_ms() - sent) - 1,
                  "PTTL k1 is %lld after the restart", left);
    say(b, "PTTL k2\r\nIS_LOCKED sess\r\n");
    EXPECT(b, ":-1\r\n:0\r\n");
    release_ok(b, "k1c", t1c);
    release_ok(b, "k2c", t2c);
    release_bin(b, tbin);
    release_is(b, "k1", t2, ":0\r\n"); /* wrong token */
    say(b, "ACQUIRE k1\r\nACQUIRE k2 WAIT 0\r\n");
    EXPECT(b, "-LOCKED k1 is already locked!\r\n"
              "-LOCKED k2 is already locked!\r\n");
    long long fresh = acquire(b, "ACQUIRE fresh\r\n"); /* no recovery delay */
    ck_assert_msg(fresh > maxold, "token %lld after %lld", fresh, maxold);
    ck_assert(!stat_of("recovering"));
    check_stats("locks_held", 3LL, NULL);
    close(b);

    srv_stop(); /* second restart: still the same holders */
    srv_run(args);
    int c = conn_new();
    release_ok(c, "k1", t1);
    release_ok(c, "k2", t2);
    long long fresh2 = acquire(c, "ACQUIRE fresh2\r\n");
    ck_assert(fresh2 > fresh);
    close(c);
    srv_finish();
}
END_TEST

/* Group commit: a pipeline of FOREVER grants on one connection is made
 * durable in batches (one fdatasync per connection turn of up to 256
 * leases, STATS journal_syncs), not one by one, and every grant answered
 * comes back after kill -9. */
#define GC_LOCKS 600
START_TEST(group_commit_pipeline)
{
    srv_init();
    const char *args[16];
    args_with(args, 16, NULL);
    srv_run(args);
    int a = conn_new();
    long long syncs_before = stat_of("journal_syncs");
    size_t cap = GC_LOCKS * 40;
    char *burst = malloc(cap);
    ck_assert_ptr_nonnull(burst);
    size_t len = 0;
    for (int i = 0; i < GC_LOCKS; i++)
        len += (size_t)snprintf(burst + len, cap - len,
                                "ACQUIRE gc%d TTL FOREVER\r\n", i);
    say(a, burst);
    free(burst);
    long long toks[GC_LOCKS];
    for (int i = 0; i < GC_LOCKS; i++)
        toks[i] = read_token(a);
    long long syncs = stat_of("journal_syncs") - syncs_before;
    /* At least ceil(600 / 256) batches; far fewer than one per grant
     * (the horizon and the token ceiling may add a few of their own). */
    ck_assert_msg(syncs >= 3 && syncs <= 30, "%lld syncs for %d grants",
                  syncs, GC_LOCKS);
    ts_kill9(&g_ts);
    close(a);

    srv_run(args);
    int c = conn_new();
    for (int i = 0; i < GC_LOCKS; i += 37) {
        char key[32];
        snprintf(key, sizeof(key), "gc%d", i);
        release_ok(c, key, toks[i]);
    }
    check_stats("locks_held", (long long)(GC_LOCKS - (GC_LOCKS + 36) / 37),
                NULL);
    close(c);
    srv_finish();
}
END_TEST

static int file_has(const char *path, const char *needle)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}


/* 1 when the last 64 KiB of path contain needle. */
static int file_has_tail(const char *path, const char *needle)
{
    static char buf[65537];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 65536 ? size - 65536 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Starts the daemon with args, which must refuse: exit status 1 and a log
 * line naming the state file with `why` in it. */
static void expect_refused(const char *const *args, const char *why)
{
    if (ts_start(&g_ts, args) == 0) {
        int status = -1;
        double deadline = now_ms() + LATE_MS;
        while (waitpid(g_ts.pid, &status, WNOHANG) == 0 && now_ms() < deadline)
            usleep(10000);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
                      "daemon status %d for '%s'", status, why);
        g_ts.pid = -1;
    }
    ck_assert_msg(file_has_tail(g_ts.log_path, g_ts.state_path),
                  "the log does not name %s", g_ts.state_path);
    ck_assert_msg(file_has_tail(g_ts.log_path, why), "the log does not say "
                  "'%s'", why);
    unlink(g_ts.log_path);
}

/* ---- the crash of the issue: leases that outlive the recovery wait ---- */

/* Starts the daemon with the state file and long_lease_ms 2 s (scaled);
 * args (cap entries) gets its arguments, for the restarts. */
static void run_short_long_lease(const char **args, size_t cap)
{
    static char lease[32];
    srv_init();
    snprintf(lease, sizeof(lease), "%lld", scaled(2000));
    args_with(args, cap, (const char *const[]){ "--long_lease_ms", lease,
                                                NULL });
    srv_run(args);
}

/* Waits (boundedly) until the restarted daemon has stopped recovering. */
static void wait_recovered(void)
{
    double until = now_ms() + LATE_MS;
    while (stat_of("recovering") && now_ms() < until)
        usleep(20000);
    ck_assert_msg(!stat_of("recovering"), "still recovering");
}

/* A takes k1 for 120 s, k2 forever, k3 for 1 s then extends it to 120 s,
 * k4 for 1 s then renews it five times, and s1 as a SESSION lock forever;
 * then the daemon is killed.  After the restart B waits for k1..k4 with no
 * bound: none of them is granted while A's leases run (they come back
 * held, with A's tokens), and the answers agree (IS_LOCKED 1, PTTL what is
 * left, -LOCKED).  A's tokens still release them; only then is B served,
 * with larger tokens.  s1 ended with A's connection (the crash closed it):
 * it is free once recovery ends. */
START_TEST(crash_keeps_long_leases)
{
    const char *args[16];
    run_short_long_lease(args, 16);
    int a = conn_new();
    double t0 = now_ms();
    long long t1 = acquire(a, "ACQUIRE k1 TTL 120000\r\n");
    long long t2 = acquire(a, "ACQUIRE k2 TTL FOREVER\r\n");
    long long t3 = acquire(a, "ACQUIRE k3 TTL 1000\r\n");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "EXTEND k3 %lld 120000\r\n", t3);
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    long long t4 = acquire(a, "ACQUIRE k4 TTL 1000\r\n");
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof(cmd), "EXTEND k4 %lld %d\r\n", t4,
                 30000 + 20000 * i);
        say(a, cmd);
        EXPECT(a, ":1\r\n");
    }
    long long ts1 = acquire(a, "ACQUIRE s1 SESSION TTL FOREVER\r\n");
    long long maxold = llmax(llmax(t1, t2), llmax(llmax(t3, t4), ts1));
    ts_kill9(&g_ts);
    close(a);

    srv_run(args);
    int b[4], c = conn_new();
    const char *keys[4] = { "k1", "k2", "k3", "k4" };
    for (int i = 0; i < 4; i++) {
        b[i] = conn_new();
        snprintf(cmd, sizeof(cmd), "ACQUIRE %s WAIT FOREVER\r\n", keys[i]);
        say(b[i], cmd);
    }
    double el = now_ms() - t0;
    int_between(c, "PTTL k1\r\n", 1, 120000);
    int_between(c, "PTTL k1\r\n", (long long)(120000 - el - 60000), 120000);
    say(c, "PTTL k2\r\nIS_LOCKED k1\r\nIS_LOCKED k2\r\nIS_LOCKED k3\r\n"
           "IS_LOCKED k4\r\nACQUIRE k1\r\n");
    EXPECT(c, ":-1\r\n:1\r\n:1\r\n:1\r\n:1\r\n"
              "-LOCKED k1 is already locked!\r\n");
    int_between(c, "PTTL k3\r\n", (long long)(120000 - el - 60000), 120000);
    int_between(c, "PTTL k4\r\n", (long long)(110000 - el - 60000), 110000);
    /* Well past the recovery wait (2 s of long_lease_ms plus a quarter),
     * nobody is served: those leases are A's. */
    wait_recovered();
    for (int i = 0; i < 4; i++)
        expect_quiet(b[i], quiet_ms());
    /* The SESSION lock ended with its connection. */
    say(c, "IS_LOCKED s1\r\n");
    EXPECT(c, ":0\r\n");
    long long prev = maxold;
    long long toks[4] = { t1, t2, t3, t4 };
    for (int i = 0; i < 4; i++) {
        release_ok(c, keys[i], toks[i]);
        long long got = read_token(b[i]);
        ck_assert_msg(got > prev, "token %lld after %lld", got, prev);
        prev = got;
    }
    close_fds(b[0], b[1], b[2], b[3], c, -1);
    srv_finish();
}
END_TEST

/* Free records are gathered for a few ms, then written with no request
 * behind them to push them out: after RELEASEs of long leases (a binary
 * key among them) and nothing else, the journal gets their free records
 * by itself, and a kill -9 then does not bring those locks back.  The
 * leases not released come back with their tokens, a stored value (SET)
 * with its bytes: the hold records the daemon formats itself load. */
START_TEST(crash_after_release_forgets_lease)
{
    const char *args[16];
    run_short_long_lease(args, 16);
    int a = conn_new();
    long long t1 = acquire(a, "ACQUIRE k1 TTL 120000\r\n");
    long long t2 = acquire(a, "ACQUIRE k2 TTL 120000\r\n");
    long long tbin = acquire_bin(a, "120000");
    say(a, "SET kv some-value NX PX 120000\r\n");
    EXPECT(a, "+OK\r\n");
    release_ok(a, "k1", t1);
    release_bin(a, tbin);
    /* Nothing else is sent: the daemon's own timer writes them. */
    char k1_free[64], bin_free[64];
    snprintf(k1_free, sizeof(k1_free), "{\"free\":\"6b31\",\"token\":%lld}\n",
             t1);
    snprintf(bin_free, sizeof(bin_free),
             "{\"free\":\"6200ff0d\",\"token\":%lld}\n", tbin);
    double until = now_ms() + LATE_MS;
    while (!(file_has_tail(g_ts.state_path, k1_free) &&
             file_has_tail(g_ts.state_path, bin_free)) &&
           now_ms() < until)
        usleep(20000);
    ck_assert_msg(file_has_tail(g_ts.state_path, k1_free) &&
                      file_has_tail(g_ts.state_path, bin_free),
                  "the free records were not written");
    ts_kill9(&g_ts);
    close(a);

    srv_run(args);
    int c = conn_new();
    wait_recovered();
    say(c, "IS_LOCKED k1\r\nIS_LOCKED k2\r\nGET kv\r\n");
    EXPECT(c, ":0\r\n:1\r\n$10\r\nsome-value\r\n");
    const char *isl[] = { "IS_LOCKED", bin_key };
    size_t isll[] = { 9, sizeof(bin_key) };
    say_resp(c, 2, isl, isll);
    EXPECT(c, ":0\r\n");
    release_ok(c, "k2", t2);
    check_stats("locks_held", 1LL, NULL);
    close(c);
    srv_finish();
}
END_TEST

/* Short leases are waited out: nothing else is granted before the last
 * one granted before the crash has run out, and the answers agree while
 * waiting.  Then a second crash *during* the recovery wait must keep it. */
START_TEST(crash_waits_out_short_leases)
{
    srv_init();
    const char *args[16];
    long long ttl = scaled(1500);
    char lease[32], cmd[128];
    snprintf(lease, sizeof(lease), "%lld", scaled(4000));
    args_with(args, 16, (const char *const[]){ "--long_lease_ms", lease,
                                               NULL });
    srv_run(args);
    int a = conn_new();
    double sent = now_ms();
    snprintf(cmd, sizeof(cmd), "ACQUIRE p1 TTL %lld\r\n", ttl);
    long long maxold = acquire(a, cmd);
    ts_kill9(&g_ts);
    close(a);
    srv_run(args);
    a = conn_new();
    double before = now_ms();
    say(a, "ACQUIRE p1\r\nACQUIRE other\r\nIS_LOCKED p1\r\nIS_LOCKED other\r\n"
           "RELEASE p1\r\n");
    EXPECT(a, "-LOCKED p1 is already locked!\r\n"
              "-LOCKED other is already locked!\r\n:1\r\n:1\r\n:0\r\n");
    ck_assert_msg(now_ms() < sent + (double)ttl, "too slow to test");
    ck_assert(stat_of("recovering"));
    /* PTTL says how long the key may still be held (at least what is left
     * of p1, at most the lease plus the horizon's slack). */
    int_between(a, "PTTL other\r\n",
                (long long)(sent + (double)ttl - now_ms()) - 2,
                ttl + scaled(4000));
    /* A second crash while recovering: the wait is kept. */
    ts_kill9(&g_ts);
    close(a);
    srv_run(args);
    a = conn_new();
    if (now_ms() < sent + (double)ttl - 50) {
        say(a, "IS_LOCKED p1\r\n");
        EXPECT(a, ":1\r\n");
    }
    long long got = acquire(a, "ACQUIRE p1 WAIT 60000\r\n");
    double at = now_ms();
    ck_assert_msg(at >= sent + (double)ttl - CLOCK_SLACK_MS,
                  "p1 granted %.0f ms after A's grant, its TTL %lld",
                  at - sent, ttl);
    ck_assert_msg(at < before + (double)ttl + (double)scaled(4000) + LATE_MS,
                  "granted %.0f ms after the restart", at - before);
    ck_assert(got > maxold);
    close(a);
    srv_finish();
}
END_TEST

/* ---- kill -9 at random moments during grant and extend traffic ---- */

#define CK_KEYS 24
#define CK_BURST 160
#define CK_LONG_LEASE scaled(1000) /* the daemon's long_lease_ms */

struct ck_lease {
    long long token;   /* 0: no lease we know of */
    double lo_end;     /* its end is no earlier (ms, monotonic); INFINITY */
    int durable;       /* longer than long_lease_ms once: journaled, so
                          restored after a crash with its token */
    int unsure;        /* a request on it went unanswered */
};

struct ck_req {
    int key;
    int kind;          /* 0 ACQUIRE, 1 EXTEND, 2 RELEASE */
    long long ttl;     /* ms; 0 = FOREVER */
    double sent;
};

static unsigned ck_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static long long ck_ttl(unsigned *seed)
{
    static const long long ttls[] = { 300, 700, 1000, 1500, 4000, 0 };
    long long t = ttls[ck_rand(seed) % 6];
    return t ? scaled(t) : 0;
}

static void ck_format(char *cmd, size_t cap, int round, const struct ck_req *q,
                      const struct ck_lease *l)
{
    char ttl[32];
    if (q->ttl)
        snprintf(ttl, sizeof(ttl), "%lld", q->ttl);
    else
        snprintf(ttl, sizeof(ttl), "FOREVER");
    if (q->kind == 0)
        snprintf(cmd, cap, "ACQUIRE c%d-%d TTL %s\r\n", round, q->key, ttl);
    else if (q->kind == 1)
        snprintf(cmd, cap, "EXTEND c%d-%d %lld %lld\r\n", round, q->key,
                 l->token, q->ttl ? q->ttl : scaled(4000));
    else
        snprintf(cmd, cap, "RELEASE c%d-%d %lld\r\n", round, q->key,
                 l->token);
}

/* What a reply (or its absence) tells about the lease. */
static void ck_apply(struct ck_lease *l, const struct ck_req *q,
                     const char *reply, long long *maxtok)
{
    long long n, ms = q->ttl ? q->ttl : scaled(4000);
    if (!reply) {
        l->unsure |= q->kind != 1; /* an EXTEND only ever lengthens */
        return;
    }
    if (q->kind == 0 && sscanf(reply, ":%lld", &n) == 1) {
        ck_assert_msg(!l->token, "granted a key we hold");
        l->token = n;
        l->lo_end = q->ttl ? q->sent + (double)q->ttl : INFINITY;
        l->durable = !q->ttl || q->ttl > CK_LONG_LEASE;
        *maxtok = llmax(*maxtok, n);
    } else if (q->kind == 1 && strcmp(reply, ":1") == 0) {
        l->lo_end = q->sent + (double)ms;
        l->durable |= ms > CK_LONG_LEASE;
    } else if (q->kind == 2 && strcmp(reply, ":1") == 0) {
        l->token = 0;
    }
}

static long ck_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n') {
            buf[n > 0 && buf[n - 1] == '\r' ? n - 1 : n] = '\0';
            return (long)n;
        }
        n++;
    }
    return -1;
}

/* One round: some requests one by one, then a pipelined burst that the
 * kill cuts after a random number of replies; then the checks. */
static void crash_round(int round, unsigned *seed, const char *const *args,
                        long long *maxtok)
{
    struct ck_lease l[CK_KEYS];
    struct ck_req q[CK_BURST];
    char cmd[160], reply[160];
    memset(l, 0, sizeof(l));
    int a = conn_new();
    for (int i = 0; i < 3 * CK_KEYS; i++) {
        struct ck_req r = { (int)(ck_rand(seed) % CK_KEYS), 0, ck_ttl(seed),
                            0 };
        r.kind = l[r.key].token ? 1 + (int)(ck_rand(seed) % 4 == 0) : 0;
        ck_format(cmd, sizeof(cmd), round, &r, &l[r.key]);
        r.sent = now_ms();
        say(a, cmd);
        ck_assert_int_ge(ck_line(a, reply, sizeof(reply)), 0);
        ck_apply(&l[r.key], &r, reply, maxtok);
    }
    /* The burst: every key once or more, grants and extends mixed. */
    struct ck_lease planned[CK_KEYS];
    memcpy(planned, l, sizeof(l));
    size_t nq = 0;
    struct itest_buf out = { 0 };
    double sent = now_ms();
    while (nq < CK_BURST) {
        struct ck_req r = { (int)(ck_rand(seed) % CK_KEYS), 0, ck_ttl(seed),
                            sent };
        if (planned[r.key].token) {
            r.kind = 1; /* extend with the token known before the burst */
        } else {
            planned[r.key].token = -1; /* one ACQUIRE per free key */
        }
        if (r.kind == 1 && l[r.key].token == 0)
            continue;
        ck_format(cmd, sizeof(cmd), round, &r, &l[r.key]);
        buf_str(&out, cmd);
        q[nq++] = r;
    }
    ck_assert_int_eq(tc_sendn(a, out.p, out.len), 0);
    free(out.p);
    size_t cut = ck_rand(seed) % (CK_BURST + 1), got = 0;
    for (; got < cut; got++) {
        ck_assert_int_ge(ck_line(a, reply, sizeof(reply)), 0);
        ck_apply(&l[q[got].key], &q[got], reply, maxtok);
    }
    ts_kill9(&g_ts);
    /* What was answered before the kill still counts. */
    for (; got < nq; got++) {
        long n = ck_line(a, reply, sizeof(reply));
        ck_apply(&l[q[got].key], &q[got], n >= 0 ? reply : NULL, maxtok);
    }
    close(a);

    srv_run(args);
    int w[CK_KEYS];
    int c = conn_new();
    for (int k = 0; k < CK_KEYS; k++) {
        w[k] = -1;
        if (!l[k].token || (l[k].unsure && isinf(l[k].lo_end)))
            continue;
        double left = l[k].lo_end - now_ms();
        if (l[k].durable && !l[k].unsure && left > 1000) {
            /* A journaled lease not over yet: still held by its token.
             * (A short one is waited out instead, checked below.) */
            snprintf(cmd, sizeof(cmd), "RELEASE c%d-%d %lld\r\n", round, k,
                     l[k].token);
            say(c, cmd);
            ck_assert_int_ge(ck_line(c, reply, sizeof(reply)), 0);
            ck_assert_msg(strcmp(reply, ":1") == 0 || now_ms() >= l[k].lo_end,
                          "round %d key %d: lease (token %lld) not held after "
                          "the crash: %s", round, k, l[k].token, reply);
            continue;
        }
        if (isinf(l[k].lo_end))
            continue;
        w[k] = conn_new();
        snprintf(cmd, sizeof(cmd), "ACQUIRE c%d-%d WAIT %lld TTL 1000\r\n",
                 round, k, (long long)left + 2 * scaled(4000) + 2000);
        say(w[k], cmd);
    }
    for (int k = 0; k < CK_KEYS; k++) {
        long long n;
        if (w[k] < 0)
            continue;
        ck_assert_int_ge(ck_line(w[k], reply, sizeof(reply)), 0);
        double at = now_ms();
        if (sscanf(reply, ":%lld", &n) == 1) {
            ck_assert_msg(at >= l[k].lo_end - CLOCK_SLACK_MS,
                          "round %d key %d granted %.0f ms before the lease "
                          "from before the crash ended", round, k,
                          l[k].lo_end - at);
            ck_assert_msg(n > *maxtok, "token %lld after %lld", n, *maxtok);
        } else {
            ck_assert_msg(l[k].unsure, "round %d key %d: %s", round, k, reply);
        }
        close(w[k]);
    }
    close(c);
}

START_TEST(crash_at_random_moments)
{
    srv_init();
    const char *args[16];
    char lease[32];
    snprintf(lease, sizeof(lease), "%lld", CK_LONG_LEASE);
    args_with(args, 16, (const char *const[]){ "--long_lease_ms", lease,
                                               NULL });
    const char *env = getenv("CACHIFYD_CRASH_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10)
                        : (unsigned)(wall_us() & 0x7fffffff) | 1u;
    fprintf(stderr, "crash_at_random_moments: CACHIFYD_CRASH_SEED=%u\n", seed);
    long long maxtok = 0;
    /* A short default keeps make test quick; CACHIFYD_CRASH_ROUNDS=N runs
     * a longer fault campaign (each round is one kill -9). */
    int rounds = slow_mode() ? 2 : 5;
    const char *rounds_env = getenv("CACHIFYD_CRASH_ROUNDS");
    if (rounds_env && atoi(rounds_env) > 0)
        rounds = atoi(rounds_env);
    fprintf(stderr, "crash_at_random_moments: %d rounds "
            "(CACHIFYD_CRASH_ROUNDS)\n", rounds);
    srv_run(args);
    for (int round = 0; round < rounds; round++)
        crash_round(round, &seed, args, &maxtok);
    srv_finish();
}
END_TEST

/* ---- a clean stop that fails half-way ---- */

/* Sets the daemon's soft file-size limit (the hard one stays, so it can be
 * raised again without privileges). */
static void set_fsize(rlim_t bytes)
{
    struct rlimit rl;
    ck_assert_int_eq(prlimit(g_ts.pid, RLIMIT_FSIZE, NULL, &rl), 0);
    rl.rlim_cur = bytes < rl.rlim_max ? bytes : rl.rlim_max;
    ck_assert_int_eq(prlimit(g_ts.pid, RLIMIT_FSIZE, &rl, NULL), 0);
}


/* The clean stop's file cannot be written (the file-size limit stands in
 * for a full disk): the daemon says so and exits 1, the journal stays, and
 * the next start recovers from it as from a crash: the long lease comes
 * back, the short ones are waited out. */
START_TEST(clean_stop_fails_half_way)
{
    srv_init();
    const char *args[16];
    char lease[32];
    long long ttl = scaled(1500);
    snprintf(lease, sizeof(lease), "%lld", scaled(3000));
    args_with(args, 16, (const char *const[]){ "--long_lease_ms", lease,
                                               "--loglevel", "info", NULL });
    srv_run(args);
    int a = conn_new();
    long long tlong = acquire(a, "ACQUIRE long TTL FOREVER\r\n");
    struct itest_buf out = { 0 };
    double sent = now_ms();
    enum { N = 4000 };
    for (int i = 0; i < N; i++)
        buf_fmt(&out, "ACQUIRE short-%d TTL %lld\r\n", i, ttl);
    ck_assert_int_eq(tc_sendn(a, out.p, out.len), 0);
    free(out.p);
    for (int i = 0; i < N; i++)
        read_token(a);
    close(a);
    /* The journal and the log fit under the limit; 4,000 lock records
     * (about 70 bytes each) do not. */
    struct stat sb, lb;
    ck_assert_int_eq(stat(g_ts.state_path, &sb), 0);
    ck_assert_int_eq(stat(g_ts.log_path, &lb), 0);
    set_fsize((rlim_t)((sb.st_size > lb.st_size ? sb.st_size : lb.st_size) +
                       65536));
    ck_assert_int_eq(ts_stop(&g_ts), 1);
    ck_assert_msg(file_has_tail(g_ts.log_path, "clean stop not recorded"),
                  "the log does not say the stop was not recorded");

    srv_run(args);
    a = conn_new();
    if (now_ms() < sent + (double)ttl - 50) {
        say(a, "IS_LOCKED short-7\r\n");
        EXPECT(a, ":1\r\n");
    }
    long long got = acquire(a, "ACQUIRE short-7 WAIT 60000\r\n");
    ck_assert_msg(now_ms() >= sent + (double)ttl - CLOCK_SLACK_MS,
                  "granted before the short lease ended");
    ck_assert(got > tlong);
    release_ok(a, "long", tlong);
    close(a);
    srv_finish();
}
END_TEST

/* ---- a journal that cannot be written ---- */

/* The file-size limit stands in for a full disk: a lease the journal
 * cannot record is refused with -ERR (nothing is held), one the horizon
 * already covers is still granted, EXTEND keeps the old expiry, and once
 * the disk is back (after the once-a-second retry) grants go on.  Pool
 * slots alike (POOL_ACQUIRE, POOL_EXTEND). */
START_TEST(journal_write_fails_refuses_grant)
{
    srv_init();
    const char *args[16];
    args_with(args, 16, (const char *const[]){ "--long_lease_ms", "60000",
                                               "--loglevel", "warning",
                                               NULL });
    srv_run(args);
    int a = conn_new();
    long long tk = acquire(a, "ACQUIRE k TTL 50000\r\n"); /* horizon ~65 s */
    struct stat sb;
    ck_assert_int_eq(stat(g_ts.state_path, &sb), 0);
    set_fsize((rlim_t)sb.st_size + 8); /* room for no record */
    say(a, "ACQUIRE f TTL FOREVER\r\nACQUIRE l TTL 70000\r\n");
    EXPECT(a, "-ERR lease not granted: the state file could not record it "
              "(see the log)\r\n"
              "-ERR lease not granted: the state file could not record it "
              "(see the log)\r\n");
    say(a, "IS_LOCKED f\r\nIS_LOCKED l\r\n");
    EXPECT(a, ":0\r\n:0\r\n");
    acquire(a, "ACQUIRE s TTL 1000\r\n"); /* covered: no write needed */
    say(a, "POOL_ACQUIRE p 2 TTL FOREVER\r\nPOOL_SIZE p\r\n");
    EXPECT(a, "-ERR lease not granted: the state file could not record it "
              "(see the log)\r\n:0\r\n");
    long long tp = acquire(a, "POOL_ACQUIRE p 2 TTL 30000\r\n");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "POOL_EXTEND p %lld 600000\r\n", tp);
    say(a, cmd);
    EXPECT(a, "-ERR lease not granted: the state file could not record it "
              "(see the log)\r\n");
    snprintf(cmd, sizeof(cmd), "EXTEND k %lld 600000\r\n", tk);
    say(a, cmd);
    EXPECT(a, "-ERR lease not granted: the state file could not record it "
              "(see the log)\r\n");
    int_between(a, "PTTL k\r\n", 1, 50000);
    ck_assert_int_ge(stat_of("journal_failures"), 3);
    set_fsize(RLIM_INFINITY);
    usleep(1100 * 1000); /* the retry pause after a failure */
    acquire(a, "ACQUIRE f TTL FOREVER\r\n");
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    acquire(a, "POOL_ACQUIRE p 2 TTL FOREVER\r\n");
    snprintf(cmd, sizeof(cmd), "POOL_EXTEND p %lld 600000\r\n", tp);
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    close(a);
    srv_finish();
}
END_TEST

/* Every kind of broken or crafted file refuses the start: exit status 1
 * (under valgrind also: no leak on that path), a message naming the file
 * and what is wrong, and the file left as it was for a human to look at. */
START_TEST(state_corrupt_file_refuses_start)
{
    static char long_key[2 * 1025 + 256];
    int n = snprintf(long_key, sizeof(long_key),
                     "{\"cachifyd_state\":2,\"status\":\"clean\","
                     "\"last_token\":5}\n{\"lock\":\"");
    for (int i = 0; i < 1025; i++)
        n += snprintf(long_key + n, sizeof(long_key) - (size_t)n, "61");
    snprintf(long_key + n, sizeof(long_key) - (size_t)n,
             "\",\"token\":3,\"ttl_ms\":0}\n{\"end\":1}\n");
    const struct {
        const char *text, *why;
    } bad[] = {
        { "{\"cachifyd_state\":2,\"status\":\"clean\",\"last_tok",
          "middle of a line" },
        { "{\"cachifyd_state\":2,\"status\":\"sleeping\"}\n",
          "neither clean nor running" },
        { "{\"cachifyd_state\":2,\"status\":\"clean\",\"last_token\":5}\n"
          "{\"lock\":\"zz\",\"token\":3,\"ttl_ms\":0}\n{\"end\":1}\n",
          "not a non-empty hex string" },
        { "{\"cachifyd_state\":2,\"status\":\"clean\","
          "\"last_token\":9223372036854775807}\n{\"end\":0}\n",
          "last_token 9223372036854775807 is out of range" },
        { "{\"cachifyd_state\":2,\"status\":\"clean\",\"last_token\":5}\n"
          "{\"lock\":\"6b\",\"token\":3,\"ttl_ms\":18446744073709552}\n"
          "{\"end\":1}\n",
          "ttl_ms 18446744073709552 is out of range" },
        { long_key, "longer than max_key_len" },
        { "{\"cachifyd_state\":2,\"status\":\"clean\",\"last_token\":5}\n"
          "{\"lock\":\"6b\",\"token\":3,\"ttl_ms\":0}\n",
          "no end record" },
        { "{\"cachifyd_state\":2,\"status\":\"running\",\"boot_id\":\"x\"}\n"
          "{\"ceiling\":9223372036854775807}\n",
          "ceiling 9223372036854775807 is out of range" },
        { "{\"cachifyd_state\":2,\"status\":\"running\",\"boot_id\":\"x\"}\n"
          "{\"hold\":\"6b\",\"token\":3,\"until_wall_us\":1,"
          "\"until_mono_us\":1,\"extra\":1}\n",
          "malformed hold record" },
        { "{\"cachifyd_state\":2,\"status\":\"running\",\"boot_id\":\"x\"}\n"
          "{\"hold\":\"6b\",\"token\":3,\"until_wall_us\":0,"
          "\"until_mono_us\":0,\"max\":0}\n",
          "max 0 is out of range" },
        { "{\"cachifyd_state\":2,\"status\":\"running\",\"boot_id\":\"x\"}\n"
          "{\"hold\":\"6b\",\"token\":3,\"until_wall_us\":0,"
          "\"until_mono_us\":0,\"max\":2,\"value\":\"61\"}\n",
          "malformed hold record" },
        { "{\"cachifyd_state\":2,\"status\":\"clean\",\"last_token\":5}\n"
          "{\"slot\":\"6b\",\"max\":2,\"token\":3,\"ttl_ms\":-1}\n"
          "{\"end\":1}\n",
          "slot ttl_ms -1 is out of range" },
        { "{\n \"format\": 1,\n \"status\": \"clean\"\n}\n", "format 1" },
    };
    srv_init();
    const char *const args[] = { "--state_file", g_ts.state_path, NULL };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(g_ts.state_path, bad[i].text);
        expect_refused(args, bad[i].why);
        ck_assert_msg(file_has(g_ts.state_path, bad[i].text),
                      "the bad state file %zu was changed", i);
    }
    ts_cleanup(&g_ts);
}
END_TEST

/* Not a regular file: a FIFO (opening one would block start-up for ever),
 * a directory, a symbolic link (we would replace the link, or follow it):
 * each refuses the start at once, with a message. */
START_TEST(state_file_not_regular_refused)
{
    srv_init();
    const char *const args[] = { "--state_file", g_ts.state_path, NULL };
    ck_assert_int_eq(mkfifo(g_ts.state_path, 0600), 0);
    double t0 = now_ms();
    expect_refused(args, "not a regular file");
    ck_assert_msg(now_ms() - t0 < LATE_MS, "the FIFO held up the start");
    unlink(g_ts.state_path);
    ck_assert_int_eq(mkdir(g_ts.state_path, 0700), 0);
    expect_refused(args, "not a regular file");
    rmdir(g_ts.state_path);
    char target[256];
    snprintf(target, sizeof(target), "%s/elsewhere", g_ts.dir);
    write_file(target, "precious\n");
    ck_assert_int_eq(symlink(target, g_ts.state_path), 0);
    expect_refused(args, "symbolic link");
    ck_assert(file_has(target, "precious\n"));
    unlink(g_ts.state_path);
    unlink(target);
    ts_cleanup(&g_ts);
}
END_TEST

/* A link planted at FILE.tmp is removed, never followed: its target keeps
 * its bytes, and the state file is a regular file of the daemon's own. */
START_TEST(state_tmp_symlink_not_followed)
{
    srv_init();
    const char *const args[] = { "--state_file", g_ts.state_path, NULL };
    char tmp[256], target[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", g_ts.state_path);
    snprintf(target, sizeof(target), "%s/victim", g_ts.dir);
    write_file(target, "precious\n");
    ck_assert_int_eq(symlink(target, tmp), 0);
    srv_run(args);
    int a = conn_new();
    acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    close(a);
    ck_assert_int_eq(symlink(target, tmp), 0); /* again before the stop */
    srv_stop();
    ck_assert_msg(file_has(target, "precious\n"), "the link was followed");
    struct stat st;
    ck_assert_int_eq(lstat(g_ts.state_path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert(file_has(g_ts.state_path, "\"clean\""));
    ck_assert_int_ne(lstat(tmp, &st), 0); /* gone, not left behind */
    unlink(target);
    ts_cleanup(&g_ts);
}
END_TEST

static Suite *restart_suite(void)
{
    Suite *s = suite_create("restart");
    TCase *r = itest_tcase_timed(s, "restart", 600);
    tcase_add_test(r, state_clean_restart);
    tcase_add_test(r, crash_keeps_long_leases);
    tcase_add_test(r, crash_waits_out_short_leases);
    tcase_add_test(r, crash_after_release_forgets_lease);
    tcase_add_test(r, crash_at_random_moments);
    tcase_add_test(r, clean_stop_fails_half_way);
    tcase_add_test(r, journal_write_fails_refuses_grant);
    tcase_add_test(r, group_commit_pipeline);
    TCase *f = itest_tcase_timed(s, "files", 600);
    tcase_add_test(f, state_corrupt_file_refuses_start);
    tcase_add_test(f, state_file_not_regular_refused);
    tcase_add_test(f, state_tmp_symlink_not_followed);
    return s;
}

int main(void)
{
    return itest_main(restart_suite());
}
