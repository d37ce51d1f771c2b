/* client/etcd_pool.c - pools on an etcd cluster: the pool calls of
 * client/etcd.h, as steps of a call (struct eop, client/etcd_op.h) that
 * etcd.c starts, grants the lease of and ends.
 *
 * Owns: the layout of pools in etcd and the pool steps.  Does not own: the
 * lease grant, a found slot's release and extend (etcd.c, the same steps
 * as a lock holder's), HTTP (etcd_http.c), kept leases (etcd_keep.c).
 *
 * Layout.  The pool on key K lives beside K's lock: the lock's entries are
 * N/..., the pool's Q/... with Q = N + "%P" (etcd.c's escape writes '%'
 * only as %25 or %2F, so no other key's lock or pool range overlaps it).
 * Each slot request is one entry Q/<size>/<its lease in hex> on a lease
 * of its own (size: the pool's max_size in decimal, also the entry's
 * value).  The queue is the pool: ordered by create revision, the first N
 * entries hold the N slots and the others wait, first come, first served.
 * So admission is atomic by construction: at every revision exactly the
 * first N entries (all, when fewer) are holders, whatever comes and goes,
 * and never N + 1; an entry becomes a holder the moment enough entries
 * before it go (a release, a lease that expired, a SESSION handle that
 * ended), and its waiting owner only learns of it by polling.  The token
 * is the entry's create revision: from the same strictly increasing
 * sequence as lock tokens, and in grant order (an entry created earlier
 * is admitted no later).
 *
 *   acquire   a lease as a lock's (etcd.c: whole seconds rounded up, at
 *             least etcd's minimum; SESSION: a short lease the handle
 *             renews).  Then one transaction: "no lock entry under N/,
 *             and no pool entry under Q/ outside Q/<N>/ (the ranges
 *             before and after it: a pool of another size) ? put
 *             Q/<N>/<lease>, count Q/<N>/, read our entry : read N/ and
 *             one entry of each outside range".  The size is in the
 *             entry's name, so the first slot and the next ones take the
 *             same transaction, and it is checked in the very transaction
 *             that adds the entry: a size other than the live pool's
 *             answers as cachifyd's -WRONGSIZE (an entry no client of
 *             ours wrote reads as size 0), a lock entry as its
 *             -WRONGTYPE.  Our entry is the newest, so a count <= N is a
 *             slot.  Else without a wait the lease is revoked (the entry
 *             goes) and the answer is CACHIFY_FULL; with one, the lease is
 *             kept alive and the entries before ours are read (at most N)
 *             every POLL_* ms until fewer than N are left.  A wait that
 *             ends hands the lease to the keeper to revoke, as a lock's.
 *   release   one read: the lock's entries, the entry whose create
 *             revision is the token, the entries before it; a holder's
 *             lease is revoked (etcd.c), anything else answers 0.
 *   extend    the same read, then the lock holder's extend (etcd.c).
 *   size      one read: min(entries, N).
 *   force     one read gives N, the count and revision R; the first
 *             min(count, N) entries at R (the holders then, read in
 *             batches at R) have their leases revoked one by one; the
 *             answer counts those revoked.  Waiters are not touched: they
 *             move up as cachifyd's do.
 *
 * Every step may be retried on another member by etcd_http.c: a retried
 * put finds our entry (same lease, same create revision), and the count
 * is then checked by a poll instead of being trusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "client/cachify.h"
#include "client/etcd_http.h"
#include "client/etcd_keep.h"
#include "client/etcd_op.h"

/* A waiting acquire polls first after POLL_FIRST_MS, then doubles the
 * delay up to POLL_MAX_MS: a slot that frees is seen within that, at the
 * cost of one read per waiter per poll (etcd's gateway has no watch that
 * fits one request). */
#define POLL_FIRST_MS 5
#define POLL_MAX_MS 50
/* Slots a forced release lists per read. */
#define FORCE_BATCH 64

/* {"key": Q/, "range_end": Q0}. */
static json_t *qrange(const struct eop *o)
{
    return ej_prefix(o->qpfx, o->qpfxlen);
}

/* The lock entries under N/, counted. */
static json_t *lock_count(const struct eop *o)
{
    json_t *r = ej_prefix(o->pfx, o->pfxlen);

    ej_set(&r, "count_only", json_true());
    return r;
}

