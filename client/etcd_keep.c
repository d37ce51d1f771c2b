/* client/etcd_keep.c - the leases a handle keeps (implements
 * client/etcd_keep.h).
 *
 * Owns: the list and its one timer, armed for the earliest renewal,
 * expiry or retry.  A lease has at most one call in flight; a renewal
 * whose answer says the lease is gone (released by someone, expired)
 * drops it.  The lists are short (a handle's waits and SESSION locks), so
 * a walk per tick is cheap.
 */
#include "client/etcd_keep.h"

#include <stdlib.h>

#include <event2/event.h>

#include "client/cachify.h"
#include "client/etcd_http.h"

/* Renewals no more often than this, whatever the TTL. */
#define MIN_RENEW_MS 500
/* A failed revoke is tried again after this. */
#define RETRY_MS 1000

struct kept {
    struct kept *next;
    struct ekeep *k;
    long long lease;
    long long ttl_s;
    enum ekeep_kind kind;
    uint64_t deadline_us;   /* SESSION: 0 never */
    uint64_t due_us;        /* next renewal or retry */
    struct ehttp_call *call;
};

struct ekeep {
    struct event_base *base;
    struct ehttp *http;
    struct kept *list;
    struct event *timer;
};

static uint64_t renew_us(long long ttl_s)
{
    long long ms = ttl_s > 3000000 ? 1000000000LL : ttl_s * 1000 / 3;

    return (uint64_t)(ms < MIN_RENEW_MS ? MIN_RENEW_MS : ms) * 1000;
}

static struct kept *find(const struct ekeep *k, long long lease)
{
    for (struct kept *p = k->list; p != NULL; p = p->next)
        if (p->lease == lease)
            return p;
    return NULL;
}

static void unlink_free(struct kept *p)
{
    struct ekeep *k = p->k;

    for (struct kept **pp = &k->list; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    ehttp_cancel(p->call);
    free(p);
}

/* Arms the timer for the earliest thing to do. */
static void rearm(struct ekeep *k)
{
    uint64_t now = ehttp_now_us(), first = 0;
    struct timeval tv;

    for (struct kept *p = k->list; p != NULL; p = p->next) {
        uint64_t t = p->due_us;

        if (p->call != NULL)
            continue; /* its answer rearms */
        if (p->kind == EKEEP_SESSION && p->deadline_us != 0 &&
            p->deadline_us < t)
            t = p->deadline_us;
        if (first == 0 || t < first)
            first = t;
    }
    event_del(k->timer);
    if (first == 0)
        return;
    first = first > now ? first - now : 0;
    tv.tv_sec = (time_t)(first / 1000000);
    tv.tv_usec = (suseconds_t)(first % 1000000);
    event_add(k->timer, &tv);
}

static void on_answer(void *arg, int status, json_t *reply, const char *msg)
{
    struct kept *p = arg;
    struct ekeep *k = p->k;
    uint64_t now = ehttp_now_us();

    (void)msg;
    p->call = NULL;
    if (p->kind == EKEEP_DOOMED) {
        /* Gone (revoked now, or before: NOT_FOUND) or try again. */
        if (status == CACHIFY_OK ||
            (status == CACHIFY_ERR_SERVER && ehttp_error_code(reply) == 5)) {
            unlink_free(p);
        } else {
            p->due_us = now + RETRY_MS * 1000u;
        }
    } else if (status == CACHIFY_OK) {
        json_t *res = json_object_get(reply, "result");
        json_t *ttl = json_object_get(res, "TTL");

        /* A lease that is gone has no TTL left: nothing to keep. */
        if (!json_is_string(ttl) || atoll(json_string_value(ttl)) <= 0) {
            unlink_free(p);
        } else {
            p->due_us = now + renew_us(p->ttl_s);
        }
    } else if (status == CACHIFY_ERR_SERVER && ehttp_error_code(reply) == 5) {
        unlink_free(p); /* NOT_FOUND: the lease is gone */
    } else {
        p->due_us = now + RETRY_MS * 1000u; /* a member is down: again */
    }
    rearm(k);
}

static void send_for(struct kept *p)
{
    char id[24];
    json_t *body;

    snprintf(id, sizeof id, "%lld", p->lease);
    body = json_pack("{s:s}", "ID", id);
    p->call = ehttp_post(p->k->http,
                         p->kind == EKEEP_DOOMED ? "/v3/lease/revoke"
                                                 : "/v3/lease/keepalive",
                         body, (long long)RETRY_MS * 5, on_answer, p);
    if (p->call == NULL)
        p->due_us = ehttp_now_us() + RETRY_MS * 1000u;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ekeep *k = arg;
    uint64_t now = ehttp_now_us();

    (void)fd;
    (void)what;
    for (struct kept *p = k->list; p != NULL; p = p->next) {
        if (p->call != NULL)
            continue;
        if (p->kind == EKEEP_SESSION && p->deadline_us != 0 &&
            now >= p->deadline_us) {
            p->kind = EKEEP_DOOMED; /* the SESSION lock's expiry */
            send_for(p);
        } else if (now >= p->due_us) {
            send_for(p);
        }
    }
    rearm(k);
}

struct ekeep *ekeep_new(struct event_base *base, struct ehttp *http)
{
    struct ekeep *k = calloc(1, sizeof *k);

    if (k == NULL)
        return NULL;
    k->base = base;
    k->http = http;
    k->timer = evtimer_new(base, on_timer, k);
    if (k->timer == NULL) {
        free(k);
        return NULL;
    }
    return k;
}

int ekeep_add(struct ekeep *k, long long lease, long long ttl_s,
              enum ekeep_kind kind, uint64_t deadline_us)
{
    struct kept *p = find(k, lease);

    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p == NULL)
            return -1;
        p->k = k;
        p->lease = lease;
        p->next = k->list;
        k->list = p;
    }
    p->ttl_s = ttl_s;
    p->kind = kind;
    p->deadline_us = deadline_us;
    p->due_us = ehttp_now_us() + (kind == EKEEP_DOOMED ? 0 : renew_us(ttl_s));
    if (kind == EKEEP_DOOMED) {
        ehttp_cancel(p->call); /* a renewal in flight no longer matters */
        p->call = NULL;
    }
    rearm(k);
    return 0;
}

