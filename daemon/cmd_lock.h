/* daemon/cmd_lock.h - the lock commands, and every reply ACQUIRE gets.
 *
 * Owns: ACQUIRE, RELEASE, IS_LOCKED, EXTEND, PTTL and TTL (their argument
 * syntax, and the lock engine's results mapped to replies), including the
 * late reply of an ACQUIRE that waited: the engine reports the end of a
 * queued wait through cmd_lock_events, and the token or -TIMEOUT is written
 * here, beside the immediate replies.  Does not own: lock semantics
 * (engine/locktable.c), dispatch (commands.c), or the connection's waiting
 * state and the resuming of its later requests (conn.c).
 */
#ifndef CACHIFY_DAEMON_CMD_LOCK_H
#define CACHIFY_DAEMON_CMD_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/locktable.h"
#include "proto/reader.h"

struct conn;

/* Each appends one reply to c for req (argument count already checked by
 * commands.c), except an ACQUIRE that queues: its reply comes through
 * cmd_lock_events. */
void cmd_acquire(struct conn *c, const struct proto_request *req);
void cmd_release(struct conn *c, const struct proto_request *req);
void cmd_is_locked(struct conn *c, const struct proto_request *req);
void cmd_extend(struct conn *c, const struct proto_request *req);
void cmd_pttl(struct conn *c, const struct proto_request *req);
void cmd_ttl(struct conn *c, const struct proto_request *req);

/* The state file could not record a lease (disk full, I/O error): the
 * lock is not granted or extended, since a crash could then grant it
 * twice.  The log says why; the client may try again. */
#define NOT_DURABLE_MESSAGE \
    "lease not granted: the state file could not record it (see the log)"

/* Replies to a refusal of the engine's that every writer of a key can get
 * (LOCK_LIMIT_*, LOCK_NO_MEMORY, LOCK_NOT_DURABLE), in the protocol's own
 * error codes. */
void cmd_reply_refusal(struct conn *c, enum lock_result r);

/* "-WRONGTYPE ..." when a lock or Redis command names a pool key. */
#define WRONGTYPE_POOL_MESSAGE \
    "Operation against a pool key: use POOL_ACQUIRE, POOL_RELEASE, " \
    "POOL_SIZE or POOL_EXTEND"

/* ACQUIRE's options (and POOL_ACQUIRE's). */
struct acquire_options {
    unsigned long long ttl_ms;  /* 0 = forever */
    unsigned long long wait_ms; /* with wait */
    int wait;                   /* 0 no wait, 1 bounded, 2 forever */
    int session;
};

/* Parses req->argv[first..] as TTL/WAIT/SESSION options of command cmd
 * (named in errors) into *o.  0, or -1 after replying -ERR. */
int cmd_parse_acquire_options(struct conn *c,
                              const struct proto_request *req, size_t first,
                              const char *cmd, struct acquire_options *o);

/* Fills *rq for key req->argv[1] with o, owned by c; when it waits, marks
 * c waiting first (a grant may come from inside the engine call). */
void cmd_begin_acquire(struct conn *c, const struct proto_request *req,
                       const struct acquire_options *o,
                       struct lock_request *rq);

/* Parses a token argument: 0, or -1 after replying -ERR. */
int cmd_parse_token(struct conn *c, const char *arg, size_t len,
                    uint64_t *token);

/* The largest TTL in ms a request may ask for (max_ttl_ms, or 2^40). */
unsigned long long cmd_ttl_bound(const struct conn *c);

/* The lock engine's events for the daemon (give them to locktable_new):
 * a queued ACQUIRE's late replies.  Each event's ctx is the waiting conn;
 * arg is unused. */
extern const struct lock_events cmd_lock_events;

#endif
