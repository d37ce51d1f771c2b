/* daemon/conn.c - one client connection (see conn.h for the flow).
 *
 * Closing is done in two steps so a client always gets its last reply
 * (-PROTO, QUIT's +OK, -LIMIT): CONN_CLOSING first flushes the output; then
 * the socket is shut down for writing and what the client still sends is
 * read and dropped for up to LINGER_SECONDS, because close() on a socket
 * with unread input sends a reset that can destroy the reply in flight.
 * The connection's locks and waits are released at the first step.
 *
 * A waiting connection's input stops at INPUT_READAHEAD_BYTES like any
 * other's; conn_watch.c then keeps an eye on its socket so that a waiter
 * that leaves still leaves the queue (conn.h, WAIT_PROBE_MS).
 *
 * Reading (a socket's): one read per readable event, straight into the
 * request reader when nothing is queued before it, with the rest of what
 * the kernel hands over (up to READ_CHUNK) landing in the input evbuffer;
 * see read_socket.  libevent's bufferevent read path would ask FIONREAD
 * first, one ioctl per request.  A bufferevent without a socket (a pair,
 * in tests and fuzzing) is still read by libevent (CONN_IO_BUFFEREVENT,
 * conn.h); both paths feed on_input.
 *
 * TLS: a TLS connection is a socket connection whose reads and writes go
 * through OpenSSL (conn_tls.c) at the same points: its read event, its
 * flush.  The handshake runs from the read event before any request.
 * Until it is done the connection counts as one with an incomplete
 * request (conn_timer.c), so request_timeout (and timeout) close a
 * client that never finishes it.  After it, a record that arrives in
 * part does too: OpenSSL returns nothing until a record decrypts whole,
 * so the socket's reads are watched (tls_watch_reads) to start the clock
 * at its first bytes.
 *
 * Buffer accounting (client_buffer_budget): evbuffer callbacks on the
 * input and output add each change to srv->client_bytes as it happens,
 * and conn_account_reader adds the reader's pending bytes after it changes;
 * conn_free takes the rest off.  So the total costs O(1) per change and
 * never a walk over the clients.
 */
#include "daemon/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "alloc.h"
#include "daemon/commands.h"
#include "daemon/conn_budget.h"
#include "daemon/conn_tls.h"
#include "daemon/conn_watch.h"
#include "daemon/users.h"
#include "daemon/log.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "daemon/state.h"
#include "daemon/tls.h"

/* How long a closing connection may keep sending before we stop reading. */
#define LINGER_SECONDS 2

/* Most bytes one read takes beyond what goes straight into the reader:
 * as Redis's 16 KiB query-buffer reads, big enough for a deep pipeline
 * batch from one client in one call, small enough for the stack of the one
 * loop thread (read_socket).  INPUT_READAHEAD_BYTES still bounds what the
 * input evbuffer may hold. */
#define READ_CHUNK (16u * 1024u)

static int conn_process(struct conn *c);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_readable(evutil_socket_t fd, short what, void *arg);
static int written(struct conn *c);
static void conn_ended(struct conn *c, short what);

struct evbuffer *conn_output(struct conn *c)
{
    return c->out;
}

static struct evbuffer *conn_input(struct conn *c)
{
    return c->in;
}

/* Turns the write event (the bufferevent's, or a TLS connection's own)
 * on or off, remembering which (asking the bufferevent takes its lock,
 * several times per request). */
static void set_writing(struct conn *c, int on)
{
    if (c->ssl) {
        c->writing = on;
        conn_tls_sync(c);
        return;
    }
    if (on)
        bufferevent_enable(c->bev, EV_WRITE);
    else
        bufferevent_disable(c->bev, EV_WRITE);
    c->writing = on;
}

/* 1 when c's socket should be read now: not once it said EOF, not while
 * processing is paused for its output (a client that does not read must
 * not make us buffer), not once the input evbuffer holds
 * INPUT_READAHEAD_BYTES (a flood stays in the kernel's buffers); a closing
 * connection reads on, to drop what it gets. */