void ekeep_forget(struct ekeep *k, long long lease)
{
    struct kept *p = find(k, lease);

    if (p != NULL) {
        unlink_free(p);
        rearm(k);
    }
}

enum ekeep_kind ekeep_find(const struct ekeep *k, long long lease,
                           uint64_t *deadline_us)
{
    const struct kept *p = find(k, lease);

    *deadline_us = p ? p->deadline_us : 0;
    return p ? p->kind : EKEEP_NONE;
}

void ekeep_set_deadline(struct ekeep *k, long long lease,
                        uint64_t deadline_us)
{
    struct kept *p = find(k, lease);

    if (p != NULL) {
        p->deadline_us = deadline_us;
        rearm(k);
    }
}

/* ---- the last revokes ---- */

struct last {
    struct event_base *base;
    int pending;
};

static void on_last(void *arg, int status, json_t *reply, const char *msg)
{
    struct last *l = arg;

    (void)status;
    (void)reply;
    (void)msg;
    if (--l->pending == 0)
        event_base_loopbreak(l->base);
}

void ekeep_free(struct ekeep *k, const struct cachify_url *url,
                int io_timeout_ms)
{
    struct last l = {NULL, 0};
    struct ehttp *h = NULL;

    if (k == NULL)
        return;
    event_free(k->timer);
    for (struct kept *p = k->list; p != NULL; p = p->next) {
        ehttp_cancel(p->call);
        p->call = NULL;
    }
    /* A loop of our own: the caller's may be gone or not running. */
    if (k->list != NULL && (l.base = event_base_new()) != NULL)
        h = ehttp_new(l.base, url, io_timeout_ms);
    while (k->list != NULL) {
        struct kept *p = k->list;
        char id[24];

        k->list = p->next;
        snprintf(id, sizeof id, "%lld", p->lease);
        if (h != NULL &&
            ehttp_post(h, "/v3/lease/revoke", json_pack("{s:s}", "ID", id),
                       io_timeout_ms, on_last, &l) != NULL)
            l.pending++;
        free(p);
    }
    if (l.pending > 0)
        event_base_dispatch(l.base);
    ehttp_free(h);
    if (l.base != NULL)
        event_base_free(l.base);
    free(k);
}
