/* engine/lock_value.c - values stored with a hold (Redis SET) and the
 * operations that read or overwrite them: locktable_get and locktable_set
 * (see locktable.h).
 *
 * Owns: the values map (struct lock_value in locktable_int.h, keyed by the
 * entry's address like the links record), its byte count toward
 * limits.max_data_bytes, and what SET does to a key that is already held.
 * Does not own: acquiring a free key (SET NX is locktable_acquire with a
 * value), releasing, expiry or the journal (locktable.c, lock_journal.c).
 *
 * A value belongs to the hold that stored it: it is attached at the grant,
 * before the journal writes the lease (so a written lease carries it), and
 * freed when that hold ends, however it ends.  A key held by ACQUIRE has no
 * value, and costs nothing here: the entry's ENTRY_HAS_VALUE flag is tested
 * before any lookup.
 */
#include <stdint.h>
#include <string.h>

#include "engine/locktable_int.h"

struct lock_value *lt_value_new(struct locktable *t, const char *bytes,
                                size_t len)
{
    if (len > UINT32_MAX ||
        len > SIZE_MAX - offsetof(struct lock_value, bytes) - 1)
        return NULL;
    struct lock_value *v =
        lt_apart_alloc(t, offsetof(struct lock_value, bytes) + (len ? len : 1),
                       0, offsetof(struct lock_value, ref));
    if (!v)
        return NULL;
    v->len = (uint32_t)len;
    v->entry = NULL;
    if (len)
        memcpy(v->bytes, bytes, len);
    return v;
}

void lt_value_free(struct locktable *t, struct lock_value *v)
{
    if (v)
        lt_apart_free(t, v, v->ref);
}

void lt_value_attach(struct locktable *t, struct lock_entry *e,
                     struct lock_value *v)
{
    v->entry = e;
    v->node.keylen = sizeof(v->entry);
    v->node.hash = map_hash(&t->values, &v->entry, sizeof(v->entry));
    map_insert(&t->values, &v->node, v->ref);
    e->flags |= ENTRY_HAS_VALUE;
    t->data_bytes += v->len;
    t->stats.values++;
}

struct lock_value *lt_value_find(struct locktable *t,
                                 const struct lock_entry *e)
{
    if (!(e->flags & ENTRY_HAS_VALUE))
        return NULL;
    struct map_node *n = map_find(&t->values, &e, sizeof(e),
                                  map_hash(&t->values, &e, sizeof(e)));
    return n ? CONTAINER_OF(n, struct lock_value, node) : NULL;
}

struct lock_value *lt_value_detach(struct locktable *t, struct lock_entry *e)
{
    struct lock_value *v = lt_value_find(t, e);
    if (!v)
        return NULL;
    map_remove(&t->values, &v->node);
    e->flags &= (uint8_t)~ENTRY_HAS_VALUE;
    t->data_bytes -= v->len;
    t->stats.values--;
    return v;
}

int locktable_get(struct locktable *t, const char *key, size_t keylen,
                  uint64_t *token, const char **value, size_t *vlen)
{
    uint64_t now = lt_now_us(t);
    struct lock_entry *e = lt_lookup(t, key, keylen, now, NULL);
    if (!e || !e->token)
        return lt_recovering_at(t, now) ? -1 : 0;
    const struct lock_value *v = lt_value_find(t, e);
    *token = e->token;
    *value = v ? v->bytes : NULL;
    *vlen = v ? v->len : 0;
    return 1;
}

/* Gives held e a new holder: s's value and expiry under a new token.  The
 * old holder's value, token, SESSION link and journal record are put back
 * untouched when the new lease cannot be written, so a failing disk never
 * loses the old lock. */
static enum lock_result overwrite(struct locktable *t, struct lock_entry *e,
                                  uint64_t now, uint64_t ttl_us,
                                  struct lock_value *v, uint64_t *token)
{
    uint64_t old_token = e->token;
    int was_durable = (e->flags & ENTRY_DURABLE) != 0;
    struct lock_value *old = lt_value_detach(t, e);
    *token = lt_grant(t, e, NULL, now, ttl_us, NULL, 0, v);
    if (*token == 0) {
        e->token = old_token;
        if (old)
            lt_value_attach(t, e, old);
        return LOCK_NOT_DURABLE;
    }
    /* lt_grant counted a new hold; the old one ends here, unreleased. */
    t->stats.held--;
    if (was_durable && t->journal.freed)
        t->journal.freed(t->journal.arg, e->key, e->node.keylen, old_token);
    lt_value_free(t, old);
    if (e->flags & ENTRY_SESSION) {
        struct lock_links *x = lt_links_find(t, e);
        lt_session_unlink_lock(x);
        lt_links_trim(t, e, x);
    }
    return LOCK_GRANTED;
}

enum lock_result locktable_set(struct locktable *t, const struct lock_set *s,
                               uint64_t *token)
{
    uint64_t now = lt_now_us(t);
    uint32_t hash;
    struct lock_entry *e = lt_lookup(t, s->key, s->keylen, now, &hash);
    if (!e && lt_pool_exists(t, s->key, s->keylen))
        return LOCK_WRONGTYPE; /* one keyspace: see lock_pool.h */
    int held = e && e->token;
    if (s->when == LOCK_SET_IF_HELD && !held)
        return LOCK_BUSY;
    /* KEEPTTL: the time the holder has left (lt_lookup settled a passed
     * deadline, so a held key's is in the future); 0 = no expiry. */
    uint64_t keep = held ? lt_entry_deadline(t, e) : ENTRY_NEVER;
    uint64_t ttl_us = !s->keep_ttl ? s->ttl_us
                      : keep == ENTRY_NEVER ? 0 : keep - now;

    if (!e && t->limits.max_locks &&
        t->entries + t->pool_slots >= t->limits.max_locks)
        return LOCK_LIMIT_LOCKS;
    const struct lock_value *old = held ? lt_value_find(t, e) : NULL;
    size_t more = (e ? 0 : s->keylen) + (s->value ? s->vlen : 0);
    size_t freed = old ? old->len : 0;
    if (more > freed && lt_over_data_limit(t, more - freed))
        return LOCK_LIMIT_MEMORY;
    struct lock_value *v = NULL;
    if (s->value && !(v = lt_value_new(t, s->value, s->vlen)))
        return LOCK_NO_MEMORY;

    if (held) {
        enum lock_result r = overwrite(t, e, now, ttl_us, v, token);
        if (r != LOCK_GRANTED)
            lt_value_free(t, v);
        return r;
    }
    int created = 0;
    if (!e) {
        if (!(e = lt_entry_create(t, s->key, s->keylen, hash))) {
            lt_value_free(t, v);
            return LOCK_NO_MEMORY;
        }
        created = 1;
    }
    /* Free, or an unheld entry carrying waiters through recovery: a grant
     * like ACQUIRE's. */
    *token = lt_grant(t, e, NULL, now, ttl_us, NULL, 0, v);
    if (*token)
        return LOCK_GRANTED;
    lt_value_free(t, v);
    if (created)
        lt_entry_destroy(t, e, NULL);
    return LOCK_NOT_DURABLE;
}
