/* tests/integration/test_stress.c - Check suite: mutual exclusion under
 * contention, against the real daemon.
 *
 * Owns: two randomized stress runs and the checker that judges them.
 * NCLIENTS non-blocking connections, driven by one poll() loop, contend on
 * NKEYS keys with ACQUIRE key TTL <ms> WAIT <ms> [SESSION]; holders hold for
 * a random short time, some overstay their TTL, some disconnect mid-hold
 * (a few with unread replies, so the daemon sees a reset), and some waiters
 * disconnect mid-wait (abruptly, or by a half-close after which they read
 * what is still owed).  Every event is stamped with CLOCK_MONOTONIC, the
 * daemon's clock too.  Does not own: exact-reply tests of waiting
 * (test_waiting.c).
 *
 * Why the checker is sound (it never fails a correct daemon, whatever the
 * scheduling): the daemon holds a lock for token T from its grant g to its
 * end e (RELEASE processed, TTL run out at g + ttl, or SESSION connection
 * closed).  We never see g or e, but we can bound them from the inside:
 *   - g <= r, the time we *received* the grant;  g >= a, the time we *sent*
 *     the ACQUIRE.
 *   - RELEASE answered :1: the lock was still held when the daemon read the
 *     RELEASE, which was after we sent it at s, so e >= s.  No TTL clip is
 *     needed: :1 proves it had not expired.
 *   - RELEASE answered :0 (it expired first): e = g + ttl >= a + ttl.
 *   - holder closed its socket at c: SESSION lock, e >= min(c, a + ttl);
 *     other lock, it outlives the connection, e = g + ttl >= a + ttl.
 * So [r, lo_end] with the lo_end above lies inside the daemon's [g, e].
 * The daemon's intervals for one key must be disjoint, hence so must ours;
 * an overlap is a real double grant, not a timing artefact.  Using r + ttl
 * as the end would NOT be sound (r is late by the delivery delay, which is
 * unbounded on a loaded box or under valgrind).  For waiters a + ttl may
 * lie before r; the interval is then empty and proves nothing, which is
 * safe.  The same bounds give the fencing checks:
 *   - per key, in token order, every grant must be received after the
 *     lower-bounded end of every grant with a smaller token (tokens follow
 *     grant order, and a new grant follows the old hold);
 *   - globally, an ACQUIRE sent after a grant was received must get a
 *     larger token (causality; tokens grow over all keys);
 *   - a RELEASE whose :N reply came before a + ttl must be :1 (still held,
 *     nobody else can have taken it); one sent after r + ttl must be :0
 *     (expired exactly, even though nobody asked about the key).
 * Finally no request may be left unanswered, and the daemon's STATS must
 * match what the clients saw.  A waiter closed abruptly can have been
 * granted or timed out in the instant before the daemon noticed: each such
 * close allows one unseen grant or timeout, and no more.
 *
 * Bounded in time: requests are issued for 4 s (mixed) and 2 s (sessions),
 * then every client finishes what it started.  Under valgrind
 * (CACHIFYD_VALGRIND=1) the op count is capped instead (2000 and 1500
 * ACQUIREs); the checks are the same.  CACHIFYD_STRESS_SEED=<n> replays a
 * run's random choices (not its timing); each run prints its seed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testserver.h"

#define NCLIENTS 40
#define NKEYS 4
/* How long the clients may take to settle after issuing stops: the longest
 * WAIT plus holds, with room for valgrind. */
#define SETTLE_MS 60000.0

