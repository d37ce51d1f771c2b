/* engine/tests/test_structs.c - the engine's data structures: heap, SipHash, map.
 *
 * Owns: one Check suite with a TCase per behaviour.  The heap tests check the
 * heap property, every node's index and every item's deadline after each
 * operation (heap_check), that equal deadlines leave together (in no
 * promised order), that a full heap refuses a node, that heap_move carries
 * an item to another heap or, when that one cannot grow, leaves it be,
 * that its array gives memory back after mass removal (without
 * reallocating at every step near a boundary) and grows again, and compare
 * random operation mixes against a brute-force model.  SipHash is held to all 64
 * published SipHash-2-4 vectors (key 00..0f, message 00 01 .. of length
 * 0..63).  The map tests use binary keys with NULs kept at the map's
 * key_offset from the node, pairs of keys that differ only in length,
 * forged hash collisions, and look inside a resize (an iterator pauses it)
 * to check lookups against both tables.  The slab allocator has its own
 * suite (test_slab.c).  Randomness is a fixed-seed xorshift, so a failure
 * replays exactly.  Heap and map nodes are named by slab references
 * (slab.h): every test object is registered in the suite's slab S with
 * slab_enter, and the checks read the heap's items through slab_ptr.
 */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine/heap.h"
#include "engine/map.h"
#include "engine/siphash.h"
#include "engine/slab.h"

/* For hot loops: every passing ck_assert writes its location to Check's
 * log, which over millions of checks costs seconds of system time. */
#define REQUIRE(c) do { if (!(c)) ck_abort_msg("failed: %s", #c); } while (0)

static uint64_t rng_state;

/* The slab whose references name every node of a test; fresh per test. */
static struct slab S;

static void slab_setup(void)
{
    slab_init(&S);
}

static void slab_teardown(void)
{
    slab_destroy(&S);
}

/* p's new reference in S. */
static uint32_t enter(void *p)
{
    uint32_t ref = slab_enter(&S, p);
    REQUIRE(ref != SLAB_REF_NONE);
    return ref;
}

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- heap ---- */

struct timer {
    struct heap_node hn;
    uint32_t ref;      /* in S */
    int id;
    uint64_t deadline; /* the test's own record of what the heap holds */
};

/* Fails the test unless h is a valid heap whose nodes know their index and
 * whose items hold the deadlines the timers were given. */
static void heap_check(const struct heap *h)
{
    REQUIRE(h->len <= h->cap);
    for (size_t i = 0; i < h->len; i++) {
        const struct timer *t = slab_ptr(&S, h->refs[i]);
        REQUIRE(t->ref == h->refs[i]);
        REQUIRE(t->hn.index == i);
        REQUIRE(h->deadlines[i] == t->deadline);
        REQUIRE(heap_deadline(h, &t->hn) == t->deadline);
        REQUIRE(i == 0 || h->deadlines[i] >= h->deadlines[(i - 1) / 2]);
    }
    REQUIRE(heap_peek_deadline(h) == (h->len ? h->deadlines[0] : UINT64_MAX));
}

static int pop_id(struct heap *h)
{
    struct heap_node *n = heap_pop(h);

    ck_assert_ptr_nonnull(n);
    ck_assert_uint_eq(n->index, HEAP_NOT_IN_HEAP);
    heap_check(h);
    return ((struct timer *)n)->id;
}

static void timer_push(struct heap *h, struct timer *t, int id, uint64_t deadline)
{
    heap_node_init(&t->hn);
    t->ref = enter(t);
    t->id = id;
    t->deadline = deadline;
    ck_assert_int_eq(heap_push(h, &t->hn, t->ref, deadline), 0);
    ck_assert(heap_node_queued(&t->hn));
    ck_assert_uint_eq(heap_deadline(h, &t->hn), deadline);
    heap_check(h);
}

static void timer_update(struct heap *h, struct timer *t, uint64_t deadline)
{
    t->deadline = deadline;
    heap_update(h, &t->hn, deadline);
    heap_check(h);
}

/* The sizes the lock engine's memory per lock is built from: a 4-byte heap
 * index, a 12-byte heap item (a whole 64-bit deadline and a reference), a
 * 12-byte map node and 4-byte buckets. */
START_TEST(test_node_sizes)
{
    struct heap h;
    struct map_table mt;

    ck_assert_uint_eq(sizeof(struct heap_node), 4);
    ck_assert_uint_eq(sizeof(*h.deadlines) + sizeof(*h.refs), 12);
    ck_assert_uint_eq(sizeof(*h.deadlines), 8);
    ck_assert_uint_eq(sizeof(struct map_node), 12);
    ck_assert_uint_eq(sizeof(*mt.buckets), 4);
}
END_TEST

