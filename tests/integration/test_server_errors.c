/* tests/integration/test_server_errors.c - the real daemon against bad
 * input.
 *
 * Owns: the integration tests of error replies (unknown commands, argument
 * counts, bad ACQUIRE options and numbers, max_ttl_ms, key limits, binary
 * keys quoted in error lines), config errors at start, and framing errors
 * (-PROTO, then the connection closes).  The promise under test is the
 * spec's: no input, however malformed, crashes or stalls the server or
 * affects other connections, and no lock state is lost by it, so framing
 * errors are followed by checks on a second connection that holds a lock.
 * The commands' normal answers are in test_server.c; floods, garbage and
 * limits on clients in test_server_load.c.
 *
 * As there, each test forks its own daemon and ends with srv_finish(),
 * which asserts a clean exit (under valgrind: no error, no leak).
 */
#include "tests/integration/itest.h"

#include <sys/wait.h>

/* ---- error replies ---- */

START_TEST(test_unknown_command)
{
    int fr = _i;
    srv_start(NULL);
    int fd = conn_new();
    SEND(fd, fr, "foo");
    EXPECT(fd, "-ERR unknown command 'foo'\r\n");
    SEND(fd, fr, "FOO", "bar", "baz");
    EXPECT(fd, "-ERR unknown command 'FOO'\r\n");
    /* Prefixes and near misses are not commands (beanstalkd #337). */
    SEND(fd, fr, "ACQ", "k");
    EXPECT(fd, "-ERR unknown command 'ACQ'\r\n");
    SEND(fd, fr, "ACQUIREX", "k");
    EXPECT(fd, "-ERR unknown command 'ACQUIREX'\r\n");
    SEND(fd, fr, "");
    EXPECT(fd, "-ERR unknown command ''\r\n");

    /* Bytes that could break the reply line are escaped. */
    static const char odd[] = "fo\r\no\0\\";
    const char *argv[] = { odd };
    size_t lens[] = { sizeof(odd) - 1 };
    send_req(fd, fr, 1, argv, lens);
    EXPECT(fd, "-ERR unknown command 'fo\\x0d\\x0ao\\x00\\\\'\r\n");

    /* A 10 KB name is cut to 128 bytes: the reply stays one short line. */
    struct itest_buf want = { 0 };
    char *name = malloc(10240 + 1);
    ck_assert_ptr_nonnull(name);
    memset(name, 'a', 10240);
    name[10240] = '\0';
    SEND(fd, fr, name);
    buf_str(&want, "-ERR unknown command '");
    buf_add(&want, name, 128);
    buf_str(&want, "...'\r\n");
    EXPECT(fd, want.p);
    /* The same with bytes that are escaped: 128 bytes, 512 characters. */
    memset(name, '\xff', 10240);
    lens[0] = 10240;
    argv[0] = name;
    send_req(fd, fr, 1, argv, lens);
    want.len = 0;
    buf_str(&want, "-ERR unknown command '");
    for (int i = 0; i < 128; i++)
        buf_str(&want, "\\xff");
    buf_str(&want, "...'\r\n");
    EXPECT(fd, want.p);
    free(want.p);
    free(name);

    SEND(fd, fr, "PING");
    EXPECT(fd, "+PONG\r\n");
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_wrong_args)
{
    /* Requests with one argument too few or too many, and the name the
     * error gives (the command's own spelling, however it was sent). */
    static const struct {
        const char *words[9];
        const char *name;
    } cases[] = {
        { { "ACQUIRE" }, "ACQUIRE" },
        { { "acquire", "k", "TTL", "1", "WAIT", "1", "SESSION", "x" },
          "ACQUIRE" },
        { { "RELEASE" }, "RELEASE" },
        { { "release", "k", "1", "2" }, "RELEASE" },
        { { "IS_LOCKED" }, "IS_LOCKED" },
        { { "Is_Locked", "a", "b" }, "IS_LOCKED" },
        { { "EXTEND", "k" }, "EXTEND" },
        { { "EXTEND", "k", "1" }, "EXTEND" },
        { { "extend", "k", "1", "2", "3" }, "EXTEND" },
        { { "PTTL" }, "PTTL" },
        { { "PTTL", "a", "b" }, "PTTL" },
        { { "TTL" }, "TTL" },
        { { "TTL", "a", "b" }, "TTL" },
        { { "PING", "a", "b" }, "PING" },
        { { "STATS", "x" }, "STATS" },
        { { "AUTH" }, "AUTH" },
        { { "AUTH", "a", "b", "c" }, "AUTH" },
        { { "HELP", "x" }, "HELP" },
        { { "QUIT", "x" }, "QUIT" },
    };
    int fr = _i;
    char want[128];
    srv_start(NULL);
    int fd = conn_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        itest_sendv(fd, fr, cases[i].words);
        snprintf(want, sizeof(want),
                 "-ERR wrong number of arguments for '%s'\r\n", cases[i].name);
        EXPECT(fd, want);
    }
    SEND(fd, fr, "IS_LOCKED", "k");
    EXPECT(fd, ":0\r\n");

    /* 1024 arguments is legal framing (and too many for PING); 1025 is
     * not, in either framing. */
    struct itest_buf req = { 0 };
    const char **many = calloc(1025, sizeof(*many));
    size_t *lens = calloc(1025, sizeof(*lens));
    ck_assert(many && lens);
    for (int i = 0; i < 1025; i++) {
        many[i] = i ? "a" : "PING";
        lens[i] = i ? 1 : 4;
    }
    encode_req(&req, fr, 1024, many, lens);
    tc_sendn(fd, req.p, req.len);
    EXPECT(fd, "-ERR wrong number of arguments for 'PING'\r\n");
    req.len = 0;
    if (fr == FR_RESP)
        buf_str(&req, "*1025\r\n");
    else
        encode_req(&req, fr, 1025, many, lens);
    tc_sendn(fd, req.p, req.len);
    EXPECT_CLOSE(fd, fr == FR_RESP ?
                 "-PROTO multibulk count out of range (1..1024)\r\n" :
                 "-PROTO too many arguments (max 1024)\r\n");
    free(req.p);
    free(many);
    free(lens);
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_key_limits)
{
    static const char *const cmds[][4] = {
        { "ACQUIRE", NULL },         { "RELEASE", NULL },
        { "RELEASE", "1", NULL },    { "IS_LOCKED", NULL },
        { "EXTEND", "1", "1", NULL }, { "PTTL", NULL },
        { "TTL", NULL },
    };
    static const char *const too_long =
        "-LIMIT key is longer than max_key_len (1024 bytes)\r\n";
    int fr = _i;
    char key[1026];
    memset(key, 'k', sizeof(key));
    srv_start(NULL);
    int fd = conn_new();

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *argv[4] = { cmds[i][0], key, cmds[i][1], cmds[i][2] };
        size_t n = 2, lens[4] = { strlen(cmds[i][0]), 0, 1, 1 };
        while (n < 4 && argv[n])
            n++;
        lens[1] = 0; /* empty: RESP "$0", inline "" */
        send_req(fd, fr, n, argv, lens);
        EXPECT(fd, "-ERR empty key\r\n");
        lens[1] = 1025; /* one over max_key_len */
        send_req(fd, fr, n, argv, lens);
        EXPECT(fd, too_long);
        lens[1] = 20000; /* far over; within max_line even escaped */
        char *big = malloc(20000);
        ck_assert_ptr_nonnull(big);
        memset(big, 'k', 20000);
        argv[1] = big;
        send_req(fd, fr, n, argv, lens);
        free(big);
        EXPECT(fd, too_long);
    }

    /* Exactly max_key_len bytes works, in every command. */
    const char *argv[2] = { "ACQUIRE", key };
    size_t lens[2] = { 7, 1024 };
    send_req(fd, fr, 2, argv, lens);
    long long t = READ_INT(fd);
    ck_assert_int_gt(t, 0);
    send_req(fd, fr, 2, argv, lens);
    struct itest_buf want = { 0 };
    buf_str(&want, "-LOCKED ");
    buf_add(&want, key, 1024);
    buf_str(&want, " is already locked!\r\n");
    EXPECT(fd, want.p);
    free(want.p);
    argv[0] = "IS_LOCKED";
    lens[0] = 9;
    send_req(fd, fr, 2, argv, lens);
    EXPECT(fd, ":1\r\n");
    argv[0] = "PTTL";
    lens[0] = 4;
    send_req(fd, fr, 2, argv, lens);
    long long p = READ_INT(fd); /* three round trips after the ACQUIRE */
    ck_assert_msg(p > 20000 && p <= 30000, "PTTL %lld", p);
    /* The 1025-byte key is another key, and was never locked. */
    lens[1] = 1025;
    send_req(fd, fr, 2, argv, lens);
    EXPECT(fd, too_long);
    argv[0] = "RELEASE";
    lens[0] = 7;
    lens[1] = 1024;
    send_req(fd, fr, 2, argv, lens);
    EXPECT(fd, ":1\r\n");
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_key_limit_configured)
{
    SRV_START("--max_key_len", "4");
    int fd = conn_new();
    tc_send(fd, "ACQUIRE abcd\r\nACQUIRE abcde\r\n*2\r\n$7\r\nACQUIRE\r\n"
                "$5\r\nabcde\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    EXPECT(fd, "-LIMIT key is longer than max_key_len (4 bytes)\r\n"
               "-LIMIT key is longer than max_key_len (4 bytes)\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* Keys are binary safe in RESP: NUL, CR, LF and backslash are key bytes,
 * and the error line shows them escaped so it never breaks. */
START_TEST(test_binary_keys)
{
    static const char key[] = "a\0b\r\nc\\";
    static const char locked[] =
        "-LOCKED a\\x00b\\x0d\\x0ac\\\\ is already locked!\r\n";
    srv_start(NULL);
    int fd = conn_new();
    const char *argv[3] = { "ACQUIRE", key, NULL };
    size_t lens[3] = { 7, sizeof(key) - 1, 0 };
    send_req(fd, FR_RESP, 2, argv, lens);
    long long t = READ_INT(fd);
    ck_assert_int_gt(t, 0);
    send_req(fd, FR_RESP, 2, argv, lens);
    EXPECT(fd, locked);
    argv[0] = "IS_LOCKED";
    lens[0] = 9;
    send_req(fd, FR_RESP, 2, argv, lens);
    EXPECT(fd, ":1\r\n");
    /* Prefixes of the key are other keys. */
    tc_sendn(fd, "*2\r\n$9\r\nIS_LOCKED\r\n$1\r\na\r\n", 26);
    EXPECT(fd, ":0\r\n");
    tc_sendn(fd, "*2\r\n$9\r\nIS_LOCKED\r\n$2\r\na\0\r\n", 27);
    EXPECT(fd, ":0\r\n");
    /* The same key written inline with escapes. */
    tc_send(fd, "ACQUIRE \"a\\x00b\\r\\nc\\\\\"\r\n");
    EXPECT(fd, locked);
    /* Another connection sees it too, and releases it with the token. */
    int fd2 = conn_new();
    char tok[32];
    snprintf(tok, sizeof(tok), "%lld", t);
    argv[0] = "RELEASE";
    lens[0] = 7;
    argv[2] = tok;
    lens[2] = strlen(tok);
    send_req(fd2, FR_INLINE_ODD, 3, argv, lens);
    EXPECT(fd2, ":1\r\n");
    argv[0] = "PTTL";
    lens[0] = 4;
    send_req(fd2, FR_RESP, 2, argv, lens);
    EXPECT(fd2, ":-2\r\n");
    close(fd2);
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_acquire_bad_options)
{
    int fr = _i;
    srv_start(NULL);
    int fd = conn_new();
    static const char *const bad_ttl = "': expected milliseconds "
                                       "(1..1099511627776) or FOREVER\r\n";
    char want[256];

    SEND(fd, fr, "ACQUIRE");
    EXPECT(fd, "-ERR wrong number of arguments for 'ACQUIRE'\r\n");
    SEND(fd, fr, "acquire");
    EXPECT(fd, "-ERR wrong number of arguments for 'ACQUIRE'\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "TTL", "1", "WAIT", "1", "SESSION", "x");
    EXPECT(fd, "-ERR wrong number of arguments for 'ACQUIRE'\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "TTL");
    EXPECT(fd, "-ERR option 'TTL' needs a value\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "SESSION", "WAIT");
    EXPECT(fd, "-ERR option 'WAIT' needs a value\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "TTL", "5", "ttl", "6");
    EXPECT(fd, "-ERR option 'TTL' given twice\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "WAIT", "0", "WAIT", "0");
    EXPECT(fd, "-ERR option 'WAIT' given twice\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "SESSION", "SESSION");
    EXPECT(fd, "-ERR option 'SESSION' given twice\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "BOGUS", "1");
    EXPECT(fd, "-ERR unknown option 'BOGUS' for 'ACQUIRE'\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "TTL", "5000", "FOREVER");
    EXPECT(fd, "-ERR unknown option 'FOREVER' for 'ACQUIRE'\r\n");

    static const char *const bad[] = { "0", "-1", "abc", "",
                                       "99999999999999999999",
                                       "1099511627777", "1.5", "+5", "5ms" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SEND(fd, fr, "ACQUIRE", "k", "TTL", bad[i]);
        snprintf(want, sizeof(want), "-ERR invalid TTL '%s%s", bad[i], bad_ttl);
        EXPECT(fd, want);
    }
    /* Arguments are quoted safely: binary bytes escaped, long ones cut. */
    static const char bin[] = "1\r\n2\0";
    const char *argv[] = { "ACQUIRE", "k", "TTL", bin };
    size_t lens[] = { 7, 1, 3, sizeof(bin) - 1 };
    send_req(fd, fr, 4, argv, lens);
    snprintf(want, sizeof(want), "-ERR invalid TTL '1\\x0d\\x0a2\\x00%s",
             bad_ttl);
    EXPECT(fd, want);
    char longarg[201];
    memset(longarg, '9', 200);
    longarg[200] = '\0';
    SEND(fd, fr, "ACQUIRE", "k", "TTL", longarg);
    snprintf(want, sizeof(want), "-ERR invalid TTL '%.128s...%s", longarg,
             bad_ttl);
    EXPECT(fd, want);
    SEND(fd, fr, "ACQUIRE", "k", "WAIT", "abc");
    EXPECT(fd, "-ERR invalid WAIT 'abc': expected milliseconds "
               "(0..1099511627776) or FOREVER\r\n");
    SEND(fd, fr, "ACQUIRE", "k", "WAIT", "-1");
    EXPECT(fd, "-ERR invalid WAIT '-1': expected milliseconds "
               "(0..1099511627776) or FOREVER\r\n");

    /* None of that took the lock. */
    SEND(fd, fr, "IS_LOCKED", "k");
    EXPECT(fd, ":0\r\n");
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_max_ttl)
{
    SRV_START("--max_ttl_ms", "60000");
    int fd = conn_new();
    tc_send(fd, "ACQUIRE k TTL FOREVER\r\n");
    EXPECT(fd, "-ERR TTL FOREVER is not allowed: max_ttl_ms is 60000\r\n");
    tc_send(fd, "ACQUIRE k TTL 60001\r\n");
    /* FOREVER is not offered where it would be refused. */
    EXPECT(fd, "-ERR invalid TTL '60001': expected milliseconds (1..60000)"
               "\r\n");
    tc_send(fd, "IS_LOCKED k\r\n");
    EXPECT(fd, ":0\r\n");
    tc_send(fd, "ACQUIRE k TTL 60000\r\n");
    long long t = READ_INT(fd);
    ck_assert_int_gt(t, 0);
    char line[128];
    snprintf(line, sizeof(line), "EXTEND k %lld 60001\r\n", t);
    tc_send(fd, line);
    EXPECT(fd, "-ERR invalid EXTEND ms '60001': expected milliseconds "
               "(1..60000)\r\n");
    snprintf(line, sizeof(line), "EXTEND k %lld 60000\r\n", t);
    tc_send(fd, line);
    EXPECT(fd, ":1\r\n");
    /* The default TTL (30000) is within the bound and still applies. */
    tc_send(fd, "ACQUIRE d\r\nPTTL d\r\n");
    ck_assert_int_gt(READ_INT(fd), t);
    long long p = READ_INT(fd);
    ck_assert_msg(p > 29000 && p <= 30000, "PTTL %lld", p);
    close(fd);
    srv_finish();
}
END_TEST

/* ---- start-up errors ---- */

/* Runs argv (the daemon binary, not under valgrind: these starts must fail
 * before anything is allocated for long) with stderr captured in err.
 * Returns the exit status, or 128 + signal. */
static int run_capture(const char *const *argv, char *err, size_t cap)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(pfd[0], err + got, cap - 1 - got)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        got += (size_t)r;
    }
    err[got] = '\0';
    close(pfd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void write_conf(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* A second daemon pointed at a live daemon's Unix socket must refuse to
 * start and leave the socket alone (it used to unlink it, cutting the
 * running daemon off). */
START_TEST(test_unix_socket_in_use)
{
    const char *bin = getenv("CACHIFYD_BIN");
    char err[4096];
    if (!bin)
        bin = "build/cachifyd";
    srv_init();
    char sock[sizeof(g_ts.sock_path)];
    snprintf(sock, sizeof(sock), "%s", g_ts.sock_path);
    srv_run((const char *const[]){ "--unixsocket", sock, NULL });
    int rc = run_capture((const char *const[]){ bin, "--port", "0",
                                                "--unixsocket", sock, NULL },
                         err, sizeof(err));
    ck_assert_msg(rc == 1 && strstr(err, "is in use by a running daemon"),
                  "second daemon: exit %d, stderr: %s", rc, err);
    int fd = -1;
    for (int i = 0; i < 500 && fd < 0; i++) { /* created before TCP */
        fd = tc_connect_unix(sock);
        if (fd < 0)
            usleep(20000);
    }
    ck_assert_msg(fd >= 0, "the first daemon's socket is gone");
    ck_assert_int_eq(tc_send(fd, "PING\r\n"), 0);
    EXPECT(fd, "+PONG\r\n");
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_config_errors)
{
    const char *bin = getenv("CACHIFYD_BIN");
    char err[4096], conf[256], want[512];
    if (!bin)
        bin = "build/cachifyd";
    srv_init(); /* only for its directory */
    snprintf(conf, sizeof(conf), "%s/extra.conf", g_ts.dir);

    /* Exit status 2 (main.c) and one line naming where and what; exact,
     * so a sanitizer report on this path would fail the test too. */
    int rc = run_capture((const char *const[]){ bin, "--port", "70000", NULL },
                         err, sizeof(err));
    ck_assert_msg(rc == 2 &&
                  strcmp(err, "cachifyd: command line: --port: '70000' is "
                              "out of range (0..65535)\n") == 0,
                  "--port 70000: exit %d, stderr: %s", rc, err);

    write_conf(conf, "# a comment\nport 7379\nbogus_key 1\n");
    rc = run_capture((const char *const[]){ bin, "-c", conf, NULL }, err,
                     sizeof(err));
    snprintf(want, sizeof(want), "cachifyd: %s:3: bogus_key: unknown key\n",
             conf);
    ck_assert_msg(rc == 2 && strcmp(err, want) == 0,
                  "unknown key: exit %d, stderr: %s", rc, err);

    write_conf(conf, "port 7379\n\nmaxclients 0\n");
    rc = run_capture((const char *const[]){ bin, "-c", conf, NULL }, err,
                     sizeof(err));
    snprintf(want, sizeof(want), "cachifyd: %s:3: maxclients: '0' is out of "
             "range (1..1000000)\n", conf);
    ck_assert_msg(rc == 2 && strcmp(err, want) == 0,
                  "bad value: exit %d, stderr: %s", rc, err);

    rc = run_capture((const char *const[]){ bin, "--no_such_key", "1", NULL },
                     err, sizeof(err));
    ck_assert_msg(rc == 2 && strstr(err, "no_such_key"),
                  "unknown option: exit %d, stderr: %s", rc, err);
    ts_cleanup(&g_ts);
}
END_TEST

/* ---- framing errors ---- */

struct proto_case {
    const char *what;
    const char *bytes;
    size_t len; /* 0: strlen(bytes) */
    const char *reply;
};

/* With --max_line 1024, --max_value_len 1024 and --max_request 4096
 * (4 x 1024, as max_line alone made it before values).  The texts are
 * proto/reader.c's. */
static const struct proto_case proto_cases[] = {
    { "unbalanced quotes", "PING \"abc\r\n", 0,
      "-PROTO unbalanced quotes in request\r\n" },
    { "unbalanced quotes, escape at the end", "PING \"abc\\\"\n", 0,
      "-PROTO unbalanced quotes in request\r\n" },
    { "text after a closing quote", "PING \"a\"b\r\n", 0,
      "-PROTO closing quote must be followed by a space\r\n" },
    { "count not a number", "*abc\r\n", 0,
      "-PROTO invalid multibulk count\r\n" },
    { "count 0", "*0\r\n", 0,
      "-PROTO multibulk count out of range (1..1024)\r\n" },
    { "count 1025", "*1025\r\n", 0,
      "-PROTO multibulk count out of range (1..1024)\r\n" },
    { "count -1", "*-1\r\n", 0,
      "-PROTO multibulk count out of range (1..1024)\r\n" },
    { "count with 23 digits", "*99999999999999999999999\r\n", 0,
      "-PROTO multibulk count out of range (1..1024)\r\n" },
    { "count with LF only", "*1\n$4\r\nPING\r\n", 0,
      "-PROTO expected CRLF after multibulk count\r\n" },
    { "missing '$'", "*1\r\nPING\r\n", 0,
      "-PROTO expected '$', got 'P'\r\n" },
    { "missing '$', binary byte", "*1\r\n\x01PING\r\n", 0,
      "-PROTO expected '$', got '\\x01'\r\n" },
    { "bulk length not a number", "*1\r\n$x\r\n", 0,
      "-PROTO invalid bulk length\r\n" },
    { "bulk length with junk", "*1\r\n$4x\r\nPING\r\n", 0,
      "-PROTO invalid bulk length\r\n" },
    { "bulk length empty", "*1\r\n$\r\n", 0,
      "-PROTO invalid bulk length\r\n" },
    { "negative bulk length", "*1\r\n$-3\r\n", 0,
      "-PROTO bulk length out of range (0..1024)\r\n" },
    { "bulk over max_line", "*1\r\n$1025\r\n", 0,
      "-PROTO bulk length out of range (0..1024)\r\n" },
    { "bulk header that never ends",
      "*1\r\n$0000000000000000000000000000000000000004\r\n", 0,
      "-PROTO expected CRLF after bulk length\r\n" },
    { "missing CRLF after bulk", "*1\r\n$4\r\nPINGxx", 0,
      "-PROTO expected CRLF after bulk string\r\n" },
    { "CR without LF after bulk", "*1\r\n$4\r\nPING\rx", 0,
      "-PROTO expected CRLF after bulk string\r\n" },
    { "NUL after bulk", "*1\r\n$4\r\nPING\0\0", 14,
      "-PROTO expected CRLF after bulk string\r\n" },
    { "second bulk broken", "*2\r\n$4\r\nPING\r\n:3\r\nabc\r\n", 0,
      "-PROTO expected '$', got ':'\r\n" },
};

/* Builds the bytes of the oversized cases (they need --max_line 1024). */
static void proto_big_case(int which, struct itest_buf *b, const char **reply)
{
    b->len = 0;
    if (which == 0) { /* an inline line one byte over, then its newline */
        buf_str(b, "PING ");
        for (int i = 0; i < 1020; i++)
            buf_str(b, "a");
        buf_str(b, "\r\n");
        *reply = "-PROTO inline request too long (max 1024 bytes)\r\n";
    } else if (which == 1) { /* a line that never ends */
        for (int i = 0; i < 3000; i++)
            buf_str(b, "a");
        *reply = "-PROTO inline request too long (max 1024 bytes)\r\n";
    } else { /* legal bulks whose sum is over max_request */
        buf_str(b, "*5\r\n");
        for (int i = 0; i < 5; i++) {
            buf_str(b, "$1000\r\n");
            for (int j = 0; j < 1000; j++)
                buf_str(b, "z");
            buf_str(b, "\r\n");
        }
        *reply = "-PROTO request too large (max 4096 bytes)\r\n";
    }
}

/* Sends a framing error on a fresh connection that holds a SESSION lock,
 * followed by a request that must never run; checks the exact -PROTO
 * reply, the close, the SESSION lock being freed, and that the holder's
 * lock and the daemon are untouched. */
static void proto_check(int holder, const char *what, const char *bytes,
                        size_t len, const char *reply)
{
    int fd = conn_new();
    tc_send(fd, "ACQUIRE hostile SESSION\r\n");
    if (READ_INT(fd) <= 0)
        ck_abort_msg("%s: no token", what);
    struct itest_buf b = { 0 };
    buf_add(&b, bytes, len);
    buf_str(&b, "\r\nACQUIRE injected\r\n");
    tc_sendn(fd, b.p, b.len);
    free(b.p);
    static char all[65536];
    long n = read_to_close(fd, all, sizeof(all));
    close(fd);
    if (n < 0)
        ck_abort_msg("%s: the connection was not closed", what);
    if ((size_t)n != strlen(reply) || memcmp(all, reply, (size_t)n) != 0)
        ck_abort_msg("%s: expected \"%s\" then close, got \"%s\"", what,
                     itest_esc(reply), itest_escn(all, (size_t)n));
    tc_send(holder, "IS_LOCKED held\r\nIS_LOCKED hostile\r\n"
                    "IS_LOCKED injected\r\nPING\r\n");
    if (tc_expect(holder, ":1\r\n:0\r\n:0\r\n+PONG\r\n") != 0)
        ck_abort_msg("%s: after it, the holder got \"%s\"", what, tc_last());
}

START_TEST(test_proto_errors)
{
    SRV_START("--max_line", "1024", "--max_value_len", "1024",
              "--max_request", "4096");
    int holder = conn_new();
    tc_send(holder, "ACQUIRE held SESSION TTL FOREVER\r\n");
    long long t = READ_INT(holder);
    size_t ncases = sizeof(proto_cases) / sizeof(proto_cases[0]);
    for (size_t i = 0; i < ncases; i++) {
        const struct proto_case *c = &proto_cases[i];
        proto_check(holder, c->what, c->bytes, c->len ? c->len :
                    strlen(c->bytes), c->reply);
    }
    struct itest_buf b = { 0 };
    const char *reply;
    for (int i = 0; i < 3; i++) {
        proto_big_case(i, &b, &reply);
        proto_check(holder, "oversized", b.p, b.len, reply);
    }
    free(b.p);
    ck_assert_int_eq(stat1(holder, "protocol_errors"), (long long)ncases + 3);
    char line[64];
    snprintf(line, sizeof(line), "RELEASE held %lld\r\n", t);
    tc_send(holder, line);
    EXPECT(holder, ":1\r\n");
    close(holder);
    srv_finish();
}
END_TEST

/* Requests before the broken one are answered; none after it runs. */
START_TEST(test_proto_after_valid)
{
    SRV_START("--max_line", "1024", "--max_value_len", "1024",
              "--max_request", "4096");
    int fd = conn_new();
    tc_send(fd, "PING\r\nACQUIRE v1\r\n*1\r\n$4\r\nPING\r\n*abc\r\n"
                "ACQUIRE v2\r\n");
    EXPECT(fd, "+PONG\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    EXPECT(fd, "+PONG\r\n");
    EXPECT_CLOSE(fd, "-PROTO invalid multibulk count\r\n");
    close(fd);

    /* Exactly max_line bytes is still legal, in both framings. */
    fd = conn_new();
    struct itest_buf b = { 0 }, want = { 0 };
    buf_str(&b, "PING ");
    for (int i = 0; i < 1019; i++)
        buf_str(&b, "b");
    buf_str(&b, "\r\n*2\r\n$4\r\nPING\r\n$1024\r\n");
    for (int i = 0; i < 1024; i++)
        buf_str(&b, "c");
    buf_str(&b, "\r\nIS_LOCKED v1\r\nIS_LOCKED v2\r\n");
    tc_sendn(fd, b.p, b.len);
    buf_str(&want, "$1019\r\n");
    for (int i = 0; i < 1019; i++)
        buf_str(&want, "b");
    buf_str(&want, "\r\n$1024\r\n");
    for (int i = 0; i < 1024; i++)
        buf_str(&want, "c");
    buf_str(&want, "\r\n:1\r\n:0\r\n");
    EXPECT(fd, want.p);
    free(b.p);
    free(want.p);
    close(fd);
    srv_finish();
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("server_errors");
    TCase *tc = itest_tcase(s, "errors");
    tcase_add_loop_test(tc, test_unknown_command, 0, FR_COUNT);
    tcase_add_loop_test(tc, test_wrong_args, 0, FR_COUNT);
    tcase_add_loop_test(tc, test_key_limits, 0, FR_COUNT);
    tcase_add_test(tc, test_key_limit_configured);
    tcase_add_test(tc, test_binary_keys);
    tcase_add_loop_test(tc, test_acquire_bad_options, 0, FR_COUNT);
    tcase_add_test(tc, test_max_ttl);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_unix_socket_in_use);

    tc = itest_tcase(s, "proto");
    tcase_add_test(tc, test_proto_errors);
    tcase_add_test(tc, test_proto_after_valid);
    return s;
}

int main(void)
{
    return itest_main(errors_suite());
}
