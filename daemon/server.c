/* daemon/server.c - the event loop, listeners, expiry timer and signals
 * (see server.h).
 *
 * Listening sockets are made here rather than by evconnlistener_new_bind so
 * that IPv6 sockets can be IPV6_V6ONLY (then "0.0.0.0 ::" binds both without
 * a clash) and errors name the address.  When accept() runs out of file
 * descriptors the listeners pause for a moment instead of spinning.
 */
#include "daemon/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "alloc.h"
#include "engine/clock.h"
#include "daemon/admission.h"
#include "daemon/cmd_lock.h"
#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/reload.h"
#include "daemon/state.h"
#include "daemon/tls.h"
#include "daemon/users.h"

/* Expiries and timeouts handled per timer callback: bounds how long a storm
 * of simultaneous expiries can hold up other clients before they get a turn. */
#define EXPIRY_BATCH 1000

#define LISTEN_BACKLOG 511

/* Memory after a peak.  The engine, its heaps and maps give their memory
 * back to malloc as locks go, and so do the connections' buffers as
 * clients leave, but glibc keeps what lies below the top of its heap (most
 * of it, after a million locks or thousands of full client buffers) until
 * malloc_trim(0) hands the free pages to the kernel.  That call walks the
 * heap's free chunks, so it runs only from the timer, once the drain of
 * closed sessions is done, and only after the lock count (held + waiting)
 * fell by TRIM_MIN_DROP, or the bytes held in client buffers by
 * TRIM_MIN_BYTES, and to under half of its mark (its peak since the last
 * trim): a few times after a big peak, never per request. */
#define TRIM_MIN_DROP 65536
#define TRIM_MIN_BYTES (64u << 20)
#define TRIM_SETTLE_US 100000

static uint64_t lock_count(const struct server *srv)
{
    struct lock_stats ls;
    locktable_stats(srv->locks, &ls);
    return ls.held + ls.waiters;
}

/* 1 when value fell far enough below *mark; raises the mark on a new
 * peak.  O(1). */
static int fell_from_peak(uint64_t *mark, uint64_t value, uint64_t min_drop)
{
    if (value > *mark) {
        *mark = value;
        return 0;
    }
    return *mark - value >= min_drop && value < *mark / 2;
}

/* 1 when a trim is due (both marks are kept up to date either way). */
static int trim_due(struct server *srv)
{
    int locks = fell_from_peak(&srv->trim_mark, lock_count(srv),
                               TRIM_MIN_DROP);
    int bytes = fell_from_peak(&srv->trim_bytes_mark, srv->client_bytes,
                               TRIM_MIN_BYTES);
    return locks || bytes;
}

static void trim_if_due(struct server *srv)
{
    if (locktable_next_deadline(srv->locks) == 0 || !trim_due(srv))
        return; /* still draining: trim once, at the end */
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    srv->trim_mark = lock_count(srv);
    srv->trim_bytes_mark = srv->client_bytes;
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    srv->timer_armed_for = UINT64_MAX;
    locktable_run_timers(srv->locks, EXPIRY_BATCH);
    state_commit(srv); /* handoffs of long leases, before their replies */
    trim_if_due(srv);
    server_arm_timer(srv);
}

void server_arm_timer(struct server *srv)
{
    uint64_t next = locktable_next_deadline(srv->locks);
    /* Locks released by commands and clients gone (no timer involved)
     * still get a trim: the timer fires a little later and trim_if_due
     * does it.  Later, because libevent frees a closed connection's
     * buffers in a following loop pass, and a mass close takes several:
     * trimming at once would hand back little and reset the mark. */
    if (trim_due(srv)) {
        uint64_t soon = clock_mono_us(NULL) + TRIM_SETTLE_US;
        if (soon < next)
            next = soon;
    }
    /* A later deadline needs no re-arm: the timer firing early just finds
     * nothing due and re-arms for the real one.  The clock is read only
     * when arming: this runs after every connection's turn. */
    if (next == UINT64_MAX || next >= srv->timer_armed_for)
        return;
    uint64_t now = clock_mono_us(NULL);
    uint64_t delay = next > now ? next - now : 0;
    struct timeval tv = { (time_t)(delay / 1000000),
                          (suseconds_t)(delay % 1000000) };
    evtimer_add(srv->expiry_timer, &tv);
    srv->timer_armed_for = next;
}