START_TEST(test_heap_empty)
{
    struct heap h;
    struct timer t;

    heap_init(&h, &S, offsetof(struct timer, hn));
    ck_assert_ptr_null(heap_peek(&h));
    ck_assert_uint_eq(heap_peek_deadline(&h), UINT64_MAX);
    ck_assert_ptr_null(heap_pop(&h));
    ck_assert_uint_eq(heap_len(&h), 0);
    heap_node_init(&t.hn);
    heap_remove(&h, &t.hn); /* not queued: a no-op */
    ck_assert_uint_eq(heap_len(&h), 0);
    timer_push(&h, &t, 1, 7);
    ck_assert_uint_eq(heap_peek_deadline(&h), 7);
    ck_assert_int_eq(pop_id(&h), 1);
    ck_assert_ptr_null(heap_pop(&h));
    ck_assert_uint_eq(heap_peek_deadline(&h), UINT64_MAX);
    heap_free(&h);
    heap_free(&h); /* freeing an empty heap again is harmless */
}
END_TEST

/* The index is 32 bits: a full heap refuses the next node and leaves it
 * out, instead of wrapping an index into HEAP_NOT_IN_HEAP. */
START_TEST(test_heap_full)
{
    struct heap h;
    struct timer a, b;

    heap_init(&h, &S, offsetof(struct timer, hn));
    timer_push(&h, &a, 1, 10);
    h.len = HEAP_MAX_LEN; /* pretend: the array itself holds one item */
    heap_node_init(&b.hn);
    b.ref = enter(&b);
    ck_assert_int_eq(heap_push(&h, &b.hn, b.ref, 5), -1);
    ck_assert(!heap_node_queued(&b.hn));
    ck_assert_uint_eq(h.refs[0], a.ref); /* nothing was written */
    h.len = 1;
    heap_check(&h);
    ck_assert_int_eq(pop_id(&h), 1);
    heap_free(&h);
}
END_TEST

START_TEST(test_heap_random_sorted)
{
    enum { N = 10000 };
    struct timer *t = calloc(N, sizeof(*t));
    char *seen = calloc(N, 1);
    struct heap h;
    uint64_t prev = 0;

    ck_assert(t && seen);
    rng_state = 0x9e3779b97f4a7c15u;
    heap_init(&h, &S, offsetof(struct timer, hn));
    for (int i = 0; i < N; i++) {
        heap_node_init(&t[i].hn);
        t[i].ref = enter(&t[i]);
        t[i].id = i;
        t[i].deadline = rng() % 2000; /* many ties on purpose */
        REQUIRE(heap_push(&h, &t[i].hn, t[i].ref, t[i].deadline) == 0);
        if (i % 997 == 0)
            heap_check(&h);
    }
    heap_check(&h);
    ck_assert_uint_eq(heap_len(&h), N);
    for (int i = 0; i < N; i++) {
        uint64_t top = heap_peek_deadline(&h);
        struct heap_node *n = heap_pop(&h);
        struct timer *x = (struct timer *)n;
        REQUIRE(n != NULL && n->index == HEAP_NOT_IN_HEAP);
        REQUIRE(x->deadline == top);
        REQUIRE(top >= prev); /* never earlier than the one before */
        REQUIRE(seen[x->id]++ == 0);
        prev = top;
    }
    ck_assert_ptr_null(heap_pop(&h));
    heap_free(&h);
    free(t);
    free(seen);
}
END_TEST

/* Equal deadlines leave in no promised order, but together: every node of
 * the earliest deadline before any node of the next. */
START_TEST(test_heap_ties)
{
    struct timer t[60];
    struct heap h;
    static const uint64_t deadlines[3] = {5, 3, 7};

    heap_init(&h, &S, offsetof(struct timer, hn));
    for (int i = 0; i < 60; i++)
        timer_push(&h, &t[i], i, deadlines[i % 3]);
    for (int phase = 0; phase < 3; phase++) {
        /* deadline 3 (i % 3 == 1), then 5 (0), then 7 (2) */
        int want = phase == 0 ? 1 : phase == 1 ? 0 : 2;
        char got[60] = {0};
        for (int k = 0; k < 20; k++) {
            int id = pop_id(&h);
            ck_assert_int_eq(id % 3, want);
            ck_assert_int_eq(got[id]++, 0);
        }
    }
    ck_assert_uint_eq(heap_len(&h), 0);
    heap_free(&h);
}
END_TEST