static int under_valgrind(void)
{
    const char *v = getenv("CACHIFYD_VALGRIND");
    return v && v[0] == '1';
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- random choices, reproducible from one seed ---- */

static unsigned long long rng_state;

static unsigned rnd(unsigned n) /* uniform-ish in [0, n) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 2685821657736338717ULL) >> 33) % n;
}

static int chance(unsigned percent)
{
    return rnd(100) < percent;
}

/* ---- what a run does ---- */

struct profile {
    const char *name;
    int ttl_min, ttl_max;   /* ms; ttl_max 0 = TTL FOREVER */
    unsigned p_wait0;       /* % of ACQUIREs with WAIT 0 */
    unsigned p_forever;     /* % with WAIT FOREVER */
    int wait_max;           /* other waits: 1..wait_max ms */
    unsigned p_session;
    unsigned p_overstay;    /* % of holders that outstay their TTL */
    unsigned p_close_hold;  /* % of holders that close instead of RELEASE */
    unsigned p_unread;      /* % of those that leave replies unread */
    unsigned p_leave_wait;  /* % of waits abandoned mid-wait */
    int hold_max;           /* normal hold: 0..hold_max ms */
};

enum cstate {
    C_IDLE,      /* nothing outstanding */
    C_WAITING,   /* ACQUIRE sent, no reply yet */
    C_HOLDING,   /* granted, holding until leave_at */
    C_RELEASING, /* RELEASE sent */
    C_DRAINING,  /* half-closed mid-wait: reading what is owed until EOF */
};

enum grant_end { END_NONE, END_REL1, END_REL0, END_CLOSE };

/* One grant as the clients saw it (see the soundness note at the top). */
struct grant {
    int key;
    long long token;
    long long ttl;   /* ms; 0 = no expiry */
    int session;
    double a;        /* ACQUIRE sent */
    double r;        /* grant received */
    double s;        /* RELEASE sent, or socket closed */
    double q;        /* RELEASE reply received */
    enum grant_end end;
    double lo_end;   /* lower bound of the daemon-side end */
};

struct client {
    int fd;
    enum cstate st;
    char in[512];    /* replies are single short lines */
    size_t inlen;
    int key, ttl, wait, session; /* wait: -1 FOREVER */
    double a;        /* ACQUIRE sent */
    double leave_at; /* WAITING: abandon at (0 = never); HOLDING: end at */
    double half_at;  /* DRAINING: when we half-closed */
    int abrupt, close_hold, unread;
    size_t g;        /* its grant while HOLDING / RELEASING */
};

struct run {
    const struct profile *p;
    struct test_server ts;
    struct client c[NCLIENTS];
    struct grant *grants;
    size_t ngrants, cap;
    long long ops, timeouts_seen, rejected_seen, abrupt_wait_closes;
    long long rel1, rel0, holder_closes, half_closes;
};

static struct test_server *live_server;

/* A failed Check assertion _exit()s the forked test (or longjmps, with
 * CK_FORK=no), so every failure is routed through on_failure() first (the
 * macro below; it is also the checked teardown): it kills the daemon and
 * keeps its directory, naming the log (thousands of lines, so not printed). */
static void on_failure(void)
{
    if (!live_server)
        return;
    ts_kill9(live_server);
    fprintf(stderr, "test_stress: daemon log kept at %s\n",
            live_server->log_path);
    live_server = NULL;
}

/* Not expanded again inside its own expansion. */
#define _ck_assert_failed(...) (on_failure(), _ck_assert_failed(__VA_ARGS__))

static int open_client(struct run *R)
{
    int fd = tc_connect(&R->ts);
    ck_assert_msg(fd >= 0, "cannot connect");
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

/* Requests are short and the daemon reads all the time: a short write
 * would mean something is badly wrong, so it fails the test. */
static void send_line(struct client *c, const char *s)
{
    size_t n = strlen(s);
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    ck_assert_msg(w == (ssize_t)n, "send of %zu bytes returned %zd (%s)", n,
                  w, strerror(errno));
}

static void reconnect(struct run *R, struct client *c)
{
    close(c->fd);
    c->fd = open_client(R);
    c->st = C_IDLE;
    c->inlen = 0;
}

static void start_acquire(struct run *R, struct client *c, double now)
{
    const struct profile *p = R->p;
    char cmd[128];
    int n;
    c->key = (int)rnd(NKEYS);
    c->ttl = p->ttl_max ? p->ttl_min + (int)rnd((unsigned)(p->ttl_max -
                                                            p->ttl_min + 1))
                        : 0;
    c->session = chance(p->p_session);
    if (chance(p->p_wait0))
        c->wait = 0;
    else if (chance(p->p_forever * 100 / (100 - p->p_wait0)))
        c->wait = -1;
    else
        c->wait = 1 + (int)rnd((unsigned)p->wait_max);
    n = snprintf(cmd, sizeof(cmd), "ACQUIRE key%d", c->key);
    if (c->ttl)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " TTL %d", c->ttl);
    else
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " TTL FOREVER");
    if (c->wait < 0)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " WAIT FOREVER");
    else if (c->wait > 0 || chance(50)) /* WAIT 0 or no WAIT: the same */
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " WAIT %d", c->wait);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, "%s\r\n",
             c->session ? " SESSION" : "");
    c->leave_at = 0;
    if (c->wait != 0 && chance(p->p_leave_wait)) {
        int span = c->wait > 0 && c->wait < 400 ? c->wait : 400;
        c->leave_at = now + rnd((unsigned)span + 1);
        c->abrupt = chance(50);
    }
    c->a = now_ms();
    send_line(c, cmd);
    c->st = C_WAITING;
    R->ops++;
}