static int wants_input(struct conn *c)
{
    if (c->read_eof || c->output_paused)
        return 0;
    return c->state == CONN_CLOSING ||
           evbuffer_get_length(conn_input(c)) < INPUT_READAHEAD_BYTES;
}

/* Adds or deletes the socket's read event as wants_input says (a no-op
 * when it already agrees, so no epoll_ctl per request).  A pair is read by
 * libevent, whose watermark keeps the read-ahead mark: see set_paused. */
static void sync_reading(struct conn *c)
{
    if (!c->rd || c->lingering)
        return;
    int want = wants_input(c);
    if (c->ssl) {
        /* A TLS read waits for room, not bytes; a TLS write may wait for
         * bytes.  What OpenSSL holds is read now (conn_tls.c). */
        if (want && c->tls_more)
            event_active(c->rd, EV_READ, 1);
        want = (want && !(c->tls_wants & CONN_TLS_READ_WANTS_WRITE)) ||
               (c->tls_wants & CONN_TLS_WRITE_WANTS_READ);
    }
    if (want == c->reading)
        return;
    /* A failed add (epoll_ctl out of memory) is retried at the next
     * turn; the idle timeout ends a connection that never gets one. */
    if ((want ? event_add(c->rd, NULL) : event_del(c->rd)) == 0)
        c->reading = want;
}

/* Pauses or resumes c's processing (and reading) for its output. */
static void set_paused(struct conn *c, int paused)
{
    c->output_paused = paused;
    if (c->io == CONN_IO_BUFFEREVENT) {
        if (paused)
            bufferevent_disable(c->bev, EV_READ);
        else
            bufferevent_enable(c->bev, EV_READ);
    }
    sync_reading(c);
}

void conn_free(struct conn *c)
{
    struct server *srv = c->srv;
    locktable_session_end(srv->locks, &c->session);
    /* Ending the session may hand its slots and locks to waiters, long
     * ones journaled: on file before any of those replies can leave. */
    state_commit(srv);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    log_msg(LOG_DEBUG, "client %s closed", c->peer);
    conn_unwatch_close(c);
    /* What the buffers still hold leaves the total with them. */
    if (c->in_cb)
        evbuffer_remove_cb_entry(conn_input(c), c->in_cb);
    if (c->out_cb)
        evbuffer_remove_cb_entry(conn_output(c), c->out_cb);
    if (c->in_cb)
        srv->client_bytes -= evbuffer_get_length(conn_input(c));
    if (c->out_cb)
        srv->client_bytes -= evbuffer_get_length(conn_output(c));
    srv->client_bytes -= c->reader_counted;
    if (c->resume)
        event_free(c->resume);
    if (c->flush)
        event_free(c->flush);
    if (c->rd)
        event_free(c->rd); /* before its fd closes with the bufferevent */
    if (c->handshaking)
        srv->stats.tls_handshake_failures++;
    conn_tls_free(c); /* likewise */
    conn_timer_free(c);
    proto_reader_free(c->reader);
    bufferevent_free(c->bev);
    cfy_free(c->name);
    cfy_free(c->user);
    cfy_free(c);
    /* Last, once the buffers left client_bytes: handoffs may have set new
     * deadlines, and the bytes gone may make a malloc_trim due. */
    server_arm_timer(srv);
}

/* Second closing step: output is flushed; release the session, half-close
 * and drain until EOF or the linger timeout. */
