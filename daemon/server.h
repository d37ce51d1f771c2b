/* daemon/server.h - the daemon's one event loop and what hangs off it.
 *
 * Owns: the event_base, the listeners (TCP on every bind address, TLS on
 * every bind address with tls_port, the Unix socket) and the TLS context,
 * the set of live connections, the lock engine, the expiry timer and the
 * signal handlers (SIGINT/SIGTERM stop it; SIGHUP reloads the
 * config file through reload.c when main set one up; SIGUSR1 and SIGUSR2
 * are logged and ignored, so an operator's stray signal never kills a
 * daemon holding locks).  Does not own: per-connection protocol work
 * (conn.c), commands (commands.c), the state file format (state.c).
 *
 * Everything runs on one thread; a libevent timer armed for the lock
 * engine's earliest deadline is the only clock-driven work.
 */
#ifndef CACHIFY_DAEMON_SERVER_H
#define CACHIFY_DAEMON_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/wait_hist.h"
#include "engine/locktable.h"
#include "proto/reader.h"

struct event_base;
struct event;
struct evconnlistener;
struct conn;
struct state;
struct metrics;
struct reload;
struct ssl_ctx_st;

/* Counters kept by the server itself (the engine keeps the lock ones). */
struct server_stats {
    uint64_t connections_total; /* accepted, ever */
    uint64_t rejected_clients;  /* refused at maxclients */
    uint64_t commands;          /* requests executed */
    uint64_t auth_failures;     /* AUTH with a wrong password */
    uint64_t noperm;            /* requests refused -NOPERM (users.h) */
    uint64_t protocol_errors;   /* connections closed with -PROTO */
    uint64_t idle_closed;       /* closed after `timeout` idle seconds */
    uint64_t request_timeouts;  /* closed for an incomplete request (request_timeout) */
    uint64_t stalled_clients;   /* dropped for not reading (client_stall_timeout) */
    uint64_t denied_clients;    /* refused by protected mode */
    uint64_t journal_syncs;     /* state file appends waited for (state.c) */
    uint64_t journal_failures;  /* state file writes that failed */
    uint64_t budget_closed_clients; /* closed at client_buffer_budget */
    uint64_t tls_connections;   /* TLS handshakes completed */
    uint64_t tls_handshake_failures; /* TLS connections that ended before
                                   their handshake completed (bad or no
                                   certificate, old protocol, plain text,
                                   a client that left or timed out) */
    struct wait_hist wait_time; /* queued waits that ended in a grant or a
                                   timeout, by how long they waited */
};

struct server {
    struct event_base *base;
    const struct cachify_config *config;
    const struct lock_clock *clock; /* monotonic time for connection deadlines */
    long long maxclients;           /* config's, lowered to fit ulimit -n */
    struct locktable *locks;
    struct proto_limits limits;     /* from config, for every reader */

    struct evconnlistener **listeners;
    size_t nlisteners;
    struct ssl_ctx_st *tls_ctx;     /* new TLS connections' context
                                       (tls.h); NULL without tls_port */
    struct event *listener_retry;   /* re-enables listeners after EMFILE */

    struct conn *conns;             /* doubly linked list of live clients */
    size_t nconns;
    size_t client_bytes;            /* input and unsent output all clients
                                       hold, kept by conn.c as it changes */

    struct event *expiry_timer;     /* armed for locktable_next_deadline() */
    uint64_t timer_armed_for;       /* that deadline, UINT64_MAX when idle */
    uint64_t trim_mark;             /* locks held + waiting at the last
                                       malloc_trim, or their peak since
                                       (server.c, trim_due) */
    uint64_t trim_bytes_mark;       /* the same for client_bytes */

    struct event *sig_int, *sig_term;
    struct event *sig_ignored[3];   /* SIGHUP (reload, or logged when there
                                       is none), SIGUSR1, SIGUSR2 (logged
                                       and ignored) */
    struct reload *reload;          /* SIGHUP's work (reload.c); NULL: none */
    struct user_list *users;        /* config `user` lines (users.h); built
                                       at start and at each reload */
    struct metrics *metrics;        /* the /metrics HTTP side (metrics.c);
                                       NULL when metrics_port is 0 */
    uint64_t started_us;            /* monotonic, for uptime */
    struct server_stats stats;
    struct state *state;            /* the state file (state.c); NULL when
                                       none is configured */
};

/* Builds the server: engine, listeners, signals.  Returns NULL after
 * logging why (bad address, port in use, out of memory, ...). */
struct server *server_new(const struct cachify_config *config);

/* Runs the loop until SIGINT/SIGTERM.  Returns 0 on a clean stop. */
int server_run(struct server *srv);

/* Closes listeners and clients, frees everything.  NULL is a no-op. */
void server_free(struct server *srv);

/* Re-arms the expiry timer if the engine's earliest deadline moved earlier.
 * Call after anything that may add a deadline (acquire, extend, wait). */
void server_arm_timer(struct server *srv);

#endif