static struct grant *new_grant(struct run *R, struct client *c, long long tok,
                               double r)
{
    if (R->ngrants == R->cap) {
        R->cap = R->cap ? R->cap * 2 : 1024;
        R->grants = realloc(R->grants, R->cap * sizeof(*R->grants));
        ck_assert_ptr_nonnull(R->grants);
    }
    struct grant *g = &R->grants[R->ngrants++];
    memset(g, 0, sizeof(*g));
    g->key = c->key;
    g->token = tok;
    g->ttl = c->ttl;
    g->session = c->session;
    g->a = c->a;
    g->r = r;
    return g;
}

/* Time-driven steps: new requests, abandoned waits, ends of holds. */
static void step(struct run *R, struct client *c, double now, int issuing)
{
    if (c->st == C_IDLE && issuing) {
        start_acquire(R, c, now);
    } else if (c->st == C_WAITING && c->leave_at && now >= c->leave_at) {
        if (c->abrupt) { /* gone at once; an in-flight reply is lost */
            R->abrupt_wait_closes++;
            reconnect(R, c);
        } else { /* the daemon drops the wait; we read what is owed */
            c->half_at = now_ms();
            ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
            c->st = C_DRAINING;
            R->half_closes++;
        }
    } else if (c->st == C_HOLDING && now >= c->leave_at) {
        struct grant *g = &R->grants[c->g];
        if (c->close_hold) {
            if (c->unread) /* replies left unread make close() a reset */
                send_line(c, "PING\r\nPING\r\nPING\r\nPING\r\n");
            g->s = now_ms();
            g->end = END_CLOSE;
            R->holder_closes++;
            reconnect(R, c);
        } else {
            char cmd[96];
            snprintf(cmd, sizeof(cmd), "RELEASE key%d %lld\r\n", g->key,
                     g->token);
            g->s = now_ms();
            send_line(c, cmd);
            c->st = C_RELEASING;
        }
    }
}

static int is_error_for(const char *line, const char *code, int key)
{
    char want[96];
    snprintf(want, sizeof(want), "-%s key%d is already locked!", code, key);
    return strcmp(line, want) == 0;
}

/* One reply line (without CRLF), received at r. */
static void on_reply(struct run *R, struct client *c, const char *line,
                     double r)
{
    const struct profile *p = R->p;
    if (c->st == C_WAITING || c->st == C_DRAINING) {
        if (line[0] == ':') {
            long long tok = strtoll(line + 1, NULL, 10);
            ck_assert_msg(tok > 0, "bad token reply \"%s\"", line);
            struct grant *g = new_grant(R, c, tok, r);
            if (c->st == C_DRAINING) { /* granted just before it left */
                g->s = c->half_at;
                g->end = END_CLOSE;
                return;
            }
            int hold = (int)rnd((unsigned)p->hold_max + 1);
            if (c->ttl && chance(p->p_overstay))
                hold = c->ttl + 10 + (int)rnd(90);
            c->close_hold = chance(p->p_close_hold);
            c->unread = chance(p->p_unread);
            c->leave_at = r + hold;
            c->g = R->ngrants - 1;
            c->st = C_HOLDING;
        } else if (c->wait != 0 && is_error_for(line, "TIMEOUT", c->key)) {
            R->timeouts_seen++;
            if (c->st == C_WAITING)
                c->st = C_IDLE;
        } else if (c->wait == 0 && is_error_for(line, "LOCKED", c->key)) {
            R->rejected_seen++;
            c->st = C_IDLE;
        } else {
            ck_abort_msg("unexpected reply \"%s\" to ACQUIRE key%d WAIT %d",
                         line, c->key, c->wait);
        }
        return;
    }
    if (c->st == C_RELEASING) {
        struct grant *g = &R->grants[c->g];
        ck_assert_msg(!strcmp(line, ":1") || !strcmp(line, ":0"),
                      "unexpected reply \"%s\" to RELEASE", line);
        g->q = r;
        g->end = line[1] == '1' ? END_REL1 : END_REL0;
        if (g->end == END_REL1)
            R->rel1++;
        else
            R->rel0++;
        c->st = C_IDLE;
        return;
    }
    ck_abort_msg("reply \"%s\" with nothing outstanding (state %d)", line,
                 (int)c->st);
}

