/* tests/integration/test_examples.c - the seed example, reproduced by
 * examples/sleep_for_sync.c (threads, sync API) and examples/sleep_for.c
 * (libevent, async API), must print py-cachify's output byte for byte.
 *
 * Owns: running each example binary against a daemon forked by
 * tests/support/testserver, against "mem:" and against a three-member etcd
 * cluster (whole, then with one member killed), with stdout and stderr
 * captured separately, and comparing both with the seed's text (the
 * "already locked" log line goes to stderr, as py-cachify's logger does);
 * the pool tutorial (examples/pool_workers.c) the same way on the daemon,
 * mem: and etcd.
 * The binaries are found next to the daemon named by CACHIFYD_BIN
 * (build/examples/ or build/sanitize/examples/).  An example whose binary
 * does not exist yet is skipped with a message, not failed.
 */
#include "tests/integration/itest.h"
#include "tests/integration/backends.h"

#include <libgen.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char WANT_OUT[] =
    "Sleep for is locked for argument 3: True\n"
    "Sleep for is locked for argument 4: False\n"
    "Sleep for is locked for argument 5: True\n"
    "Sleep for is locked for argument 5: False\n"
    "Exception: sleep_for_lock-1 is already locked!\n";
static const char WANT_ERR[] = "sleep_for_lock-1 is already locked!\n";

/* py-cachify's "Multiple Concurrent Executions" pool tutorial, in C. */
static const char WANT_POOL_OUT[] =
    "Worker W0 started\n"
    "Worker W1 started\n"
    "Worker W2 could not acquire slot - pool full\n"
    "Worker W3 could not acquire slot - pool full\n"
    "Worker W0 finished\n"
    "Worker W1 finished\n";

/* Path of build/examples/name, from CACHIFYD_BIN's directory. */
static void example_path(const char *name, char *out, size_t cap)
{
    const char *bin = getenv("CACHIFYD_BIN");
    char copy[512];

    snprintf(copy, sizeof copy, "%s", bin ? bin : "build/cachifyd");
    snprintf(out, cap, "%s/examples/%s", dirname(copy), name);
}

/* Reads all of path into buf[cap] (NUL-terminated). */
static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs `prog url` with stdout and stderr in files of dir; returns the exit
 * status and fills out/err. */
