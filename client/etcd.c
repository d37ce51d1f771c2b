/* client/etcd.c - the lock calls on an etcd cluster (implements
 * client/etcd.h), through the v3 JSON gateway (client/etcd_http.c).
 *
 * Owns: the layout of locks in etcd, each call as a short chain of
 * gateway calls (struct eop, one step at a time: etcd_op.h), the lease
 * grant and the end of every call, pools' included, and the leases the
 * handle keeps alive (client/etcd_keep.c).  Pools' own steps are
 * etcd_pool.c's; a found slot comes back here to be released, or to
 * etcd_extend.c to be extended, as a lock's holder is.  An extend's steps
 * after the holder is found are etcd_extend.c's.
 *
 * One keyspace, as on cachifyd: a key holds a lock or a pool (whose
 * entries are under N%P/, etcd_pool.c), never both.  The nowait acquire's
 * transaction also compares "no pool entry"; a wait's read of its granted
 * entry, and the holder read of release, extend and pttl, read the pool in
 * the same transaction; any pool entry answers CACHIFY_ERR_TYPE with
 * cachifyd's -WRONGTYPE words.  IS_LOCKED on a pool key is cachifyd's:
 * 1 when every slot is held.
 *
 * Layout.  A lock on key K lives under the name N = P + escape(K) (P: the
 * URL's prefix, "cachify/" by default; escape turns '%' and '/' into %25
 * and %2F, so the entries of "a" and of "a/b" never share a range).  Each
 * taker has one entry N/<its lease in hex>, attached to a lease of its own,
 * exactly as etcd's v3lock service lays out its queue: the entry with the
 * lowest create revision holds the lock, the others wait in revision order
 * (FIFO).  The token is the holder entry's create revision: strictly
 * increasing across the cluster, a fencing token.
 *
 *   acquire   a lease of the lock's TTL (its ID chosen here, so that a
 *             retried grant cannot make a second lease: eop_grant_body;
 *             whole
 *             seconds, rounded up; etcd makes anything under about 2 s
 *             2 s; CACHIFY_EXP_NONE: etcd's
 *             longest lease, about 285 years, shown as -1 by pttl; SESSION:
 *             SESSION_TTL_S, kept alive by the handle until the lock's
 *             expiry).  nowait: one transaction "no entry under N/ ? put
 *             N/<lease> : read the holder".  A wait: v3lock's Lock on N with
 *             that lease (the server queues the entry and answers when it
 *             is first), the lease kept alive while waiting; a wait that
 *             gives up cancels the call and hands the lease to the keeper
 *             to revoke (at once, retried until done), which deletes the
 *             entry, so a grant that comes late dies with it; the caller
 *             hears at the wait's bound, not after the revoke.
 *   release   read the holder; if its create revision is the token, revoke
 *             its lease (which deletes the entry and hands the lock to the
 *             next in line).  forced: the same without the token check.
 *   is_locked whether any entry exists under N/.
 *   pttl      the holder's lease time to live, in whole seconds rounded
 *             up (a SESSION lock of this handle: its own expiry).
 *   extend    the holder's lease renewed (keep-alive) when the new lifetime
 *             is its TTL; a lease keeps its TTL for life, so another
 *             lifetime is a new lease: grant it, move the holder entry
 *             onto it in a transaction that checks the token, revoke the
 *             old one.  A SESSION lock of this handle only moves its
 *             expiry.  These steps are etcd_extend.c's.
 *
 * Every step may be retried on another member by etcd_http.c: a retried
 * nowait transaction finds our own entry and takes it as the grant; a
 * retried Lock finds the entry of our lease and keeps its place.
 */
#include "client/etcd_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/event.h>

#include "client/cachify.h"
#include "client/etcd_http.h"
#include "client/etcd_keep.h"

/* ---- requests ---- */

/* {"key": N/, "range_end": N0}: every entry of the lock. */
static json_t *prefix_range(const struct eop *o)
{
    return ej_prefix(o->pfx, o->pfxlen);
}

/* The range of the holder: the lowest create revision under N/. */
static json_t *holder_range(const struct eop *o)
{
    json_t *r = prefix_range(o);

    ej_set(&r, "limit", json_integer(1));
    ej_set(&r, "sort_order", json_string("ASCEND"));
    ej_set(&r, "sort_target", json_string("CREATE"));
    return r;
}