static void on_readable(struct run *R, struct client *c)
{
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
    double r = now_ms(); /* as early as we can: r bounds the grant from above */
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        ck_assert_msg(c->st == C_DRAINING,
                      "daemon closed a connection in state %d (%s)",
                      (int)c->st, n < 0 ? strerror(errno) : "EOF");
        reconnect(R, c);
        return;
    }
    c->inlen += (size_t)n;
    char *start = c->in, *eol;
    while ((eol = memchr(start, '\n', c->inlen - (size_t)(start - c->in)))) {
        ck_assert_msg(eol > start && eol[-1] == '\r', "reply without CRLF");
        eol[-1] = '\0';
        on_reply(R, c, start, r);
        start = eol + 1;
    }
    c->inlen -= (size_t)(start - c->in);
    memmove(c->in, start, c->inlen);
    ck_assert_msg(c->inlen < sizeof(c->in), "overlong reply line");
}

/* Issues requests until `issue_ms` or `max_ops`, then lets every client
 * finish what it started; fails if any request stays unanswered. */
static void drive(struct run *R, double issue_ms, long long max_ops)
{
    struct pollfd pf[NCLIENTS];
    double t0 = now_ms(), settle_deadline = 0;
    for (;;) {
        double now = now_ms();
        int issuing = now - t0 < issue_ms && R->ops < max_ops, busy = 0;
        for (int i = 0; i < NCLIENTS; i++) {
            step(R, &R->c[i], now, issuing);
            busy |= R->c[i].st != C_IDLE;
        }
        if (!issuing && !busy)
            break;
        if (!issuing && settle_deadline == 0)
            settle_deadline = now + SETTLE_MS;
        if (settle_deadline && now > settle_deadline) {
            int left = 0;
            for (int i = 0; i < NCLIENTS; i++)
                left += R->c[i].st != C_IDLE;
            ck_abort_msg("%d clients still have unanswered requests %.0f ms "
                         "after issuing stopped", left, SETTLE_MS);
        }
        for (int i = 0; i < NCLIENTS; i++)
            pf[i] = (struct pollfd){ R->c[i].fd, POLLIN, 0 };
        int n = poll(pf, NCLIENTS, 1);
        ck_assert_msg(n >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        for (int i = 0; n > 0 && i < NCLIENTS; i++)
            if (pf[i].revents)
                on_readable(R, &R->c[i]);
    }
}

/* ---- the checker ---- */

/* The daemon truncates its clock to microseconds, so a TTL can end up to
 * 1 us before a + ttl as we measure it: TTL-derived bounds give 10 us. */
#define TRUNC_SLACK_MS 0.01

static double lower_end(const struct grant *g)
{
    double ttl_end = g->ttl ? g->a + (double)g->ttl - TRUNC_SLACK_MS : 1e300;
    switch (g->end) {
    case END_REL1:
        return g->s;
    case END_REL0:
        return ttl_end;
    case END_CLOSE:
        return g->session && g->s < ttl_end ? g->s : ttl_end;
    default:
        ck_abort_msg("grant %lld never ended", g->token);
    }
    return 0;
}

static const struct grant *sort_base;

static int by_key_r(const void *x, const void *y)
{
    const struct grant *a = &sort_base[*(const size_t *)x];
    const struct grant *b = &sort_base[*(const size_t *)y];
    if (a->key != b->key)
        return a->key - b->key;
    return a->r < b->r ? -1 : a->r > b->r;
}

static int by_key_token(const void *x, const void *y)
{
    const struct grant *a = &sort_base[*(const size_t *)x];
    const struct grant *b = &sort_base[*(const size_t *)y];
    if (a->key != b->key)
        return a->key - b->key;
    return a->token < b->token ? -1 : a->token > b->token;
}

static int by_r(const void *x, const void *y)
{
    const struct grant *a = &sort_base[*(const size_t *)x];
    const struct grant *b = &sort_base[*(const size_t *)y];
    return a->r < b->r ? -1 : a->r > b->r;
}

static const char *describe(const struct grant *g, double t0)
{
    static char buf[2][256];
    static int k;
    static const char *const ends[] = { "none", ":1", ":0", "close" };
    k ^= 1;
    char bound[32] = "never";
    if (g->lo_end < 1e299)
        snprintf(bound, sizeof(bound), "%.1f", g->lo_end - t0);
    snprintf(buf[k], sizeof(buf[k]), "key%d token %lld ttl %lld%s sent "
             "%.1f recv %.1f end %s at %.1f (held at least until %s)",
             g->key, g->token, g->ttl, g->session ? " SESSION" : "",
             g->a - t0, g->r - t0, ends[g->end], g->s - t0, bound);
    return buf[k];
}

static void check_grants(struct run *R, double t0)
{
    size_t n = R->ngrants;
    struct grant *G = R->grants;
    size_t *ix = malloc((n + 1) * sizeof(*ix));
    ck_assert_ptr_nonnull(ix);
    for (size_t i = 0; i < n; i++) {
        G[i].lo_end = lower_end(&G[i]);
        ix[i] = i;
    }
    sort_base = G;

    /* Mutual exclusion: per key, in receive order, no interval starts
     * before an earlier one's lower-bounded end. */
    qsort(ix, n, sizeof(*ix), by_key_r);
    for (size_t i = 1, far = 0; i < n; i++) {
        const struct grant *cur = &G[ix[i]], *prev = &G[ix[far]];
        if (cur->key != G[ix[i - 1]].key) {
            far = i;
            continue;
        }
        /* An empty interval (the holder closed before its grant arrived)
         * overlaps nothing; comparing it would only test which of two
         * replies read in one poll() round was read first. */
        if (cur->lo_end <= cur->r)
            continue;
        ck_assert_msg(cur->r >= prev->lo_end,
                      "two holders at once:\n  %s\n  %s", describe(prev, t0),
                      describe(cur, t0));
        if (cur->lo_end > prev->lo_end)
            far = i;
    }

    /* Fencing, per key: in token order, each grant comes after the end of
     * every grant with a smaller token. */
    qsort(ix, n, sizeof(*ix), by_key_token);
    for (size_t i = 1, far = 0; i < n; i++) {
        const struct grant *cur = &G[ix[i]], *prev = &G[ix[far]];
        if (cur->key != G[ix[i - 1]].key) {
            far = i;
            continue;
        }
        ck_assert_msg(cur->token != G[ix[i - 1]].token, "token %lld twice",
                      cur->token);
        ck_assert_msg(cur->r >= prev->lo_end,
                      "larger token granted before the smaller one's hold "
                      "ended:\n  %s\n  %s", describe(prev, t0),
                      describe(cur, t0));
        if (cur->lo_end > prev->lo_end)
            far = i;
    }

    /* Tokens over all keys: an ACQUIRE sent after a grant was received
     * gets a larger token (and no token is issued twice). */
    qsort(ix, n, sizeof(*ix), by_r);
    long long *prefmax = malloc((n + 1) * sizeof(*prefmax));
    ck_assert_ptr_nonnull(prefmax);
    for (size_t i = 0; i < n; i++)
        prefmax[i] = i && prefmax[i - 1] > G[ix[i]].token ? prefmax[i - 1]
                                                          : G[ix[i]].token;
    for (size_t j = 0; j < n; j++) {
        size_t lo = 0, hi = n; /* first index with r >= a_j */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (G[ix[mid]].r < G[j].a)
                lo = mid + 1;
            else
                hi = mid;
        }
        ck_assert_msg(lo == 0 || prefmax[lo - 1] < G[j].token,
                      "token %lld (ACQUIRE sent at %.1f) is not above token "
                      "%lld received before", G[j].token, G[j].a - t0,
                      prefmax[lo - 1]);
    }
    free(prefmax);
    free(ix);

    /* RELEASE replies against the TTL. */
    for (size_t i = 0; i < n; i++) {
        const struct grant *g = &G[i];
        if (g->end != END_REL0 && g->end != END_REL1)
            continue;
        /* Reply before a + ttl: the lock was still ours. */
        ck_assert_msg(!(g->ttl == 0 ||
                        g->q < g->a + (double)g->ttl - TRUNC_SLACK_MS) ||
                      g->end == END_REL1,
                      "RELEASE within the TTL answered :0: %s",
                      describe(g, t0));
        /* Sent after r + ttl: it had expired, nobody asking. */
        ck_assert_msg(!(g->ttl && g->s > g->r + (double)g->ttl) ||
                      g->end == END_REL0,
                      "RELEASE after the TTL answered :1: %s",
                      describe(g, t0));
    }
}

