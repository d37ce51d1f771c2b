/* tests/integration/test_faults.c - the fault campaign: mutual exclusion
 * while the daemon is killed, stopped, paused, starved of disk, and its
 * clients drop their connections.
 *
 * Owns: one long randomized run.  CLIENTS threads, each with its own
 * blocking connection, take NKEYS keys with every lease kind (short; longer
 * than long_lease_ms, so journaled one by one; FOREVER; short and then
 * EXTENDed; SESSION), some waiting on the server, hold them a random time
 * (sometimes past the TTL) and release them by token.  Meanwhile a fault
 * thread, at random moments, (a) kills the daemon with SIGKILL and starts
 * it again on the same state file, with a recovery delay; (b) stops it
 * with SIGTERM and starts it again; (c) pauses it with SIGSTOP for longer
 * than the short TTLs, then SIGCONT; (d) fills the file system the state
 * file lives on (a tmpfs the test mounts; skipped, and said, when it
 * cannot mount one) and frees it again.  Clients also (e) drop their
 * connection in the middle of a request and in the middle of a wait.
 * After every fault the daemon must answer PING.  Does not own: the
 * checker's reasoning, which is test_stress.c's (read its header): every
 * grant we see gives an interval [received, lower bound of its end] that
 * lies inside the daemon's hold, so two such intervals of one key that
 * overlap are a real double grant.  The ends used here:
 *   - RELEASE answered :1 after being sent at s: the hold lasted to >= s;
 *   - RELEASE answered :0, or never answered: the lease ran at least to
 *     a + ttl (a: when the ACQUIRE was sent); after an EXTEND sent at x
 *     answered :1, to x + ttl2 instead (an EXTEND may shorten a lease);
 *     after one never answered, to the sooner of the two;
 *   - a SESSION lock whose connection we close: >= min(p, those), p the
 *     time we sent a PING answered just before the close (without it a
 *     crash or stop may have ended the session earlier, unseen); one whose
 *     connection broke: nothing is proved (the interval is empty);
 *   - FOREVER: only a :1 release ends it (retried over reconnects); a :0
 *     means the daemon lost a FOREVER lock, which counts as a failure.
 * Tokens: per key, in token order, each grant must be received after the
 * end bound of every grant with a smaller token; over all keys, an ACQUIRE
 * sent after a grant was received gets a larger token; no token twice.
 *
 * Duration: CACHIFYD_FAULT_SECONDS (default 20; the daemon under valgrind,
 * 15).  It prints one line of figures: faults injected by kind, grants
 * checked, overlaps found (must be 0).  CACHIFYD_FAULT_SEED replays the
 * random choices (not the timing).
 */
#define _GNU_SOURCE /* unshare */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testserver.h"

#define CLIENTS 24
#define NKEYS 8
#define LONG_LEASE_MS 1500   /* the daemon's long_lease_ms */
#define RECOVERY_MS 300      /* the daemon's recovery_delay_ms */
#define SHORT_TTL_MAX 1200   /* short leases: 200..SHORT_TTL_MAX ms */
#define PAUSE_MS 1500        /* SIGSTOP: longer than every short TTL */
#define DISK_BYTES "4m"      /* the state file's tmpfs */

enum kind { K_SHORT, K_LONG, K_FOREVER, K_EXTEND, K_SESSION, K_KINDS };

/* One grant, as its client saw it (milliseconds, CLOCK_MONOTONIC). */
struct grant {
    long long token;
    int key;
    enum kind kind;
    int ttl;
    char how;        /* how end_lo was proved: see round_once */
    double sent, received, end_lo;
};

struct client {
    pthread_t thread;
    unsigned seed;
    int fd;
    struct grant *grants;
    size_t ngrants, cap;
    long refused, not_durable, unknown, drops, lost_forever;
    /* A FOREVER lock whose RELEASE did not get through yet. */
    int owed_key;
    long long owed_token;
    size_t owed_index;
    double owed_sent;  /* when a RELEASE of it was sent whole, else 0 */
};

