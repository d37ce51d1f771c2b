/* daemon/cmd_keys.h - the Redis key commands, so Redis lock and cache
 * clients (py-cachify's Redis backend, the `SET NX PX` pattern) work on
 * cachifyd unchanged: SET and its variants, GET, MGET, GETDEL, DEL,
 * UNLINK, EXISTS, EXPIRE and its variants, PERSIST.
 *
 * Owns: their argument syntax and Redis's reply forms (nil, counts, +OK).
 * Does not own: what a key is (engine/: a Redis entry and a cachifyd lock
 * are one thing, so SET NX is an ACQUIRE and DEL a forced RELEASE), TTL and
 * PTTL (cmd_lock.c, shared with the lock commands), dispatch (commands.c).
 * docs/redis-compat.md lists every difference from Redis.
 */
#ifndef CACHIFY_DAEMON_CMD_KEYS_H
#define CACHIFY_DAEMON_CMD_KEYS_H

#include "proto/reader.h"

struct conn;

/* Each appends exactly one reply to c for req (argument count already
 * checked by commands.c). */
void cmd_set(struct conn *c, const struct proto_request *req);
void cmd_setnx(struct conn *c, const struct proto_request *req);
void cmd_setex(struct conn *c, const struct proto_request *req);
void cmd_psetex(struct conn *c, const struct proto_request *req);
void cmd_get(struct conn *c, const struct proto_request *req);
void cmd_mget(struct conn *c, const struct proto_request *req);
void cmd_getdel(struct conn *c, const struct proto_request *req);
void cmd_del(struct conn *c, const struct proto_request *req);
void cmd_exists(struct conn *c, const struct proto_request *req);
void cmd_expire(struct conn *c, const struct proto_request *req);
void cmd_pexpire(struct conn *c, const struct proto_request *req);
void cmd_expireat(struct conn *c, const struct proto_request *req);
void cmd_pexpireat(struct conn *c, const struct proto_request *req);
void cmd_persist(struct conn *c, const struct proto_request *req);

#endif