static void conn_linger(struct conn *c)
{
    locktable_session_end(c->srv->locks, &c->session);
    state_commit(c->srv); /* as conn_free */
    server_arm_timer(c->srv);
    if (c->ssl) {
        /* The end of the TLS stream, then TCP's; nothing more is written
         * (or read) through OpenSSL: lingering reads the socket raw. */
        c->tls_wants = 0;
        set_writing(c, 0);
        tls_close_notify(c->ssl);
    }
    shutdown(c->fd, SHUT_WR);
    /* Nothing is written from here on, so no write callback (which would
     * linger again); then the same end-of-data for a bufferevent without a
     * socket (the test harness's pairs), a no-op on sockets. */
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_flush(c->bev, EV_WRITE, BEV_FINISHED);
    struct timeval linger = { LINGER_SECONDS, 0 };
    evbuffer_drain(conn_input(c), evbuffer_get_length(conn_input(c)));
    if (c->rd) {
        /* The read event, with the linger timeout (renewed by each read,
         * as a bufferevent's read timeout is); on_readable frees c at the
         * timeout, the EOF or an error. */
        c->lingering = 1;
        event_del(c->rd);
        if (event_add(c->rd, &linger) != 0) {
            /* Nothing would ever free c: its timer does (CLOSING with an
             * empty output, conn_timer.c). */
            log_msg(LOG_DEBUG, "client %s: cannot linger", c->peer);
        }
        return;
    }
    bufferevent_set_timeouts(c->bev, &linger, NULL);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
}

void conn_close_after_reply(struct conn *c)
{
    c->state = CONN_CLOSING;
    /* The write callback must fire when the output is empty, not at the
     * pause mark. */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    set_writing(c, 1); /* see conn_flush */
    conn_timer_update(c); /* the flush gets CLOSE_FLUSH_SECONDS */
}

void conn_begin_wait(struct conn *c)
{
    c->state = CONN_WAITING;
}

void conn_end_wait(struct conn *c)
{
    conn_unwatch_close(c); /* reading resumes as the input is consumed */
    c->state = CONN_READY;
}

void conn_wait_done(struct conn *c)
{
    conn_end_wait(c);
    /* conn_process runs from the loop rather than from inside the lock
     * engine's callback, which must not re-enter the engine. */
    event_active(c->resume, EV_TIMEOUT, 1);
}

/* Replies leave through conn_flush, in one writev (a TLS connection: its
 * SSL_writes) per connection and loop turn, while the socket's write event
 * is off (the usual case): arming that event for every reply would cost
 * two epoll_ctl calls and a loop turn per request.  What the socket does
 * not take (or an error) turns the write event on, and libevent (for TLS,
 * on_writable) finishes the job: on_write then sees the watermarks and
 * turns it off again once the output is empty.  A bufferevent without a
 * socket (a pair, in tests) keeps it on throughout.
 *
 * The write is not made at once but from c->flush, activated here: it runs
 * after the read callbacks already due in this loop turn, as Redis writes
 * its replies before it sleeps.  A client reading many connections (a load
 * generator, a pool) then finds many replies per wake-up instead of one. */
static int flush_due(struct conn *c)
{
    return c->io == CONN_IO_SOCKET && !c->writing &&
           evbuffer_get_length(c->out) > 0;
}

/* A TLS connection's output through OpenSSL, after the group commit (no
 * reply before the leases it promises).  Returns 1 when the stream failed
 * and c was freed. */
static int tls_send(struct conn *c)
{
    state_commit(c->srv);
    if (conn_tls_write(c) >= 0) {
        sync_reading(c); /* a write that wants a read (conn_tls.h) */
        return 0;
    }
    log_msg(LOG_DEBUG, "client %s dropped: its TLS stream failed", c->peer);
    conn_free(c);
    return 1;
}

static void conn_flush(struct conn *c)
{
    struct evbuffer *out = conn_output(c);
    if (!flush_due(c))
        return;
    if (c->ssl) {
        if (tls_send(c))
            return;
    } else {
        state_commit(c->srv); /* no reply before the leases it promises */
        /* A socket bufferevent freezes its output's start so that only it
         * drains it; thaw it for this write, as its own write callback
         * does. */
        evbuffer_unfreeze(out, 1);
        evbuffer_write(out, c->fd);
        evbuffer_freeze(out, 1);
    }
    size_t left = evbuffer_get_length(out);
    if (left > 0)
        set_writing(c, 1);
    /* Processing paused for a big output (a 1 MiB GET) that this write
     * sent at once: no write callback will come to resume it, so resume
     * here, from the loop as a wait's end does. */
    if (c->output_paused && left < OUTPUT_PAUSE_BYTES / 2) {
        set_paused(c, 0);
        event_active(c->resume, EV_TIMEOUT, 1);
    }
}

