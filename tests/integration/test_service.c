/* tests/integration/test_service.c - cachifyd as a service: the /metrics
 * HTTP endpoint and the SIGHUP reload, against the real daemon.
 *
 * Owns: the HTTP answers (200 with the exposition's Content-Type, 404,
 * 405, HEAD), hostile HTTP clients (a huge request, a body, garbage, a
 * slowloris trickle, more connections than the cap) while the lock service
 * keeps answering, the wait-time histogram in STATS and /metrics (the same
 * numbers), and SIGHUP: loglevel and password changed without dropping a
 * held lock, a broken file kept out, a key that needs a restart named,
 * command-line values still winning, no -c file, and SIGHUP, SIGUSR1 and
 * SIGTERM sent while the daemon is still starting.  The exposition format
 * itself is checked with a real Prometheus parser by
 * tests/scripts/metrics.sh.
 *
 * Timing: the daemon's HTTP limits are 5 s idle and 10 s per connection
 * (daemon/metrics.c); every wait here has a bound several times that.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "tests/integration/hardening.h"
#include "daemon/admission.h"

/* A free loopback port for metrics_port (as the harness picks its own). */
static int free_port(void)
{
    struct sockaddr_in in = { .sin_family = AF_INET };
    socklen_t len = sizeof in;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&in, sizeof in), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    close(fd);
    return ntohs(in.sin_port);
}

static int g_mport;
static char g_mport_s[16];

/* Starts the daemon with metrics on a free port, plus extra arguments. */
static void start_with_metrics(const char *extra1, const char *extra2)
{
    g_mport = free_port();
    snprintf(g_mport_s, sizeof g_mport_s, "%d", g_mport);
    const char *args[] = { "--metrics_port", g_mport_s, extra1, extra2, NULL };
    srv_start(args);
}

/* A blocking connection to the metrics port with the harness's timeouts. */
static int http_connect(void)
{
    struct sockaddr_in in = { .sin_family = AF_INET };
    struct timeval tv = { TS_READ_TIMEOUT_S, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    in.sin_port = htons((uint16_t)g_mport);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(fd >= 0 && connect(fd, (struct sockaddr *)&in, sizeof in) == 0,
            "cannot connect to the metrics port: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* The status code of an HTTP answer ("HTTP/1.x NNN ..."), or -1. */
static int status_of(const char *r)
{
    int code = -1;
    if (strncmp(r, "HTTP/1.", 7) != 0 || sscanf(r + 8, " %d ", &code) != 1)
        return -1;
    return code;
}

/* Sends request (HTTP/1.0, so the server closes) and returns the whole
 * answer in a static buffer. */
static const char *http(const char *request)
{
    static char buf[65536];
    int fd = http_connect();
    say(fd, request);
    long n = read_to_close(fd, buf, sizeof buf);
    close(fd);
    REQUIRE(n > 0, "no HTTP answer to \"%s\"", itest_esc(request));
    return buf;
}

/* GET /metrics, which must answer 200; returns the whole answer. */
static const char *scrape_ok(void)
{
    const char *r = http("GET /metrics HTTP/1.0\r\n\r\n");
    REQUIRE(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0, "GET /metrics: %s",
            itest_esc(r));
    return r;
}

/* The value of the sample line "name value" in an exposition text. */
static long long sample(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, name, len) == 0 && p[len] == ' ')
            return strtoll(p + len + 1, NULL, 10);
    }
    ck_abort_msg("no sample %s in /metrics", name);
    return -1;
}

/* The lock service answers a PING quickly (seconds, not the 20 s read
 * timeout: a stalled loop would fail here). */
static void lock_service_alive(void)
{
    double t0 = mono_s();
    int c = conn_new();
    say(c, "PING\r\n");
    EXPECT(c, "+PONG\r\n");
    close(c);
    REQUIRE(mono_s() - t0 < (slow_mode() ? 15 : 5),
            "PING took %.1f s while an HTTP client misbehaved", mono_s() - t0);
}