static long long stat_of(json_t *doc, const char *name)
{
    json_t *v = json_object_get(doc, name);
    ck_assert_msg(json_is_integer(v), "STATS has no '%s'", name);
    return (long long)json_integer_value(v);
}

static json_t *read_stats(const struct test_server *ts)
{
    char buf[4096];
    int fd = tc_connect(ts);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tc_send(fd, "STATS\r\n"), 0);
    long len = tc_read_reply(fd, buf, sizeof(buf));
    close(fd);
    ck_assert_msg(len > 0 && buf[0] == '$', "STATS: \"%s\"", tc_last());
    char *body = strstr(buf, "\r\n") + 2;
    json_t *doc = json_loadb(body, strlen(body) - 2, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    return doc;
}

/* After the run every lock ends by TTL at the latest: wait for that, then
 * compare the daemon's counters with what the clients saw. */
static void check_stats(struct run *R)
{
    json_t *doc = NULL;
    double deadline = now_ms() + 30000;
    for (;;) {
        json_decref(doc);
        doc = read_stats(&R->ts);
        if ((stat_of(doc, "locks_held") == 0 &&
             stat_of(doc, "waiters") == 0) || now_ms() > deadline)
            break;
        usleep(20000);
    }
    long long acquired = stat_of(doc, "acquired");
    long long timeouts = stat_of(doc, "timeouts");
    long long seen = (long long)R->ngrants;
    ck_assert_msg(stat_of(doc, "locks_held") == 0 &&
                  stat_of(doc, "waiters") == 0,
                  "locks_held %lld waiters %lld long after the run",
                  stat_of(doc, "locks_held"), stat_of(doc, "waiters"));
    ck_assert_msg(acquired >= seen && timeouts >= R->timeouts_seen &&
                  (acquired - seen) + (timeouts - R->timeouts_seen) <=
                  R->abrupt_wait_closes,
                  "STATS acquired %lld timeouts %lld; clients saw %lld "
                  "grants, %lld timeouts, %lld waits abandoned abruptly",
                  acquired, timeouts, seen, R->timeouts_seen,
                  R->abrupt_wait_closes);
    ck_assert_msg(stat_of(doc, "rejected") == R->rejected_seen,
                  "STATS rejected %lld, clients saw %lld -LOCKED",
                  stat_of(doc, "rejected"), R->rejected_seen);
    ck_assert_msg(stat_of(doc, "released") + stat_of(doc, "expired") ==
                  acquired, "released %lld + expired %lld != acquired %lld",
                  stat_of(doc, "released"), stat_of(doc, "expired"),
                  acquired);
    ck_assert_msg(stat_of(doc, "released") >= R->rel1,
                  "released %lld < %lld RELEASEs answered :1",
                  stat_of(doc, "released"), R->rel1);
    ck_assert_msg(stat_of(doc, "handoffs") >= 1 &&
                  stat_of(doc, "handoffs") <= acquired,
                  "handoffs %lld (acquired %lld)", stat_of(doc, "handoffs"),
                  acquired);
    fprintf(stderr, "test_stress %s: daemon acquired %lld handoffs %lld "
            "expired %lld released %lld timeouts %lld rejected %lld\n",
            R->p->name, acquired, stat_of(doc, "handoffs"),
            stat_of(doc, "expired"), stat_of(doc, "released"), timeouts,
            stat_of(doc, "rejected"));
    json_decref(doc);
}