static int run_example(const char *prog, const char *url, const char *dir,
                       char *out, char *err, size_t cap)
{
    char out_path[256], err_path[256];
    int status = 0;
    pid_t pid;

    snprintf(out_path, sizeof out_path, "%s/example.out", dir);
    snprintf(err_path, sizeof err_path, "%s/example.err", dir);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execl(prog, prog, url, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    slurp(out_path, out, cap);
    slurp(err_path, err, cap);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* _i: an even one runs sleep_for_sync, an odd one sleep_for (async), on
 * the backend _i / 2 (backends.h: 0 a daemon, 1 mem:, 2 etcd) or, for 6
 * and 7, on etcd with the first member of the URL killed (kill -9) first.
 * So under valgrind, where bk_count() is 1, the loop's 0 and 1 are the
 * two on a daemon. */
START_TEST(seed_output)
{
    const char *name = _i % 2 == 0 ? "sleep_for_sync" : "sleep_for";
    int on_daemon = _i / 2 == BK_CACHIFYD, on_etcd = _i / 2 >= BK_ETCD;
    char prog[600], url[512], tmpdir[] = "/tmp/cachify-exXXXXXX";
    char out[4096], err[4096];
    struct stat st;
    int rc;

    example_path(name, prog, sizeof prog);
    if (stat(prog, &st) != 0) {
        fprintf(stderr, "SKIP: %s does not exist yet (%s)\n", prog,
                strerror(errno));
        return;
    }
    if (on_daemon) {
        srv_start(NULL);
        snprintf(url, sizeof url, "cachify://127.0.0.1:%d", g_ts.port);
    } else if (on_etcd) {
        /* Killed in the test's process; the suite's process reaps it. */
        if (_i >= 6) {
            /* One member down, not an election under way: the example's
             * timing is py-cachify's (a check one second after a call
             * started), which a leader election (about a second) would
             * upset on any backend. */
            kill(g_ec.pid[0], SIGKILL);
            ck_assert_int_eq(ec_wait_writable(&g_ec, 0, 60), 0);
        }
        bk_etcd_url(NULL, url, sizeof url);
    } else {
        snprintf(url, sizeof url, "mem:");
    }
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    rc = run_example(prog, url, tmpdir, out, err, sizeof out);
    ck_assert_msg(rc == 0, "%s %s exited %d; stderr: %s", name, url, rc, err);
    ck_assert_msg(strcmp(out, WANT_OUT) == 0, "%s %s stdout:\n%s", name, url,
                  out);
    ck_assert_msg(strcmp(err, WANT_ERR) == 0, "%s %s stderr:\n%s", name, url,
                  err);
    {
        char p[300];

        snprintf(p, sizeof p, "%s/example.out", tmpdir);
        unlink(p);
        snprintf(p, sizeof p, "%s/example.err", tmpdir);
        unlink(p);
        rmdir(tmpdir);
    }
    if (on_daemon)
        srv_finish();
}
END_TEST

/* _i: pool_workers on the backend _i (backends.h: 0 a daemon, 1 mem:, 2
 * etcd).  Its output exactly, nothing on stderr, status 0. */
START_TEST(pool_output)
{
    char prog[600], url[512], tmpdir[] = "/tmp/cachify-exXXXXXX";
    char out[4096], err[4096], p[300];
    example_path("pool_workers", prog, sizeof prog);
    if (_i == BK_CACHIFYD) {
        srv_start(NULL);
        snprintf(url, sizeof url, "cachify://127.0.0.1:%d", g_ts.port);
    } else if (_i == BK_ETCD) {
        bk_etcd_url(NULL, url, sizeof url);
    } else {
        snprintf(url, sizeof url, "mem:");
    }
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    int rc = run_example(prog, url, tmpdir, out, err, sizeof out);
    ck_assert_msg(rc == 0, "pool_workers %s exited %d; stderr: %s", url, rc,
                  err);
    ck_assert_msg(strcmp(out, WANT_POOL_OUT) == 0, "pool_workers %s:\n%s",
                  url, out);
    ck_assert_msg(err[0] == '\0', "pool_workers %s stderr: %s", url, err);
    snprintf(p, sizeof p, "%s/example.out", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/example.err", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    if (_i == BK_CACHIFYD)
        srv_finish();
}
END_TEST

/* Runs a shell command line with CACHIFY_LOCK and URL set; its status. */
static int sh(const char *tool, const char *url, const char *line)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "CACHIFY_LOCK='%s' URL='%s'; %s", tool, url,
             line);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* cachify-lock takes any URL the library does: on the etcd cluster it runs
 * a command under a lock with its token, refuses a second -n while the
 * first holds, and says held or free with --is-locked. */
START_TEST(cachify_lock_on_etcd)
{
    char tool[600], url[512];
    struct stat st;
    example_path("../cachify-lock", tool, sizeof tool);
    if (stat(tool, &st) != 0) {
        fprintf(stderr, "SKIP: %s does not exist yet\n", tool);
        return;
    }
    bk_etcd_url(NULL, url, sizeof url);
    ck_assert_int_eq(sh(tool, url, "$CACHIFY_LOCK -u \"$URL\" -n etcd-job "
                        "sh -c 'test -n \"$CACHIFY_TOKEN\"'"), 0);
    ck_assert_int_eq(sh(tool, url, "$CACHIFY_LOCK -u \"$URL\" --is-locked "
                        "etcd-job"), 1);
    ck_assert_int_eq(sh(tool, url,
        "$CACHIFY_LOCK -u \"$URL\" --ttl 3 etcd-job sleep 6 & h=$!; "
        "i=0; until $CACHIFY_LOCK -u \"$URL\" --is-locked etcd-job; do "
        "i=$((i+1)); [ $i -lt 200 ] || exit 90; sleep 0.05; done; "
        "$CACHIFY_LOCK -u \"$URL\" -n -q etcd-job true; n=$?; "
        "wait $h; w=$?; [ $n -eq 1 ] || exit 91; [ $w -eq 0 ] || exit 92; "
        "$CACHIFY_LOCK -u \"$URL\" --is-locked etcd-job; [ $? -eq 1 ]"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("seed");

    tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
    tcase_set_timeout(tc, 120);
    /* The mem: and etcd cases run no daemon: with it under valgrind they
     * would only repeat the plain pass (backends.h, bk_count). */
    if (bk_count() > BK_ETCD)
        tcase_add_test(tc, cachify_lock_on_etcd);
    tcase_add_loop_test(tc, pool_output, 0, bk_count());
    tcase_add_loop_test(tc, seed_output, 0,
                        bk_count() > BK_ETCD ? 8 : 2 * bk_count());
    suite_add_tcase(s, tc);
    return bk_run(s);
}