/* Executes whole requests while the connection is ready and its output is
 * under the pause mark.  Returns 1 when c was dropped (freed), else 0. */
/* A connection's turn ends once this many long leases wait for their
 * fdatasync: a pipeline of FOREVER grants is committed in batches and the
 * rest of it runs after the other clients due now. */
#define TURN_MAX_UNCOMMITTED 256

static int conn_process_turn(struct conn *c);

/* One turn of c, then the group commit of the long leases it (or the
 * handoffs it caused) wrote: before this callback returns, so before any of
 * its replies can be written to a socket (conn_flush and libevent's own
 * write callbacks run later).  Returns 1 when c was freed. */
static int conn_process(struct conn *c)
{
    struct server *srv = c->srv;
    int freed = conn_process_turn(c);
    state_commit(srv);
    return freed;
}

static int conn_process_turn(struct conn *c)
{
    struct server *srv = c->srv;
    struct evbuffer *in = conn_input(c);
    struct evbuffer *out = conn_output(c);

    if (c->in_process)
        return 0;
    c->in_process = 1;
    /* A wait's late reply (cmd_lock.c, before conn_wait_done) may have
     * failed. */
    if (conn_drop_on_output(c))
        return 1;
    while (c->state == CONN_READY) {
        if (evbuffer_get_length(out) >= OUTPUT_PAUSE_BYTES) {
            set_paused(c, 1);
            break;
        }
        struct proto_request req;
        enum proto_status st = proto_reader_next(c->reader, &req);
        conn_account_reader(c);
        if (st == PROTO_OK) {
            srv->stats.commands++;
            /* The next request gets its own request_timeout. */
            c->deadlines.partial_us = 0;
            commands_execute(c, &req);
            if (conn_drop_on_output(c))
                return 1;
            if (conn_over_budget(c)) /* its replies grew the buffers */
                conn_budget_close(c);
            /* Enough long leases wait for the disk: this turn ends, they
             * are committed, and the rest of the pipeline runs after the
             * other clients due now, so it cannot hold up the loop. */
            if (state_uncommitted(srv) >= TURN_MAX_UNCOMMITTED &&
                c->state == CONN_READY) {
                /* A zero timeout, not event_active: libevent runs what is
                 * activated during a loop turn in that same turn, while a
                 * timer waits for the next poll of the sockets. */
                static const struct timeval next_turn = { 0, 0 };
                event_add(c->resume, &next_turn);
                break;
            }
            continue;
        }
        if (st == PROTO_ERROR) {
            srv->stats.protocol_errors++;
            log_msg(LOG_DEBUG, "client %s: protocol error: %s", c->peer,
                    proto_reader_error(c->reader));
            reply_error(c, "PROTO", "%s", proto_reader_error(c->reader));
            conn_close_after_reply(c);
            break;
        }
        size_t avail;
        char *space = proto_reader_space(c->reader, &avail);
        if (!space) {
            reply_error(c, "ERR", "out of memory");
            conn_close_after_reply(c);
            break;
        }
        int n = avail ? evbuffer_remove(in, space, avail) : 0;
        if (n <= 0)
            break;
        proto_reader_commit(c->reader, (size_t)n);
        conn_account_reader(c);
    }
    c->in_process = 0;
    if (c->read_eof && !c->output_paused &&
        !event_pending(c->resume, EV_TIMEOUT, NULL)) {
        /* The client half-closed and every whole request it sent has run
         * (no later turn is due, none waits for the output to drain):
         * its replies are owed, then it is closed.  One that started a
         * wait ends it: nobody is left to hold what it would be granted. */
        if (c->state == CONN_WAITING) {
            conn_free(c);
            return 1;
        }
        if (c->state == CONN_READY)
            conn_close_after_reply(c);
    }
    sync_reading(c); /* the input drained below the read-ahead mark */
    server_arm_timer(srv);
    conn_timer_update(c);
    if (flush_due(c))
        event_active(c->flush, EV_TIMEOUT, 1);
    if (c->state == CONN_CLOSING && evbuffer_get_length(out) == 0)
        conn_linger(c);
    if (c->state == CONN_WAITING)
        return conn_watch_close(c);
    return 0;
}