static struct test_server ts;
static const char *const *daemon_args;
static volatile int stopping;
static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static long faults[4]; /* kill9, stop, pause, diskfull */
static long disk_refusals; /* full-disk faults the daemon saw */
static int disk_mounted;
static char disk_dir[256], filler_path[300], state_path[300];

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int valgrind_mode(void)
{
    const char *v = getenv("CACHIFYD_VALGRIND");
    return v && v[0] == '1';
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec t = { (time_t)(ms / 1000),
                          (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6) };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static int rnd(struct client *c, int lo, int hi)
{
    return lo + (int)(rand_r(&c->seed) % (unsigned)(hi - lo + 1));
}

/* ---- a client's connection ---- */

static void drop_conn(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int ensure_conn(struct client *c)
{
    if (c->fd >= 0)
        return 0;
    c->fd = tc_connect(&ts); /* read and write timeouts included */
    return c->fd >= 0 ? 0 : -1;
}

static int send_str(struct client *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One reply line (every reply here is one line) into buf, without CRLF.
 * 0, or -1 when the connection broke or timed out. */
static int read_line(struct client *c, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(c->fd, buf + n, 1, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        if (buf[n] == '\n') {
            buf[n > 0 && buf[n - 1] == '\r' ? n - 1 : n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

/* Sends cmd and reads its reply line; -1 when the connection broke. */
static int request(struct client *c, const char *cmd, char *reply, size_t cap)
{
    if (send_str(c, cmd, strlen(cmd)) != 0 || read_line(c, reply, cap) != 0) {
        drop_conn(c);
        return -1;
    }
    return 0;
}

static struct grant *add_grant(struct client *c)
{
    if (c->ngrants == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct grant *g = realloc(c->grants, cap * sizeof(*g));
        ck_assert_ptr_nonnull(g);
        c->grants = g;
        c->cap = cap;
    }
    return &c->grants[c->ngrants++];
}

/* Tries once to release a FOREVER lock owed from before a broken
 * connection. */
static void settle_owed(struct client *c)
{
    char cmd[96], reply[128];
    if (!c->owed_token || ensure_conn(c) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "RELEASE k%d %lld\r\n", c->owed_key,
             c->owed_token);
    double s = now_ms();
    int sent = send_str(c, cmd, strlen(cmd)) == 0;
    if (!sent || read_line(c, reply, sizeof(reply)) != 0) {
        drop_conn(c);
        if (sent && !c->owed_sent)
            c->owed_sent = s;
        return;
    }
    if (strcmp(reply, ":1") == 0) {
        c->grants[c->owed_index].end_lo = s;
        c->owed_token = 0;
    } else if (strcmp(reply, ":0") == 0) {
        if (c->owed_sent) {
            /* The RELEASE whose reply the fault cut may have been done:
             * the lock was held at least until it was sent. */
            c->grants[c->owed_index].end_lo = c->owed_sent;
        } else {
            /* Lost: during recovery a restored FOREVER lease still answers
             * its token, so :0 means the daemon forgot it. */
            c->lost_forever++;
            fprintf(stderr, "fault campaign: FOREVER lock k%d token %lld "
                    "lost\n", c->owed_key, c->owed_token);
        }
        c->owed_token = 0;
    }
}

/* One round: acquire a key with a random lease kind, hold, release. */
static void round_once(struct client *c)
{
    char cmd[160], reply[160];
    int key = rnd(c, 0, NKEYS - 1);
    enum kind kind = (enum kind)rnd(c, 0, K_KINDS - 1);
    int ttl = kind == K_LONG ? rnd(c, LONG_LEASE_MS + 500, LONG_LEASE_MS + 3000)
            : kind == K_SESSION ? rnd(c, 500, 3000)
            : rnd(c, 200, SHORT_TTL_MAX);
    int wait = rnd(c, 0, 1) ? rnd(c, 100, 3000) : 0;
    int n = snprintf(cmd, sizeof(cmd), "ACQUIRE k%d TTL ", key);
    if (kind == K_FOREVER)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "FOREVER");
    else
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "%d", ttl);
    if (wait)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " WAIT %d", wait);
    if (kind == K_SESSION)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " SESSION");
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, "\r\n");

    /* Dropped mid-request: half a line, then the close. */
    if (rnd(c, 0, 99) < 3) {
        send_str(c, cmd, strlen(cmd) / 2);
        drop_conn(c);
        c->drops++;
        return;
    }
    double a = now_ms();
    if (send_str(c, cmd, strlen(cmd)) != 0) {
        drop_conn(c);
        return;
    }
    /* Dropped mid-wait: the outcome is unknown (one unseen grant is
     * allowed, which the checker cannot see and so cannot misjudge). */
    if (wait && rnd(c, 0, 99) < 4) {
        sleep_ms(rnd(c, 1, 50));
        drop_conn(c);
        c->drops++;
        c->unknown++;
        return;
    }
    if (read_line(c, reply, sizeof(reply)) != 0) {
        drop_conn(c);
        c->unknown++;
        return;
    }
    double r = now_ms();
    if (reply[0] != ':') {
        c->refused++; /* -LOCKED, -TIMEOUT, -ERR (disk full), ... */
        if (strncmp(reply, "-ERR lease not granted", 22) == 0)
            c->not_durable++;
        return;
    }
    struct grant *g = add_grant(c);
    size_t gi = c->ngrants - 1;
    g->token = atoll(reply + 1);
    g->key = key;
    g->kind = kind;
    g->ttl = kind == K_FOREVER ? 0 : ttl;
    g->how = 'r';
    g->sent = a;
    g->received = r;
    double lease_lo = kind == K_FOREVER ? 1e300 : a + ttl;
    g->end_lo = r; /* until proved longer */

    /* Short leases are sometimes held past their TTL; long ones are not
     * held long, so keys change hands often between faults. */
    double hold = kind == K_FOREVER || kind == K_LONG ? rnd(c, 0, 800)
                                                      : rnd(c, 0, ttl * 6 / 5);
    if (kind == K_EXTEND) {
        sleep_ms(hold / 2);
        int ttl2 = rnd(c, 200, SHORT_TTL_MAX);
        snprintf(cmd, sizeof(cmd), "EXTEND k%d %lld %d\r\n", key, g->token,
                 ttl2);
        /* EXTEND sets the end to (when it is read) + ttl2, which may be
         * sooner than the old end: after :1 the old end no longer counts;
         * unanswered, it may or may not have been applied. */
        double x = now_ms();
        if (request(c, cmd, reply, sizeof(reply)) != 0) {
            c->grants[gi].end_lo = x + ttl2 < lease_lo ? x + ttl2 : lease_lo;
            c->grants[gi].how = 'x';
            return;
        }
        if (strcmp(reply, ":1") == 0)
            lease_lo = x + ttl2;
        sleep_ms(hold / 2);
    } else {
        sleep_ms(hold);
    }
    g = &c->grants[gi];
    if (kind == K_SESSION && rnd(c, 0, 2) == 0) {
        /* Our close ends the session only if a fault did not end it
         * first (a crash or a stop closes every connection, and we would
         * not know): a PING answered on this connection proves it was
         * alive, and the lock held, when we sent it. */
        double p = now_ms();
        int alive = request(c, "PING\r\n", reply, sizeof(reply)) == 0 &&
                    strcmp(reply, "+PONG") == 0;
        drop_conn(c);
        if (alive) {
            g->end_lo = p < lease_lo ? p : lease_lo;
            g->how = 'c';
        }
        return;
    }
    snprintf(cmd, sizeof(cmd), "RELEASE k%d %lld\r\n", key, g->token);
    double s = now_ms();
    int sent = send_str(c, cmd, strlen(cmd)) == 0;
    if (!sent || read_line(c, reply, sizeof(reply)) != 0) {
        drop_conn(c);
        if (kind == K_FOREVER) {
            c->owed_key = key;
            c->owed_token = g->token;
            c->owed_index = gi;
            c->owed_sent = sent ? s : 0;
        } else if (kind != K_SESSION) {
            g->end_lo = lease_lo;
            g->how = 'b';
        }
        return;
    }
    if (strcmp(reply, ":1") == 0) {
        g->end_lo = s;
        g->how = '1';
    } else if (kind == K_FOREVER) {
        c->lost_forever++;
        fprintf(stderr, "fault campaign: FOREVER lock k%d token %lld "
                "lost (RELEASE answered %s)\n", key, g->token, reply);
    } else if (kind != K_SESSION) {
        g->end_lo = lease_lo; /* expired first */
        g->how = '0';
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    while (!stopping) {
        settle_owed(c);
        if (c->owed_token || ensure_conn(c) != 0) {
            sleep_ms(50);
            continue;
        }
        round_once(c);
    }
    /* The run is over: what is owed is released (the daemon is up). */
    for (int i = 0; i < 200 && c->owed_token; i++) {
        settle_owed(c);
        if (c->owed_token)
            sleep_ms(100);
    }
    drop_conn(c);
    return NULL;
}

/* ---- faults ---- */

static void start_daemon(void)
{
    if (ts_start(&ts, daemon_args) != 0) {
        ts_dump_log(&ts);
        ck_abort_msg("the daemon did not start again");
    }
}

/* PING answered within a bound: the daemon works after the fault. */
static void require_answering(const char *after)
{
    double deadline = now_ms() + (valgrind_mode() ? 120000 : 30000);
    while (now_ms() < deadline) {
        int fd = tc_connect(&ts);
        if (fd >= 0) {
            char buf[64];
            int ok = tc_send(fd, "PING\r\n") == 0 &&
                     tc_read_reply(fd, buf, sizeof(buf)) > 0 &&
                     strcmp(buf, "+PONG\r\n") == 0;
            close(fd);
            if (ok)
                return;
        }
        sleep_ms(50);
    }
    ts_dump_log(&ts);
    ck_abort_msg("the daemon does not answer after %s", after);
}

/* Fills the state file's tmpfs, then takes and releases FOREVER locks of
 * its own keys until the daemon refuses one because the journal cannot
 * be written (tmpfs gives space a page at a time, so the appends first
 * fill the journal's last page).  Returns 1 once refused. */
static int fill_disk(void)
{
    int fd = open(filler_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    static char block[65536];
    while (write(fd, block, sizeof(block)) > 0)
        ;
    while (write(fd, block, 1) > 0)
        ;
    close(fd);
    int conn = tc_connect(&ts);
    int refused = 0;
    char cmd[96], reply[256];
    for (int i = 0; conn >= 0 && i < 400 && !refused; i++) {
        snprintf(cmd, sizeof(cmd), "ACQUIRE fill:%d TTL FOREVER\r\n", i);
        if (tc_send(conn, cmd) != 0 ||
            tc_read_reply(conn, reply, sizeof(reply)) <= 0)
            break;
        if (strncmp(reply, "-ERR lease not granted", 22) == 0)
            refused = 1;
        else if (reply[0] == ':') {
            snprintf(cmd, sizeof(cmd), "RELEASE fill:%d %lld\r\n", i,
                     atoll(reply + 1));
            if (tc_send(conn, cmd) != 0 ||
                tc_read_reply(conn, reply, sizeof(reply)) <= 0)
                break;
        }
    }
    if (conn >= 0)
        close(conn);
    return refused;
}

static void *fault_main(void *arg)
{
    unsigned seed = *(unsigned *)arg;
    /* Every kind in turn, at random moments, so a short run has each. */
    for (unsigned i = rand_r(&seed); !stopping; i++) {
        sleep_ms(1000 + rand_r(&seed) % 2000);
        if (stopping)
            break;
        int f = (int)(i % (disk_mounted ? 4 : 3));
        pthread_mutex_lock(&server_mu);
        switch (f) {
        case 0:
            ts_kill9(&ts);
            start_daemon();
            require_answering("kill -9 and restart");
            break;
        case 1:
            ts_stop(&ts); /* its status: a full disk may fail the save */
            start_daemon();
            require_answering("a clean stop and restart");
            break;
        case 2:
            kill(ts.pid, SIGSTOP);
            sleep_ms(PAUSE_MS + rand_r(&seed) % 500);
            kill(ts.pid, SIGCONT);
            require_answering("SIGSTOP and SIGCONT");
            break;
        default:
            /* Long enough for the appends to fill the journal's last
             * page (tmpfs gives space a page at a time) and fail. */
            disk_refusals += fill_disk();
            sleep_ms(500 + rand_r(&seed) % 1000);
            unlink(filler_path);
            require_answering("a full disk");
            break;
        }
        faults[f]++;
        pthread_mutex_unlock(&server_mu);
    }
    return NULL;
}

/* ---- the checker ---- */

static int by_received(const void *x, const void *y)
{
    const struct grant *a = x, *b = y;
    return (a->received > b->received) - (a->received < b->received);
}

static int by_key_token(const void *x, const void *y)
{
    const struct grant *a = x, *b = y;
    if (a->key != b->key)
        return a->key - b->key;
    return (a->token > b->token) - (a->token < b->token);
}

struct verdict {
    long overlaps, token_order, duplicates;
};

static struct verdict check_grants(struct grant *g, size_t n)
{
    struct verdict v = { 0, 0, 0 };
    /* Per key, in token order: each grant after every earlier end. */
    qsort(g, n, sizeof(*g), by_key_token);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && g[i].key == g[i - 1].key && g[i].token == g[i - 1].token)
            v.duplicates++;
    }
    double max_end = 0;
    size_t max_at = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || g[i].key != g[i - 1].key)
            max_end = 0;
        if (g[i].received < max_end && v.overlaps++ < 5) {
            const struct grant *p = &g[max_at];
            fprintf(stderr, "fault campaign: k%d token %lld (kind %d, sent "
                    "%.1f, received %.1f) overlaps token %lld (kind %d ttl "
                    "%d, sent %.1f, received %.1f, end >= %.1f by '%c')\n",
                    g[i].key, g[i].token, g[i].kind, g[i].sent,
                    g[i].received, p->token, p->kind, p->ttl, p->sent,
                    p->received, p->end_lo, p->how);
        }
        if (g[i].end_lo > max_end) {
            max_end = g[i].end_lo;
            max_at = i;
        }
    }
    /* Over all keys: an ACQUIRE sent after a grant was received gets a
     * larger token.  Grants by receipt, with the largest token so far. */
    qsort(g, n, sizeof(*g), by_received);
    long long *prefix = malloc((n + 1) * sizeof(*prefix));
    ck_assert_ptr_nonnull(prefix);
    long long best = 0;
    for (size_t i = 0; i < n; i++) {
        best = g[i].token > best ? g[i].token : best;
        prefix[i] = best;
    }
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = n; /* first received at or after g[i].sent */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (g[mid].received < g[i].sent)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && prefix[lo - 1] >= g[i].token && v.token_order++ < 5)
            fprintf(stderr, "fault campaign: token %lld is not above a "
                    "token received before it was asked for\n", g[i].token);
    }
    free(prefix);
    return v;
}