/* The pool on the same key (etcd_pool.c), first entry and count: a lock
 * call answers -WRONGTYPE while it has any (one keyspace, as cachifyd). */
static json_t *pool_range(const struct eop *o)
{
    json_t *r = ej_prefix(o->qpfx, o->qpfxlen);

    ej_set(&r, "limit", json_integer(1));
    return r;
}

/* A read of range and of the pool in one transaction (one revision). */
static json_t *with_pool(const struct eop *o, json_t *range)
{
    return ej_read_txn(ej_list(2, ej_read(range), ej_read(pool_range(o))));
}

/* The pool's entry count in the answer to with_pool. */
static long long pool_entries(const json_t *r)
{
    return ej_num(ej_txn_range(r, 1), "count");
}

/* ---- the life of a call ---- */

static void op_free(struct eop *o)
{
    struct etcd *e = o->e;

    if (o->prev)
        o->prev->next = o->next;
    else
        e->ops = o->next;
    if (o->next)
        o->next->prev = o->prev;
    ehttp_cancel(o->call);
    if (o->wait_timer)
        event_free(o->wait_timer);
    if (o->poll_timer)
        event_free(o->poll_timer);
    json_decref(o->hold_key);
    json_decref(o->list);
    free(o->pfx);
    free(o->qpfx);
    free(o->spfx);
    free(o);
}

void eop_complete(struct eop *o, int status, long long value,
                     const char *msg)
{
    etcd_cb cb = o->cb;
    void *arg = o->arg;
    char copy[sizeof o->msg];

    snprintf(copy, sizeof copy, "%s", msg ? msg : "");
    o->call = NULL; /* ended: the reply being handled was its last */
    op_free(o);
    cb(arg, status, value, copy);
}

static void on_step(void *arg, int status, json_t *reply, const char *msg);

/* Sends the next step; a failure to build it ends the call. */
void eop_post(struct eop *o, enum step step, const char *path,
                 json_t *body, long long timeout_ms)
{
    o->step = step;
    o->call = body ? ehttp_post(o->e->http, path, body, timeout_ms, on_step, o)
                   : NULL;
    if (o->call == NULL)
        eop_complete(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
}

/* Ends an acquire that holds a lease of its own without the lock: the
 * lease is revoked first (so its entry cannot become a lock later), then
 * status is reported.  A revoke that fails is left to the keeper, which
 * retries it. */
void eop_cleanup(struct eop *o, int status, long long value,
                    const char *msg)
{
    o->status = status;
    o->value = value;
    snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "");
    ekeep_forget(o->e->keep, o->lease);
    eop_post(o, S_CLEANUP, "/v3/lease/revoke", ej_lease_body(o->lease),
         o->e->io_timeout_ms);
}

/* Ends a call that leaves a lease of its own unused: an acquire whose
 * wait is over (its bound passed), or a grant that failed but may have
 * been made (eop_grant_body).  The revoke is the keeper's, sent from the loop
 * at once and retried, so the caller is answered at the bound rather than
 * after a revoke that may take the whole I/O timeout (a cluster out of
 * reach).  Out of memory for that, the revoke is made here, as cleanup
 * does. */
void eop_give_up(struct eop *o, int status, const char *msg)
{
    if (ekeep_add(o->e->keep, o->lease, o->ttl_s, EKEEP_DOOMED, 0) != 0) {
        eop_cleanup(o, status, 0, msg);
        return;
    }
    eop_complete(o, status, 0, msg);
}

/* The body of a lease grant of o->ttl_s seconds, with a lease ID of our
 * choosing (63 random bits) in o->lease: a grant retried on another
 * member after a lost answer then names the same lease, and etcd answers
 * "lease already exists" instead of granting a second lease that nobody
 * would ever revoke (a FOREVER one lasts 285 years); and a grant whose
 * answer never comes can still be revoked.  Without random bytes etcd
 * picks the ID (o->lease 0), as before. */
