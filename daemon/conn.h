/* daemon/conn.h - one client connection: input, output, and its state.
 *
 * Owns: the bufferevent (for its buffers; a socket's bytes are read and
 * written by conn.c and, for TLS, conn_tls.c), the request reader, the
 * lock session (SESSION locks and pending waits) and the connection's
 * state machine.  Does not own: what commands mean (commands.c,
 * cmd_lock.c, cmd_server.c), including the late reply of a waiting ACQUIRE
 * (cmd_lock.c, which then calls conn_wait_done).
 *
 * Flow: bytes arrive in the reader (a socket's reads go straight there
 * when nothing is queued) or the bufferevent's input, move into the
 * reader, and whole requests are executed in order.  Processing stops while an ACQUIRE
 * waits (later replies must not overtake it), while the unsent output is
 * over OUTPUT_PAUSE_BYTES (a client that does not read must not make us
 * buffer without bound), and after QUIT or a framing error.
 *
 * Memory: every byte a connection holds in its input (bufferevent and
 * reader) and unsent output is counted in srv->client_bytes as it changes
 * (evbuffer callbacks, O(1) each); a connection that grows the total past
 * client_buffer_budget is answered -LIMIT and closed.
 */
#ifndef CACHIFY_DAEMON_CONN_H
#define CACHIFY_DAEMON_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/conn_timer.h"
#include "engine/locktable.h"
#include "proto/reader.h"

struct server;
struct bufferevent;
struct event;
struct evbuffer;
struct evbuffer_cb_entry;
struct ssl_ctx_st;
struct ssl_st;

/* Unsent reply bytes at which we stop executing a client's requests until
 * it reads; 256 KiB is thousands of pipelined replies, enough to keep a
 * fast client busy, small enough for 10,000 clients. */
#define OUTPUT_PAUSE_BYTES (256u * 1024u)

/* Input bytes libevent may read ahead of the reader; reading from the
 * socket stops at this mark, so a flood is left in the kernel's buffers. */
#define INPUT_READAHEAD_BYTES (64u * 1024u)

/* A waiting connection reads ahead no further than INPUT_READAHEAD_BYTES
 * either: what it pipelines behind its ACQUIRE beyond that stays in the
 * kernel's buffers.  Its close must still be noticed (a waiter that left
 * must leave the queue, not be granted a lock nobody releases), and a
 * close only reaches us behind the bytes sent before it.  So once reading
 * stops at the mark (conn.c, watch_close):
 *  - a separate event watches the socket for the peer's close (EV_CLOSED,
 *    epoll's EPOLLRDHUP), which arrives as long as what the client sent
 *    fits in our socket's receive queue;
 *  - every WAIT_PROBE_MS the socket is looked at directly: a reset (which
 *    epoll reports as an error that libevent 2.1 does not pass to an
 *    EV_CLOSED event) ends the wait, and so does a receive queue holding
 *    WAIT_KERNEL_BYTES or more: the client is pushing more than we take,
 *    its close could be stuck behind our closed TCP window, so it is
 *    dropped (80 KiB pipelined behind a wait, where the daemon used to
 *    read on to 1 MiB per waiter).  16 KiB because a loopback socket with
 *    Linux's default tcp_rmem was seen closing its window with anywhere
 *    from 59 to 111 KiB queued: the drop must come first.
 * Without EV_CLOSED (a backend without EV_FEATURE_EARLY_CLOSE, or a
 * bufferevent without a socket) a waiter that reaches the mark is dropped
 * at once, so it leaves the queue. */
#define WAIT_PROBE_MS 1000
#define WAIT_KERNEL_BYTES (16 * 1024)

enum conn_state {
    CONN_READY,   /* executing requests as they arrive */
    CONN_WAITING, /* an ACQUIRE WAIT is queued; later requests wait behind it */
    CONN_CLOSING, /* QUIT or -PROTO answered: flush the output, then close */
};

/* Who moves a connection's bytes between the socket and its buffers. */
enum conn_io {
    CONN_IO_SOCKET,      /* conn.c, on its own read event (c->rd, one read
                            per event) and at its flush (conn_flush, one
                            write per loop turn): in clear on a plain
                            socket, through OpenSSL on a TLS one (c->ssl,
                            conn_tls.c) */
    CONN_IO_BUFFEREVENT, /* libevent's bufferevent does, both ways, with its
                            write event on throughout: a bufferevent pair
                            (tests, fuzzing) */
};

