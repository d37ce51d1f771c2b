/* bench/benchtool.c - the measurements redis-benchmark cannot make, for
 * bench/run.sh: bulk loading with pipelining, PING latency through an expiry
 * storm, and lock handoff latency (cachifyd's queued ACQUIRE WAIT against a
 * py-cachify-style client polling Redis with SET NX every 100 ms).
 *
 * Owns: its own tiny RESP client over blocking loopback sockets.  Does not
 * own: starting servers or judging results (run.sh does both).  Every loop
 * is bounded in count and time, and it only ever connects to the host given
 * on the command line (run.sh passes 127.0.0.1).
 *
 * Output is one "key=value ..." line per command, for run.sh to parse.
 *
 *   benchtool load HOST PORT KIND N FMT TTL_MS [EXPIRE_AT_MS]
 *       KIND acquire: ACQUIRE <key> TTL <ms>; setnx: SET <key> tok NX PX <ms>;
 *       setnxN (setnx100, ...): the same with a value of N bytes (at most
 *       1024).
 *       Keys are printf(FMT, i, m) for i in 0..N-1, where m is a 12-digit
 *       number that i determines (for a second random-looking field:
 *       'lock:%012d:%012lld' makes the 30-byte keys of redis-benchmark's
 *       `lock:__rand_int__:__rand_int__`).  With EXPIRE_AT_MS (on
 *       CLOCK_MONOTONIC, in ms) every TTL is computed so that all keys expire
 *       at that instant.  Prints ok=, bad=, secs=.
 *   benchtool loadc HOST PORT KIND N FMT TTL_MS CONNS
 *       The same load spread over CONNS connections (one thread each, key i
 *       on connection i % CONNS), as many clients would fill a server.
 *   benchtool storm HOST PORT KIND EXPIRE_AT_MS MAX_SECS
 *       Sends back-to-back PINGs from 300 ms before EXPIRE_AT_MS until the
 *       server holds no key (KIND cachifyd: STATS locks_held; redis: DBSIZE,
 *       polled every 20 ms on a second connection) plus 300 ms, or MAX_SECS.
 *       Prints p50/p99/max PING round trip (us) over the storm and how long
 *       the storm took.
 *   benchtool handoff HOST PORT N
 *       cachifyd: holder releases, a queued ACQUIRE WAIT is granted; prints
 *       p50/p99/max of RELEASE sent -> grant received (us).
 *   benchtool pollhandoff HOST PORT N INTERVAL_MS
 *       Redis: a waiter thread polls SET NX PX, sleeping INTERVAL_MS between
 *       tries; the holder DELs at a random moment; prints the same figures.
 *   benchtool now
 *       Prints CLOCK_MONOTONIC in ms (run.sh uses it for EXPIRE_AT_MS).
 *   benchtool freeport
 *       Prints a loopback TCP port that was free a moment ago.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Requests written per pipelined batch by `load`. */
#define LOAD_BATCH 1000
/* Room for one batch of requests or replies (keys are short). */
/* Longest value `load` sends (setnxN). */
#define VALUE_MAX 1024
#define IOBUF (LOAD_BATCH * (128 + VALUE_MAX))
/* Samples kept by storm: back-to-back PINGs over at most a minute. */
#define STORM_MAX_SAMPLES 4000000

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "benchtool: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- a minimal blocking RESP connection ---- */

struct rconn {
    int fd;
    char buf[IOBUF];
    size_t beg, end;
};

static struct rconn *rconn_open(const char *host, int port)
{
    struct rconn *c = calloc(1, sizeof(*c));
    struct sockaddr_in sa = { 0 };
    int one = 1;
    if (!c)
        die("out of memory");
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("bad address %s", host);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect %s:%d: %s", host, port, strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return c;
}

static void rconn_close(struct rconn *c)
{
    close(c->fd);
    free(c);
}

