/* tests/integration/test_examples.c - the seed example, reproduced by
 * examples/sleep_for_sync.c (threads, sync API) and examples/sleep_for.c
 * (libevent, async API), must print py-cachify's output byte for byte; so
 * must examples/pool_workers.c, py-cachify's pool tutorial.
 *
 * Owns: running each example binary against a daemon forked by
 * tests/support/testserver and against "mem:", with stdout and stderr
 * captured separately, and comparing both with the seed's text (the
 * "already locked" log line goes to stderr, as py-cachify's logger does).
 * The binaries are found next to the daemon named by CACHIFYD_BIN
 * (build/examples/ or build/sanitize/examples/).  An example whose binary
 * does not exist yet is skipped with a message, not failed.
 */
#include "tests/integration/itest.h"

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

/* py-cachify's "Multiple Concurrent Executions" (pool, max_size=2). */
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

/* Runs example `name` on a daemon (on_daemon) or on mem: and compares its
 * stdout and stderr with want_out and want_err, and its status with 0.  A
 * binary that does not exist is skipped when may_skip, else a failure. */
static void check_example(const char *name, int on_daemon, int may_skip,
                          const char *want_out, const char *want_err)
{
    char prog[600], url[128], tmpdir[] = "/tmp/cachify-exXXXXXX";
    char out[4096], err[4096];
    struct stat st;
    int rc;

    example_path(name, prog, sizeof prog);
    if (stat(prog, &st) != 0) {
        ck_assert_msg(may_skip, "%s: %s", prog, strerror(errno));
        fprintf(stderr, "SKIP: %s does not exist yet (%s)\n", prog,
                strerror(errno));
        return;
    }
    if (on_daemon) {
        srv_start(NULL);
        snprintf(url, sizeof url, "cachify://127.0.0.1:%d", g_ts.port);
    } else {
        snprintf(url, sizeof url, "mem:");
    }
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    rc = run_example(prog, url, tmpdir, out, err, sizeof out);
    ck_assert_msg(rc == 0, "%s %s exited %d; stderr: %s", name, url, rc, err);
    ck_assert_msg(strcmp(out, want_out) == 0, "%s %s stdout:\n%s", name, url,
                  out);
    ck_assert_msg(strcmp(err, want_err) == 0, "%s %s stderr:\n%s", name, url,
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

/* _i: 0 sleep_for_sync on a daemon, 1 on mem:, 2 sleep_for (async) on a
 * daemon, 3 on mem:. */
START_TEST(seed_output)
{
    check_example(_i < 2 ? "sleep_for_sync" : "sleep_for", _i % 2 == 0, 1,
                  WANT_OUT, WANT_ERR);
}
END_TEST

/* _i: 0 pool_workers on a daemon, 1 on mem:.  Nothing on stderr. */
START_TEST(pool_output)
{
    check_example("pool_workers", _i == 0, 0, WANT_POOL_OUT, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("seed");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, seed_output, 0, 4);
    tcase_add_loop_test(tc, pool_output, 0, 2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