json_t *eop_grant_body(struct eop *o)
{
    uint64_t id = 0;
    json_t *body = json_pack("{s:I}", "TTL", (json_int_t)o->ttl_s);

    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id)
        id = 0;
    o->lease = (long long)(id & INT64_MAX);
    if (body != NULL && o->lease != 0 &&
        json_object_set_new(body, "ID", ej_id(o->lease)) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* Whether a grant's error says our ID is taken: a retried grant whose
 * first attempt was granted (see eop_grant_body). */
int eop_lease_exists(const struct eop *o, int status, const json_t *r)
{
    json_t *m = json_object_get(r, "message");

    return o->lease != 0 && status == CACHIFY_ERR_SERVER && json_is_string(m) &&
           strstr(json_string_value(m), "lease already exists") != NULL;
}

/* The lease a grant's answer r gave (NULL: eop_lease_exists, ours); 0 when
 * the answer has none. */
long long eop_granted_id(const struct eop *o, const json_t *r)
{
    return r == NULL ? o->lease : ej_num(r, "ID");
}

long long eop_lease_ttl_s(const struct wire_lock *l)
{
    if (l->session)
        return EKEEP_SESSION_TTL_S;
    if (l->ttl_ms == 0)
        return EKEEP_FOREVER_TTL_S;
    if (l->ttl_ms >= (long long)EKEEP_FOREVER_TTL_S * 1000)
        return EKEEP_FOREVER_TTL_S;
    return (l->ttl_ms + 999) / 1000;
}

/* The lock is ours with token rev. */
void eop_granted(struct eop *o, long long rev, int waited)
{
    struct etcd *e = o->e;

    if (rev <= 0) { /* a token is > 0: the answer is not etcd's */
        eop_cleanup(o, CACHIFY_ERR_PROTO, 0, "etcd: a grant without a revision");
        return;
    }
    if (o->lock.session) {
        uint64_t deadline =
            o->lock.ttl_ms ? ehttp_now_us() + (uint64_t)o->lock.ttl_ms * 1000 : 0;

        if (ekeep_add(e->keep, o->lease, o->ttl_s, EKEEP_SESSION, deadline)
            != 0) {
            eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
            return;
        }
        eop_complete(o, CACHIFY_OK, rev, "");
        return;
    }
    if (!waited) {
        eop_complete(o, CACHIFY_OK, rev, "");
        return;
    }
    /* The lease was kept alive while waiting: renew it once more so the
     * lock's lifetime counts from the grant, and keep it no longer. */
    ekeep_forget(e->keep, o->lease);
    o->value = rev;
    eop_post(o, S_REFRESH, "/v3/lease/keepalive", ej_lease_body(o->lease),
         e->io_timeout_ms);
}

/* The wait's time is over. */
static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    struct eop *o = arg;

    (void)fd;
    (void)what;
    o->gave_up = 1;
    if (o->op == WIRE_POOL_ACQUIRE) {
        epool_wait_over(o);
    } else if (o->step == S_LOCK) {
        char reason[200] = "", msg[256];
        /* A wait no member holds did not time out behind a holder: the
         * cluster was out of reach (and the revoke may fail too). */
        int failing = ehttp_call_failing(o->call, reason, sizeof reason);

        ehttp_cancel(o->call);
        o->call = NULL;
        snprintf(msg, sizeof msg, "etcd: no member took the wait (last: %s)",
                 reason);
        eop_give_up(o, failing ? CACHIFY_ERR_IO : CACHIFY_TIMEOUT,
                failing ? msg : "");
    }
    /* S_GRANT: handled when the lease arrives; later steps: granted. */
}

