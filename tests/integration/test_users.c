/* tests/integration/test_users.c - Check suite: named users and their key
 * permissions (config `user` lines, daemon/users.h), against the real
 * daemon over TCP.
 *
 * Owns: AUTH and HELLO AUTH as a named user; -NOPERM for a key outside the
 * user's prefixes, for a change by a readonly user, and for a forced
 * release (RELEASE without a token, DEL, a plain SET, EXPIRE) without the
 * force permission, each counted in STATS noperm; the default user when
 * users exist; bad user lines and password files at start; a SIGHUP that
 * changes or removes a user, applied to connections already
 * authenticated.  Does not own: requirepass alone (test_server_clients.c), the
 * reload machinery (test_service.c).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/lockitest.h"

/* Writes text to dir/name and returns the path (static buffer per slot). */
static const char *write_file(int slot, const char *name, const char *text)
{
    static char paths[4][256];
    snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", g_ts.dir, name);
    FILE *f = fopen(paths[slot], "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return paths[slot];
}

#define USERS_CONF                                                          \
    "user jobs password-file %s/jobs.pw keys jobs: batch:\n"                 \
    "user ro password-file %s/ro.pw keys * readonly\n"                       \
    "user admin password-file %s/admin.pw keys * force\n"

/* Starts the daemon with the three users of USERS_CONF in a config file
 * (so a SIGHUP can change them). */
static void start_with_users(void)
{
    srv_init();
    write_file(0, "jobs.pw", "jobs-secret\n");
    write_file(1, "ro.pw", "ro-secret\n");
    write_file(2, "admin.pw", "admin-secret\n");
    char conf[2048];
    snprintf(conf, sizeof(conf), USERS_CONF, g_ts.dir, g_ts.dir, g_ts.dir);
    const char *path = write_file(3, "users.conf", conf);
    const char *const args[] = { "-c", path, NULL };
    srv_run(args);
}

START_TEST(prefixes_readonly_force)
{
    start_with_users();
    int c = conn_new();
    say(c, "ACQUIRE jobs:a\r\n");
    EXPECT(c, "-NOAUTH Authentication required.\r\n");
    say(c, "AUTH jobs wrong\r\n");         EXPECT(c, "-WRONGPASS invalid password\r\n");
    say(c, "AUTH nobody jobs-secret\r\n"); EXPECT(c, "-WRONGPASS invalid password\r\n");
    say(c, "AUTH default jobs-secret\r\n");EXPECT(c, "-WRONGPASS invalid password\r\n");
    say(c, "AUTH jobs jobs-secret\r\n");   EXPECT(c, "+OK\r\n");
    long long tok = acquire(c, "ACQUIRE jobs:a TTL 60000\r\n");
    /* Outside the prefixes: refused, whatever the command. */
    say(c, "ACQUIRE other:x\r\n");
    EXPECT(c, "-NOPERM user 'jobs' has no access to key 'other:x'\r\n");
    say(c, "IS_LOCKED other:x\r\n");
    EXPECT(c, "-NOPERM user 'jobs' has no access to key 'other:x'\r\n");
    say(c, "MGET jobs:a \"x\\x01y\"\r\n");
    EXPECT(c, "-NOPERM user 'jobs' has no access to key 'x\\x01y'\r\n");
    /* A forced release or change needs `force`. */
    say(c, "RELEASE jobs:a\r\n");
    EXPECT(c, "-NOPERM user 'jobs' may not end or change a lock without its "
              "token (RELEASE needs the force permission)\r\n");
    say(c, "DEL jobs:a\r\n");
    EXPECT(c, "-NOPERM user 'jobs' may not end or change a lock without its "
              "token (DEL needs the force permission)\r\n");
    say(c, "SET jobs:a v\r\n");
    EXPECT(c, "-NOPERM user 'jobs' may not end or change a lock without its "
              "token (SET needs the force permission)\r\n");
    say(c, "EXPIRE jobs:a 10\r\n");
    EXPECT(c, "-NOPERM user 'jobs' may not end or change a lock without its "
              "token (EXPIRE needs the force permission)\r\n");
    /* With the token, or without forcing, it may. */
    say(c, "SET batch:1 v NX PX 1000\r\n"); EXPECT(c, "+OK\r\n");
    say(c, "IS_LOCKED jobs:a\r\n");         EXPECT(c, ":1\r\n");
    release_ok(c, "jobs:a", tok);

    /* readonly: looks anywhere, changes nothing. */
    int r = conn_new();
    say(r, "AUTH ro ro-secret\r\n");       EXPECT(r, "+OK\r\n");
    say(r, "IS_LOCKED batch:1\r\n");       EXPECT(r, ":1\r\n");
    say(r, "GET batch:1\r\n");             EXPECT(r, "$1\r\nv\r\n");
    say(r, "ACQUIRE anything\r\n");
    EXPECT(r, "-NOPERM user 'ro' is read-only: ACQUIRE changes keys\r\n");
    say(r, "EXTEND batch:1 1 1000\r\n");
    EXPECT(r, "-NOPERM user 'ro' is read-only: EXTEND changes keys\r\n");

    /* force: may end another's lock. */
    int a = conn_new();
    say(a, "HELLO 2 AUTH admin admin-secret\r\n");
    char reply[512];
    ck_assert_int_gt(tc_read_reply(a, reply, sizeof(reply)), 0);
    ck_assert_int_eq(strncmp(reply, "*14\r\n", 5), 0);
    say(a, "RELEASE batch:1\r\n");         EXPECT(a, ":1\r\n");
    say(a, "STATS\r\n");
    json_t *st = stats_get(a);
    ck_assert_int_eq(stat_int(st, "noperm"), 9);
    json_decref(st);
    close(c), close(r), close(a);
    srv_finish();
}
END_TEST

/* With named users, the default user needs requirepass: without it, AUTH
 * is the only way in; with it, the default user has every permission. */
START_TEST(default_user)
{
    start_with_users();
    int c = conn_new();
    say(c, "AUTH anything\r\n");           EXPECT(c, "-WRONGPASS invalid password\r\n");
    say(c, "PING\r\n");                    EXPECT(c, "+PONG\r\n");
    close(c);
    srv_stop();
    const char *const args[] = { "-c", write_file(3, "users2.conf", ""),
                                 "--requirepass", "top", "--user",
                                 "jobs password-file /nonexistent keys j:",
                                 NULL };
    /* A password file that cannot be read stops the start. */
    ck_assert_int_ne(ts_start(&g_ts, args), 0);
    char conf[1024];
    snprintf(conf, sizeof(conf), "requirepass top\n" USERS_CONF, g_ts.dir,
             g_ts.dir, g_ts.dir);
    const char *const args2[] = { "-c", write_file(3, "users3.conf", conf),
                                  NULL };
    srv_run(args2);
    c = conn_new();
    say(c, "AUTH top\r\n");                EXPECT(c, "+OK\r\n");
    say(c, "ACQUIRE other:x\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    say(c, "RELEASE other:x\r\n");         EXPECT(c, ":1\r\n");
    close(c);
    srv_finish();
}
END_TEST

/* Bad lines are named with their file and line at start. */
START_TEST(bad_user_lines)
{
    static const char *const bad[] = {
        "user default password-file /x keys a\n",
        "user jo$bs password-file /x keys a\n",
        "user jobs keys a\n",
        "user jobs password-file /x\n",
        "user jobs password-file /x keys a keys b\n",
        "user jobs password-file /x sudo keys a\n",
        "user jobs password-file /x keys\n",
    };
    srv_init();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path = write_file(3, "bad.conf", bad[i]);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "%s --test-config -c %s 2>&1",
                 getenv("CACHIFYD_BIN"), path);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        char out[512] = "";
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        int status = pclose(p);
        ck_assert_msg(status != 0, "accepted: %s", bad[i]);
        ck_assert_msg(strstr(out, "bad.conf:1: user: ") != NULL,
                      "%s -> %s", bad[i], out);
    }
    ts_cleanup(&g_ts);
}
END_TEST

