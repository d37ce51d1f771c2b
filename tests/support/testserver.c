/* tests/support/testserver.c - run the real daemon and talk to it
 * (see testserver.h). */
#include "tests/support/testserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TS_MAX_ARGS 64
/* Seconds to wait for the daemon to accept connections after a start. */
#define TS_START_TIMEOUT_S 60

static char last_seen[512];

const char *tc_last(void)
{
    return last_seen;
}

static void remember(const char *buf, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof(last_seen); i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch >= 0x20 && ch < 0x7f)
            last_seen[o++] = (char)ch;
        else
            o += (size_t)snprintf(last_seen + o, sizeof(last_seen) - o,
                                  "\\x%02x", ch);
    }
    last_seen[o] = '\0';
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Binds port 0 to learn a free port.  Another process could take it before
 * the daemon binds it; ts_start then fails loudly, which is acceptable. */
int ts_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in;
    socklen_t len = sizeof(in);
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof(in)) != 0 ||
        getsockname(fd, (struct sockaddr *)&in, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(in.sin_port);
}

int ts_init(struct test_server *ts)
{
    memset(ts, 0, sizeof(*ts));
    ts->pid = -1;
    snprintf(ts->dir, sizeof(ts->dir), "/tmp/cachifyd-test-XXXXXX");
    if (!mkdtemp(ts->dir))
        return -1;
    snprintf(ts->log_path, sizeof(ts->log_path), "%s/daemon.log", ts->dir);
    snprintf(ts->state_path, sizeof(ts->state_path), "%s/state.json", ts->dir);
    snprintf(ts->sock_path, sizeof(ts->sock_path), "%s/cachifyd.sock", ts->dir);
    ts->port = ts_free_port();
    return ts->port > 0 ? 0 : -1;
}