/* A compare of the range r: its target equals v (in field). */
static json_t *compare(json_t *r, const char *target, const char *field,
                       json_t *v)
{
    ej_set(&r, "target", json_string(target));
    ej_set(&r, "result", json_string("EQUAL"));
    ej_set(&r, field, v);
    return r;
}

/* {"key": a, "range_end": b}: the keys from a up to b. */
static json_t *span(const char *a, size_t alen, const char *b, size_t blen)
{
    json_t *r = json_object();

    ej_set(&r, "key", ej_b64(a, alen));
    ej_set(&r, "range_end", ej_b64(b, blen));
    return r;
}

/* The entries of a pool of our size, Q/<N>/, into o->spfx (see the top;
 * the size's digits are at most 7).  0, or -1 when out of memory. */
static int size_prefix(struct eop *o)
{
    char digits[16];
    int n = snprintf(digits, sizeof digits, "%u/", o->max_size);

    o->spfx = malloc(o->qpfxlen + (size_t)n + 1);
    if (o->spfx == NULL)
        return -1;
    memcpy(o->spfx, o->qpfx, o->qpfxlen);
    memcpy(o->spfx + o->qpfxlen, digits, (size_t)n + 1);
    o->spfxlen = o->qpfxlen + (size_t)n;
    return 0;
}

/* The pool's size, as its entries hold it (base64 of the decimal). */
static json_t *size_value(const struct eop *o)
{
    char text[16];
    int n = snprintf(text, sizeof text, "%u", o->max_size);

    return ej_b64(text, (size_t)n);
}

/* Our entry's key, Q/<N>/<lease in hex>, base64. */
static json_t *entry_key(const struct eop *o)
{
    char hex[20];
    int n = snprintf(hex, sizeof hex, "%llx", (unsigned long long)o->lease);
    char *k = malloc(o->spfxlen + (size_t)n);
    json_t *s;

    if (k == NULL)
        return NULL;
    memcpy(k, o->spfx, o->spfxlen);
    memcpy(k + o->spfxlen, hex, (size_t)n);
    s = ej_b64(k, o->spfxlen + (size_t)n);
    free(k);
    return s;
}

static json_t *entry_range(const struct eop *o)
{
    json_t *r = json_object();

    ej_set(&r, "key", entry_key(o));
    return r;
}

/* The number of key-values in a range answer, or -1 when there is no
 * range answer, or its "kvs" is no array: not etcd's (which leaves "kvs"
 * out of an empty range only), and never to be read as "none". */
static long long kv_count(const json_t *range)
{
    const json_t *kvs = json_object_get(range, "kvs");

    if (!json_is_object(range) || (kvs != NULL && !json_is_array(kvs)))
        return -1;
    return (long long)json_array_size(kvs);
}

/* The message of an answer kv_count refused. */
#define NO_RANGE "etcd: a pool answer without its range"

/* ---- acquire ---- */

/* Adds our entry to the pool, in one transaction (see the top): the
 * key's lock entries and the pool's entries of any other size must be
 * none -- the ranges of Q/ before Q/<N>/ and after it. */
void epool_leased(struct eop *o)
{
    json_t *put = json_object(), *count, *body, *before, *after, *cb, *ca;
    char *end = NULL;

    if (size_prefix(o) != 0 || (end = malloc(o->qpfxlen)) == NULL) {
        json_decref(put);
        eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
        return;
    }
    /* Before: from Q/ up to Q/<N>/.  After: from the end of Q/<N>/,
     * Q/<N>0, up to the end of Q/, Q0 ('/' + 1 is '0'). */
    before = span(o->qpfx, o->qpfxlen, o->spfx, o->spfxlen);
    o->spfx[o->spfxlen - 1] = '0';
    memcpy(end, o->qpfx, o->qpfxlen);
    end[o->qpfxlen - 1] = '0';
    after = span(o->spfx, o->spfxlen, end, o->qpfxlen);
    o->spfx[o->spfxlen - 1] = '/';
    free(end);
    count = ej_prefix(o->spfx, o->spfxlen);
    ej_set(&put, "key", entry_key(o));
    ej_set(&put, "value", size_value(o));
    ej_set(&put, "lease", ej_id(o->lease));
    ej_set(&count, "count_only", json_true());
    /* The compares are the ranges themselves; the failure reads one
     * entry of each (the size that is in the way). */
    cb = compare(json_deep_copy(before), "CREATE", "create_revision",
                 json_string("0"));
    ca = compare(json_deep_copy(after), "CREATE", "create_revision",
                 json_string("0"));
    ej_set(&before, "limit", json_integer(1));
    ej_set(&after, "limit", json_integer(1));
    body = ej_txn(
        ej_list(3,
                compare(ej_prefix(o->pfx, o->pfxlen), "CREATE",
                        "create_revision", json_string("0")),
                cb, ca),
        ej_list(3, put ? json_pack("{s:o}", "request_put", put) : NULL,
                ej_read(count), ej_read(entry_range(o))),
        ej_list(3, ej_read(lock_count(o)), ej_read(before), ej_read(after)));
    if (body == NULL) {
        eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
        return;
    }
    eop_post(o, S_P_JOIN, "/v3/kv/txn", body, o->e->io_timeout_ms);
}