/* SIGHUP re-reads users: a narrower prefix applies to a connection that
 * is already authenticated; a removed user is refused until AUTH again;
 * a new password file is read. */
START_TEST(reload_changes_users)
{
    start_with_users();
    int c = conn_new();
    say(c, "AUTH jobs jobs-secret\r\n");   EXPECT(c, "+OK\r\n");
    say(c, "IS_LOCKED batch:1\r\n");       EXPECT(c, ":0\r\n");
    char conf[1024];
    snprintf(conf, sizeof(conf),
             "user jobs password-file %s/jobs.pw keys jobs:\n", g_ts.dir);
    write_file(3, "users.conf", conf);
    write_file(0, "jobs.pw", "new-secret\n");
    kill(g_ts.pid, SIGHUP);
    /* Applied at once, to this connection too. */
    double deadline = now_ms() + 20000;
    char reply[256];
    for (;;) {
        say(c, "IS_LOCKED batch:1\r\n");
        ck_assert_int_gt(tc_read_reply(c, reply, sizeof(reply)), 0);
        if (reply[0] == '-')
            break;
        ck_assert_msg(now_ms() < deadline, "the reload did not apply");
        usleep(20000);
    }
    ck_assert_str_eq(reply, "-NOPERM user 'jobs' has no access to key "
                            "'batch:1'\r\n");
    int r = conn_new();
    say(r, "AUTH ro ro-secret\r\n");       EXPECT(r, "-WRONGPASS invalid password\r\n");
    say(r, "AUTH jobs jobs-secret\r\n");   EXPECT(r, "-WRONGPASS invalid password\r\n");
    say(r, "AUTH jobs new-secret\r\n");    EXPECT(r, "+OK\r\n");
    /* A broken file on SIGHUP changes nothing. */
    write_file(3, "users.conf", "user jobs password-file /nonexistent keys a\n");
    kill(g_ts.pid, SIGHUP);
    usleep(300000);
    say(r, "IS_LOCKED jobs:x\r\n");        EXPECT(r, ":0\r\n");
    close(c), close(r);
    srv_finish();
}
END_TEST

static Suite *users_suite(void)
{
    Suite *s = suite_create("users");
    TCase *tc = itest_tcase_timed(s, "users", 300);
    tcase_add_test(tc, prefixes_readonly_force);
    tcase_add_test(tc, default_user);
    tcase_add_test(tc, bad_user_lines);
    tcase_add_test(tc, reload_changes_users);
    return s;
}

int main(void)
{
    return itest_main(users_suite());
}