/* ---- the run ---- */

static void mount_disk(void)
{
    snprintf(disk_dir, sizeof(disk_dir), "%s/disk", ts.dir);
    ck_assert_int_eq(mkdir(disk_dir, 0700), 0);
    /* In a mount namespace of this (forked) test process and its daemon,
     * so the tmpfs goes with them even if the test dies half-way. */
    disk_mounted = unshare(CLONE_NEWNS) == 0 &&
                   mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                   mount("tmpfs", disk_dir, "tmpfs", 0,
                         "size=" DISK_BYTES) == 0;
    if (!disk_mounted)
        fprintf(stderr, "fault campaign: cannot mount a tmpfs (%s): the "
                "full-disk fault is skipped\n", strerror(errno));
    snprintf(filler_path, sizeof(filler_path), "%s/filler", disk_dir);
    snprintf(state_path, sizeof(state_path), "%s/state.json", disk_dir);
}

static void unmount_disk(void)
{
    unlink(filler_path);
    unlink(state_path);
    if (disk_mounted)
        umount(disk_dir);
    disk_mounted = 0;
    rmdir(disk_dir);
}

START_TEST(fault_campaign)
{
    const char *secs_env = getenv("CACHIFYD_FAULT_SECONDS");
    double seconds = secs_env ? atof(secs_env) : valgrind_mode() ? 15 : 20;
    const char *seed_env = getenv("CACHIFYD_FAULT_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10)
                             : (unsigned)time(NULL);
    fprintf(stderr, "fault campaign: seed %u, %.0f s\n", seed, seconds);
    signal(SIGPIPE, SIG_IGN);

    ck_assert_int_eq(ts_init(&ts), 0);
    mount_disk();
    char long_lease[16], recovery[16];
    snprintf(long_lease, sizeof(long_lease), "%d", LONG_LEASE_MS);
    snprintf(recovery, sizeof(recovery), "%d", RECOVERY_MS);
    const char *const args[] = { "--state_file", state_path,
                                 "--long_lease_ms", long_lease,
                                 "--recovery_delay_ms", recovery,
                                 "--loglevel", "warning", NULL };
    daemon_args = args;
    start_daemon();

    static struct client cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].fd = -1;
        cl[i].seed = seed + (unsigned)i * 7919u;
        ck_assert_int_eq(pthread_create(&cl[i].thread, NULL, client_main,
                                        &cl[i]), 0);
    }
    pthread_t faulter;
    unsigned fault_seed = seed ^ 0x5eedu;
    ck_assert_int_eq(pthread_create(&faulter, NULL, fault_main, &fault_seed),
                     0);
    sleep_ms(seconds * 1000);
    stopping = 1;
    pthread_join(faulter, NULL);
    require_answering("the last fault");
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(cl[i].thread, NULL);

    size_t total = 0;
    long refused = 0, not_durable = 0, unknown = 0, drops = 0, lost = 0;
    long owed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        total += cl[i].ngrants;
        refused += cl[i].refused;
        not_durable += cl[i].not_durable;
        unknown += cl[i].unknown;
        drops += cl[i].drops;
        lost += cl[i].lost_forever;
        owed += cl[i].owed_token != 0;
    }
    struct grant *all = malloc((total ? total : 1) * sizeof(*all));
    ck_assert_ptr_nonnull(all);
    size_t k = 0;
    for (int i = 0; i < CLIENTS; i++) {
        memcpy(all + k, cl[i].grants, cl[i].ngrants * sizeof(*all));
        k += cl[i].ngrants;
        free(cl[i].grants);
    }
    struct verdict v = check_grants(all, total);
    free(all);
    printf("fault campaign: %.0f s, faults kill9=%ld stop=%ld pause=%ld "
           "diskfull=%ld (refusing %ld) drops=%ld; grants checked=%zu "
           "refused=%ld (not durable %ld) unknown=%ld; overlaps=%ld "
           "token_order=%ld duplicate_tokens=%ld lost_forever=%ld "
           "unreleased_forever=%ld\n",
           seconds, faults[0], faults[1], faults[2], faults[3],
           disk_refusals, drops, total,
           refused, not_durable, unknown, v.overlaps, v.token_order,
           v.duplicates, lost, owed);
    fflush(stdout);

    int rc = ts_stop(&ts);
    unmount_disk();
    ts_cleanup(&ts);
    ck_assert_int_eq(v.overlaps, 0);
    ck_assert_int_eq(v.token_order, 0);
    ck_assert_int_eq(v.duplicates, 0);
    ck_assert_int_eq(lost, 0);
    ck_assert_int_eq(owed, 0);
    ck_assert_msg(total > 50, "too few grants to judge: %zu", total);
    ck_assert_msg(faults[0] && faults[1] && faults[2],
                  "a fault kind was never injected");
    ck_assert_msg(!disk_mounted || !faults[3] || disk_refusals > 0,
                  "the full disk never made the daemon refuse a lease");
    ck_assert_msg(rc == 0, "the daemon's last stop exited %d (99: valgrind "
                  "found errors)", rc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("campaign");
    const char *secs_env = getenv("CACHIFYD_FAULT_SECONDS");
    double seconds = secs_env ? atof(secs_env) : 20;
    tcase_set_timeout(tc, seconds + (valgrind_mode() ? 900 : 300));
    tcase_add_test(tc, fault_campaign);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
