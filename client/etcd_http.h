/* client/etcd_http.h - internal: JSON calls to etcd's v3 gateway over
 * libevent's HTTP client, across the members of a cluster.
 *
 * Owns: one HTTP connection per member (and one more per waiting call, so
 * a lock wait does not hold up the calls behind it), the choice of member
 * (the last one that answered first; on a refused connection, a member
 * that does not answer in time or one that says it has no leader, the
 * next, round and round with a short pause after each full round, until
 * the call's deadline), etcd authentication (a token from
 * /v3/auth/authenticate, sent as the Authorization header and renewed
 * when etcd says it is no longer valid) and the mapping of HTTP and
 * gateway errors to statuses.  Does not own: what the calls mean
 * (client/etcd.c) or the event loop (the caller's).
 *
 * A call that is retried on another member may have been done by the
 * first (its reply was lost): the callers make every step safe to repeat
 * or check for it.
 */
#ifndef CACHIFY_CLIENT_ETCD_HTTP_H
#define CACHIFY_CLIENT_ETCD_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "client/url.h"

struct event_base;
struct ehttp;
struct ehttp_call;

/* The end of a call.  status CACHIFY_OK with reply, the gateway's JSON
 * answer; CACHIFY_ERR_SERVER with reply the gateway's error object
 * ({"error", "code", ...}) and msg "etcd: <its message>"; CACHIFY_ERR_AUTH;
 * CACHIFY_ERR_IO (no member answered before the deadline) or
 * CACHIFY_ERR_PROTO (an answer that is not JSON) with reply NULL.  reply
 * is freed after the callback returns; msg is never NULL. */
typedef void (*ehttp_cb)(void *arg, int status, json_t *reply,
                         const char *msg);

/* CLOCK_MONOTONIC in microseconds: the clock of every etcd deadline. */
uint64_t ehttp_now_us(void);

/* The gRPC code of a gateway error object (5 NOT_FOUND, ...), or -1. */
int ehttp_error_code(const json_t *reply);

/* A client of url's members (url must be CACHIFY_URL_ETCD; it is copied)
 * on base.  io_timeout_ms bounds one attempt on one member (split between
 * the members when there are several: see etcd_http.c).  NULL when out of
 * memory. */
struct ehttp *ehttp_new(struct event_base *base, const struct cachify_url *url,
                        int io_timeout_ms);

/* Frees h; calls still under way end without their callbacks. */
void ehttp_free(struct ehttp *h);

/* Posts body (a JSON object; its reference is taken, also on failure) to
 * path ("/v3/kv/range", ...).  timeout_ms bounds the whole call, every
 * member tried included; -1 means none (a lock wait, which also gets a
 * connection of its own).  Returns the call, whose cb comes exactly once
 * and never inside this function, or NULL when out of memory. */
struct ehttp_call *ehttp_post(struct ehttp *h, const char *path, json_t *body,
                              long long timeout_ms, ehttp_cb cb, void *arg);

/* 1 when call has no member serving it now: no attempt in flight, or the
 * last one failed within the last half second; the last failure is then
 * copied into reason[cap].  0 while an attempt stands (a lock wait held by
 * a member). */
int ehttp_call_failing(const struct ehttp_call *call, char *reason,
                       size_t cap);

/* Abandons call: its callback is not called. */
void ehttp_cancel(struct ehttp_call *call);

#endif