static void send_all(struct rconn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Appends a RESP array of argc strings to out at *len. */
static void encode(char *out, size_t *len, size_t cap, int argc,
                   const char **argv)
{
    int n = snprintf(out + *len, cap - *len, "*%d\r\n", argc);
    *len += (size_t)n;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        n = snprintf(out + *len, cap - *len, "$%zu\r\n%s\r\n", l, argv[i]);
        if ((size_t)n >= cap - *len)
            die("request buffer overflow");
        *len += (size_t)n;
    }
}

static void send_cmd(struct rconn *c, int argc, const char **argv)
{
    char out[1024];
    size_t len = 0;
    encode(out, &len, sizeof(out), argc, argv);
    send_all(c, out, len);
}

/* Reads one line (without CRLF) into line; the reply's first byte is its
 * type.  A bulk reply's payload is read into line as well (truncated to
 * cap), so line holds "$<payload>" or "$-1". */
static void read_reply(struct rconn *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf + c->beg, '\n', c->end - c->beg);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->beg));
            size_t body = n > 0 && nl[-1] == '\r' ? n - 1 : n;
            if (c->buf[c->beg] == '$' && strncmp(c->buf + c->beg, "$-1", 3)) {
                long blen = strtol(c->buf + c->beg + 1, NULL, 10);
                size_t need = n + 1 + (size_t)blen + 2;
                if (need > sizeof(c->buf))
                    die("bulk reply too large");
                if (c->end - c->beg >= need) {
                    size_t k = (size_t)blen < cap - 2 ? (size_t)blen : cap - 2;
                    line[0] = '$';
                    memcpy(line + 1, nl + 1, k);
                    line[k + 1] = '\0';
                    c->beg += need;
                    return;
                }
            } else {
                size_t k = body < cap - 1 ? body : cap - 1;
                memcpy(line, c->buf + c->beg, k);
                line[k] = '\0';
                c->beg += n + 1;
                return;
            }
        }
        if (c->beg > 0) {
            memmove(c->buf, c->buf + c->beg, c->end - c->beg);
            c->end -= c->beg;
            c->beg = 0;
        }
        if (c->end == sizeof(c->buf))
            die("reply line too long");
        ssize_t r = read(c->fd, c->buf + c->end, sizeof(c->buf) - c->end);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("read: %s", r == 0 ? "connection closed" : strerror(errno));
        c->end += (size_t)r;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints p50/p99/max of n samples (sorted in place) as us. */
