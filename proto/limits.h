/* proto/limits.h - the numeric limits of the lock protocol, shared by the
 * daemon, which enforces them, and the client library, which checks them
 * before sending so that every backend refuses the same values.
 *
 * Why these two: a token is answered as a RESP integer (signed 64-bit), so
 * the largest is INT64_MAX; a TTL, WAIT or EXTEND time in milliseconds is
 * bounded at 2^40 (about 35 years) when max_ttl_ms is 0, far from any
 * overflow once turned into microseconds.  docs/protocol.md states both.
 */
#ifndef CACHIFY_PROTO_LIMITS_H
#define CACHIFY_PROTO_LIMITS_H

/* Largest fencing token; tokens are 1..PROTO_TOKEN_MAX. */
#define PROTO_TOKEN_MAX 9223372036854775807LL

/* Largest TTL / WAIT / EXTEND in milliseconds. */
#define PROTO_MS_MAX (1LL << 40)

#endif
