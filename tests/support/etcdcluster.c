/* tests/support/etcdcluster.c - a three-member etcd cluster for tests
 * (implements tests/support/etcdcluster.h). */
#define _GNU_SOURCE
#include "tests/support/etcdcluster.h"
#include "tests/support/testserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The clusters this process started, for the atexit and signal paths. */
#define EC_MAX 4
static struct etcd_cluster *g_clusters[EC_MAX];
static int g_hooked;

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Signal path: only async-signal-safe calls (kill, getpid). */
static void kill_all_members(void)
{
    for (int c = 0; c < EC_MAX; c++) {
        struct etcd_cluster *ec = g_clusters[c];

        if (ec == NULL || ec->owner != getpid())
            continue;
        for (int i = 0; i < EC_MEMBERS; i++)
            if (ec->pid[i] > 0)
                kill(ec->pid[i], SIGKILL);
    }
}

/* Signal path: the members killed, then their directories removed by an
 * rm of our own (fork, exec and waitpid are async-signal-safe; nftw is
 * not), then the signal's own end. */
static void on_signal(int sig)
{
    kill_all_members();
    for (int c = 0; c < EC_MAX; c++) {
        struct etcd_cluster *ec = g_clusters[c];
        pid_t pid;

        if (ec == NULL || ec->owner != getpid() || ec->dir[0] == '\0')
            continue;
        pid = fork();
        if (pid == 0) {
            execl("/bin/rm", "rm", "-rf", ec->dir, (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_exit_hook(void)
{
    for (int c = 0; c < EC_MAX; c++)
        if (g_clusters[c] != NULL && g_clusters[c]->owner == getpid())
            ec_stop(g_clusters[c]);
}

static void hook(struct etcd_cluster *ec)
{
    if (!g_hooked) {
        g_hooked = 1;
        atexit(on_exit_hook);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGABRT, on_signal);
    }
    for (int c = 0; c < EC_MAX; c++)
        if (g_clusters[c] == NULL) {
            g_clusters[c] = ec;
            return;
        }
}

static void unhook(struct etcd_cluster *ec)
{
    for (int c = 0; c < EC_MAX; c++)
        if (g_clusters[c] == ec)
            g_clusters[c] = NULL;
}

static void start_member(struct etcd_cluster *ec, int i, const char *initial)
{
    const char *bin = getenv("ETCD_BIN");
    char name[16], data[192], log[192], curl[64], purl[64];
    pid_t parent = getpid();
    pid_t pid;

    if (bin == NULL || bin[0] == '\0')
        bin = "/usr/bin/etcd";
    snprintf(name, sizeof name, "m%d", i);
    snprintf(data, sizeof data, "%s/m%d.data", ec->dir, i);
    snprintf(log, sizeof log, "%s/m%d.log", ec->dir, i);
    snprintf(curl, sizeof curl, "http://127.0.0.1:%d", ec->client_port[i]);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", ec->peer_port[i]);
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        /* Dies with the test, however the test dies. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0)
            dup2(fd, 0);
        execl(bin, bin, "--name", name, "--data-dir", data,
              "--listen-client-urls", curl, "--advertise-client-urls", curl,
              "--listen-peer-urls", purl, "--initial-advertise-peer-urls",
              purl, "--initial-cluster", initial, "--initial-cluster-state",
              "new", "--initial-cluster-token", ec->dir, "--logger", "zap",
              "--log-outputs", "stderr", (char *)NULL);
        _exit(127);
    }
    ec->pid[i] = pid;
}

int ec_post(const struct etcd_cluster *ec, int i, const char *path,
            const char *body, const char *auth_token, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in;
    struct timeval tv = {10, 0};
    char head[512], buf[65536];
    size_t got = 0;
    ssize_t n;
    int status = -1;
    char *sep;

    if (fd < 0)
        return -1;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)ec->client_port[i]);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&in, sizeof in) != 0) {
        close(fd);
        return -1;
    }
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "Content-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n",
             path, auth_token ? "Authorization: " : "",
             auth_token ? auth_token : "", auth_token ? "\r\n" : "",
             strlen(body));
    if (write(fd, head, strlen(head)) < 0 ||
        write(fd, body, strlen(body)) < 0) {
        close(fd);
        return -1;
    }
    while (got < sizeof buf - 1 &&
           (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    sep = strstr(buf, "\r\n\r\n");
    if (out != NULL && cap > 0)
        snprintf(out, cap, "%s", sep ? sep + 4 : "");
    return status;
}

void ec_dump_logs(const struct etcd_cluster *ec)
{
    for (int i = 0; i < EC_MEMBERS; i++) {
        char path[192], line[1024];
        FILE *f;
        int n = 0;

        snprintf(path, sizeof path, "%s/m%d.log", ec->dir, i);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        fprintf(stderr, "---- etcd member %d (%s), last lines:\n", i, path);
        /* The tail is what matters; the logs are chatty. */
        while (fgets(line, sizeof line, f) != NULL)
            n++;
        rewind(f);
        for (int k = 0; fgets(line, sizeof line, f) != NULL; k++)
            if (k >= n - 30)
                fputs(line, stderr);
        fclose(f);
    }
}

int ec_start(struct etcd_cluster *ec)
{
    char initial[512];
    size_t o = 0;
    double deadline;
    struct stat st;

    memset(ec, 0, sizeof *ec);
    ec->owner = getpid();
    for (int i = 0; i < EC_MEMBERS; i++)
        ec->pid[i] = -1;
    snprintf(ec->dir, sizeof ec->dir, "%s/cachify-etcd-XXXXXX",
             stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm"
                                                               : "/tmp");
    if (mkdtemp(ec->dir) == NULL) {
        fprintf(stderr, "ec_start: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    hook(ec);
    for (int i = 0; i < EC_MEMBERS; i++) {
        ec->client_port[i] = ts_free_port();
        ec->peer_port[i] = ts_free_port();
        o += (size_t)snprintf(initial + o, sizeof initial - o,
                              "%sm%d=http://127.0.0.1:%d", i ? "," : "", i,
                              ec->peer_port[i]);
    }
    for (int i = 0; i < EC_MEMBERS; i++)
        start_member(ec, i, initial);
    /* Ready: every member takes a write (which needs a leader). */
    deadline = now_s() + 60;
    for (int i = 0; i < EC_MEMBERS; i++) {
        while (ec_post(ec, i, "/v3/kv/put",
                       "{\"key\":\"cmVhZHk=\",\"value\":\"MQ==\"}", NULL, NULL,
                       0) != 200) {
            int status;

            if (now_s() > deadline ||
                waitpid(ec->pid[i], &status, WNOHANG) == ec->pid[i]) {
                fprintf(stderr, "ec_start: member %d not ready\n", i);
                ec_dump_logs(ec);
                ec_stop(ec);
                return -1;
            }
            usleep(100 * 1000);
        }
    }
    return 0;
}

int ec_wait_writable(const struct etcd_cluster *ec, int skip,
                     double timeout_s)
{
    double deadline = now_s() + timeout_s;

    for (int i = 0; i < EC_MEMBERS; i++) {
        if (i == skip)
            continue;
        while (ec_post(ec, i, "/v3/kv/put",
                       "{\"key\":\"cmVhZHk=\",\"value\":\"MQ==\"}", NULL,
                       NULL, 0) != 200) {
            if (now_s() > deadline)
                return -1;
            usleep(100 * 1000);
        }
    }
    return 0;
}

void ec_kill9(struct etcd_cluster *ec, int i)
{
    if (ec->pid[i] <= 0)
        return;
    kill(ec->pid[i], SIGKILL);
    waitpid(ec->pid[i], NULL, 0);
    ec->pid[i] = -1;
}

static int rm_one(const char *path, const struct stat *st, int type,
                  struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void ec_stop(struct etcd_cluster *ec)
{
    double deadline = now_s() + 10;

    if (ec->owner != getpid())
        return;
    for (int i = 0; i < EC_MEMBERS; i++)
        if (ec->pid[i] > 0)
            kill(ec->pid[i], SIGTERM);
    for (int i = 0; i < EC_MEMBERS; i++) {
        while (ec->pid[i] > 0) {
            if (waitpid(ec->pid[i], NULL, WNOHANG) == ec->pid[i]) {
                ec->pid[i] = -1;
                break;
            }
            if (now_s() > deadline) {
                ec_kill9(ec, i);
                break;
            }
            usleep(20 * 1000);
        }
    }
    if (ec->dir[0] != '\0') {
        nftw(ec->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        ec->dir[0] = '\0';
    }
    unhook(ec);
}

void ec_url(const struct etcd_cluster *ec, const char *userpass,
            const char *prefix, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "etcd://%s%s127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/?prefix=%s",
             userpass ? userpass : "", userpass ? "@" : "",
             ec->client_port[0], ec->client_port[1], ec->client_port[2],
             prefix);
}