struct conn {
    struct server *srv;
    struct conn *prev, *next;     /* in srv->conns */
    struct bufferevent *bev;
    int fd;                       /* bev's socket; -1 for a pair */
    enum conn_io io;
    struct ssl_st *ssl;           /* a TLS connection's session (tls.h,
                                     conn_tls.h); NULL: not TLS */
    int handshaking;              /* TLS: the handshake is not done yet;
                                     it counts as an incomplete request
                                     (conn_timer.h) */
    struct event *wr;             /* TLS: the write event, armed only while
                                     OpenSSL waits for room (conn_tls.c) */
    int tls_wants;                /* TLS: CONN_TLS_* (conn_tls.h) */
    int tls_more;                 /* TLS: OpenSSL may hold bytes no
                                     readable event will announce */
    int tls_end;                  /* TLS: the end (enum tls_status) met
                                     behind the last bytes read, reported
                                     at the next read; 0 = none */
    size_t tls_retry;             /* TLS: length of an SSL_write to repeat */
    struct evbuffer *in, *out;    /* bev's input and output */
    int writing;                  /* output waits for the write event (bev's,
                                     or c->wr for TLS), not for conn_flush
                                     (conn.c, set_writing) */
    struct proto_reader *reader;
    struct event *resume;         /* deferred restart of processing */
    struct event *flush;          /* writes the replies at the end of this
                                     loop turn (conn.c, conn_flush) */
    struct event *rd;             /* CONN_IO_SOCKET's read event (conn.c,
                                     on_readable); NULL otherwise */
    int reading;                  /* rd is added */
    int read_eof;                 /* the socket said EOF or failed */
    int lingering;                /* rd carries the linger timeout */
    struct event *close_watch;    /* EV_CLOSED watch of a waiter whose
                                     reading stopped at the mark (NULL when
                                     not armed) */
    struct evbuffer_cb_entry *in_cb, *out_cb; /* count the buffers into
                                     srv->client_bytes */
    size_t reader_counted;        /* reader bytes counted there */
    enum conn_state state;
    int output_paused;            /* processing stopped for OUTPUT_PAUSE_BYTES */
    int output_failed;            /* a reply could not be buffered (out of
                                     memory): the reply stream is broken, so
                                     the connection is dropped */
    int authenticated;
    int in_process;               /* conn_process is on the stack */
    struct lock_session session;  /* SESSION locks and pending waits */
    uint64_t wait_started_us;     /* monotonic start of the ACQUIRE WAIT
                                     (for the wait_time histogram) */
    int wait_pool;                /* the queued wait is a POOL_ACQUIRE's
                                     (its -TIMEOUT names a full pool) */
    char peer[64];                /* "ip:port" or "unix", for log lines */
    uint64_t id;                  /* CLIENT ID: 1, 2, ... in accept order */
    char *name;                   /* CLIENT SETNAME; NULL = none */
    char *user;                   /* AUTH'ed as this named user (looked up
                                     in srv->users at each request, so a
                                     reload applies at once); NULL: the
                                     default user */
    struct conn_deadlines deadlines; /* idle, request, stall (conn_timer.h) */
};

/* Takes over fd (a freshly accepted socket): a plain client, or with tls
 * set (the server's context, tls.h) one that starts with a TLS handshake.
 * On failure the fd is closed and the failure logged. */
void conn_accept(struct server *srv, int fd, const char *peer,
                 struct ssl_ctx_st *tls);

/* Takes over bev (connected; a socket's for conn_accept, one end of a
 * bufferevent_pair in tests and fuzzing) as a new client.  Returns the
 * connection, or NULL after logging and freeing bev when out of memory. */
struct conn *conn_attach(struct server *srv, struct bufferevent *bev,
                         const char *peer);

/* The output buffer replies are appended to. */
struct evbuffer *conn_output(struct conn *c);

/* Answers the rest of this request cycle, then closes (QUIT, -PROTO). */
void conn_close_after_reply(struct conn *c);

/* Puts c into CONN_WAITING: nothing behind its ACQUIRE runs until the
 * wait ends (its key stays with the engine, which hands it back with a
 * timeout). */
void conn_begin_wait(struct conn *c);

/* Back to CONN_READY after an ACQUIRE that did not queue after all. */
void conn_end_wait(struct conn *c);

/* Ends c's wait once its late reply is written (cmd_lock.c, from inside
 * the lock engine): back to CONN_READY, and the requests behind the
 * ACQUIRE run from the loop. */
void conn_wait_done(struct conn *c);

/* Closes and frees c at once (session locks released). */
void conn_free(struct conn *c);

#endif