/* New input arrived for c (not closing): in its reader, its input
 * evbuffer, or both.  Shared by a socket's reads and a pair's. */
static void on_input(struct conn *c)
{
    conn_timer_touch(c);
    if (conn_over_budget(c)) {
        conn_budget_close(c); /* this read grew the buffers past the budget */
    } else if (c->state == CONN_WAITING && !conn_can_watch_close(c) &&
               evbuffer_get_length(conn_input(c)) >=
                   INPUT_READAHEAD_BYTES) {
        /* Reading stops here and nothing else would see the client
         * leave (conn.h): drop it, so it leaves the queue. */
        log_msg(LOG_WARNING, "client %s dropped: pipelined %u bytes behind a "
                "waiting ACQUIRE", c->peer, INPUT_READAHEAD_BYTES);
        conn_free(c);
        return;
    }
    conn_process(c);
}

/* A pair's input, read by libevent. */
static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->state == CONN_CLOSING) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    on_input(c);
}

/* One read from c's socket, as Redis reads into its query buffer: when c
 * is ready and nothing waits in the input evbuffer, straight into the
 * reader's free room (the usual request is read, parsed and answered
 * without a copy or an allocation); up to READ_CHUNK more into a stack
 * buffer and then the input evbuffer, never past INPUT_READAHEAD_BYTES
 * there.  One readv either way, sized without asking the kernel first.
 *
 * The evbuffer gets the overflow with evbuffer_add, which allocates a
 * chain the size of the data, rather than by reading into
 * evbuffer_reserve_space: a reservation must be made before the read,
 * so it is READ_CHUNK whatever arrives, and evbuffer keeps an unused one
 * allocated with the buffer (16 KiB for every idle connection) or, once
 * drained, frees and allocates it again per read.
 *
 * A closing connection's bytes are dropped.  Returns readv's result; when
 * the overflow cannot be buffered (out of memory) c is answered -ERR and
 * closed, as when the reader cannot grow. */
static ssize_t read_socket(struct conn *c)
{
    char chunk[READ_CHUNK];
    struct evbuffer *in = conn_input(c);
    size_t queued = evbuffer_get_length(in), direct = 0, room = READ_CHUNK;
    struct iovec iov[2];
    int niov = 0;

    if (c->state == CONN_READY && queued == 0 && c->reader) {
        char *space = proto_reader_space(c->reader, &direct);
        if (space && direct > 0) {
            iov[niov].iov_base = space;
            iov[niov++].iov_len = direct;
        } else {
            direct = 0; /* out of memory: conn_process_turn answers it */
        }
    }
    if (c->state != CONN_CLOSING)
        room = queued >= INPUT_READAHEAD_BYTES ? 0
               : INPUT_READAHEAD_BYTES - queued < READ_CHUNK
                   ? INPUT_READAHEAD_BYTES - queued : READ_CHUNK;
    if (room > 0) {
        iov[niov].iov_base = chunk;
        iov[niov++].iov_len = room;
    }
    if (niov == 0) { /* at the mark: on_readable stops the event */
        errno = EAGAIN;
        return -1;
    }
    /* Lingering, TLS is over (close_notify sent): bytes are dropped raw. */
    ssize_t got = c->ssl && !c->lingering ? conn_tls_read(c, iov, niov)
                                          : readv(c->fd, iov, niov);
    if (got <= 0 || c->state == CONN_CLOSING)
        return got;
    size_t rest = (size_t)got;
    if (direct > 0) {
        size_t n = rest < direct ? rest : direct;
        proto_reader_commit(c->reader, n);
        conn_account_reader(c);
        rest -= n;
    }
    if (rest > 0 && evbuffer_add(in, chunk, rest) != 0) {
        reply_error(c, "ERR", "out of memory");
        conn_close_after_reply(c);
    }
    return got;
}

