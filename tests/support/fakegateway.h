/* tests/support/fakegateway.h - fake etcd gateways and dead members for
 * the suites that test the etcd:// backend against what a real cluster
 * will not do on demand.
 *
 * Owns: loopback sockets that stand for a member refusing connections
 * (bound, not listening) or never answering (listening, nobody accepts),
 * and a fake gateway: a forked child that answers every HTTP request on
 * such a socket with what a pick function chooses (or one fixed answer),
 * until fg_stop kills it; and the 200 answer most picks build.  One fake
 * gateway at a time per process.  Then the gateways themselves, the picks
 * tests/integration/test_client_etcd.c runs against: each answers as etcd
 * would not (junk, missing ranges) or would only after a failure (a lost
 * answer, a slow grant), and what one saw that its test must check crosses
 * the fork in memory mapped shared (fg_seen).  Does not own: the handles
 * opened on a gateway and what a test asserts (the suite), real members
 * (etcdcluster.h).  No Check here: failures are return values.
 */
#ifndef CACHIFY_TESTS_FAKEGATEWAY_H
#define CACHIFY_TESTS_FAKEGATEWAY_H

#include <stddef.h>

/* The answer of a fake gateway to one request (NUL-terminated, at most
 * 4 KiB of it): *reply and *n, or *reply NULL to close without one.
 * Runs in the gateway's child. */
typedef void (*fg_pick)(const char *request, const char **reply,
                        size_t *n);

/* A loopback socket bound and, when do_listen, with a backlog: the kernel
 * completes connections nobody accepts (a member that does not answer).
 * Not listening: a port that refuses.  Returns the fd (the caller closes
 * it) and *port, or -1. */
int fg_socket(int do_listen, int *port);

/* Serves every connection on the listening fd with pick's answer, in a
 * forked child, until fg_stop.  0, or -1 when fork failed. */
int fg_serve_by(int fd, fg_pick pick);

/* Serves reply (raw HTTP, its length n; it must stay valid until the
 * fork, which is done before this returns) to every request.  As
 * fg_serve_by. */
int fg_serve(int fd, const char *reply, size_t n);

/* Kills and reaps the running fake gateway, if any. */
void fg_stop(void);

/* An HTTP 200 answer with body into buf[cap]; returns buf. */
const char *fg_http_ok(char *buf, size_t cap, const char *body);

/* ---- the gateways: picks that answer as etcd would not, or would only
 * after a failure, each for the test in test_client_etcd.c that names it */

/* A gateway that grants leases and answers "{}" to everything but a lock
 * wait, whose connection it closes at once: a cluster that cannot hold a
 * wait. */
void fg_no_waits(const char *request, const char **reply, size_t *n);

/* As fg_no_waits, and a revoke's connection is closed too: a cluster
 * that went away during the wait. */
void fg_no_waits_no_revokes(const char *request, const char **reply,
                            size_t *n);

/* A gateway whose pool answers are impossible: a count below one right
 * after our entry was put (which would read as a free slot), a negative
 * count.  Refused as not etcd's, never a slot. */
void fg_pool_junk(const char *request, const char **reply, size_t *n);

/* A gateway whose pool reads lack a range: a poll answer with our entry
 * but not the entries before it (fg_odd_kvs: or with them as no array), a
 * slot lookup with the slot but not the entries before it.  Neither is
 * etcd's (a range read answers a range, "kvs" left out when empty), and
 * neither may be read as "nobody before us": that would grant a slot, or
 * revoke the lease of an entry that may be queued.  The join answers that
 * the pool of 2 is full (our entry, revision 50, the third). */
extern int fg_odd_kvs;
void fg_pool_odd(const char *request, const char **reply, size_t *n);

/* A gateway whose pool entries hold "Mh==": not canonical base64 (a lax
 * decoder reads it as "2", the text of "Mg=="), which etcd never sends.
 * The join fails on such an entry; every read (a pool's size, a slot's
 * find, IS_LOCKED's count) answers one. */
void fg_pool_not_base64(const char *request, const char **reply,
                        size_t *n);

/* A gateway whose first lease grant is made but its answer lost (the
 * connection closed), as when a member fails after the commit.  The
 * retried grant must name the same lease ID, which etcd refuses as
 * existing; a grant of another lease (one nobody would revoke) is
 * answered with an error here.  The nowait transaction succeeds. */
void fg_lost_grant(const char *request, const char **reply, size_t *n);

/* What a fake gateway saw of an extend's move: set in its forked child,
 * read by the test, so in memory mapped shared (fg_seen_reset, before
 * the fork).  fg_lost_move and fg_slow_move write it. */
struct fg_seen_move {
    char new_lease[32]; /* the ID of the lease granted for the move */
    int new_revoked;    /* a revoke of that lease arrived */
};
extern struct fg_seen_move *fg_seen;

/* Maps fg_seen (once) and clears it: before the gateway is forked.  0, or
 * -1 when out of memory. */
int fg_seen_reset(void);

/* An EXTEND to another lifetime moves the holder entry to a new lease;
 * a gateway applies that move but loses every answer to it.  The extend
 * must look before revoking the new lease (which would end the lock),
 * find the entry on it, and succeed, revoking only the old lease. */
void fg_lost_move(const char *request, const char **reply, size_t *n);

/* A gateway for an extend cut short by a close: slot 50 of pool p is
 * held on lease 77 (granted TTL 5 s), so an extend to 60 s moves it to a
 * new lease, whose grant this gateway answers only 500 ms later. */
void fg_slow_move(const char *request, const char **reply, size_t *n);

#endif