/* Reads our entry and the entries before it, at most N of them. */
static void poll_now(struct eop *o)
{
    json_t *before = ej_prefix(o->spfx, o->spfxlen);

    ej_set(&before, "max_create_revision", ej_id(o->my_rev - 1));
    ej_set(&before, "limit", json_integer((json_int_t)o->max_size));
    ej_set(&before, "keys_only", json_true());
    eop_post(o, S_P_POLL, "/v3/kv/txn",
             ej_read_txn(ej_list(2, ej_read(entry_range(o)), ej_read(before))),
             o->e->io_timeout_ms);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_now(arg);
}

/* Our entry is queued behind N others: FULL, or the wait goes on. */
static void not_yet(struct eop *o)
{
    struct timeval tv;

    if (o->lock.wait_ms == 0) {
        eop_cleanup(o, CACHIFY_FULL, 0, "");
        return;
    }
    if (o->gave_up) {
        eop_give_up(o, CACHIFY_TIMEOUT, "");
        return;
    }
    if (!o->waited) {
        if (ekeep_add(o->e->keep, o->lease, o->ttl_s, EKEEP_WAIT, 0) != 0) {
            eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
            return;
        }
        o->waited = 1;
        o->poll_ms = POLL_FIRST_MS;
    }
    if (o->poll_timer == NULL &&
        (o->poll_timer = evtimer_new(o->e->base, on_poll, o)) == NULL) {
        eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
        return;
    }
    tv.tv_sec = o->poll_ms / 1000;
    tv.tv_usec = (suseconds_t)(o->poll_ms % 1000) * 1000;
    if (event_add(o->poll_timer, &tv) != 0) {
        eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
        return;
    }
    o->step = S_P_SLEEP;
    o->poll_ms = o->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : o->poll_ms * 2;
}

/* The answer of join(). */
static void joined(struct eop *o, const json_t *r)
{
    json_t *kv;
    long long total;

    if (!json_is_true(json_object_get(r, "succeeded"))) {
        kv = ej_first_kv(ej_txn_range(r, 1));
        if (kv == NULL)
            kv = ej_first_kv(ej_txn_range(r, 2));
        if (ej_num(ej_txn_range(r, 0), "count") > 0) {
            eop_cleanup(o, CACHIFY_ERR_TYPE, 0, WIRE_NOT_A_POOL);
        } else {
            char msg[200];
            long long size = kv ? ej_value_num(kv) : 0;

            if (size < 0) {
                eop_cleanup(o, CACHIFY_ERR_PROTO, 0, EJ_NOT_BASE64);
                return;
            }
            /* An entry of another size (0: not one of ours). */
            snprintf(msg, sizeof msg,
                     "WRONGSIZE the pool has max_size %lld, not %u: a pool "
                     "keeps its size while a slot is held or requested",
                     size, o->max_size);
            eop_cleanup(o, CACHIFY_ERR_TYPE, 0, msg);
        }
        return;
    }
    total = ej_num(ej_txn_range(r, 1), "count");
    kv = ej_first_kv(ej_txn_range(r, 2));
    o->my_rev = kv ? ej_num(kv, "create_revision") : 0;
    if (o->my_rev <= 0 || ej_num(kv, "lease") != o->lease) {
        eop_cleanup(o, CACHIFY_ERR_PROTO, 0,
                    "etcd: a pool entry without its revision");
        return;
    }
    if (total < 1) { /* our entry is one: the answer is not etcd's */
        eop_cleanup(o, CACHIFY_ERR_PROTO, 0,
                    "etcd: a pool count without our entry");
        return;
    }
    if (total <= (long long)o->max_size)
        eop_granted(o, o->my_rev, 0);
    else if (o->my_rev == ej_num(json_object_get(r, "header"), "revision"))
        not_yet(o); /* created now: every other entry is before it */
    else
        poll_now(o); /* a retried put: where our entry stands is unknown */
}