static void stress(const struct profile *p, double issue_ms, long long ops,
                   long long vg_ops)
{
    static struct run R; /* large; one run at a time */
    const char *seed_env = getenv("CACHIFYD_STRESS_SEED");
    unsigned long long seed = seed_env ? strtoull(seed_env, NULL, 10)
                                       : (unsigned long long)time(NULL) ^
                                         ((unsigned long long)getpid() << 20);
    rng_state = seed ? seed : 1;
    memset(&R, 0, sizeof(R));
    R.p = p;
    ck_assert_int_eq(ts_init(&R.ts), 0);
    live_server = &R.ts;
    ck_assert_msg(ts_start(&R.ts, NULL) == 0, "daemon did not start");
    for (int i = 0; i < NCLIENTS; i++)
        R.c[i].fd = open_client(&R);

    double t0 = now_ms();
    if (under_valgrind()) {
        ops = vg_ops;
        issue_ms *= 10;
    }
    drive(&R, issue_ms, ops);
    double took = now_ms() - t0;
    for (int i = 0; i < NCLIENTS; i++)
        close(R.c[i].fd);
    fprintf(stderr, "test_stress %s: seed %llu, %.0f ms, %lld ACQUIREs, "
            "%zu grants seen, %lld timeouts, %lld rejected, RELEASE %lld :1 "
            "%lld :0, %lld holders closed, %lld waits abandoned (%lld "
            "abruptly)\n", p->name, seed, took, R.ops, R.ngrants,
            R.timeouts_seen, R.rejected_seen, R.rel1, R.rel0,
            R.holder_closes, R.half_closes + R.abrupt_wait_closes,
            R.abrupt_wait_closes);
    check_grants(&R, t0);
    check_stats(&R);
    /* Enough happened for the checks to mean something. */
    ck_assert_msg(R.ngrants >= 20, "only %zu grants", R.ngrants);
    free(R.grants);
    R.grants = NULL;
    int rc = ts_stop(&R.ts);
    ck_assert_msg(rc == 0, "daemon exit status %d", rc);
    live_server = NULL;
    ts_cleanup(&R.ts);
}