START_TEST(test_metrics_answers)
{
    start_with_metrics(NULL, NULL);
    const char *r = scrape_ok();
    ck_assert(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
    ck_assert(strstr(r, "\n# TYPE cachifyd_acquires_total counter\n"));
    ck_assert(strstr(r, "\ncachifyd_wait_seconds_bucket{le=\"+Inf\"} 0\n"));
    r = http("GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
    ck_assert(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
    r = http("HEAD /metrics HTTP/1.0\r\n\r\n");
    ck_assert(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
    ck_assert(strstr(r, "# TYPE") == NULL);
    ck_assert(strstr(r, "\r\nContent-Length: ") != NULL);
    r = http("GET / HTTP/1.0\r\n\r\n");
    ck_assert_msg(status_of(r) == 404, "%s", itest_esc(r));
    /* HEAD of a missing page: a 404 without its body after the headers
     * (a keep-alive client would read that body as the next answer). */
    r = http("HEAD /nope HTTP/1.0\r\n\r\n");
    ck_assert_msg(status_of(r) == 404, "%s", itest_esc(r));
    ck_assert_msg(strlen(r) >= 4 && strcmp(r + strlen(r) - 4, "\r\n\r\n") == 0,
                  "HEAD /nope sent a body: %s", itest_esc(r));
    ck_assert(strstr(r, "\r\nContent-Length: 14\r\n") != NULL);
    r = http("GET /metrics/x HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(status_of(r), 404);
    r = http("GET /METRICS HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(status_of(r), 404);
    r = http("POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    ck_assert_msg(status_of(r) == 405, "%s", itest_esc(r));
    ck_assert(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
    r = http("DELETE /metrics HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(status_of(r), 405);
    r = http("OPTIONS /metrics HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(status_of(r), 405);
    r = http("POST /other HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    ck_assert_int_eq(status_of(r), 404);
    /* Not HTTP at all: an error or a close, never a 200, and no harm. */
    int fd = http_connect();
    say(fd, "\x01\x02 garbage\r\n\r\n");
    char buf[4096];
    long n = read_to_close(fd, buf, sizeof buf);
    close(fd);
    ck_assert(n >= 0 && status_of(buf) != 200);
    lock_service_alive();
    /* Keep-alive: two requests on one HTTP/1.1 connection. */
    fd = http_connect();
    say(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert(n > 0 && strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    close(fd);
    srv_finish();
}
END_TEST

/* Sends n bytes of filler, ignoring errors (the server may close first). */
static void flood(int fd, size_t n)
{
    static char chunk[16384];
    memset(chunk, 'a', sizeof chunk);
    while (n > 0) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;
        if (send(fd, chunk, k, MSG_NOSIGNAL) <= 0)
            return;
        n -= k;
    }
}

START_TEST(test_metrics_huge_request)
{
    start_with_metrics(NULL, NULL);
    char buf[65536];
    /* A header of 4 MiB: refused once it passes the 8 KiB bound. */
    int fd = http_connect();
    say(fd, "GET /metrics HTTP/1.1\r\nX-Big: ");
    flood(fd, 4u << 20);
    long n = read_until_close(fd, buf, sizeof buf, 1);
    close(fd);
    ck_assert_msg(n >= 0 && strstr(buf, " 200 ") == NULL,
                  "a 4 MiB header was served: %s", itest_esc(buf));
    /* A request line of 1 MiB. */
    fd = http_connect();
    say(fd, "GET /");
    flood(fd, 1u << 20);
    n = read_until_close(fd, buf, sizeof buf, 1);
    close(fd);
    ck_assert(n >= 0 && strstr(buf, " 200 ") == NULL);
    /* A body, announced and sent: GET /metrics takes none. */
    fd = http_connect();
    say(fd, "GET /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
    flood(fd, 1000000);
    n = read_until_close(fd, buf, sizeof buf, 1);
    close(fd);
    ck_assert_msg(n >= 0 && strstr(buf, " 200 ") == NULL, "%s", itest_esc(buf));
    lock_service_alive();
    scrape_ok();
    srv_finish();
}
END_TEST

START_TEST(test_metrics_slowloris)
{
    start_with_metrics(NULL, NULL);
    int fd = http_connect();
    double t0 = mono_s(), limit = slow_mode() ? 60 : 30;
    say(fd, "GET /metrics HTTP/1.1\r\n");
    /* One header byte a second: never idle for evhttp's 5 s, so only the
     * per-connection lifetime (10 s) ends it. */
    int closed = 0;
    while (!closed && mono_s() - t0 < limit) {
        char ch;
        if (send(fd, "X", 1, MSG_NOSIGNAL) != 1)
            closed = 1;
        struct pollfd p = { fd, POLLIN, 0 };
        if (!closed && poll(&p, 1, 1000) == 1 &&
            recv(fd, &ch, 1, MSG_DONTWAIT) <= 0)
            closed = 1;
        lock_service_alive();
    }
    close(fd);
    ck_assert_msg(closed, "a trickling HTTP client was kept %.0f s", limit);
    ck_assert_msg(mono_s() - t0 >= 4, "closed after %.1f s: before the idle "
                  "timeout, so not by the lifetime bound", mono_s() - t0);
    scrape_ok();
    srv_finish();
}
END_TEST

/* Open descriptors of the daemon (valgrind's own are constant). */
static int daemon_fds(void)
{
    char path[64];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)g_ts.pid);
    DIR *d = opendir(path);
    ck_assert(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_metrics_connection_cap)
{
    start_with_metrics(NULL, NULL);
    int fds[20];
    int before = daemon_fds();
    for (int i = 0; i < 20; i++)
        fds[i] = http_connect(); /* the kernel's backlog takes the rest */
    usleep(slow_mode() ? 3000000 : 500000);
    int held = daemon_fds() - before;
    ck_assert_msg(held >= 1 && held <= 8, "the daemon holds %d HTTP "
                  "connections (at most 8)", held);
    lock_service_alive();
    for (int i = 0; i < 20; i++)
        close(fds[i]);
    /* The slots come back: a scrape works again (within the idle bound). */
    scrape_ok();
    srv_finish();
}
END_TEST

START_TEST(test_wait_histogram)
{
    start_with_metrics(NULL, NULL);
    int a = conn_new(), b = conn_new(), c = conn_new();
    say(a, "ACQUIRE k\r\n");
    long long t = READ_INT(a);
    say(b, "ACQUIRE k WAIT 300\r\n");
    EXPECT(b, "-TIMEOUT k is already locked!\r\n");
    say(c, "ACQUIRE k WAIT 60000\r\n");
    usleep(200000);
    char rel[64];
    snprintf(rel, sizeof rel, "RELEASE k %lld\r\n", t);
    say(a, rel);
    EXPECT(a, ":1\r\n");
    ck_assert_int_gt(READ_INT(c), t);
    json_t *doc = stats_get(a);
    json_t *w = json_object_get(doc, "wait_seconds");
    ck_assert(json_is_object(w));
    ck_assert_int_eq(stat_int(w, "count"), 2);
    ck_assert_int_ge(stat_int(w, "sum_us"), 300000 + 100000);
    json_t *buckets = json_object_get(w, "buckets");
    ck_assert_int_eq(json_object_size(buckets), 15);
    ck_assert_int_eq(json_integer_value(json_object_get(buckets, "+Inf")), 2);
    ck_assert_int_le(json_integer_value(json_object_get(buckets, "0.25")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(buckets, "0.001")), 0);
    /* /metrics reads the same counters. */
    const char *r = scrape_ok();
    ck_assert_int_eq(sample(r, "cachifyd_wait_seconds_count"), 2);
    ck_assert_int_eq(sample(r, "cachifyd_wait_seconds_bucket{le=\"+Inf\"}"), 2);
    ck_assert_int_eq(sample(r, "cachifyd_acquires_total"), stat_int(doc, "acquired"));
    ck_assert_int_eq(sample(r, "cachifyd_wait_timeouts_total"), stat_int(doc, "timeouts"));
    ck_assert_int_eq(sample(r, "cachifyd_handoffs_total"), 1);
    ck_assert_int_eq(sample(r, "cachifyd_clients"), 3);
    json_decref(doc);
    close(a);
    close(b);
    close(c);
    srv_finish();
}
END_TEST

/* ---- SIGHUP ---- */

static char g_conf[256];

/* Writes the config file of the reload tests: the daemon's address, then
 * body. */
static void write_conf(const char *body)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", g_conf);
    FILE *f = fopen(tmp, "w");
    ck_assert(f != NULL);
    fprintf(f, "bind 127.0.0.1\nport %d\n%s", g_ts.port, body);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, g_conf), 0); /* never read half written */
}

static void conf_path(void)
{
    srv_init();
    snprintf(g_conf, sizeof g_conf, "%s/c.conf", g_ts.dir);
}

START_TEST(test_sighup_level_and_password)
{
    conf_path();
    write_conf("loglevel warning\nrequirepass one\n");
    const char *args[] = { "-c", g_conf, NULL };
    if (ts_start_bare(&g_ts, args) != 0)
        ck_abort_msg("the daemon did not start");
    int a = conn_new();
    say(a, "AUTH one\r\nACQUIRE held TTL 600000\r\n");
    EXPECT(a, "+OK\r\n");
    long long token = READ_INT(a);
    ck_assert(!h_log_has("[debug]", 0));

    write_conf("loglevel debug\nrequirepass s3cret-two\n");
    h_hup("config reload done", 1);
    ck_assert(h_log_has("config reload: loglevel: warning -> debug", 0));
    ck_assert(h_log_has("config reload: requirepass changed (set)", 0));
    ck_assert(!h_log_has("s3cret", 0)); /* the password is never logged */
    int b = conn_new();
    say(b, "AUTH one\r\n");
    EXPECT(b, "-WRONGPASS invalid password\r\n");
    say(b, "AUTH s3cret-two\r\nIS_LOCKED held\r\n");
    EXPECT(b, "+OK\r\n:1\r\n");
    ck_assert(h_log_has("[debug] client", 10)); /* debug lines now */
    /* a kept its session and its lock: it authenticated before. */
    say(a, "PTTL held\r\n");
    ck_assert_int_gt(READ_INT(a), 500000);

    /* A broken file changes nothing and stops nothing. */
    write_conf("loglevel warning\nrequirepass three\nmaxclients lots\n");
    h_hup("config reload failed", 1);
    ck_assert(h_log_has("c.conf:5: maxclients: 'lots' is not", 0));
    int c = conn_new();
    say(c, "AUTH three\r\nAUTH s3cret-two\r\nIS_LOCKED held\r\n");
    EXPECT(c, "-WRONGPASS invalid password\r\n+OK\r\n:1\r\n");
    ck_assert(h_log_has("[debug] client", 0)); /* still debug */
    /* A missing file too. */
    ck_assert_int_eq(unlink(g_conf), 0);
    h_hup("config reload failed", 2);
    /* A key that needs a restart is named, and the rest applies. */
    write_conf("loglevel debug\nrequirepass s3cret-two\nunixsocket /tmp/x.sock\n"
               "max_ttl_ms 700000\n");
    h_hup("config reload done", 2);
    ck_assert(h_log_has("config reload: unixsocket changed, but it only "
                        "takes effect after a restart", 0));
    ck_assert(h_log_has("config reload: max_ttl_ms: 0 -> 700000", 0));
    say(c, "ACQUIRE x TTL 800000\r\n");
    EXPECT(c, "-ERR invalid TTL '800000': expected milliseconds (1..700000)\r\n");
    /* The password removed: a connection still waiting to AUTH is let
     * through (AUTH itself would now answer "no password is set"). */
    int d = conn_new();
    say(d, "IS_LOCKED held\r\n");
    EXPECT(d, "-NOAUTH Authentication required.\r\n");
    write_conf("loglevel debug\nunixsocket /tmp/x.sock\nmax_ttl_ms 700000\n");
    h_hup("config reload done", 3);
    ck_assert(h_log_has("config reload: requirepass changed (now none)", 0));
    say(d, "IS_LOCKED held\r\n");
    EXPECT(d, ":1\r\n");
    close(d);
    say(a, "RELEASE held ");
    char t[32];
    snprintf(t, sizeof t, "%lld\r\n", token);
    say(a, t);
    EXPECT(a, ":1\r\n");
    close(a);
    close(b);
    close(c);
    srv_finish();
}
END_TEST

/* The password removed by a reload, on a daemon bound to every address:
 * a loopback connection still waiting to AUTH is let through, but one
 * from another host that never gave the password is not -- protected
 * mode refuses such a client from now on, so it gets the same -DENIED
 * and is closed, rather than being served without having proved
 * anything. */
START_TEST(test_sighup_password_removed_protected)
{
    struct in_addr addr;
    char name[INET_ADDRSTRLEN];
    if (!local_ipv4(&addr, name, sizeof name)) {
        fprintf(stderr, "SKIP test_sighup_password_removed_protected: this "
                "machine has no non-loopback IPv4 address to connect from\n");
        return;
    }
    conf_path();
    write_conf("requirepass pw\n");
    const char *args[] = { "-c", g_conf, "--bind", "0.0.0.0", NULL };
    if (ts_start_bare(&g_ts, args) != 0)
        ck_abort_msg("the daemon did not start");
    int remote = connect_from(addr), local = conn_new();
    say(remote, "IS_LOCKED k\r\n");
    EXPECT(remote, "-NOAUTH Authentication required.\r\n");
    say(local, "IS_LOCKED k\r\n");
    EXPECT(local, "-NOAUTH Authentication required.\r\n");

    write_conf("");
    h_hup("config reload done", 1);
    H_EXPECT_CLOSE(remote, ADMISSION_DENIED_REPLY);
    close(remote);
    ck_assert(h_log_has("closed: protected mode", 0));
    say(local, "IS_LOCKED k\r\n");
    EXPECT(local, ":0\r\n");
    ck_assert_int_eq(stat1(local, "denied_clients"), 1);
    /* A new one from that host is refused at accept, as before. */
    remote = connect_from(addr);
    H_EXPECT_CLOSE(remote, ADMISSION_DENIED_REPLY);
    close(remote);
    close(local);
    srv_finish();
}
END_TEST

START_TEST(test_sighup_command_line_wins)
{
    conf_path();
    write_conf("maxclients 100\ndefault_ttl_ms 30000\n");
    const char *args[] = { "-c", g_conf, "--maxclients", "50", NULL };
    srv_run(args);
    int a = conn_new();
    ck_assert_int_eq(stat1(a, "maxclients"), 50);
    write_conf("maxclients 200\ndefault_ttl_ms 5000\nmax_waiters 1\n");
    h_hup("config reload done", 1);
    ck_assert_int_eq(stat1(a, "maxclients"), 50);
    ck_assert(h_log_has("config reload: default_ttl_ms: 30000 -> 5000", 0));
    ck_assert(!h_log_has("config reload: maxclients", 0));
    say(a, "ACQUIRE k\r\n");
    READ_INT(a);
    say(a, "PTTL k\r\n");
    long long ms = READ_INT(a);
    ck_assert(ms > 0 && ms <= 5000);
    /* The engine got the new max_waiters: one waiter, not two. */
    int w1 = conn_new(), w2 = conn_new();
    say(w1, "ACQUIRE k WAIT 60000\r\n");
    ck_assert_int_eq(stat_poll(a, "waiters", 1, 20), 1);
    say(w2, "ACQUIRE k WAIT 60000\r\n");
    EXPECT(w2, "-LIMIT max_waiters reached for this key (1)\r\n");
    close(w1);
    close(w2);
    close(a);
    srv_finish();
}
END_TEST

/* max_key_len lowered in the file: a lock already held under a longer
 * key must stay releasable and extendable by its holder (the limit
 * checks every command's key), so the new value waits for a restart. */
START_TEST(test_sighup_max_key_len_waits)
{
    char key[101], cmd[512];
    conf_path();
    write_conf("max_key_len 200\n");
    const char *args[] = { "-c", g_conf, NULL };
    srv_run(args);
    memset(key, 'k', 100);
    key[100] = '\0';
    int a = conn_new();
    snprintf(cmd, sizeof cmd, "ACQUIRE %s TTL FOREVER\r\n", key);
    say(a, cmd);
    long long token = READ_INT(a);
    write_conf("max_key_len 50\n");
    h_hup("config reload done", 1);
    snprintf(cmd, sizeof cmd, "EXTEND %s %lld 600000\r\nRELEASE %s %lld\r\n",
             key, token, key, token);
    say(a, cmd);
    EXPECT(a, ":1\r\n:1\r\n");
    ck_assert(h_log_has("config reload: max_key_len changed, but it only "
                        "takes effect after a restart", 0));
    close(a);
    srv_finish();
}
END_TEST

/* Writes a password file (mode 0600) at path. */
static void write_pass(const char *path, const char *line)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    ck_assert_int_eq(close(fd), 0);
}

/* A changed path is logged quoted as error messages quote a value
 * (config_quote): a control byte, the quote and the backslash as \xHH,
 * so a path cannot put a terminal escape, a line of its own or a fake
 * "' -> '" into the log. */
START_TEST(test_sighup_path_quoted)
{
    char plain[256], odd[256], body[600], want[700];
    conf_path();
    snprintf(plain, sizeof plain, "%s/p1", g_ts.dir);
    snprintf(odd, sizeof odd, "%s/p\x1b[2J\t'\"\\x", g_ts.dir);
    write_pass(plain, "pw1\n");
    write_pass(odd, "pw2\n");
    snprintf(body, sizeof body, "requirepass_file %s\n", plain);
    write_conf(body);
    const char *args[] = { "-c", g_conf, NULL };
    if (ts_start_bare(&g_ts, args) != 0)
        ck_abort_msg("the daemon did not start");
    /* In the file, the value is quoted: \" and \\ are its escapes. */
    snprintf(body, sizeof body,
             "requirepass_file \"%s/p\x1b[2J\t'\\\"\\\\x\"\n", g_ts.dir);
    write_conf(body);
    h_hup("config reload done", 1);
    snprintf(want, sizeof want, "config reload: requirepass_file: '%s' -> "
             "'%s/p\\x1b[2J\\x09\\x27\"\\x5cx'\n", plain, g_ts.dir);
    ck_assert_msg(h_log_has(want, 0), "no line %s", want);
    ck_assert(!h_log_has("\x1b", 0));
    ck_assert(!h_log_has("\t", 0));
    int a = conn_new();
    say(a, "AUTH pw2\r\n");
    EXPECT(a, "+OK\r\n");
    close(a);
    srv_finish();
}
END_TEST

START_TEST(test_sighup_without_file)
{
    SRV_START("--maxclients", "60");
    int a = conn_new();
    say(a, "ACQUIRE k TTL 600000\r\n");
    READ_INT(a);
    h_hup("SIGHUP: no config file to reload", 1);
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":1\r\n");
    /* SIGUSR1 and SIGUSR2 stay harmless. */
    kill(g_ts.pid, SIGUSR1);
    ck_assert(h_log_has("SIGUSR1 ignored", 20));
    say(a, "PING\r\n");
    EXPECT(a, "+PONG\r\n");
    close(a);
    srv_finish();
}
END_TEST

/* ---- signals during start-up ---- */

/* The config file is a FIFO, so the daemon's start stops inside reading
 * it, before any signal event exists, for as long as the test likes: the
 * test's open for writing succeeds only once the daemon has opened it.
 * O_NONBLOCK makes that open fail (ENXIO) while nobody reads, so a daemon
 * that never gets there, or died, fails the test instead of hanging it. */
static int fifo_reader_waiting(void)
{
    double end = mono_s() + (slow_mode() ? 120 : 60);
    int fd, status;

    while ((fd = open(g_conf, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
        ck_assert_msg(errno == ENXIO, "open %s: %s", g_conf, strerror(errno));
        if (waitpid(g_ts.pid, &status, WNOHANG) == g_ts.pid) {
            g_ts.pid = -1;
            ck_abort_msg("the daemon ended while starting (status 0x%x)",
                         status);
        }
        ck_assert_msg(mono_s() < end, "the daemon never read its config");
        usleep(20000);
    }
    return fd;
}

/* Writes the config (the daemon's address, then body) into the FIFO the
 * daemon reads, and closes it: the end of the file. */
static void fifo_feed(int fd, const char *body)
{
    char text[512];
    int n = snprintf(text, sizeof text, "bind 127.0.0.1\nport %d\n%s",
                     g_ts.port, body);
    tc_set_nonblock(fd, 0);
    ck_assert_int_eq(write(fd, text, (size_t)n), n);
    ck_assert_int_eq(close(fd), 0);
}

static void spawn_on_fifo(void)
{
    const char *args[] = { "-c", g_conf, NULL };
    conf_path();
    ck_assert_int_eq(mkfifo(g_conf, 0600), 0);
    ck_assert_int_eq(ts_spawn_bare(&g_ts, args), 0);
}

/* A SIGHUP (a service manager's reload) and a SIGUSR1 sent while the
 * daemon reads its config at start: neither kills it (their default
 * action would), and the SIGHUP is not lost either: once the loop runs it
 * reloads, reading the FIFO again. */
START_TEST(test_sighup_during_start)
{
    spawn_on_fifo();
    int fd = fifo_reader_waiting();
    ck_assert_int_eq(kill(g_ts.pid, SIGHUP), 0);
    ck_assert_int_eq(kill(g_ts.pid, SIGUSR1), 0);
    fifo_feed(fd, "loglevel debug\nmaxclients 70\n");
    if (ts_wait_ready(&g_ts) != 0)
        ck_abort_msg("the daemon did not start");
    fd = fifo_reader_waiting(); /* the reload the SIGHUP asked for */
    fifo_feed(fd, "loglevel debug\nmaxclients 60\n");
    ck_assert(h_log_has("config reload done", slow_mode() ? 60 : 20));
    ck_assert(h_log_has("config reload: maxclients: 70 -> 60", 0));
    ck_assert(h_log_has("SIGUSR1 ignored", 0));
    int a = conn_new();
    ck_assert_int_eq(stat1(a, "maxclients"), 60);
    close(a);
    srv_finish();
}
END_TEST

/* A SIGTERM sent while the daemon reads its config at start stops it
 * once it is up, cleanly (exit 0, its state file saved), without a
 * second signal. */
START_TEST(test_sigterm_during_start)
{
    char body[300];
    spawn_on_fifo();
    int fd = fifo_reader_waiting();
    ck_assert_int_eq(kill(g_ts.pid, SIGTERM), 0);
    snprintf(body, sizeof body, "state_file %s\n", g_ts.state_path);
    fifo_feed(fd, body);
    ck_assert_int_eq(ts_wait_exit(&g_ts, slow_mode() ? 120 : 60), 0);
    ck_assert(h_log_has("received SIGTERM, shutting down", 0));
    ck_assert(h_log_has("written: clean stop, 0 locks", 0));
    ck_assert(h_log_has("cachifyd stopped", 0));
    ts_cleanup(&g_ts);
}
END_TEST

/* syslog yes: the lines leave standard error (where would they go is the
 * host's syslog daemon's business), and the daemon serves and stops as
 * usual (under valgrind: without a leak). */
START_TEST(test_syslog_switch)
{
    SRV_START("--syslog", "yes", "--syslog_ident", "cachifyd-test");
    int a = conn_new();
    say(a, "PING\r\n");
    EXPECT(a, "+PONG\r\n");
    close(a);
    ck_assert(!h_log_has("] cachifyd ready", 0));
    ck_assert(!h_log_has("[debug] client", 0));
    srv_finish();
}
END_TEST

static Suite *service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = itest_tcase(s, "metrics");
    tcase_add_test(tc, test_metrics_answers);
    tcase_add_test(tc, test_metrics_huge_request);
    tcase_add_test(tc, test_metrics_slowloris);
    tcase_add_test(tc, test_metrics_connection_cap);
    tcase_add_test(tc, test_wait_histogram);
    tc = itest_tcase(s, "reload");
    tcase_add_test(tc, test_sighup_level_and_password);
    tcase_add_test(tc, test_sighup_password_removed_protected);
    tcase_add_test(tc, test_sighup_command_line_wins);
    tcase_add_test(tc, test_sighup_max_key_len_waits);
    tcase_add_test(tc, test_sighup_path_quoted);
    tcase_add_test(tc, test_sighup_without_file);
    tcase_add_test(tc, test_sighup_during_start);
    tcase_add_test(tc, test_sigterm_during_start);
    tcase_add_test(tc, test_syslog_switch);
    return s;
}

int main(void)
{
    return itest_main(service_suite());
}
