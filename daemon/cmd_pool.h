/* daemon/cmd_pool.h - the pool commands: POOL_ACQUIRE, POOL_RELEASE,
 * POOL_SIZE, POOL_EXTEND (docs/protocol.md, "Pools").
 *
 * Owns: their argument syntax and the mapping of the engine's pool results
 * (engine/lock_pool.h) to replies, and the -WRONGTYPE check that keeps lock
 * and Redis commands off pool keys.  The late reply of a POOL_ACQUIRE that
 * waited goes through cmd_lock_events like ACQUIRE's (conn->wait_pool makes
 * its -TIMEOUT name a full pool).  Does not own: pool semantics (engine),
 * dispatch (commands.c).
 */
#ifndef CACHIFY_DAEMON_CMD_POOL_H
#define CACHIFY_DAEMON_CMD_POOL_H

#include <stddef.h>

#include "proto/reader.h"

struct conn;

/* Each appends one reply to c for req (argument count already checked),
 * except a POOL_ACQUIRE that queues. */
void cmd_pool_acquire(struct conn *c, const struct proto_request *req);
void cmd_pool_release(struct conn *c, const struct proto_request *req);
void cmd_pool_size(struct conn *c, const struct proto_request *req);
void cmd_pool_extend(struct conn *c, const struct proto_request *req);

/* "-<code> <key> pool is full": a POOL_ACQUIRE that found every slot held,
 * at once (-FULL) or at the end of its wait (-TIMEOUT). */
void cmd_reply_pool_full(struct conn *c, const char *code, const char *key,
                         size_t keylen);

/* For a lock or Redis command whose keys are req->argv[first..last]:
 * replies -WRONGTYPE and returns -1 when one of them is a pool, else 0
 * (O(1) per key; nothing is looked up while no pool exists). */
int cmd_check_not_pool(struct conn *c, const struct proto_request *req,
                       size_t first, size_t last);

#endif