START_TEST(test_heap_remove_positions)
{
    enum { N = 63 };
    struct timer t[N];
    char removed[N] = {0};
    struct heap h;

    heap_init(&h, &S, offsetof(struct timer, hn));
    for (int i = 0; i < N; i++)
        timer_push(&h, &t[i], i, (uint64_t)((i * 37) % N) * 10);
    for (int round = 0; round < 30; round++) {
        size_t len = heap_len(&h);
        size_t pos = round % 3 == 0 ? 0 : round % 3 == 1 ? len - 1 : len / 2;
        struct timer *victim = slab_ptr(&S, h.refs[pos]);

        heap_remove(&h, &victim->hn);
        ck_assert_uint_eq(victim->hn.index, HEAP_NOT_IN_HEAP);
        ck_assert_uint_eq(heap_len(&h), len - 1);
        heap_check(&h);
        heap_remove(&h, &victim->hn); /* second removal: no-op */
        ck_assert_uint_eq(heap_len(&h), len - 1);
        removed[victim->id] = 1;
    }
    /* The survivors leave in deadline order: deadline (i*37 % N)*10 is a
     * permutation, so walk deadlines upward and skip removed ids. */
    for (int d = 0; d < N; d++) {
        for (int i = 0; i < N; i++)
            if ((i * 37) % N == d && !removed[i])
                ck_assert_int_eq(pop_id(&h), i);
    }
    ck_assert_ptr_null(heap_peek(&h));
    heap_free(&h);
}
END_TEST

/* heap_move carries an item, deadline and reference, to another heap of
 * the same slab: the root, the last item and ones between, each heap in
 * order afterwards with every index right; when the target cannot grow
 * (the fault injector) it refuses and the item stays where it was. */
START_TEST(test_heap_move)
{
    enum { N = 40 };
    struct timer t[N];
    struct heap a, b, c;

    heap_init(&a, &S, offsetof(struct timer, hn));
    heap_init(&b, &S, offsetof(struct timer, hn));
    heap_init(&c, &S, offsetof(struct timer, hn));
    for (int i = 0; i < N; i++)
        timer_push(&a, &t[i], i, (uint64_t)((i * 7) % N) * 10);
    for (int k = 0; k < N / 2; k++) {
        size_t len = heap_len(&a);
        size_t pos = k % 3 == 0 ? 0 : k % 3 == 1 ? len - 1 : len / 2;
        struct timer *x = slab_ptr(&S, a.refs[pos]);
        ck_assert_int_eq(heap_move(&a, &b, &x->hn), 0);
        ck_assert_uint_eq(heap_len(&a), len - 1);
        ck_assert_uint_eq(heap_deadline(&b, &x->hn), x->deadline);
        ck_assert_uint_eq(b.refs[x->hn.index], x->ref);
        heap_check(&a);
        heap_check(&b);
    }
    struct timer *x = slab_ptr(&S, a.refs[heap_len(&a) - 1]);
    uint32_t index = x->hn.index;
    alloc_fail_nth(1); /* c's first array */
    ck_assert_int_eq(heap_move(&a, &c, &x->hn), -1);
    alloc_fail_reset();
    ck_assert_uint_eq(heap_len(&c), 0);
    ck_assert_uint_eq(heap_len(&a), N / 2);
    ck_assert_uint_eq(x->hn.index, index);
    ck_assert_uint_eq(heap_deadline(&a, &x->hn), x->deadline);
    heap_check(&a);
    uint64_t last = 0;
    for (int k = 0; k < N / 2; k++) {
        struct heap_node *n = heap_peek(&b);
        ck_assert_ptr_nonnull(n);
        ck_assert_uint_ge(((struct timer *)n)->deadline, last);
        last = ((struct timer *)n)->deadline;
        pop_id(&b);
    }
    ck_assert_ptr_null(heap_pop(&b));
    heap_free(&a);
    heap_free(&b);
    heap_free(&c);
}
END_TEST

START_TEST(test_heap_update)
{
    struct timer t[10];
    struct heap h;

    heap_init(&h, &S, offsetof(struct timer, hn));
    for (int i = 0; i < 10; i++)
        timer_push(&h, &t[i], i, (uint64_t)(i + 1) * 10);
    timer_update(&h, &t[9], 5); /* last to first: sifts up */
    ck_assert_ptr_eq(heap_peek(&h), &t[9].hn);
    ck_assert_uint_eq(heap_peek_deadline(&h), 5);
    timer_update(&h, &t[0], 1000); /* near the top to last: sifts down */
    timer_update(&h, &t[4], 65); /* between 60 and 70 */
    timer_update(&h, &t[2], 30); /* the same deadline again: stays valid */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(heap_deadline(&h, &t[i].hn), t[i].deadline);
    {
        const int want[] = {9, 1, 2, 3, 5, 4, 6, 7, 8, 0};
        for (int i = 0; i < 10; i++)
            ck_assert_int_eq(pop_id(&h), want[i]);
    }
    heap_free(&h);
}
END_TEST

