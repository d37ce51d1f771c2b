/* daemon/conn.h - one client connection: input, output, and its state.
 *
 * Owns: the bufferevent, the request reader, the lock session (SESSION
 * locks and pending waits) and the connection's state machine.  Does not
 * own: what commands mean (commands.c).
 *
 * Flow: bytes arrive in the bufferevent's input, move into the reader, and
 * whole requests are executed in order.  Processing stops while an ACQUIRE
 * waits (later replies must not overtake it), while the unsent output is
 * over OUTPUT_PAUSE_BYTES (a client that does not read must not make us
 * buffer without bound), and after QUIT or a framing error.
 */
#ifndef CACHIFY_DAEMON_CONN_H
#define CACHIFY_DAEMON_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/conn_timer.h"
#include "daemon/locktable.h"
#include "proto/reader.h"

struct server;
struct bufferevent;
struct event;
struct evbuffer;

/* Unsent reply bytes at which we stop executing a client's requests until
 * it reads; 256 KiB is thousands of pipelined replies, enough to keep a
 * fast client busy, small enough for 10,000 clients. */
#define OUTPUT_PAUSE_BYTES (256u * 1024u)

/* Input bytes libevent may read ahead of the reader; reading from the
 * socket stops at this mark, so a flood is left in the kernel's buffers. */
#define INPUT_READAHEAD_BYTES (64u * 1024u)

/* Input a waiting connection may pipeline behind its ACQUIRE.  Reading
 * goes on while it waits, because a client's close only reaches us after
 * the bytes it sent before it: with reading stopped, a waiter that left
 * would stay queued and be granted a lock nobody releases.  Past this bound
 * the waiter is dropped (and so leaves the queue). */
#define WAIT_READAHEAD_BYTES (1024u * 1024u)

enum conn_state {
    CONN_READY,   /* executing requests as they arrive */
    CONN_WAITING, /* an ACQUIRE WAIT is queued; later requests wait behind it */
    CONN_CLOSING, /* QUIT or -PROTO answered: flush the output, then close */
};

struct conn {
    struct server *srv;
    struct conn *prev, *next;     /* in srv->conns */
    struct bufferevent *bev;
    struct proto_reader *reader;
    struct event *resume;         /* deferred restart of processing */
    struct event *flush;          /* writes the replies at the end of this
                                     loop turn (conn.c, conn_flush) */
    enum conn_state state;
    int output_paused;            /* processing stopped for OUTPUT_PAUSE_BYTES */
    int output_failed;            /* a reply could not be buffered (out of
                                     memory): the reply stream is broken, so
                                     the connection is dropped */
    int authenticated;
    int in_process;               /* conn_process is on the stack */
    struct lock_session session;  /* SESSION locks and pending waits */
    char *wait_key;               /* key of the queued ACQUIRE, for -TIMEOUT */
    size_t wait_keylen;
    char peer[64];                /* "ip:port" or "unix", for log lines */
    struct conn_deadlines deadlines; /* idle, request, stall (conn_timer.h) */
};

/* Takes over fd (a freshly accepted socket).  On failure the fd is closed
 * and the failure logged. */
void conn_accept(struct server *srv, int fd, const char *peer);

/* Takes over bev (connected; a socket's for conn_accept, one end of a
 * bufferevent_pair in tests and fuzzing) as a new client.  Returns the
 * connection, or NULL after logging and freeing bev when out of memory. */
struct conn *conn_attach(struct server *srv, struct bufferevent *bev,
                         const char *peer);

/* The output buffer replies are appended to. */
struct evbuffer *conn_output(struct conn *c);

/* Answers the rest of this request cycle, then closes (QUIT, -PROTO). */
void conn_close_after_reply(struct conn *c);

/* Puts c into CONN_WAITING for the ACQUIRE on key (copied). */
int conn_begin_wait(struct conn *c, const char *key, size_t keylen);

/* Back to CONN_READY after an ACQUIRE that did not queue after all. */
void conn_end_wait(struct conn *c);

/* Lock engine callbacks for a waiting connection (ctx is the conn). */
void conn_wait_granted(void *ctx, uint64_t token, void *arg);
void conn_wait_timed_out(void *ctx, void *arg);

/* Closes and frees c at once (session locks released). */
void conn_free(struct conn *c);

#endif