/* Signals an operator may send: their default action would kill the
 * daemon and lose every lock, so each is caught.  SIGHUP reloads the config
 * (reload.c, from the loop, never inside a signal handler); the others
 * have no meaning and are logged. */
static const struct {
    int sig;
    const char *name;
} ignored_signals[] = {
    { SIGHUP, "SIGHUP" }, { SIGUSR1, "SIGUSR1" }, { SIGUSR2, "SIGUSR2" },
};

static void on_ignored_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)what;
    if (sig == SIGHUP && srv->reload != NULL) {
        reload_run(srv);
        return;
    }
    for (size_t i = 0; i < sizeof(ignored_signals) / sizeof(ignored_signals[0]); i++)
        if (ignored_signals[i].sig == sig)
            log_msg(LOG_WARNING, "%s ignored", ignored_signals[i].name);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)what;
    log_msg(LOG_INFO, "received %s, shutting down",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(srv->base, NULL);
}

static void describe_peer(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, outlen, "unix");
    }
}

/* TCP keepalive, as Redis's anetKeepAlive sets it: the first probe after
 * `idle` seconds of silence, then every idle / 3, and the peer is given up
 * after 3 unanswered ones.  Without it a peer whose host vanished (no FIN,
 * no RST) keeps its connection, and so its SESSION locks, for as long as
 * the daemon runs when `timeout` is 0; with it, for about idle + 3 x
 * idle / 3 seconds.  0 leaves keepalive off.  Failures are not fatal: the
 * connection works without it. */
static void set_keepalive(int fd, long long idle)
{
    if (idle <= 0)
        return;
    int on = 1, secs = (int)idle, intvl = (int)(idle / 3), cnt = 3;
    if (intvl == 0)
        intvl = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* A new client of a plain listener or, with tls set, of a TLS one: the
 * same admission for both.  A TLS client is refused without a reply: it
 * expects a handshake, and plain text would only look like a broken one
 * (the log line and the counters say why). */
static void admit(struct server *srv, evutil_socket_t fd, struct sockaddr *sa,
                  int tls)
{
    char peer[64];
    describe_peer(sa, peer, sizeof(peer));
    static struct log_limit denied_log, full_log;
    if (admission_denied(srv->config, sa)) {
        admission_refuse(fd, tls ? "" : ADMISSION_DENIED_REPLY);
        srv->stats.denied_clients++;
        log_limited(&denied_log, LOG_WARNING, "client %s refused: protected "
                    "mode (no password is set and it is not a loopback "
                    "client)", peer);
        return;
    }
    if ((long long)srv->nconns >= srv->maxclients) {
        admission_refuse(fd, tls ? "" : "-LIMIT max number of clients "
                         "reached\r\n");
        srv->stats.rejected_clients++;
        log_limited(&full_log, LOG_WARNING, "client %s refused: maxclients "
                    "(%lld) reached", peer, srv->maxclients);
        return;
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1; /* replies are small: do not let Nagle delay them */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        set_keepalive(fd, srv->config->tcp_keepalive);
    }
    conn_accept(srv, fd, peer, tls ? srv->tls_ctx : NULL);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)salen;
    admit(arg, fd, sa, 0);
}

static void on_accept_tls(struct evconnlistener *l, evutil_socket_t fd,
                          struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)salen;
    admit(arg, fd, sa, 1);
}

static void on_listener_retry(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)l;
    log_msg(LOG_WARNING, "accept failed: %s; pausing new connections for "
            "100 ms", strerror(err));
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_disable(srv->listeners[i]);
    struct timeval pause = { 0, 100000 };
    evtimer_add(srv->listener_retry, &pause);
}