START_TEST(test_heap_random_ops_vs_model)
{
    enum { N = 500, OPS = 20000 };
    struct timer *t = calloc(N, sizeof(*t));
    struct heap h;

    ck_assert_ptr_nonnull(t);
    rng_state = 12345;
    heap_init(&h, &S, offsetof(struct timer, hn));
    for (int i = 0; i < N; i++) {
        heap_node_init(&t[i].hn);
        t[i].ref = enter(&t[i]);
        t[i].id = i;
    }
    for (int op = 0; op < OPS; op++) {
        struct timer *x = &t[rng() % N];
        unsigned what = rng() % 4;

        if (!heap_node_queued(&x->hn)) {
            x->deadline = rng() % 100;
            REQUIRE(heap_push(&h, &x->hn, x->ref, x->deadline) == 0);
        } else if (what == 0) {
            heap_remove(&h, &x->hn);
            REQUIRE(!heap_node_queued(&x->hn));
        } else if (what == 1) {
            x->deadline = rng() % 100;
            heap_update(&h, &x->hn, x->deadline);
        } else if (what == 2 && heap_len(&h) > 0) {
            /* The model: the earliest deadline among queued nodes; the
             * heap may pop any node that has it. */
            uint64_t best = UINT64_MAX;
            size_t queued = 0;
            for (int i = 0; i < N; i++) {
                if (!heap_node_queued(&t[i].hn))
                    continue;
                queued++;
                REQUIRE(heap_deadline(&h, &t[i].hn) == t[i].deadline);
                if (t[i].deadline < best)
                    best = t[i].deadline;
            }
            REQUIRE(queued == heap_len(&h));
            REQUIRE(heap_peek_deadline(&h) == best);
            struct timer *popped = (struct timer *)heap_pop(&h);
            REQUIRE(popped != NULL && popped->deadline == best);
            REQUIRE(!heap_node_queued(&popped->hn));
        }
        heap_check(&h);
    }
    ck_assert_uint_gt(heap_len(&h), 0); /* heap_free with nodes still in */
    heap_free(&h);
    ck_assert_ptr_null(heap_peek(&h));
    free(t);
}
END_TEST

/* After a peak the array shrinks (under a quarter full it halves), with
 * hysteresis: pushing and popping across the point where it last shrank
 * reallocates nothing.  Emptied, it is back to its first size, and it grows
 * again as before; order is kept throughout. */
START_TEST(test_heap_shrinks_and_grows)
{
    enum { N = 100000 };
    struct heap h;
    struct timer *t = calloc(N, sizeof(*t));
    size_t peak, cap;

    ck_assert_ptr_nonnull(t);
    heap_init(&h, &S, offsetof(struct timer, hn));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            heap_node_init(&t[i].hn);
            if (round == 0)
                t[i].ref = enter(&t[i]);
            t[i].id = i;
            t[i].deadline = (uint64_t)(rng() % 1000000);
            REQUIRE(heap_push(&h, &t[i].hn, t[i].ref, t[i].deadline) == 0);
        }
        peak = h.cap;
        ck_assert_uint_ge(peak, N);
        uint64_t last = 0;
        while (heap_len(&h) > 1000) {
            struct heap_node *n = heap_pop(&h);
            REQUIRE(((struct timer *)n)->deadline >= last);
            last = ((struct timer *)n)->deadline;
            REQUIRE(h.cap <= peak && h.len <= h.cap);
        }
        heap_check(&h);
        /* Under a quarter full at every point of the way down, never less
         * than the items: 1000 items sit in 2048 slots. */
        ck_assert_uint_eq(h.cap, 2048);
        /* Down to 511 halves once more; then pushing and popping across
         * 511/512 reallocates nothing. */
        while (heap_len(&h) > 511)
            heap_pop(&h);
        ck_assert_uint_eq(h.cap, 1024);
        cap = h.cap;
        for (int i = 0; i < 1000; i++) {
            struct heap_node *n = heap_pop(&h);
            struct timer *x = (struct timer *)n;
            REQUIRE(heap_push(&h, n, x->ref, x->deadline) == 0);
            REQUIRE(h.cap == cap);
        }
        heap_check(&h);
        while (heap_pop(&h) != NULL)
            ;
        ck_assert_uint_eq(h.cap, 16); /* HEAP_INITIAL_CAP */
    }
    heap_free(&h);
    free(t);
}
END_TEST

/* ---- siphash ---- */

/* SipHash-2-4 reference outputs for key 00 01 .. 0f and message 00 01 ..
 * (i-1), i = 0..63: the published vectors (vectors_sip64 of the authors'
 * reference code), each 8-byte output read little-endian. */