static void print_pct(const char *prefix, uint64_t *v, size_t n)
{
    if (n == 0) {
        printf("%ssamples=0", prefix);
        return;
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    printf("%ssamples=%zu p50_us=%llu p99_us=%llu max_us=%llu", prefix, n,
           (unsigned long long)v[n / 2],
           (unsigned long long)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
           (unsigned long long)v[n - 1]);
}

/* ---- load ---- */

/* One connection's share of a load: keys first, first + step, ... below n. */
struct load_job {
    const char *host;
    int port;
    int acquire;
    const char *value;
    long first, step, n;
    const char *fmt;
    long ttl;
    uint64_t expire_at_us;
    long ok, bad;
};

/* The second field of key i: 12 digits that look random (a multiplicative
 * hash), as redis-benchmark's second __rand_int__ does. */
static long long key_mix(long i)
{
    return (long long)(((unsigned long long)i * 2654435761ULL + 97531ULL) %
                       1000000000000ULL);
}

static void *load_run(void *arg)
{
    struct load_job *job = arg;
    struct rconn *c = rconn_open(job->host, job->port);
    char *out = malloc(IOBUF);
    char key[128], ttlbuf[32], line[256];
    long ttl = job->ttl;

    if (!out)
        die("out of memory");
    for (long i = job->first; i < job->n; i += LOAD_BATCH * job->step) {
        long m = 0;
        size_t len = 0;
        if (job->expire_at_us) {
            uint64_t now = now_us();
            if (now + 1000 >= job->expire_at_us)
                die("loading ran past the expiry instant");
            ttl = (long)((job->expire_at_us - now) / 1000);
        }
        snprintf(ttlbuf, sizeof(ttlbuf), "%ld", ttl);
        for (long k = i; k < job->n && m < LOAD_BATCH; k += job->step, m++) {
            snprintf(key, sizeof(key), job->fmt, (int)k, key_mix(k));
            if (job->acquire) {
                const char *a[] = { "ACQUIRE", key, "TTL", ttlbuf };
                encode(out, &len, IOBUF, 4, a);
            } else {
                const char *a[] = { "SET", key, job->value, "NX", "PX",
                                    ttlbuf };
                encode(out, &len, IOBUF, 6, a);
            }
        }
        send_all(c, out, len);
        for (long j = 0; j < m; j++) {
            read_reply(c, line, sizeof(line));
            if ((job->acquire && line[0] == ':') ||
                (!job->acquire && strcmp(line, "+OK") == 0))
                job->ok++;
            else if (job->bad++ == 0)
                fprintf(stderr, "benchtool: unexpected reply: %s\n", line);
        }
    }
    free(out);
    rconn_close(c);
    return NULL;
}

/* load and loadc: argv[8] is EXPIRE_AT_MS for load, CONNS for loadc. */
static int cmd_load(int argc, char **argv, int conns_arg)
{
    if (argc < 8 || (conns_arg && argc < 9))
        die("usage: load HOST PORT KIND N FMT TTL_MS [EXPIRE_AT_MS] | "
            "loadc HOST PORT KIND N FMT TTL_MS CONNS");
    static char value[VALUE_MAX + 1] = "tok";
    if (strncmp(argv[4], "setnx", 5) == 0 && argv[4][5] != '\0') {
        long vlen = atol(argv[4] + 5);
        if (vlen < 1 || vlen > VALUE_MAX)
            die("load: setnxN needs 1 <= N <= 1024");
        memset(value, 'v', (size_t)vlen);
        value[vlen] = '\0';
    }
    long conns = conns_arg ? atol(argv[8]) : 1;
    if (conns < 1 || conns > 1000)
        die("loadc: CONNS must be 1..1000");
    struct load_job *jobs = calloc((size_t)conns, sizeof(*jobs));
    pthread_t *tids = calloc((size_t)conns, sizeof(*tids));
    if (!jobs || !tids)
        die("out of memory");
    uint64_t t0 = now_us();
    long ok = 0, bad = 0;
    for (long t = 0; t < conns; t++) {
        jobs[t] = (struct load_job){
            .host = argv[2], .port = atoi(argv[3]),
            .acquire = strcmp(argv[4], "acquire") == 0, .value = value,
            .first = t, .step = conns, .n = atol(argv[5]), .fmt = argv[6],
            .ttl = atol(argv[7]),
            .expire_at_us = !conns_arg && argc > 8
                                ? (uint64_t)atoll(argv[8]) * 1000 : 0,
        };
        if (pthread_create(&tids[t], NULL, load_run, &jobs[t]) != 0)
            die("pthread_create failed");
    }
    for (long t = 0; t < conns; t++) {
        pthread_join(tids[t], NULL);
        ok += jobs[t].ok;
        bad += jobs[t].bad;
    }
    printf("ok=%ld bad=%ld secs=%.3f\n", ok, bad, (now_us() - t0) / 1e6);
    free(jobs);
    free(tids);
    return bad ? 1 : 0;
}

/* ---- storm ---- */

/* Keys the server holds now: STATS locks_held, or DBSIZE. */
static long held_keys(struct rconn *c, int cachifyd)
{
    char line[4096];
    const char *a[] = { cachifyd ? "STATS" : "DBSIZE" };
    send_cmd(c, 1, a);
    read_reply(c, line, sizeof(line));
    if (!cachifyd)
        return line[0] == ':' ? atol(line + 1) : -1;
    char *p = strstr(line, "\"locks_held\":");
    return p ? atol(p + 13) : -1;
}

static int cmd_storm(int argc, char **argv)
{
    if (argc < 7)
        die("usage: storm HOST PORT KIND EXPIRE_AT_MS MAX_SECS");
    int cachifyd = strcmp(argv[4], "cachifyd") == 0;
    uint64_t expire_at = (uint64_t)atoll(argv[5]) * 1000;
    uint64_t max_us = (uint64_t)(atof(argv[6]) * 1e6);
    struct rconn *p = rconn_open(argv[2], atoi(argv[3]));
    struct rconn *s = rconn_open(argv[2], atoi(argv[3]));
    uint64_t *lat = malloc(STORM_MAX_SAMPLES * sizeof(*lat));
    uint64_t *sent = malloc(STORM_MAX_SAMPLES * sizeof(*sent));
    size_t n = 0;
    char line[256];
    const char *ping[] = { "PING" };
    long before = held_keys(s, cachifyd);

    if (!lat || !sent)
        die("out of memory");
    while (now_us() + 300000 < expire_at)
        usleep(1000);
    uint64_t start = now_us(), next_poll = start, empty_at = 0;
    while (n < STORM_MAX_SAMPLES) {
        uint64_t t = now_us();
        if (t - start > max_us || (empty_at && t > empty_at + 300000))
            break;
        send_cmd(p, 1, ping);
        read_reply(p, line, sizeof(line));
        uint64_t t2 = now_us();
        if (strcmp(line, "+PONG") != 0)
            die("PING answered %s", line);
        sent[n] = t;
        lat[n++] = t2 - t;
        if (!empty_at && t2 >= next_poll) {
            next_poll = t2 + 20000;
            if (t2 > expire_at && held_keys(s, cachifyd) == 0)
                empty_at = now_us();
        }
    }
    /* The storm: from the expiry instant until the server held no key. */
    size_t m = 0;
    uint64_t end = empty_at ? empty_at : now_us();
    for (size_t i = 0; i < n; i++)
        if (sent[i] + lat[i] >= expire_at && sent[i] <= end)
            lat[m++] = lat[i];
    printf("keys_before=%ld storm_ms=%.1f ", before,
           empty_at ? (empty_at > expire_at ? (empty_at - expire_at) / 1e3 : 0)
                    : -1.0);
    print_pct("", lat, m);
    printf(" all_samples=%zu\n", n);
    free(lat);
    free(sent);
    rconn_close(p);
    rconn_close(s);
    return empty_at ? 0 : 1;
}

/* ---- handoff ---- */

static int cmd_handoff(int argc, char **argv)
{
    if (argc < 5)
        die("usage: handoff HOST PORT N");
    struct rconn *c[2] = { rconn_open(argv[2], atoi(argv[3])),
                           rconn_open(argv[2], atoi(argv[3])) };
    struct rconn *st = rconn_open(argv[2], atoi(argv[3]));
    long n = atol(argv[4]);
    uint64_t *lat = malloc((size_t)n * sizeof(*lat));
    char line[4096], token[64];
    const char *key = "bench:handoff";

    if (!lat)
        die("out of memory");
    const char *acq[] = { "ACQUIRE", key, "TTL", "30000" };
    send_cmd(c[0], 4, acq);
    read_reply(c[0], line, sizeof(line));
    if (line[0] != ':')
        die("ACQUIRE answered %s", line);
    snprintf(token, sizeof(token), "%.60s", line + 1);
    for (long i = 0; i < n; i++) {
        struct rconn *holder = c[i % 2], *waiter = c[(i + 1) % 2];
        const char *wait[] = { "ACQUIRE", key, "TTL", "30000", "WAIT", "10000" };
        send_cmd(waiter, 6, wait);
        /* The RELEASE must find the waiter queued: watch STATS. */
        uint64_t t_q = now_us();
        for (;;) {
            const char *stats[] = { "STATS" };
            send_cmd(st, 1, stats);
            read_reply(st, line, sizeof(line));
            char *w = strstr(line, "\"waiters\":");
            if (w && atol(w + 10) == 1)
                break;
            if (now_us() - t_q > 5000000)
                die("waiter never queued: %s", line);
        }
        const char *rel[] = { "RELEASE", key, token };
        uint64_t t0 = now_us();
        send_cmd(holder, 3, rel);
        read_reply(waiter, line, sizeof(line));
        uint64_t t1 = now_us();
        if (line[0] != ':')
            die("waiter got %s", line);
        lat[i] = t1 - t0;
        snprintf(token, sizeof(token), "%.60s", line + 1);
        read_reply(holder, line, sizeof(line));
        if (strcmp(line, ":1") != 0)
            die("RELEASE answered %s", line);
    }
    print_pct("", lat, (size_t)n);
    printf("\n");
    free(lat);
    rconn_close(c[0]);
    rconn_close(c[1]);
    rconn_close(st);
    return 0;
}

/* ---- pollhandoff (the py-cachify way: SET NX, sleep, retry) ---- */

struct poller {
    const char *host;
    int port;
    long interval_ms;
    uint64_t granted_at;
};

static void *poll_thread(void *arg)
{
    struct poller *pl = arg;
    struct rconn *c = rconn_open(pl->host, pl->port);
    char line[256];
    const char *set[] = { "SET", "bench:handoff", "waiter", "NX", "PX", "30000" };
    for (int tries = 0; tries < 100000; tries++) {
        send_cmd(c, 6, set);
        read_reply(c, line, sizeof(line));
        if (strcmp(line, "+OK") == 0) {
            pl->granted_at = now_us();
            break;
        }
        usleep((useconds_t)pl->interval_ms * 1000);
    }
    rconn_close(c);
    return NULL;
}

static int cmd_pollhandoff(int argc, char **argv)
{
    if (argc < 6)
        die("usage: pollhandoff HOST PORT N INTERVAL_MS");
    struct rconn *h = rconn_open(argv[2], atoi(argv[3]));
    long n = atol(argv[4]);
    long interval = atol(argv[5]);
    uint64_t *lat = malloc((size_t)n * sizeof(*lat));
    char line[256];
    const char *del[] = { "DEL", "bench:handoff" };
    const char *set[] = { "SET", "bench:handoff", "holder", "NX", "PX", "30000" };

    if (!lat)
        die("out of memory");
    srand(12345);
    for (long i = 0; i < n; i++) {
        send_cmd(h, 2, del);
        read_reply(h, line, sizeof(line));
        send_cmd(h, 6, set);
        read_reply(h, line, sizeof(line));
        if (strcmp(line, "+OK") != 0)
            die("holder SET answered %s", line);
        struct poller pl = { argv[2], atoi(argv[3]), interval, 0 };
        pthread_t th;
        if (pthread_create(&th, NULL, poll_thread, &pl) != 0)
            die("pthread_create failed");
        /* Release at a random phase of the waiter's polling cycle, after it
         * has polled at least once. */
        usleep((useconds_t)(interval * 1000 + rand() % (interval * 1000)));
        uint64_t t0 = now_us();
        send_cmd(h, 2, del);
        read_reply(h, line, sizeof(line));
        pthread_join(th, NULL);
        if (!pl.granted_at)
            die("poller never got the lock");
        lat[i] = pl.granted_at - t0;
    }
    print_pct("", lat, (size_t)n);
    printf("\n");
    free(lat);
    rconn_close(h);
    return 0;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static int cmd_freeport(void)
{
    struct sockaddr_in sa = { 0 };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("no free port: %s", strerror(errno));
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "freeport") == 0)
        return cmd_freeport();
    if (argc >= 2 && strcmp(argv[1], "now") == 0) {
        printf("%llu\n", (unsigned long long)(now_us() / 1000));
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "load") == 0)
        return cmd_load(argc, argv, 0);
    if (argc >= 2 && strcmp(argv[1], "loadc") == 0)
        return cmd_load(argc, argv, 1);
    if (argc >= 2 && strcmp(argv[1], "storm") == 0)
        return cmd_storm(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "handoff") == 0)
        return cmd_handoff(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "pollhandoff") == 0)
        return cmd_pollhandoff(argc, argv);
    die("usage: benchtool load|loadc|storm|handoff|pollhandoff|now|freeport ...");
    return 1;
}