/* The answer of poll_now(). */
static void polled(struct eop *o, const json_t *r)
{
    json_t *mine = ej_first_kv(ej_txn_range(r, 0));
    long long before;

    if (mine == NULL || ej_num(mine, "lease") != o->lease) {
        eop_cleanup(o, CACHIFY_ERR_SERVER, 0,
                    "etcd: the slot's lease ended while it waited");
        return;
    }
    before = kv_count(ej_txn_range(r, 1));
    if (before < 0)
        eop_cleanup(o, CACHIFY_ERR_PROTO, 0, NO_RANGE);
    else if (before < (long long)o->max_size)
        eop_granted(o, o->my_rev, o->waited);
    else
        not_yet(o);
}

void epool_wait_over(struct eop *o)
{
    char reason[200] = "", msg[256];
    int failing = 0;

    if (o->step == S_P_POLL) {
        failing = ehttp_call_failing(o->call, reason, sizeof reason);
        ehttp_cancel(o->call);
        o->call = NULL;
    } else if (o->step == S_P_SLEEP) {
        event_del(o->poll_timer);
        /* The last poll failed: the cluster, not the holders, kept us. */
        failing = o->status != CACHIFY_OK;
        snprintf(reason, sizeof reason, "%.150s", o->msg);
    } else {
        return; /* the grant or a join: its answer sees gave_up */
    }
    snprintf(msg, sizeof msg, "etcd: no member answered the wait (last: %s)",
             reason);
    eop_give_up(o, failing ? CACHIFY_ERR_IO : CACHIFY_TIMEOUT,
                failing ? msg : "");
}

/* ---- release, extend, size, force ---- */

void epool_start(struct eop *o)
{
    json_t *pool1 = qrange(o), *slot, *before;

    switch (o->op) {
    case WIRE_POOL_RELEASE:
    case WIRE_POOL_EXTEND:
        /* Revision 1 is etcd's empty store: no entry was ever created at
         * it (and a bound of 0 would mean none). */
        if (o->token <= 1 || o->token > INT64_MAX) {
            json_decref(pool1);
            eop_complete(o, CACHIFY_OK, 0, "");
            return;
        }
        json_decref(pool1);
        slot = qrange(o);
        ej_set(&slot, "min_create_revision", ej_id((long long)o->token));
        ej_set(&slot, "max_create_revision", ej_id((long long)o->token));
        before = qrange(o);
        ej_set(&before, "max_create_revision", ej_id((long long)o->token - 1));
        ej_set(&before, "keys_only", json_true());
        eop_post(o, S_P_FIND, "/v3/kv/txn",
                 ej_read_txn(ej_list(3, ej_read(lock_count(o)), ej_read(slot),
                                     ej_read(before))),
                 o->e->io_timeout_ms);
        return;
    default: /* size, force */
        ej_set(&pool1, "limit", json_integer(1));
        eop_post(o, o->op == WIRE_POOL_SIZE ? S_P_SIZE : S_P_FORCE,
                 "/v3/kv/txn",
                 ej_read_txn(ej_list(2, ej_read(lock_count(o)),
                                     ej_read(pool1))),
                 o->e->io_timeout_ms);
        return;
    }
}

/* S_P_FIND: the slot of the token, if it holds one. */
static void found(struct eop *o, const json_t *r)
{
    json_t *kv = ej_first_kv(ej_txn_range(r, 1));
    long long before = kv_count(ej_txn_range(r, 2));
    long long size = kv ? ej_value_num(kv) : 0;

    if (ej_num(ej_txn_range(r, 0), "count") > 0) {
        eop_complete(o, CACHIFY_ERR_TYPE, 0, WIRE_NOT_A_POOL);
        return;
    }
    if (kv != NULL && (before < 0 || size < 0)) {
        eop_complete(o, CACHIFY_ERR_PROTO, 0,
                     before < 0 ? NO_RANGE : EJ_NOT_BASE64);
        return;
    }
    /* No entry, or one still queued (no token names it but a forged
     * one): no slot of this pool has that token. */
    if (kv == NULL || before >= size) {
        eop_complete(o, CACHIFY_OK, 0, "");
        return;
    }
    o->hold_lease = ej_num(kv, "lease");
    o->hold_rev = ej_num(kv, "create_revision");
    o->hold_key = json_incref(json_object_get(kv, "key"));
    if (o->op == WIRE_POOL_RELEASE)
        eop_release_held(o);
    else
        eop_extend_held(o);
}