static int add_listener(struct server *srv, int fd, const char *what,
                        int tls)
{
    struct evconnlistener **grown =
        cfy_realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*grown));
    if (!grown) {
        close(fd);
        return -1;
    }
    srv->listeners = grown;
    /* Bound but not listening yet (backlog 0: libevent leaves listen() to
     * us): start_listening() listens once the daemon can answer, so until
     * then a client is refused at once instead of hanging. */
    struct evconnlistener *l = evconnlistener_new(
        srv->base, tls ? on_accept_tls : on_accept, srv,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, 0,
        fd);
    if (!l) {
        close(fd);
        log_msg(LOG_ERROR, "cannot listen on %s", what);
        return -1;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    srv->listeners[srv->nlisteners++] = l;
    log_msg(LOG_INFO, "bound %s%s", what, tls ? " (TLS)" : "");
    return 0;
}

/* Listens on every bound socket.  0, or -1 (logged). */
static int start_listening(struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        evutil_socket_t fd = evconnlistener_get_fd(srv->listeners[i]);
        if (listen(fd, LISTEN_BACKLOG) != 0) {
            log_msg(LOG_ERROR, "cannot listen: %s", strerror(errno));
            return -1;
        }
        evconnlistener_enable(srv->listeners[i]);
    }
    return 0;
}