static int set_timeouts(int fd)
{
    struct timeval tv = { TS_READ_TIMEOUT_S, 0 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    return 0;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0 ||
        set_timeouts(fd) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Forks the daemon: ts_start's and ts_start_bare's first half (defaults
 * says whether the test's --bind, --port and --loglevel come first). */
static int spawn(struct test_server *ts, const char *const *extra,
                 int defaults)
{
    const char *bin = getenv("CACHIFYD_BIN");
    const char *vg = getenv("CACHIFYD_VALGRIND");
    const char *argv[TS_MAX_ARGS];
    char port[16];
    int n = 0;
    if (!bin)
        bin = "build/cachifyd";
    snprintf(port, sizeof(port), "%d", ts->port);
    if (vg && vg[0] == '1') {
        argv[n++] = "valgrind";
        argv[n++] = "-q";
        argv[n++] = "--error-exitcode=99";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--show-leak-kinds=definite,indirect,possible";
        argv[n++] = "--errors-for-leak-kinds=definite,indirect,possible";
    }
    argv[n++] = bin;
    if (defaults) {
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--loglevel";
        argv[n++] = "debug";
    }
    for (size_t i = 0; extra && extra[i] && n < TS_MAX_ARGS - 1; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int logfd = open(ts->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (logfd >= 0) {
            dup2(logfd, 2);
            dup2(logfd, 1);
            close(logfd);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    ts->pid = pid;
    return 0;
}

int ts_spawn_bare(struct test_server *ts, const char *const *extra)
{
    return spawn(ts, extra, 0);
}

int ts_wait_ready(struct test_server *ts)
{
    double deadline = now_s() + TS_START_TIMEOUT_S;
    while (now_s() < deadline) {
        int status;
        if (waitpid(ts->pid, &status, WNOHANG) == ts->pid) {
            ts->pid = -1;
            return -1;
        }
        int fd = connect_port(ts->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(20000);
    }
    ts_kill9(ts);
    return -1;
}

static int start(struct test_server *ts, const char *const *extra,
                 int defaults)
{
    return spawn(ts, extra, defaults) == 0 ? ts_wait_ready(ts) : -1;
}

int ts_start(struct test_server *ts, const char *const *extra)
{
    return start(ts, extra, 1);
}

int ts_start_bare(struct test_server *ts, const char *const *extra)
{
    return start(ts, extra, 0);
}

int ts_start_new(struct test_server *ts, const char *const *extra)
{
    if (ts_init(ts) != 0)
        return -1;
    return ts_start(ts, extra);
}

int ts_wait_exit(struct test_server *ts, int secs)
{
    int status;
    if (ts->pid <= 0)
        return -1;
    double deadline = now_s() + secs;
    while (now_s() < deadline) {
        pid_t r = waitpid(ts->pid, &status, WNOHANG);
        if (r == ts->pid) {
            ts->pid = -1;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        usleep(20000);
    }
    ts_kill9(ts);
    return -1;
}

int ts_stop(struct test_server *ts)
{
    if (ts->pid <= 0)
        return -1;
    kill(ts->pid, SIGTERM);
    return ts_wait_exit(ts, 60);
}

void ts_kill9(struct test_server *ts)
{
    if (ts->pid <= 0)
        return;
    kill(ts->pid, SIGKILL);
    waitpid(ts->pid, NULL, 0);
    ts->pid = -1;
}

void ts_cleanup(struct test_server *ts)
{
    char path[256];
    static const char *const names[] = { "daemon.log", "state.json",
                                         "state.json.tmp", "cachifyd.sock",
                                         "extra.conf" };
    if (!ts->dir[0])
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", ts->dir, names[i]);
        unlink(path);
    }
    rmdir(ts->dir);
    ts->dir[0] = '\0';
}

void ts_dump_log(const struct test_server *ts)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(ts->log_path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- daemon log %s ----\n", ts->log_path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of daemon log ----\n");
    fclose(f);
}

int tc_connect(const struct test_server *ts)
{
    return connect_port(ts->port);
}

int tc_connect_unix(const char *path)
{
    struct sockaddr_un un;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0 ||
        set_timeouts(fd) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tc_sendn(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tc_send(int fd, const char *s)
{
    return tc_sendn(fd, s, strlen(s));
}

/* Reads exactly n bytes.  0, or -1 on timeout or close. */
static int read_exact(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            remember(buf, got);
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int tc_expect(int fd, const char *expected)
{
    size_t n = strlen(expected);
    char *buf = malloc(n + 1);
    if (!buf)
        return -1;
    int rc = read_exact(fd, buf, n);
    if (rc == 0) {
        remember(buf, n);
        rc = memcmp(buf, expected, n) == 0 ? 0 : -1;
    }
    free(buf);
    return rc;
}

/* Reads one "\r\n"-terminated line into buf[*len..], bounded by cap. */
static int read_line(int fd, char *buf, size_t cap, size_t *len)
{
    while (*len + 1 < cap) {
        if (read_exact(fd, buf + *len, 1) != 0)
            return -1;
        (*len)++;
        if (*len >= 2 && buf[*len - 2] == '\r' && buf[*len - 1] == '\n')
            return 0;
    }
    return -1;
}

static int read_reply_at(int fd, char *buf, size_t cap, size_t *len, int depth)
{
    size_t start = *len;
    if (depth > 8 || read_line(fd, buf, cap, len) != 0)
        return -1;
    char type = buf[start];
    long long n = strtoll(buf + start + 1, NULL, 10);
    if (type == '+' || type == '-' || type == ':')
        return 0;
    if (type == '$') {
        if (n < 0)
            return 0;
        if ((size_t)n + 2 > cap - 1 - *len ||
            read_exact(fd, buf + *len, (size_t)n + 2) != 0)
            return -1;
        *len += (size_t)n + 2;
        return 0;
    }
    if (type == '*') {
        for (long long i = 0; i < n; i++)
            if (read_reply_at(fd, buf, cap, len, depth + 1) != 0)
                return -1;
        return 0;
    }
    return -1;
}

long tc_read_reply(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap < 2)
        return -1;
    int rc = read_reply_at(fd, buf, cap, &len, 0);
    buf[len] = '\0';
    remember(buf, len);
    return rc == 0 ? (long)len : -1;
}

int tc_read_int(int fd, long long *n)
{
    char buf[64];
    long len = tc_read_reply(fd, buf, sizeof(buf));
    if (len < 4 || buf[0] != ':')
        return -1;
    char *end;
    errno = 0;
    *n = strtoll(buf + 1, &end, 10);
    return errno == 0 && *end == '\r' ? 0 : -1;
}

int tc_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            return 1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == ECONNRESET;
    }
}

void tc_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

long ts_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

double ts_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long utime, stime;
    size_t n;
    FILE *f;
    const char *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Field 2, the command name, may hold spaces: count from its ')'. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                     &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long ts_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
}

int tc_peer_sockopt(int port, int level, int name)
{
    for (int fd = 0; fd < 1024; fd++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int v = 0;
        socklen_t vl = sizeof(v);
        if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0 ||
            sa.sin_family != AF_INET || ntohs(sa.sin_port) != port)
            continue;
        if (getsockopt(fd, level, name, &v, &vl) != 0)
            return -1;
        return v != 0;
    }
    return -1;
}