/* The socket's read event: new bytes, the end of the stream, or (while
 * lingering) LINGER_SECONDS without either. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        conn_free(c); /* lingered long enough */
        return;
    }
    if (c->tls_wants & CONN_TLS_WRITE_WANTS_READ) {
        /* The TLS write waiting for this goes first; reading resumes at
         * the next event, or at once for what that write's reads left
         * in OpenSSL (no event would announce it). */
        c->tls_wants &= ~CONN_TLS_WRITE_WANTS_READ;
        if (!tls_send(c) && !written(c)) {
            c->tls_more = tls_buffered(c->ssl);
            sync_reading(c);
        }
        return;
    }
    ssize_t got = read_socket(c);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        /* Nothing to take, or no room: a level-triggered event left on
         * at the mark would fire again at once. */
        sync_reading(c);
        return;
    }
    if (got <= 0) {
        /* As a bufferevent does: reading ends, then the event callback. */
        c->read_eof = 1;
        sync_reading(c);
        conn_ended(c, (got == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR) |
                          BEV_EVENT_READING);
        return;
    }
    if (c->state == CONN_CLOSING)
        return; /* dropped (or the reply to an overflow it could not keep) */
    sync_reading(c); /* stops at the read-ahead mark */
    on_input(c);
}

/* The write event sent what it could of c's output: lingers once a
 * closing connection's is out, gives the writing back to conn_flush once
 * it is empty, resumes processing paused for it.  Returns 1 when c was
 * freed. */
static int written(struct conn *c)
{
    size_t pending = evbuffer_get_length(conn_output(c));
    if (c->state == CONN_CLOSING) {
        if (pending == 0)
            conn_linger(c);
        return 0;
    }
    if (pending == 0 && c->io == CONN_IO_SOCKET)
        set_writing(c, 0); /* conn_flush writes from here */
    if (c->output_paused && pending < OUTPUT_PAUSE_BYTES / 2) {
        set_paused(c, 0);
        return conn_process(c);
    }
    return 0;
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    written(arg);
}

/* A TLS connection's write event (armed only while OpenSSL waits for
 * room, conn_tls_sync): the read or handshake that waited for it, or the
 * rest of the output. */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->tls_wants & CONN_TLS_READ_WANTS_WRITE) {
        c->tls_wants &= ~CONN_TLS_READ_WANTS_WRITE;
        conn_tls_sync(c);
        (void)what;
        on_readable(fd, EV_READ, c);
        return;
    }
    if (!tls_send(c))
        written(c);
}

/* c's input ended (EOF) or its socket failed (what: BEV_EVENT_*). */
static void conn_ended(struct conn *c, short what)
{
    if ((what & BEV_EVENT_EOF) && c->state == CONN_READY) {
        /* The client half-closed after its last requests (nc -N does):
         * whole requests it sent before the end still run, over as many
         * turns as they take (a turn cut for the disk, or paused for the
         * output, goes on later), and their replies are owed; the end of
         * the last turn closes c (conn_process_turn, read_eof). */
        c->read_eof = 1;
        conn_process(c);
        return;
    }
    conn_free(c);
}

/* A socket bufferevent's write failed, or a pair's end was reached. */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn_ended(arg, what);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_process(arg);
}

static struct conn *attach(struct server *srv, struct bufferevent *bev,
                           const char *peer, struct ssl_st *ssl);

void conn_accept(struct server *srv, int fd, const char *peer,
                 struct ssl_ctx_st *tls)
{
    /* A TLS connection's socket bufferevent only holds its buffers, as a
     * plain one's does: its bytes go through ssl (conn_tls.c). */
    struct ssl_st *ssl = tls ? tls_session_new(tls, fd) : NULL;
    struct bufferevent *bev =
        tls && !ssl ? NULL
                    : bufferevent_socket_new(srv->base, fd,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        log_msg(LOG_WARNING, "out of memory accepting %s", peer);
        tls_session_free(ssl);
        close(fd);
        return;
    }
    attach(srv, bev, peer, ssl);
}