static void start_acquire(struct eop *o)
{
    json_t *body;

    o->ttl_s = eop_lease_ttl_s(&o->lock);
    body = eop_grant_body(o);
    if (o->lock.wait_ms > 0) {
        struct timeval tv = {(time_t)(o->lock.wait_ms / 1000),
                             (suseconds_t)(o->lock.wait_ms % 1000) * 1000};

        o->wait_timer = evtimer_new(o->e->base, on_wait_timer, o);
        if (o->wait_timer == NULL || event_add(o->wait_timer, &tv) != 0) {
            json_decref(body);
            eop_complete(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
            return;
        }
    }
    eop_post(o, S_GRANT, "/v3/lease/grant", body, o->e->io_timeout_ms);
}

/* After the grant: the nowait transaction, or the wait in v3lock. */
static void acquire_leased(struct eop *o, const json_t *r)
{
    struct etcd *e = o->e;
    char hex[20];
    json_t *cmp, *nopool, *put, *body, *entry;
    size_t n;

    o->lease = eop_granted_id(o, r);
    if (o->lease == 0) {
        eop_complete(o, CACHIFY_ERR_PROTO, 0, "etcd: lease grant without an ID");
        return;
    }
    if (o->gave_up) {
        eop_give_up(o, CACHIFY_TIMEOUT, "");
        return;
    }
    if (o->op == WIRE_POOL_ACQUIRE) {
        epool_leased(o);
        return;
    }
    if (o->lock.wait_ms != 0) {
        if (ekeep_add(e->keep, o->lease, o->ttl_s, EKEEP_WAIT, 0) != 0) {
            eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
            return;
        }
        body = json_object();
        if (body != NULL) {
            json_object_set_new(body, "name", ej_b64(o->pfx, o->pfxlen - 1));
            json_object_set_new(body, "lease", ej_id(o->lease));
        }
        eop_post(o, S_LOCK, "/v3/lock/lock", body, -1);
        return;
    }
    /* entry = N/<lease hex>, as v3lock names it */
    n = (size_t)snprintf(hex, sizeof hex, "%llx", (unsigned long long)o->lease);
    entry = NULL;
    {
        char *k = malloc(o->pfxlen + n);

        if (k != NULL) {
            memcpy(k, o->pfx, o->pfxlen);
            memcpy(k + o->pfxlen, hex, n);
            entry = ej_b64(k, o->pfxlen + n);
            free(k);
        }
    }
    cmp = prefix_range(o);
    ej_set(&cmp, "target", json_string("CREATE"));
    ej_set(&cmp, "result", json_string("EQUAL"));
    ej_set(&cmp, "create_revision", json_string("0"));
    nopool = ej_prefix(o->qpfx, o->qpfxlen);
    ej_set(&nopool, "target", json_string("CREATE"));
    ej_set(&nopool, "result", json_string("EQUAL"));
    ej_set(&nopool, "create_revision", json_string("0"));
    put = entry ? json_pack("{s:o, s:s, s:o}", "key", entry, "value", "",
                            "lease", ej_id(o->lease))
                : NULL;
    body = ej_txn(ej_list(2, cmp, nopool),
                  ej_list(1, put ? json_pack("{s:o}", "request_put", put)
                                 : NULL),
                  ej_list(2, ej_read(holder_range(o)),
                          ej_read(pool_range(o))));
    if (body == NULL) {
        eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
        return;
    }
    eop_post(o, S_TRY, "/v3/kv/txn", body, e->io_timeout_ms);
}

/* The nowait transaction's answer. */
static void acquire_tried(struct eop *o, const json_t *r)
{
    const json_t *resp;
    json_t *kv;

    if (json_is_true(json_object_get(r, "succeeded"))) {
        eop_granted(o, ej_num(json_object_get(r, "header"), "revision"), 0);
        return;
    }
    resp = ej_txn_range(r, 0);
    kv = ej_first_kv(resp);
    if (kv != NULL && ej_num(kv, "lease") == o->lease) {
        /* A retry after a lost answer: the entry is ours. */
        eop_granted(o, ej_num(kv, "create_revision"), 0);
        return;
    }
    if (kv == NULL && pool_entries(r) > 0)
        eop_cleanup(o, CACHIFY_ERR_TYPE, 0, WIRE_NOT_A_LOCK);
    else
        eop_cleanup(o, CACHIFY_LOCKED, 0, "");
}

void eop_release_held(struct eop *o)
{
    eop_post(o, S_REVOKE, "/v3/lease/revoke", ej_lease_body(o->hold_lease),
             o->e->io_timeout_ms);
}

/* The holder of the lock (release, force, extend, pttl), read with the
 * pool of the same key (with_pool). */
static void holder_found(struct eop *o, const json_t *r)
{
    json_t *kv = ej_first_kv(ej_txn_range(r, 0));
    uint64_t deadline, now = ehttp_now_us();

    if (kv == NULL) {
        if (pool_entries(r) > 0)
            eop_complete(o, CACHIFY_ERR_TYPE, 0, WIRE_NOT_A_LOCK);
        else
            eop_complete(o, CACHIFY_OK, o->op == WIRE_PTTL ? -2 : 0, "");
        return;
    }
    o->hold_lease = ej_num(kv, "lease");
    o->hold_rev = ej_num(kv, "create_revision");
    o->hold_key = json_incref(json_object_get(kv, "key"));
    if ((o->op == WIRE_RELEASE || o->op == WIRE_EXTEND) &&
        (uint64_t)o->hold_rev != o->token) {
        eop_complete(o, CACHIFY_OK, 0, "");
        return;
    }
    switch (o->op) {
    case WIRE_RELEASE:
    case WIRE_FORCE:
        eop_release_held(o);
        return;
    case WIRE_PTTL:
        if (ekeep_find(o->e->keep, o->hold_lease, &deadline) == EKEEP_SESSION) {
            eop_complete(o, CACHIFY_OK,
                     deadline == 0 ? -1
                     : deadline > now ? (long long)((deadline - now + 999) / 1000)
                                      : 1,
                     "");
            return;
        }
        eop_post(o, S_TTL, "/v3/lease/timetolive", ej_lease_body(o->hold_lease),
             o->e->io_timeout_ms);
        return;
    case WIRE_EXTEND:
        eop_extend_held(o);
        return;
    default:
        eop_complete(o, CACHIFY_ERR_ARG, 0, "bad call");
        return;
    }
}

/* A lease/revoke whose lease may be gone already. */
int eop_revoked(int status, const json_t *reply)
{
    return status == CACHIFY_OK ||
           (status == CACHIFY_ERR_SERVER && ehttp_error_code(reply) == 5);
}

static void on_step(void *arg, int status, json_t *r, const char *msg)
{
    struct eop *o = arg;
    struct etcd *e = o->e;
    long long ttl, granted_ttl;

    o->call = NULL;
    if (o->step >= S_P_JOIN) {
        epool_step(o, status, r, msg);
        return;
    }
    /* An extend's steps, its failures included, are etcd_extend.c's. */
    switch (o->step) {
    case S_XTTL:
    case S_RENEW:
    case S_NEWLEASE:
    case S_MOVE:
    case S_MOVE_CHECK:
    case S_DROP_OLD:
        eextend_step(o, status, r, msg);
        return;
    default:
        break;
    }
    /* Steps whose errors are answers of their own. */
    switch (o->step) {
    case S_CLEANUP:
        if (!eop_revoked(status, r))
            ekeep_add(e->keep, o->lease, o->ttl_s, EKEEP_DOOMED, 0);
        eop_complete(o, o->status, o->value, o->msg);
        return;
    case S_REVOKE:
        if (eop_revoked(status, r)) {
            ekeep_forget(e->keep, o->hold_lease);
            eop_complete(o, CACHIFY_OK, status == CACHIFY_OK, "");
            return;
        }
        break;
    case S_REFRESH:
        /* The lock is held either way; a failed renewal only means its
         * lifetime counts from the last renewal during the wait. */
        eop_complete(o, CACHIFY_OK, o->value, "");
        return;
    default:
        break;
    }
    if (o->step == S_GRANT && eop_lease_exists(o, status, r)) {
        acquire_leased(o, NULL);
        return;
    }
    if (status != CACHIFY_OK) {
        /* After the lease exists, it must not outlive the failure; a
         * failed grant of our own ID may have been granted too. */
        if ((o->op == WIRE_ACQUIRE || o->op == WIRE_POOL_ACQUIRE) &&
            o->step != S_GRANT)
            eop_cleanup(o, status, 0, msg);
        else if (o->step == S_GRANT && o->lease != 0)
            eop_give_up(o, status, msg);
        else
            eop_complete(o, status, 0, msg);
        return;
    }
    switch (o->step) {
    case S_GRANT:
        acquire_leased(o, r);
        return;
    case S_TRY:
        acquire_tried(o, r);
        return;
    case S_LOCK: {
        json_t *key = json_object_get(r, "key");

        if (!json_is_string(key)) {
            eop_cleanup(o, CACHIFY_ERR_PROTO, 0, "etcd: lock answer without key");
            return;
        }
        /* The entry, and whether a pool took the key meanwhile: our
         * entry, queued before it, made every later pool acquire fail. */
        eop_post(o, S_CHECK, "/v3/kv/txn",
                 with_pool(o, json_pack("{s:O}", "key", key)),
                 e->io_timeout_ms);
        return;
    }
    case S_CHECK: {
        json_t *kv = ej_first_kv(ej_txn_range(r, 0));

        if (pool_entries(r) > 0) {
            eop_cleanup(o, CACHIFY_ERR_TYPE, 0, WIRE_NOT_A_LOCK);
            return;
        }
        if (kv == NULL || ej_num(kv, "lease") != o->lease) {
            eop_cleanup(o, CACHIFY_ERR_SERVER, 0,
                    "etcd: the lock's lease ended while it waited");
            return;
        }
        eop_granted(o, ej_num(kv, "create_revision"), 1);
        return;
    }
    case S_HOLDER:
        holder_found(o, r);
        return;
    case S_REVOKE:
        eop_complete(o, CACHIFY_OK, 1, "");
        return;
    case S_TTL:
        ttl = ej_num(r, "TTL");
        granted_ttl = ej_num(r, "grantedTTL");
        if (ttl < 0)
            eop_complete(o, CACHIFY_OK, -2, ""); /* expired meanwhile */
        else if (granted_ttl >= EKEEP_FOREVER_TTL_S)
            eop_complete(o, CACHIFY_OK, -1, "");
        else
            eop_complete(o, CACHIFY_OK,
                     (ttl + 1 < granted_ttl ? ttl + 1 : granted_ttl) * 1000,
                     "");
        return;
    case S_COUNT: {
        /* A lock with any entry; a pool (cachifyd's IS_LOCKED on a pool
         * key) when every slot is held: entries >= its size. */
        json_t *pool = ej_first_kv(ej_txn_range(r, 1));
        long long size = pool ? ej_value_num(pool) : 0;

        if (size < 0) {
            eop_complete(o, CACHIFY_ERR_PROTO, 0, EJ_NOT_BASE64);
            return;
        }
        eop_complete(o, CACHIFY_OK,
                     ej_num(ej_txn_range(r, 0), "count") > 0 ||
                         (size > 0 && pool_entries(r) >= size),
                     "");
        return;
    }
    case S_PING:
        eop_complete(o, CACHIFY_OK, 1, "");
        return;
    default:
        eop_complete(o, CACHIFY_ERR_PROTO, 0, "etcd: unexpected step");
        return;
    }
}

/* ---- the backend ---- */

struct etcd *etcd_new(struct event_base *base, const struct cachify_url *url,
                      int io_timeout_ms)
{
    struct etcd *e = calloc(1, sizeof *e);

    if (e == NULL)
        return NULL;
    e->base = base;
    e->url = *url;
    e->io_timeout_ms = io_timeout_ms;
    e->http = ehttp_new(base, url, io_timeout_ms);
    e->keep = e->http ? ekeep_new(base, e->http) : NULL;
    if (e->keep == NULL) {
        ehttp_free(e->http);
        free(e);
        return NULL;
    }
    return e;
}

/* N/ for key: the URL's prefix, the key escaped (see the top), '/'. */
static char *lock_prefix(const struct etcd *e, const char *key, size_t keylen,
                         size_t *len)
{
    size_t plen = strlen(e->url.etcd_prefix), n = plen;
    char *p = malloc(plen + keylen * 3 + 2);

    if (p == NULL)
        return NULL;
    memcpy(p, e->url.etcd_prefix, plen);
    for (size_t i = 0; i < keylen; i++) {
        if (key[i] == '%' || key[i] == '/') {
            n += (size_t)sprintf(p + n, "%%%02X", (unsigned char)key[i]);
            continue;
        }
        p[n++] = key[i];
    }
    p[n++] = '/';
    p[n] = '\0';
    *len = n;
    return p;
}

/* Q/ for the lock prefix N/ (the pool's entries: see etcd_pool.c). */
static char *pool_prefix(const char *pfx, size_t pfxlen, size_t *len)
{
    char *q = malloc(pfxlen + 3);

    if (q == NULL)
        return NULL;
    memcpy(q, pfx, pfxlen - 1);
    memcpy(q + pfxlen - 1, "%P/", 4);
    *len = pfxlen + 2;
    return q;
}

int etcd_start(struct etcd *e, enum wire_op op, const char *key,
               size_t keylen, const struct wire_lock *lock, unsigned max_size,
               uint64_t token,
               long long ms, etcd_cb cb, void *arg)
{
    struct eop *o;

    if ((o = calloc(1, sizeof *o)) == NULL)
        return CACHIFY_ERR_NOMEM;
    if (key != NULL &&
        ((o->pfx = lock_prefix(e, key, keylen, &o->pfxlen)) == NULL ||
         (o->qpfx = pool_prefix(o->pfx, o->pfxlen, &o->qpfxlen)) == NULL)) {
        free(o->pfx);
        free(o);
        return CACHIFY_ERR_NOMEM;
    }
    o->max_size = max_size;
    o->e = e;
    o->op = op;
    o->token = token;
    o->ms = ms;
    if (lock != NULL)
        o->lock = *lock;
    o->cb = cb;
    o->arg = arg;
    o->next = e->ops;
    if (e->ops)
        e->ops->prev = o;
    e->ops = o;
    /* Every path below ends in eop_post(), whose failures come back through
     * cb like any other: the call has started. */
    switch (op) {
    case WIRE_ACQUIRE:
    case WIRE_POOL_ACQUIRE:
        start_acquire(o);
        break;
    case WIRE_RELEASE:
    case WIRE_FORCE:
    case WIRE_EXTEND:
    case WIRE_PTTL:
        eop_post(o, S_HOLDER, "/v3/kv/txn", with_pool(o, holder_range(o)),
                 e->io_timeout_ms);
        break;
    case WIRE_IS_LOCKED: {
        json_t *r = prefix_range(o);

        ej_set(&r, "count_only", json_true());
        eop_post(o, S_COUNT, "/v3/kv/txn", with_pool(o, r), e->io_timeout_ms);
        break;
    }
    case WIRE_PING:
    case WIRE_AUTH:
        eop_post(o, S_PING, "/v3/maintenance/status", json_object(),
             e->io_timeout_ms);
        break;
    case WIRE_POOL_RELEASE:
    case WIRE_POOL_FORCE:
    case WIRE_POOL_SIZE:
    case WIRE_POOL_EXTEND:
        epool_start(o);
        break;
    }
    return CACHIFY_OK;
}

/* The lease a call cut short leaves that holds nothing of the caller's,
 * or 0: an acquire's (it may hold an entry, but the caller never learns
 * its token); an extend's new lease before its move is sent, or after the
 * move failed (S_CLEANUP); the old lease once the move was made
 * (S_DROP_OLD).  Not an extend's new lease while the move is under way or
 * checked: it may hold the lock, and is left to its TTL (S_MOVE_CHECK). */
static long long cut_lease(const struct eop *o)
{
    switch (o->op) {
    case WIRE_ACQUIRE:
    case WIRE_POOL_ACQUIRE:
        return o->lease;
    case WIRE_EXTEND:
    case WIRE_POOL_EXTEND:
        if (o->step == S_NEWLEASE || o->step == S_CLEANUP)
            return o->lease;
        return o->step == S_DROP_OLD ? o->hold_lease : 0;
    default:
        return 0;
    }
}

void etcd_free(struct etcd *e, void (*orphan)(void *arg, void *ctx),
               void *ctx)
{
    if (e == NULL)
        return;
    while (e->ops != NULL) {
        struct eop *o = e->ops;
        void *arg = o->arg;
        long long lease = cut_lease(o);

        /* It goes with the kept ones. */
        if (lease != 0)
            ekeep_add(e->keep, lease, 1, EKEEP_DOOMED, 0);
        op_free(o);
        if (orphan != NULL)
            orphan(arg, ctx);
    }
    ekeep_free(e->keep, &e->url, e->io_timeout_ms);
    ehttp_free(e->http);
    free(e);
}