/* Lists the next batch of the slots held at o->at_rev. */
static void list_batch(struct eop *o)
{
    json_t *r;

    if (o->left <= 0) {
        eop_complete(o, CACHIFY_OK, o->freed, "");
        return;
    }
    r = qrange(o);
    ej_set(&r, "revision", ej_id(o->at_rev));
    ej_set(&r, "sort_order", json_string("ASCEND"));
    ej_set(&r, "sort_target", json_string("CREATE"));
    ej_set(&r, "keys_only", json_true());
    ej_set(&r, "min_create_revision", ej_id(o->after_rev + 1));
    ej_set(&r, "limit",
           json_integer(o->left < FORCE_BATCH ? o->left : FORCE_BATCH));
    eop_post(o, S_P_LIST, "/v3/kv/range", r, o->e->io_timeout_ms);
}

/* Revokes the next slot of the batch, or lists the next batch. */
static void free_next(struct eop *o)
{
    json_t *kv = json_array_get(o->list, o->idx);

    if (kv == NULL) {
        json_decref(o->list);
        o->list = NULL;
        list_batch(o);
        return;
    }
    o->after_rev = ej_num(kv, "create_revision");
    o->hold_lease = ej_num(kv, "lease");
    o->left--;
    eop_post(o, S_P_FREE, "/v3/lease/revoke", ej_lease_body(o->hold_lease),
             o->e->io_timeout_ms);
}

/* S_P_SIZE and S_P_FORCE: the pool's size and count. */
static void counted(struct eop *o, const json_t *r)
{
    const json_t *pool = ej_txn_range(r, 1);
    json_t *kv = ej_first_kv(pool);
    long long n = ej_num(pool, "count"), size = kv ? ej_value_num(kv) : 0;

    if (ej_num(ej_txn_range(r, 0), "count") > 0) {
        eop_complete(o, CACHIFY_ERR_TYPE, 0, WIRE_NOT_A_POOL);
        return;
    }
    if (n < 0 || size < 0) {
        eop_complete(o, CACHIFY_ERR_PROTO, 0,
                     n < 0 ? "etcd: a negative pool count" : EJ_NOT_BASE64);
        return;
    }
    if (n > size)
        n = size; /* the others wait */
    if (o->op == WIRE_POOL_SIZE || n == 0) {
        eop_complete(o, CACHIFY_OK, n, "");
        return;
    }
    o->left = n;
    o->at_rev = ej_num(json_object_get(r, "header"), "revision");
    list_batch(o);
}

void epool_step(struct eop *o, int status, const json_t *r, const char *msg)
{
    if (o->step == S_P_FREE) {
        if (!eop_revoked(status, r)) {
            eop_complete(o, status, 0, msg);
            return;
        }
        ekeep_forget(o->e->keep, o->hold_lease);
        o->freed += status == CACHIFY_OK;
        o->idx++;
        free_next(o);
        return;
    }
    if (status != CACHIFY_OK && o->step == S_P_POLL && o->lock.wait_ms != 0) {
        /* A wait outlives members that fail: poll again later (the wait's
         * bound says ERR_IO with this message if it never recovers). */
        o->status = status;
        snprintf(o->msg, sizeof o->msg, "%s", msg);
        o->poll_ms = POLL_MAX_MS;
        not_yet(o);
        return;
    }
    if (status != CACHIFY_OK) {
        if (o->op == WIRE_POOL_ACQUIRE)
            eop_cleanup(o, status, 0, msg);
        else
            eop_complete(o, status, 0, msg);
        return;
    }
    o->status = CACHIFY_OK;
    switch (o->step) {
    case S_P_JOIN:
        joined(o, r);
        return;
    case S_P_POLL:
        polled(o, r);
        return;
    case S_P_FIND:
        found(o, r);
        return;
    case S_P_SIZE:
    case S_P_FORCE:
        counted(o, r);
        return;
    case S_P_LIST:
        o->list = json_incref(json_object_get(r, "kvs"));
        o->idx = 0;
        if (json_array_size(o->list) == 0)
            o->left = 0; /* nothing more at that revision */
        free_next(o);
        return;
    default:
        eop_complete(o, CACHIFY_ERR_PROTO, 0, "etcd: unexpected step");
        return;
    }
}
