/* tests/integration/test_restart.c - Check suite: restarts, against the
 * real daemon and its state file.
 *
 * Owns: the state file seen from outside: clean restarts (held locks come
 * back with their tokens and what was left of their TTLs, a binary key
 * kept exact), group commit under a pipeline, a clean stop that fails
 * half-way (file-size limit), a journal that cannot be written, and the
 * files a hostile neighbour or a crafted file can put in the daemon's
 * way.  Does not own: kill -9 and recovery (test_crash.c), the engine's
 * journal hooks (engine/tests/test_locktable.c) or waiting
 * (test_waiting.c).
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

#include "tests/integration/stateitest.h"

/* ---- clean restarts and bad files ---- */

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
