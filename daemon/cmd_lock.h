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

/* The lock engine's events for the daemon (give them to locktable_new):
 * a queued ACQUIRE's late replies.  Each event's ctx is the waiting conn;
 * arg is unused. */
extern const struct lock_events cmd_lock_events;

#endif