struct conn *conn_attach(struct server *srv, struct bufferevent *bev,
                         const char *peer)
{
    return attach(srv, bev, peer, NULL);
}

/* conn_attach, with ssl (owned from here on) for a TLS socket. */
static struct conn *attach(struct server *srv, struct bufferevent *bev,
                           const char *peer, struct ssl_st *ssl)
{
    struct conn *c = cfy_calloc(1, sizeof(*c));
    if (!c) {
        log_msg(LOG_WARNING, "out of memory accepting %s", peer);
        tls_session_free(ssl);
        bufferevent_free(bev);
        return NULL;
    }
    c->srv = srv;
    c->bev = bev;
    c->fd = bufferevent_getfd(bev);
    c->ssl = ssl;
    c->handshaking = ssl != NULL;
    c->io = c->fd >= 0 ? CONN_IO_SOCKET : CONN_IO_BUFFEREVENT;
    c->in = bufferevent_get_input(bev);
    c->out = bufferevent_get_output(bev);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->reader = proto_reader_new(&srv->limits);
    c->resume = event_new(srv->base, -1, 0, on_resume, c);
    c->flush = event_new(srv->base, -1, 0, on_flush, c);
    if (c->io == CONN_IO_SOCKET)
        c->rd = event_new(srv->base, c->fd, EV_READ | EV_PERSIST,
                          on_readable, c);
    c->in_cb = evbuffer_add_cb(c->in, conn_buffer_changed, srv);
    c->out_cb = evbuffer_add_cb(c->out, conn_buffer_changed, srv);
    if (!c->reader || !c->resume || !c->flush ||
        (c->io == CONN_IO_SOCKET && !c->rd) ||
        !c->in_cb || !c->out_cb || conn_timer_init(c) != 0 ||
        (ssl && conn_tls_init(c, on_writable) != 0)) {
        log_msg(LOG_WARNING, "out of memory accepting %s", peer);
        if (c->in_cb)
            evbuffer_remove_cb_entry(c->in, c->in_cb);
        if (c->out_cb)
            evbuffer_remove_cb_entry(c->out, c->out_cb);
        conn_tls_free(c); /* before the socket closes */
        bufferevent_free(c->bev);
        if (c->resume)
            event_free(c->resume);
        if (c->flush)
            event_free(c->flush);
        if (c->rd)
            event_free(c->rd);
        conn_timer_free(c);
        proto_reader_free(c->reader);
        cfy_free(c);
        return NULL;
    }
    /* Counted from here on (conn_free takes off what is left). */
    srv->client_bytes += evbuffer_get_length(c->in) +
                         evbuffer_get_length(c->out);
    /* With named users defined, everyone authenticates (the default user
     * too, with requirepass, if set). */
    c->authenticated = srv->config->requirepass[0] == '\0' &&
                       srv->users->n == 0;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_PAUSE_BYTES / 2, 0);
    if (c->io == CONN_IO_SOCKET) {
        /* A socket is read by on_readable, never by the bufferevent (whose
         * reading stays off), so the input's end is ours to append to.
         * Its replies go out through conn_flush (write event off; a new
         * bufferevent has it on, and a TLS one never writes). */
        evbuffer_unfreeze(c->in, 0);
        bufferevent_disable(c->bev, EV_WRITE);
        set_writing(c, 0);
    } else {
        /* libevent 2.1 crashes here when its own allocation of the
         * watermark callback fails (it uses the NULL it got), and the call
         * returns no error to check: nothing to handle, so injected
         * failures (tests only, alloc.h) are kept out of it.  No effect in
         * production. */
        alloc_fail_hold(1);
        bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_READAHEAD_BYTES);
        alloc_fail_hold(0);
        bufferevent_enable(c->bev, EV_READ);
        set_writing(c, 1); /* a pair: on throughout */
    }

    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->stats.connections_total++;
    c->id = srv->stats.connections_total;
    log_msg(LOG_DEBUG, "client %s connected", c->peer);
    sync_reading(c);
    conn_timer_update(c);
    return c;
}
