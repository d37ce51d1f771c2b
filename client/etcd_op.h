/* client/etcd_op.h - internal: one call of the etcd backend under way, as
 * client/etcd.c (locks, the chain of steps), client/etcd_extend.c (the
 * steps of an extend) and client/etcd_pool.c (pools) share it, and the
 * JSON pieces all three build their gateway requests from
 * (client/etcd_json.c).
 *
 * Owns: struct etcd and struct eop, the steps a call goes through, and the
 * contracts between the files: etcd.c runs every call (its start, its
 * lease grant, each answer, its end, cleanup of its own lease) and hands
 * the extend steps to etcd_extend.c and the pool steps to etcd_pool.c,
 * which hands a found slot back to etcd.c's release and etcd_extend.c's
 * extend steps (a slot is an entry on a lease of its own, as a lock's
 * holder is).  Does not own: HTTP (etcd_http.c), kept leases
 * (etcd_keep.c), the handles (async_etcd.c, sync_etcd.c).
 */
#ifndef CACHIFY_CLIENT_ETCD_OP_H
#define CACHIFY_CLIENT_ETCD_OP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "client/etcd.h"

struct ehttp;
struct ehttp_call;
struct ekeep;
struct event;

enum step {
    S_GRANT,     /* acquire: lease/grant */
    S_TRY,       /* acquire nowait: txn */
    S_LOCK,      /* acquire wait: lock/lock */
    S_CHECK,     /* acquire wait: range on the granted entry */
    S_REFRESH,   /* acquire wait: keepalive, the TTL starts at the grant */
    S_HOLDER,    /* release, force, pttl, extend: range, lowest entry */
    S_REVOKE,    /* release, force: lease/revoke of the holder */
    S_XTTL,      /* extend: lease/timetolive of the holder's lease */
    S_RENEW,     /* extend, same TTL: lease/keepalive */
    S_NEWLEASE,  /* extend, another TTL: lease/grant */
    S_MOVE,      /* extend: txn moving the entry to the new lease */
    S_MOVE_CHECK,/* extend: the move failed as far as we know: range of the
                  * entry, to see whether it was applied after all */
    S_DROP_OLD,  /* extend: lease/revoke of the old lease */
    S_TTL,       /* pttl: lease/timetolive */
    S_COUNT,     /* is_locked: range, count only */
    S_PING,      /* ping: maintenance/status */
    S_CLEANUP,   /* any: revoke the call's own lease, then the result */
    /* pools (etcd_pool.c, which handles their answers, errors included) */
    S_P_JOIN,    /* pool acquire: txn adding our entry to a pool of our size */
    S_P_POLL,    /* pool acquire wait: is our entry among the first N? */
    S_P_SLEEP,   /* pool acquire wait: the poll timer runs, no call */
    S_P_FIND,    /* pool release, extend: the slot of the token */
    S_P_SIZE,    /* pool size: count */
    S_P_FORCE,   /* pool force: the size, the count and a revision */
    S_P_LIST,    /* pool force: a batch of the slots at that revision */
    S_P_FREE,    /* pool force: lease/revoke of one slot */
};

/* One call under way. */
struct eop {
    struct etcd *e;
    struct eop *prev, *next;      /* e->ops */
    enum wire_op op;
    enum step step;
    char *pfx;                    /* N + "/": the lock's entries */
    size_t pfxlen;
    char *qpfx;                   /* N + "%P/": the pool's (etcd_pool.c) */
    size_t qpfxlen;
    struct wire_lock lock;
    unsigned max_size;            /* pool acquire */
    uint64_t token;               /* release, extend: the caller's */
    long long ms;                 /* extend */
    long long lease;              /* acquire's lease; extend's new one */
    long long ttl_s;              /* of that lease */
    int gave_up;                  /* the wait's time is over */
    long long hold_lease;         /* the holder entry's (a lock's or slot's) */
    long long hold_rev;
    json_t *hold_key;             /* its key (base64 string), owned */
    struct ehttp_call *call;      /* the step in flight */
    struct event *wait_timer;     /* acquire with a bounded wait */
    /* pools (etcd_pool.c) */
    char *spfx;                   /* acquire: Q/<N>/, the pool's entries */
    size_t spfxlen;
    int waited;                   /* acquire: the entry queued */
    long long my_rev;             /* acquire: our entry's create revision */
    int poll_ms;                  /* acquire: the next poll's delay */
    struct event *poll_timer;
    long long at_rev;             /* force: the revision it frees at */
    long long after_rev;          /* force: the last slot listed */
    long long left;               /* force: slots still to list */
    json_t *list;                 /* force: the batch being freed, owned */
    size_t idx;
    long long freed;
    /* the result, kept while S_CLEANUP runs */
    int status;
    long long value;
    char msg[256];
    etcd_cb cb;
    void *arg;
};

struct etcd {
    struct event_base *base;
    struct cachify_url url;
    int io_timeout_ms;
    struct ehttp *http;
    struct ekeep *keep;
    struct eop *ops;
};