static const uint64_t sip_vectors[64] = {
    UINT64_C(0x726fdb47dd0e0e31), UINT64_C(0x74f839c593dc67fd), UINT64_C(0x0d6c8009d9a94f5a),
    UINT64_C(0x85676696d7fb7e2d), UINT64_C(0xcf2794e0277187b7), UINT64_C(0x18765564cd99a68d),
    UINT64_C(0xcbc9466e58fee3ce), UINT64_C(0xab0200f58b01d137), UINT64_C(0x93f5f5799a932462),
    UINT64_C(0x9e0082df0ba9e4b0), UINT64_C(0x7a5dbbc594ddb9f3), UINT64_C(0xf4b32f46226bada7),
    UINT64_C(0x751e8fbc860ee5fb), UINT64_C(0x14ea5627c0843d90), UINT64_C(0xf723ca908e7af2ee),
    UINT64_C(0xa129ca6149be45e5), UINT64_C(0x3f2acc7f57c29bdb), UINT64_C(0x699ae9f52cbe4794),
    UINT64_C(0x4bc1b3f0968dd39c), UINT64_C(0xbb6dc91da77961bd), UINT64_C(0xbed65cf21aa2ee98),
    UINT64_C(0xd0f2cbb02e3b67c7), UINT64_C(0x93536795e3a33e88), UINT64_C(0xa80c038ccd5ccec8),
    UINT64_C(0xb8ad50c6f649af94), UINT64_C(0xbce192de8a85b8ea), UINT64_C(0x17d835b85bbb15f3),
    UINT64_C(0x2f2e6163076bcfad), UINT64_C(0xde4daaaca71dc9a5), UINT64_C(0xa6a2506687956571),
    UINT64_C(0xad87a3535c49ef28), UINT64_C(0x32d892fad841c342), UINT64_C(0x7127512f72f27cce),
    UINT64_C(0xa7f32346f95978e3), UINT64_C(0x12e0b01abb051238), UINT64_C(0x15e034d40fa197ae),
    UINT64_C(0x314dffbe0815a3b4), UINT64_C(0x027990f029623981), UINT64_C(0xcadcd4e59ef40c4d),
    UINT64_C(0x9abfd8766a33735c), UINT64_C(0x0e3ea96b5304a7d0), UINT64_C(0xad0c42d6fc585992),
    UINT64_C(0x187306c89bc215a9), UINT64_C(0xd4a60abcf3792b95), UINT64_C(0xf935451de4f21df2),
    UINT64_C(0xa9538f0419755787), UINT64_C(0xdb9acddff56ca510), UINT64_C(0xd06c98cd5c0975eb),
    UINT64_C(0xe612a3cb9ecba951), UINT64_C(0xc766e62cfcadaf96), UINT64_C(0xee64435a9752fe72),
    UINT64_C(0xa192d576b245165a), UINT64_C(0x0a8787bf8ecb74b2), UINT64_C(0x81b3e73d20b49b6f),
    UINT64_C(0x7fa8220ba3b2ecea), UINT64_C(0x245731c13ca42499), UINT64_C(0xb78dbfaf3a8d83bd),
    UINT64_C(0xea1ad565322a1a0b), UINT64_C(0x60e61c23a3795013), UINT64_C(0x6606d7e446282b93),
    UINT64_C(0x6ca4ecb15c5f91e1), UINT64_C(0x9f626da15c9625f3), UINT64_C(0xe51b38608ef25f57),
    UINT64_C(0x958a324ceb064572),
};

static uint8_t ref_key[16];

START_TEST(test_siphash_vectors)
{
    uint8_t msg[64], shifted[65];

    for (int i = 0; i < 16; i++)
        ref_key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    ck_assert_uint_eq(siphash24(ref_key, NULL, 0), sip_vectors[0]);
    for (int len = 0; len < 64; len++) {
        ck_assert_msg(siphash24(ref_key, msg, (size_t)len) == sip_vectors[len],
                      "vector %d", len);
        memcpy(shifted + 1, msg, (size_t)len); /* unaligned input, same hash */
        ck_assert_uint_eq(siphash24(ref_key, shifted + 1, (size_t)len), sip_vectors[len]);
    }
}
END_TEST

/* ---- map ---- */

/* The map tests' node: the key sits 12 bytes after the node. */
struct item {
    struct map_node node;
    uint8_t key[8];
    int id;
    int seen;
    uint32_t ref;      /* in S */
};

#define ITEM_KEY_OFFSET (offsetof(struct item, key) - offsetof(struct item, node))

/* Key of item i: 00 <i/2 as 4 LE bytes> 00, plus one more 00 when i is odd,
 * so every key holds NULs and keys 2k and 2k+1 differ only in length. */
