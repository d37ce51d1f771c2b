/* engine/lock_session.h - the lock engine's session records and the queue of
 * ended sessions whose locks are still to be released (internal: only
 * engine/locktable.c includes it).
 *
 * Owns: the session side of the engine's lists.  One struct lock_session_rec
 * per session that holds (or may be handed) a SESSION lock, allocated by the
 * engine, and the two lists of them in a struct sess_table: `live` (the
 * owner's struct lock_session points at its record) and `draining` (the
 * owner has ended; a FIFO); and the owner's list of pending waits.  Does not
 * own: the locks or the waits.  A record is only an intrusive list of struct
 * sess_link, and the wait list one of struct lock_wait_link, which the
 * engine embeds in a lock's links record and in a waiter; releasing a lock,
 * handing it to a waiter, and everything else about locks stays in
 * locktable.c.
 *
 * Why a record apart from the owner's struct: ending a session must be O(1)
 * whatever it holds (style.md: "a connection that holds a million locks is
 * released in slices").  sess_end() moves the record, lock list and all,
 * onto the draining FIFO and detaches it from the owner, whose memory may go
 * at once (a connection is freed right after); the engine then releases the
 * record's locks a bounded number at a time, from its timer path
 * (sess_drain_head), and the record goes with its last lock.
 *
 * Allocation happens only in sess_reserve(), which the engine calls where it
 * may still answer "out of memory" with nothing changed (before a SESSION
 * lock is granted, before a SESSION wait is queued), so linking a lock on a
 * hand-off never allocates.  A record stays with its session until the
 * session ends, even with no lock left: a connection that takes and releases
 * SESSION locks all day makes one record, not one per lock.
 */
#ifndef CACHIFY_ENGINE_LOCK_SESSION_H
#define CACHIFY_ENGINE_LOCK_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "engine/locktable.h"

/* Embed one in a pending wait; it is in session->waiters while linked. */
struct lock_wait_link {
    struct lock_wait_link *prev, *next;
    struct lock_session *session;   /* NULL: not linked */
    uint8_t kind;                   /* SESS_KIND_*: what embeds it */
};

/* What embeds a struct lock_wait_link or a struct sess_link, so the engine
 * knows which release or cancel to run for it: a lock (struct lock_links,
 * struct lock_waiter) or a pool slot (lock_pool.c). */
#define SESS_KIND_LOCK 0u
#define SESS_KIND_POOL 1u

/* Links l into s's waits / unlinks it (a no-op when not linked).  O(1). */
void sess_add_wait(struct lock_session *s, struct lock_wait_link *l);
void sess_remove_wait(struct lock_wait_link *l);

/* Embed one in what a session holds.  rec NULL: not linked. */
struct sess_link {
    struct sess_link *prev, *next;  /* in rec->locks */
    struct lock_session_rec *rec;
    uint8_t kind;                   /* SESS_KIND_* */
};

struct lock_session_rec {
    struct sess_link *locks;        /* what the session holds; NULL: nothing */
    size_t nlocks;                  /* length of `locks` */
    int ended;                      /* 1 once on the draining FIFO */
    uint64_t ended_at;              /* monotonic us of sess_end, when ended */
    struct lock_session_rec *prev, *next; /* in live or draining */
    struct sess_table *table;       /* the table whose lists hold it */
};

struct sess_table {
    struct lock_session_rec *live;  /* records of sessions not ended */
    struct lock_session_rec *drain_head, *drain_tail; /* ended, oldest first */
    size_t draining;                /* records on the FIFO */
    size_t draining_locks;          /* links left on them, for tests/stats */
};

/* Empty lists, no allocation. */
void sess_table_init(struct sess_table *st);

/* Frees every record, live or draining.  The links in them are left as they
 * are: the caller is freeing what holds them.  Owners' pointers to live
 * records dangle afterwards, as everything of a freed table does. */
void sess_table_free(struct sess_table *st);

/* Makes sure s has a record.  0, or -1 when out of memory (nothing changed). */
int sess_reserve(struct sess_table *st, struct lock_session *s);

/* Adds l (not linked) to record r.  Never allocates. */
void sess_link(struct lock_session_rec *r, struct sess_link *l);

/* Removes l from its record (a no-op when not linked).  A draining record
 * left empty leaves the FIFO and is freed here, so the FIFO only holds
 * records with locks to release.  Never allocates. */
void sess_unlink(struct sess_link *l);

/* Ends s at monotonic time now, in O(1): its record (if any) goes to the
 * draining FIFO with every link still in it, or is freed when empty, and s
 * no longer points at it.  s's waiters are not looked at (the engine
 * cancels them first). */
void sess_end(struct sess_table *st, struct lock_session *s, uint64_t now);

/* 1 while some ended session still has locks to release. */
static inline int sess_draining(const struct sess_table *st)
{
    return st->drain_head != NULL;
}

/* The next lock to release: the first link of the oldest ended session,
 * which the caller unlinks (by releasing what holds it) before asking
 * again; NULL when nothing is draining. */
static inline struct sess_link *sess_drain_head(const struct sess_table *st)
{
    return st->drain_head ? st->drain_head->locks : NULL;
}

#endif
