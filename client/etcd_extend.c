/* client/etcd_extend.c - EXTEND on the etcd backend (a lock's, and a
 * pool slot's once etcd_pool.c found it), from the holder found to the
 * answer.
 *
 * Owns: the steps S_XTTL to S_DROP_OLD of a call (etcd_op.h), failures
 * included.  A lease keeps its TTL for life, so: the holder's lease is
 * read (S_XTTL); the same lifetime is a keep-alive (S_RENEW); another is
 * a new lease (S_NEWLEASE, its ID ours: eop_grant_body), the holder entry
 * moved onto it in a transaction that checks the token (S_MOVE), then the
 * old lease revoked (S_DROP_OLD).  A move whose answer is lost is looked
 * up (S_MOVE_CHECK) rather than undone: revoking the new lease could end
 * the lock the caller still holds.  A SESSION lock of this handle only
 * moves its expiry (etcd_keep.c).  Does not own: finding the holder or
 * the slot (etcd.c, etcd_pool.c), the lease grant's body and the end of a
 * call (etcd.c), which lease a dropped call leaves behind (etcd.c's
 * cut_lease), HTTP (etcd_http.c).
 */
#include "client/etcd_op.h"

#include <stdio.h>

#include "client/cachify.h"
#include "client/etcd_http.h"
#include "client/etcd_keep.h"

/* A SESSION lock of this handle moves its expiry; any other reads the
 * holder's lease first (S_XTTL). */
void eop_extend_held(struct eop *o)
{
    struct etcd *e = o->e;
    struct wire_lock l = {o->ms, 0, 0};
    uint64_t deadline;

    if (ekeep_find(e->keep, o->hold_lease, &deadline) == EKEEP_SESSION) {
        ekeep_set_deadline(e->keep, o->hold_lease,
                           ehttp_now_us() + (uint64_t)o->ms * 1000);
        eop_complete(o, CACHIFY_OK, 1, "");
        return;
    }
    o->ttl_s = eop_lease_ttl_s(&l);
    eop_post(o, S_XTTL, "/v3/lease/timetolive", ej_lease_body(o->hold_lease),
             e->io_timeout_ms);
}

/* extend: the new lease is there; move the holder entry onto it. */
static void extend_leased(struct eop *o, const json_t *r)
{
    json_t *cmp, *put, *body;

    o->lease = eop_granted_id(o, r);
    if (o->lease == 0) {
        eop_complete(o, CACHIFY_ERR_PROTO, 0, "etcd: lease grant without an ID");
        return;
    }
    cmp = json_pack("{s:O, s:s, s:s, s:o}", "key", o->hold_key, "target",
                    "CREATE", "result", "EQUAL", "create_revision",
                    ej_id((long long)o->token));
    put = json_pack("{s:O, s:o, s:b}", "key", o->hold_key, "lease",
                    ej_id(o->lease), "ignore_value", 1);
    body = cmp && put ? json_pack("{s:[o], s:[{s:o}]}", "compare", cmp,
                                  "success", "request_put", put)
                      : NULL;
    if (body == NULL) {
        json_decref(cmp);
        json_decref(put);
        eop_cleanup(o, CACHIFY_ERR_NOMEM, 0, "out of memory");
        return;
    }
    eop_post(o, S_MOVE, "/v3/kv/txn", body, o->e->io_timeout_ms);
}

/* The answer of an extend step. */
void eextend_step(struct eop *o, int status, json_t *r, const char *msg)
{
    struct etcd *e = o->e;

    /* Steps whose errors are answers of their own. */
    switch (o->step) {
    case S_DROP_OLD:
        if (!eop_revoked(status, r))
            ekeep_add(e->keep, o->hold_lease, 1, EKEEP_DOOMED, 0);
        eop_complete(o, CACHIFY_OK, 1, "");
        return;
    case S_MOVE_CHECK: {
        json_t *kv = status == CACHIFY_OK ? ej_first_kv(r) : NULL;
        if (status != CACHIFY_OK) {
            /* Nobody can say whether the entry is on the new lease: it is
             * left to run out its TTL rather than revoked, which could
             * end the lock the caller still holds. */
            eop_complete(o, o->status, 0, o->msg);
        } else if (kv != NULL && ej_num(kv, "lease") == o->lease &&
                   ej_num(kv, "create_revision") == (long long)o->token) {
            /* The move was applied, only its answer was lost. */
            ekeep_forget(e->keep, o->hold_lease);
            eop_post(o, S_DROP_OLD, "/v3/lease/revoke", ej_lease_body(o->hold_lease),
                 e->io_timeout_ms);
        } else {
            eop_cleanup(o, o->status, 0, o->msg);
        }
        return;
    }
    default:
        break;
    }
    if (o->step == S_NEWLEASE && eop_lease_exists(o, status, r)) {
        extend_leased(o, NULL);
        return;
    }
    if (status != CACHIFY_OK) {
        /* A failed grant of our own ID may have been granted too. */
        if (o->step == S_NEWLEASE && o->lease != 0)
            eop_give_up(o, status, msg);
        else if ((o->op == WIRE_EXTEND || o->op == WIRE_POOL_EXTEND) &&
                 o->step == S_MOVE) {
            /* Revoking the new lease now would end the lock if the move
             * was applied and only its answer lost: look first. */
            o->status = status;
            snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "");
            eop_post(o, S_MOVE_CHECK, "/v3/kv/range",
                 json_pack("{s:O}", "key", o->hold_key), e->io_timeout_ms);
        }
        else
            eop_complete(o, status, 0, msg);
        return;
    }
    switch (o->step) {
    case S_XTTL:
        /* The same TTL: a keep-alive renews the lease to it.  Another:
         * a lease cannot change its TTL, so the entry moves to a new
         * one. */
        if (ej_num(r, "grantedTTL") == o->ttl_s) {
            eop_post(o, S_RENEW, "/v3/lease/keepalive", ej_lease_body(o->hold_lease),
                 e->io_timeout_ms);
            return;
        }
        eop_post(o, S_NEWLEASE, "/v3/lease/grant", eop_grant_body(o),
             e->io_timeout_ms);
        return;
    case S_RENEW:
        /* Entries go only with their lease (release and force revoke
         * it), so a lease renewed means the lock still held: 1; a lease
         * gone (TTL 0 or none) means it was released meanwhile: 0. */
        eop_complete(o, CACHIFY_OK,
                 ej_num(json_object_get(r, "result"), "TTL") > 0, "");
        return;
    case S_NEWLEASE:
        extend_leased(o, r);
        return;
    case S_MOVE:
        if (!json_is_true(json_object_get(r, "succeeded"))) {
            eop_cleanup(o, CACHIFY_OK, 0, ""); /* released meanwhile */
            return;
        }
        ekeep_forget(e->keep, o->hold_lease);
        eop_post(o, S_DROP_OLD, "/v3/lease/revoke", ej_lease_body(o->hold_lease),
             e->io_timeout_ms);
        return;
    default:
        eop_complete(o, CACHIFY_ERR_PROTO, 0, "etcd: unexpected step");
        return;
    }
}