/* The mix: short TTLs, bounded and endless waits, SESSION or not, holders
 * that overstay, close, or reset; waiters that give up. */
START_TEST(mutual_exclusion_mixed)
{
    static const struct profile p = {
        .name = "mixed", .ttl_min = 50, .ttl_max = 400, .p_wait0 = 10,
        .p_forever = 5, .wait_max = 600, .p_session = 50, .p_overstay = 6,
        .p_close_hold = 12, .p_unread = 50, .p_leave_wait = 6, .hold_max = 15,
    };
    stress(&p, 4000, 1000000, 2000);
}
END_TEST

/* SESSION locks with no TTL and endless waits: a lock only ever moves on
 * when its holder's connection closes (or it RELEASEs), so a lost session
 * end shows up as waiters that are never answered. */
START_TEST(session_handoff_storm)
{
    static const struct profile p = {
        .name = "sessions", .ttl_min = 0, .ttl_max = 0, .p_wait0 = 0,
        .p_forever = 100, .wait_max = 1, .p_session = 100, .p_overstay = 0,
        .p_close_hold = 60, .p_unread = 50, .p_leave_wait = 5, .hold_max = 5,
    };
    stress(&p, 2000, 1000000, 1500);
}
END_TEST

static Suite *stress_suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("stress");
    /* Run by hand without CK_DEFAULT_TIMEOUT, Check's 4 s default is far
     * too short for these real-time suites (make sets it). */
    if (!getenv("CK_DEFAULT_TIMEOUT"))
        tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, NULL, on_failure);
    tcase_add_test(tc, mutual_exclusion_mixed);
    tcase_add_test(tc, session_handoff_storm);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stress_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