static size_t make_key(uint32_t i, uint8_t out[8])
{
    uint32_t k = i / 2;

    memset(out, 0, 8);
    for (int b = 0; b < 4; b++)
        out[1 + b] = (uint8_t)(k >> (8 * b));
    return 6 + (i & 1);
}

/* Makes x item number i, ready for map_insert into m. */
static void item_init(struct item *x, const struct map *m, uint32_t i)
{
    x->id = (int)i;
    x->seen = 0;
    x->ref = enter(x);
    x->node.keylen = (uint32_t)make_key(i, x->key);
    x->node.hash = map_hash(m, x->key, x->node.keylen);
}

static struct item *make_items(const struct map *m, uint32_t n)
{
    struct item *it = calloc(n, sizeof(*it));

    ck_assert_ptr_nonnull(it);
    for (uint32_t i = 0; i < n; i++)
        item_init(&it[i], m, i);
    return it;
}

/* map_find for the key of item number i (built afresh, not the node's). */
static struct map_node *find_id(struct map *m, uint32_t i)
{
    uint8_t k[8];
    size_t len = make_key(i, k);

    return map_find(m, k, len, map_hash(m, k, len));
}

static void map_setup_at(struct map *m, size_t key_offset)
{
    for (int i = 0; i < 16; i++)
        ref_key[i] = (uint8_t)i;
    ck_assert_int_eq(map_init(m, ref_key, &S, key_offset), 0);
}

static void map_setup(struct map *m)
{
    map_setup_at(m, ITEM_KEY_OFFSET);
}

/* A node whose key lies further away than struct item's, to show that the
 * map reads keys where key_offset says and nowhere else. */
struct far_item {
    struct map_node node;
    char other[40];            /* would match if the map read these */
    char key[8];
    uint32_t ref;              /* in S */
};