static int listen_tcp(struct server *srv, const char *addr, int port,
                      int tls)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char what[128];
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *in6 = (void *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
            goto bad_address;
        sslen = sizeof(*in6);
        snprintf(what, sizeof(what), "[%s]:%d", addr, port);
    } else {
        struct sockaddr_in *in = (void *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
            goto bad_address;
        sslen = sizeof(*in);
        snprintf(what, sizeof(what), "%s:%d", addr, port);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) {
        log_msg(LOG_ERROR, "cannot listen on %s: %s", what, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        log_msg(LOG_ERROR, "cannot listen on %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return add_listener(srv, fd, what, tls);
bad_address:
    log_msg(LOG_ERROR, "bind: '%s' is not an IPv4 or IPv6 address", addr);
    return -1;
}

static int listen_unix(struct server *srv, const char *path)
{
    struct sockaddr_un un;
    struct stat st;
    char what[160];
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(un.sun_path)) {
        log_msg(LOG_ERROR, "unixsocket: path too long: %s", path);
        return -1;
    }
    memcpy(un.sun_path, path, strlen(path) + 1);
    /* A socket file left by a previous run would make bind fail; one that
     * still answers belongs to a running daemon and must not be taken. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 &&
                   connect(probe, (struct sockaddr *)&un, sizeof(un)) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            log_msg(LOG_ERROR, "unix socket %s is in use by a running "
                    "daemon", path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
        log_msg(LOG_ERROR, "cannot listen on unix socket %s: %s", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(what, sizeof(what), "unix:%s", path);
    return add_listener(srv, fd, what, 0);
}

/* Opens every listener; *exposed is set when a TCP one is not
 * loopback-only (for admission_warn_exposure). */
static int open_listeners(struct server *srv, int *exposed)
{
    const struct cachify_config *cfg = srv->config;
    /* The Unix socket first: whoever sees the TCP port accept connections
     * (a test harness, a supervisor) may then rely on the socket file. */
    if (cfg->unixsocket[0] && listen_unix(srv, cfg->unixsocket) != 0)
        return -1;
    /* TLS listeners on every address, then the plain ones (start_listening
     * listens in this order): whoever sees the plain port answer may rely
     * on the TLS port too. */
    for (int tls = 1; tls >= 0; tls--) {
        int port = tls ? cfg->tls_port : cfg->port;
        if (port <= 0 || !cfg->bind[0])
            continue;
        char *copy = cfy_strdup(cfg->bind), *save = NULL;
        if (!copy)
            return -1;
        for (char *a = strtok_r(copy, " \t", &save); a;
             a = strtok_r(NULL, " \t", &save)) {
            *exposed |= !admission_bind_is_loopback(a);
            if (listen_tcp(srv, a, port, tls) != 0) {
                cfy_free(copy);
                return -1;
            }
        }
        cfy_free(copy);
    }
    if (srv->nlisteners == 0) {
        log_msg(LOG_ERROR, "nothing to listen on: set bind and port, or "
                "unixsocket");
        return -1;
    }
    return 0;
}

static void random_seed(uint8_t seed[16])
{
    /* Keyed hashing defeats clients that pick keys to collide; if the
     * kernel cannot give randomness, fall back to time and pid. */
    if (getrandom(seed, 16, 0) == 16)
        return;
    uint64_t a = clock_wall_us(NULL), b = clock_mono_us(NULL) ^ (uint64_t)getpid();
    memcpy(seed, &a, 8);
    memcpy(seed + 8, &b, 8);
}

struct server *server_new(const struct cachify_config *config)
{
    struct server *srv = cfy_calloc(1, sizeof(*srv));
    if (!srv) {
        log_msg(LOG_ERROR, "out of memory");
        return NULL;
    }
    srv->config = config;
    srv->clock = &clock_system;
    srv->limits.max_line = (size_t)config->max_line;
    srv->limits.max_bulk = (size_t)config->max_value_len;
    srv->limits.max_request = (size_t)config->max_request;
    srv->timer_armed_for = UINT64_MAX;
    srv->started_us = clock_mono_us(NULL);

    uint8_t seed[16];
    random_seed(seed);
    struct locktable_limits limits = { (size_t)config->max_locks,
                                       (size_t)config->max_waiters,
                                       (uint64_t)config->maxmemory };
    srv->base = event_base_new();
    srv->locks = locktable_new(&clock_system, &cmd_lock_events, &limits,
                               seed);
    if (!srv->base || !srv->locks) {
        log_msg(LOG_ERROR, "out of memory");
        goto fail;
    }
    char why[512];
    if (!(srv->users = users_build(config->user, why, sizeof why))) {
        log_msg(LOG_ERROR, "%s", why);
        goto fail;
    }
    srv->expiry_timer = evtimer_new(srv->base, on_expiry, srv);
    srv->listener_retry = evtimer_new(srv->base, on_listener_retry, srv);
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    if (!srv->expiry_timer || !srv->listener_retry || !srv->sig_int ||
        !srv->sig_term || evsignal_add(srv->sig_int, NULL) != 0 ||
        evsignal_add(srv->sig_term, NULL) != 0) {
        log_msg(LOG_ERROR, "cannot set up timers and signals");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(ignored_signals) / sizeof(ignored_signals[0]); i++) {
        srv->sig_ignored[i] = evsignal_new(srv->base, ignored_signals[i].sig,
                                           on_ignored_signal, srv);
        if (!srv->sig_ignored[i] ||
            evsignal_add(srv->sig_ignored[i], NULL) != 0) {
            log_msg(LOG_ERROR, "cannot set up signals");
            goto fail;
        }
    }
    /* The TLS context before its listeners: the files were checked with
     * the settings, but may have changed since. */
    if (config->tls_port > 0 &&
        !(srv->tls_ctx = tls_ctx_new(config, why, sizeof why))) {
        log_msg(LOG_ERROR, "%s", why);
        goto fail;
    }
    /* Before any listener: its descriptors count against the limit. */
    srv->maxclients = admission_fit_maxclients(config->maxclients);
    if (srv->maxclients < 0)
        goto fail;
    /* Bound first: a port in use must not leave a journal behind, which
     * the next start would take for a crash.  Listening comes after the
     * state file is loaded, however long that takes. */
    int exposed = 0;
    if (open_listeners(srv, &exposed) != 0 ||
        (config->metrics_port > 0 && metrics_start(srv) != 0) ||
        state_start(srv) != 0 || start_listening(srv) != 0)
        goto fail;
    admission_warn_exposure(config, exposed);
    server_arm_timer(srv);
    return srv;
fail:
    server_free(srv);
    return NULL;
}

/* Work the loop has done for clients: it changes whenever a command ran, a
 * client was accepted, or a timer handed a lock to a waiter or ended a
 * wait (both answer a client, whose next request should find the loop
 * awake too).  This is what keeps busy polling going. */
static uint64_t work_done(const struct server *srv)
{
    struct lock_stats ls;

    locktable_stats(srv->locks, &ls);
    return srv->stats.commands + srv->stats.connections_total +
           ls.handoffs + ls.timeouts;
}

/* Longest gap between two turns with work that the average takes in, so
 * one long idle spell cannot push it out of range. */
#define GAP_CLAMP_US 1000000u

/* The event loop, with busy polling when busy_poll_us > 0: one turn at a
 * time, and while the last turn that did work is less than busy_poll_us
 * ago the next turn polls (EVLOOP_NONBLOCK) instead of sleeping.  A client
 * that writes while the daemon is polling needs no wake-up, which is most
 * of what a loopback request costs the client beyond its own system calls
 * (docs/performance.md).
 *
 * Polling pays only when the next request comes within the window, so it
 * is also gated on the traffic: gap_avg, a moving average (weight 1/8) of
 * the time between turns that did work, must be under the window too.
 * Requests arriving further apart than busy_poll_us (1,000 or 10,000 a
 * second against 50 us) never make the loop spin, and neither does an idle
 * daemon; a steady stream of close requests does.  Returns 0 when asked to
 * stop, -1 on error. */
static int run_loop(struct server *srv)
{
    uint64_t window = (uint64_t)srv->config->busy_poll_us;
    uint64_t seen, last_work, gap_avg = GAP_CLAMP_US;

    if (window == 0)
        return event_base_dispatch(srv->base) < 0 ? -1 : 0;
    seen = work_done(srv);
    last_work = clock_mono_us(NULL);
    for (;;) {
        uint64_t now = clock_mono_us(NULL), work = work_done(srv);
        int poll, rc;

        if (work != seen) {
            uint64_t gap = now - last_work;
            gap_avg -= gap_avg / 8;
            gap_avg += (gap < GAP_CLAMP_US ? gap : GAP_CLAMP_US) / 8;
            seen = work;
            last_work = now;
        }
        poll = gap_avg < window && now - last_work < window;
        if (poll && last_work != now) {
            /* An empty poll: let anything else runnable on this core
             * (the client, perhaps) have it before the next one. */
            sched_yield();
        }
        rc = event_base_loop(srv->base, poll ? EVLOOP_NONBLOCK : EVLOOP_ONCE);
        if (rc < 0)
            return -1;
        /* Each event_base_loop call clears the exit flag when it starts, so
         * it must be read here, between turns. */
        if (rc == 1 || event_base_got_exit(srv->base) ||
            event_base_got_break(srv->base))
            return 0;
    }
}

int server_run(struct server *srv)
{
    log_msg(LOG_INFO, "cachifyd ready");
    if (run_loop(srv) < 0) {
        log_msg(LOG_ERROR, "event loop failed");
        return -1;
    }
    /* Clients go first, waits before locks, so releasing a dying client's
     * SESSION locks hands nothing to another dying client; then the held
     * locks that remain are saved. */
    for (struct conn *c = srv->conns; c; c = c->next)
        locktable_session_cancel_waits(srv->locks, &c->session);
    while (srv->conns)
        conn_free(srv->conns);
    return state_save_clean(srv) == 0 ? 0 : -1;
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    while (srv->conns)
        conn_free(srv->conns);
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    cfy_free(srv->listeners);
    if (srv->config->unixsocket[0] && srv->nlisteners)
        unlink(srv->config->unixsocket);
    if (srv->expiry_timer)
        event_free(srv->expiry_timer);
    if (srv->listener_retry)
        event_free(srv->listener_retry);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_term)
        event_free(srv->sig_term);
    for (size_t i = 0; i < sizeof(srv->sig_ignored) / sizeof(srv->sig_ignored[0]); i++)
        if (srv->sig_ignored[i])
            event_free(srv->sig_ignored[i]);
    metrics_stop(srv);
    tls_ctx_free(srv->tls_ctx); /* after the connections, which use it */
    state_free(srv);
    locktable_free(srv->locks);
    users_free(srv->users);
    if (srv->base)
        event_base_free(srv->base);
    cfy_free(srv);
}