/* ---- etcd.c ---- */

/* Sends o's next step (body's reference taken; NULL: out of memory, which
 * ends the call). */
void eop_post(struct eop *o, enum step step, const char *path, json_t *body,
              long long timeout_ms);

/* Ends o with its result: cb is called, o freed. */
void eop_complete(struct eop *o, int status, long long value,
                  const char *msg);

/* Ends an acquire whose lease must go first (revoked, then the result). */
void eop_cleanup(struct eop *o, int status, long long value,
                 const char *msg);

/* Ends an acquire at once, its lease left to the keeper to revoke. */
void eop_give_up(struct eop *o, int status, const char *msg);

/* The acquire holds with token rev (waited: its lease was kept alive
 * while queued, and is renewed once more so its TTL starts now). */
void eop_granted(struct eop *o, long long rev, int waited);

/* Release (o->op WIRE_POOL_RELEASE) of the found entry o->hold_key on
 * o->hold_lease, created at o->hold_rev. */
void eop_release_held(struct eop *o);

/* 1 when a lease/revoke's answer says the lease is gone (now or before). */
int eop_revoked(int status, const json_t *reply);

/* The body of a lease grant of o->ttl_s seconds, its ID (ours, random)
 * put in o->lease (0: etcd picks it); NULL when out of memory. */
json_t *eop_grant_body(struct eop *o);
/* 1 when a grant's error r says our ID is taken: granted already. */
int eop_lease_exists(const struct eop *o, int status, const json_t *r);
/* The lease a grant's answer r gave (NULL: ours, o->lease); 0: none. */
long long eop_granted_id(const struct eop *o, const json_t *r);
/* The lease TTL, in whole seconds, for a lock's lifetime l. */
long long eop_lease_ttl_s(const struct wire_lock *l);

/* ---- etcd_extend.c ---- */

/* Extend (o->op WIRE_POOL_EXTEND) of the found entry o->hold_key on
 * o->hold_lease, created at o->hold_rev, to o->ms from now. */
void eop_extend_held(struct eop *o);

/* The answer of an extend step (S_XTTL to S_DROP_OLD), failures
 * included. */
void eextend_step(struct eop *o, int status, json_t *reply, const char *msg);

/* ---- etcd_pool.c ---- */

/* Starts a pool call other than the acquire (whose lease etcd.c grants
 * first, then calls epool_leased). */
void epool_start(struct eop *o);
void epool_leased(struct eop *o);

/* The answer of a pool step (S_P_*), failures included. */
void epool_step(struct eop *o, int status, const json_t *reply,
                const char *msg);

/* The bounded wait of a pool acquire is over. */
void epool_wait_over(struct eop *o);

/* ---- etcd_json.c: the gateway's JSON ---- */

/* A base64 JSON string of p[0..n), or NULL. */
json_t *ej_b64(const char *p, size_t n);
/* A 64-bit field: the gateway writes them as strings, leaves out zeros. */
long long ej_num(const json_t *o, const char *name);
/* A 64-bit value as the string the gateway reads. */
json_t *ej_id(long long v);
/* The first key-value of a range answer, or NULL. */
json_t *ej_first_kv(const json_t *range);
/* {"ID": lease}. */
json_t *ej_lease_body(long long lease);
/* {"key": p, "range_end": p with its last byte + 1}: every key under the
 * prefix p[0..n) (n > 0, its last byte '/'), or NULL. */
json_t *ej_prefix(const char *p, size_t n);
/* Sets key k of *o to v (reference taken); on failure *o is freed and
 * NULL, so a chain of calls needs one check at its end. */
void ej_set(json_t **o, const char *k, json_t *v);
/* A transaction: compare, then the ops of success and failure (arrays,
 * references taken, NULL only when out of memory: the result is then
 * NULL). */
json_t *ej_txn(json_t *compare, json_t *success, json_t *failure);
/* A transaction of reads only (no compare: the success ops run), which
 * etcd serves without a Raft write. */
json_t *ej_read_txn(json_t *ops);
/* An array of the n values that follow (references taken); NULL, all of
 * them freed, when any is NULL or out of memory. */
json_t *ej_list(size_t n, ...);
/* {"request_range": range} (reference taken). */
json_t *ej_read(json_t *range);
/* The range answer of op i of a transaction's answer, or NULL. */
const json_t *ej_txn_range(const json_t *reply, size_t i);
/* The pool size kv's value holds (1..WIRE_POOL_MAX_SIZE, in decimal
 * digits as etcd_pool.c writes it); 0 when it holds anything else or
 * nothing (an entry that is not one of ours); -1 when the value is not a
 * string of canonical base64, which etcd never sends: the caller fails
 * the call with CACHIFY_ERR_PROTO and EJ_NOT_BASE64. */
long long ej_value_num(const json_t *kv);
#define EJ_NOT_BASE64 "etcd: a pool entry's value is not base64"

#endif