START_TEST(test_map_hash_and_collisions)
{
    static const char *keys[] = {"abc", "abd", "abcd", "ab", ""};
    uint8_t msg[15], other_seed[16] = {1};
    struct far_item n[5];
    struct map m;

    map_setup_at(&m, offsetof(struct far_item, key));
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    /* The low 32 bits of SipHash-2-4 vector 15 (0xa129ca6149be45e5). */
    ck_assert_uint_eq(map_hash(&m, msg, 15), UINT32_C(0x49be45e5));
    {
        struct map m2;
        ck_assert_int_eq(map_init(&m2, other_seed, &S, 0), 0);
        ck_assert_uint_ne(map_hash(&m2, msg, 15), map_hash(&m, msg, 15));
        map_free(&m2);
    }
    /* Forged equal hashes: one chain, told apart by length then bytes. */
    for (int i = 0; i < 5; i++) {
        memset(&n[i], 0, sizeof(n[i]));
        memcpy(n[i].other, "abe", 3); /* a key that must never be found */
        memcpy(n[i].key, keys[i], strlen(keys[i]));
        n[i].node.keylen = (uint32_t)strlen(keys[i]);
        n[i].node.hash = 42;
        n[i].ref = enter(&n[i]);
        ck_assert_ptr_null(map_find(&m, keys[i], n[i].node.keylen, 42));
        map_insert(&m, &n[i].node, n[i].ref);
        ck_assert_ptr_eq(map_node_key(&m, &n[i].node), n[i].key);
    }
    ck_assert_uint_eq(map_count(&m), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_ptr_eq(map_find(&m, keys[i], strlen(keys[i]), 42), &n[i].node);
    ck_assert_ptr_null(map_find(&m, "abe", 3, 42));
    ck_assert_ptr_null(map_find(&m, "abc", 3, map_hash(&m, "abc", 3)));
    /* keylen is 32 bits: a longer length must not match by its low bits
     * (only the 3 bytes a wrong match would compare are ever read). */
    if (sizeof(size_t) > 4)
        ck_assert_ptr_null(map_find(&m, "abc", (size_t)MAP_KEY_MAX + 4, 42));
    map_remove(&m, &n[2].node);
    ck_assert_ptr_null(map_find(&m, "abcd", 4, 42));
    ck_assert_ptr_eq(map_find(&m, "abc", 3, 42), &n[0].node);
    ck_assert_ptr_eq(map_find(&m, "", 0, 42), &n[4].node);
    ck_assert_uint_eq(map_count(&m), 4);
    map_free(&m);
}
END_TEST

START_TEST(test_map_100k)
{
    enum { N = 100000 };
    struct map m;
    struct item *it;

    map_setup(&m);
    it = make_items(&m, N);
    for (uint32_t i = 0; i < N; i++) {
        REQUIRE(find_id(&m, i) == NULL);
        map_insert(&m, &it[i].node, it[i].ref);
        REQUIRE(map_count(&m) == i + 1);
    }
    for (uint32_t i = 0; i < N; i++)
        REQUIRE(find_id(&m, i) == &it[i].node);
    for (uint32_t i = N; i < N + 100; i++)
        REQUIRE(find_id(&m, i) == NULL);
    ck_assert_ptr_null(map_find(&m, "\0\0\0\0\0\0\0", 8, map_hash(&m, "\0\0\0\0\0\0\0", 8)));
    for (uint32_t i = 0; i < N; i += 2) /* drop the shorter of each pair */
        map_remove(&m, &it[i].node);
    ck_assert_uint_eq(map_count(&m), N / 2);
    for (uint32_t i = 0; i < N; i++)
        REQUIRE(find_id(&m, i) == (i % 2 ? &it[i].node : NULL));
    for (uint32_t i = 1; i < N; i += 2)
        map_remove(&m, &it[i].node);
    ck_assert_uint_eq(map_count(&m), 0);
    for (uint32_t i = 0; i < N; i += 7)
        REQUIRE(find_id(&m, i) == NULL);
    map_free(&m);
    free(it);
}
END_TEST

/* With a live iterator pausing the resize, checks that items [0, n) are
 * found through both tables and item n (absent) is not. */
static void check_mid_rehash(struct map *m, uint32_t n, const struct item *it)
{
    struct map_iter iter;
    size_t buckets = map_buckets(m);

    ck_assert(map_rehashing(m));
    map_iter_init(m, &iter);
    for (uint32_t i = 0; i < n; i++)
        REQUIRE(find_id(m, i) == &it[i].node);
    REQUIRE(find_id(m, n) == NULL);
    ck_assert(map_rehashing(m)); /* nothing moved: still two tables */
    ck_assert_uint_eq(map_buckets(m), buckets);
    map_iter_done(&iter);
}

START_TEST(test_map_grow_shrink)
{
    enum { N = 100000 };
    struct map m;
    struct item *it;
    size_t next_grow = 17, was, expect;

    map_setup(&m);
    ck_assert_uint_eq(map_buckets(&m), MAP_MIN_BUCKETS);
    it = make_items(&m, N);
    for (uint32_t i = 0; i < N; i++) {
        int before = map_rehashing(&m);
        map_insert(&m, &it[i].node, it[i].ref);
        if (before || !map_rehashing(&m)) {
            REQUIRE(map_count(&m) != next_grow);
            continue;
        }
        /* A grow starts exactly when the load passes 1, to double size. */
        ck_assert_uint_eq(map_count(&m), next_grow);
        ck_assert_uint_eq(map_buckets(&m), 2 * (next_grow - 1));
        next_grow = 2 * (next_grow - 1) + 1;
        if (i % 4 == 0) /* one find inside the resize before the check */
            ck_assert_ptr_eq(find_id(&m, i / 2), &it[i / 2].node);
        check_mid_rehash(&m, i + 1, it);
        if (map_count(&m) == 65537) {
            /* Incremental: the 65536-bucket move takes many calls, each
             * moving at most 4 chains / skipping at most 40 empty slots. */
            unsigned calls = 0;
            while (map_rehashing(&m)) {
                REQUIRE(find_id(&m, calls % (i + 1)) == &it[calls % (i + 1)].node);
                calls++;
            }
            ck_assert_uint_ge(calls, 65536 / 44);
            ck_assert_uint_le(calls, 65536 / 4);
        }
    }
    ck_assert_uint_eq(next_grow, 131073);
    ck_assert(!map_rehashing(&m));
    ck_assert_uint_eq(map_buckets(&m), 131072);
    /* Shrink: remove from the top down; each shrink starts below load 1/8
     * and aims at load 1/2, never below MAP_MIN_BUCKETS. */
    for (uint32_t i = N; i-- > 0;) {
        int before = map_rehashing(&m);
        was = map_buckets(&m);
        map_remove(&m, &it[i].node);
        if (before || !map_rehashing(&m))
            continue;
        ck_assert_uint_lt(map_count(&m), was / 8);
        expect = MAP_MIN_BUCKETS;
        while (expect < 2 * map_count(&m))
            expect *= 2;
        ck_assert_uint_eq(map_buckets(&m), expect);
        check_mid_rehash(&m, i, it);
    }
    ck_assert_uint_eq(map_count(&m), 0);
    for (int calls = 0; calls < 1000 && (map_rehashing(&m) || map_buckets(&m) != 16); calls++)
        REQUIRE(find_id(&m, 1) == NULL);
    ck_assert(!map_rehashing(&m));
    ck_assert_uint_eq(map_buckets(&m), MAP_MIN_BUCKETS);
    map_free(&m);
    free(it);
}
END_TEST

/* Walks m expecting exactly `expect` nodes of items, each once; frees (when
 * drop says so) odd ids as soon as they are returned. */
static void walk(struct map *m, struct item **items, uint32_t n, size_t expect, int drop)
{
    struct map_iter iter;
    struct map_node *node;
    size_t visits = 0;

    map_iter_init(m, &iter);
    while ((node = map_iter_next(&iter)) != NULL) {
        struct item *x = (struct item *)node;
        REQUIRE(x->seen++ == 0);
        visits++;
        if (drop && x->id % 2) {
            map_remove(m, node);
            items[x->id] = NULL;
            slab_leave(&S, x->ref);
            free(x); /* the walk must not touch it again */
        }
    }
    ck_assert_ptr_null(map_iter_next(&iter)); /* stays at the end */
    map_iter_done(&iter);
    map_iter_done(&iter);
    ck_assert_uint_eq(visits, expect);
    for (uint32_t i = 0; i < n; i++)
        if (items[i] != NULL) {
            REQUIRE(items[i]->seen == 1);
            items[i]->seen = 0;
        }
}

START_TEST(test_map_iterate)
{
    enum { N = 1025 }; /* the 1025th insert starts a 1024 -> 2048 grow */
    struct item *items[N];
    struct map m;
    struct map_iter empty;

    map_setup(&m);
    map_iter_init(&m, &empty);
    ck_assert_ptr_null(map_iter_next(&empty));
    map_iter_done(&empty);
    for (uint32_t i = 0; i < N; i++) {
        items[i] = malloc(sizeof(struct item)); /* each freed on its own */
        ck_assert_ptr_nonnull(items[i]);
        item_init(items[i], &m, i);
        if (i == N - 1) { /* a plain walk over one table first */
            ck_assert(!map_rehashing(&m));
            walk(&m, items, N - 1, N - 1, 0);
        }
        map_insert(&m, &items[i]->node, items[i]->ref);
    }
    ck_assert(map_rehashing(&m));
    for (uint32_t i = 0; i < 10; i++) /* move a few chains: both tables used */
        ck_assert_ptr_eq(find_id(&m, i), &items[i]->node);
    ck_assert(map_rehashing(&m));
    walk(&m, items, N, N, 0);
    ck_assert(map_rehashing(&m)); /* the walk paused the resize */
    walk(&m, items, N, N, 1);     /* remove and free odd ids as we go */
    ck_assert_uint_eq(map_count(&m), (N + 1) / 2);
    for (uint32_t i = 0; i < N; i++)
        REQUIRE(find_id(&m, i) == (i % 2 ? NULL : &items[i]->node));
    walk(&m, items, N, (N + 1) / 2, 0);
    for (uint32_t i = 0; i < N; i += 2) {
        map_remove(&m, &items[i]->node);
        slab_leave(&S, items[i]->ref);
        free(items[i]);
    }
    ck_assert_uint_eq(map_count(&m), 0);
    map_free(&m);
}
END_TEST

static Suite *structs_suite(void)
{
    Suite *s = suite_create("structs");
    TCase *tc = tcase_create("heap");

    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(tc, slab_setup, slab_teardown);
    tcase_add_test(tc, test_node_sizes);
    tcase_add_test(tc, test_heap_empty);
    tcase_add_test(tc, test_heap_full);
    tcase_add_test(tc, test_heap_random_sorted);
    tcase_add_test(tc, test_heap_ties);
    tcase_add_test(tc, test_heap_remove_positions);
    tcase_add_test(tc, test_heap_move);
    tcase_add_test(tc, test_heap_update);
    tcase_add_test(tc, test_heap_random_ops_vs_model);
    tcase_add_test(tc, test_heap_shrinks_and_grows);
    suite_add_tcase(s, tc = tcase_create("siphash"));
    tcase_add_checked_fixture(tc, slab_setup, slab_teardown);
    tcase_add_test(tc, test_siphash_vectors);
    suite_add_tcase(s, tc = tcase_create("map"));
    tcase_add_checked_fixture(tc, slab_setup, slab_teardown);
    tcase_add_test(tc, test_map_hash_and_collisions);
    tcase_add_test(tc, test_map_100k);
    suite_add_tcase(s, tc = tcase_create("map_rehash"));
    tcase_add_checked_fixture(tc, slab_setup, slab_teardown);
    tcase_add_test(tc, test_map_grow_shrink);
    suite_add_tcase(s, tc = tcase_create("map_iter"));
    tcase_add_checked_fixture(tc, slab_setup, slab_teardown);
    tcase_add_test(tc, test_map_iterate);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(structs_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
