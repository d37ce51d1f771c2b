/* daemon/conn_timer.h - a connection's deadlines: idle, incomplete request,
 * unread replies, and the flush of a closing connection.
 *
 * Owns: one libevent timer per connection and the timestamps it is armed
 * from; the policy of which deadline applies in which state; and what
 * happens when one passes (close, -PROTO, drop, each logged and counted in
 * STATS).  Does not own: the connection's state machine (conn.c calls in
 * here at a few points) or the lock engine's timers (server.c).
 *
 * Which deadline applies (config keys in seconds, 0 = never):
 *   CONN_READY, reading  - `timeout` after the last byte received (idle), and
 *                          `request_timeout` after the first byte of a
 *                          request that is still incomplete (slow loris;
 *                          a TLS handshake not done yet is one too, from
 *                          the accept: closed without a reply; so is a
 *                          TLS record OpenSSL holds part of, from the
 *                          read that brought its first bytes);
 *   paused on output     - `client_stall_timeout` after the pause began
 *                          (a client that does not read its replies);
 *   CONN_WAITING         - none: the wait has its own bound, and a waiting
 *                          client is not idle (its idle clock restarts when
 *                          the wait ends);
 *   CONN_CLOSING         - CLOSE_FLUSH_SECONDS to flush the last reply.
 *
 * The timer is lazy (beanstalkd's prottick idea): a byte received only
 * stores a timestamp; the timer, armed for the earliest deadline known, finds
 * the deadline moved when it fires and re-arms.  So a busy connection costs
 * no timer operation per read, and an idle one exactly one per timeout.
 * Time comes from the server's clock seam (srv->clock), so tests can drive
 * it with a fake clock and call conn_timer_fire themselves.
 */
#ifndef CACHIFY_DAEMON_CONN_TIMER_H
#define CACHIFY_DAEMON_CONN_TIMER_H

#include <stdint.h>

struct conn;
struct event;

/* Seconds a closing connection (after QUIT, -PROTO or request_timeout) may
 * take to flush its last reply before it is dropped: a client that never
 * reads must not keep a closing connection, and its output, forever. */
#define CLOSE_FLUSH_SECONDS 10

struct conn_deadlines {
    struct event *timer; /* armed for the earliest deadline below */
    uint64_t armed_for;  /* that deadline (monotonic us); UINT64_MAX = none */
    uint64_t active_us;  /* last byte received, or the end of a wait */
    uint64_t partial_us; /* first byte of the incomplete request; 0 = none */
    uint64_t paused_us;  /* when processing paused on unread output; 0 = no */
    uint64_t closing_us; /* when CONN_CLOSING began; 0 = not closing */
    int waiting;         /* was in CONN_WAITING at the last update */
};

/* Creates c's timer (c->srv and c->bev set).  Returns 0, or -1 when out of
 * memory. */
int conn_timer_init(struct conn *c);

/* Deletes and frees c's timer; safe after a failed or no init. */
void conn_timer_free(struct conn *c);

/* Bytes arrived from the client: restarts the idle clock.  O(1), no timer
 * operation. */
void conn_timer_touch(struct conn *c);

/* Bytes of a TLS record arrived for c (arg), whole or not (tls.h,
 * tls_watch_reads): starts request_timeout's clock when none runs.  Only
 * notes the time and arms the timer: it runs inside OpenSSL's read. */
void conn_timer_tls_bytes(void *arg);

/* Re-reads c's state (reader pending, output_paused, state) after it may
 * have changed, updates the timestamps and arms the timer when a deadline
 * moved earlier.  Never frees c. */
void conn_timer_update(struct conn *c);

/* Acts on every deadline that has passed (what the timer runs; tests call it
 * directly after moving a fake clock).  May free c. */
void conn_timer_fire(struct conn *c);

#endif
