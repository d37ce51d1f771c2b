/* engine/tests/test_slab.c - Check suite for the slab allocator (engine/slab.c).
 *
 * Owns: the tests of slab.h's contract: every size class up to SLAB_MAX_SIZE
 * hands out 8-byte aligned objects that do not overlap (each filled with its
 * own pattern, all checked after the last allocation); pages are given back
 * when they empty, except the last page of a class with free slots, so an
 * alloc/free pair at a page boundary allocates nothing; objects above
 * SLAB_MAX_SIZE go to the allocator seam one by one; out of memory (the
 * alloc.h fault injector) yields NULL and leaves the slab usable.  Every
 * object's 32-bit reference resolves back to it (slab_ptr), slot, big and
 * registered ones alike, numbers are reused once freed, and a reference
 * table that cannot grow refuses cleanly.
 * Under AddressSanitizer it also checks that free slots, the bytes past
 * an object's size and the reference in front of a big object are poisoned.  Leaks are for the sanitizer and valgrind
 * runs to find (slab_destroy must free every page).
 */
#include "engine/slab.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* For hot loops: every passing ck_assert writes its location to Check's
 * log. */
#define REQUIRE(c) do { if (!(c)) ck_abort_msg("failed: %s", #c); } while (0)

/* Objects of each size in the class sweep: 8 sizes of a class together
 * stay within one page even for the largest class. */
#define PER_CLASS 300

static void fill(void *p, size_t size, unsigned tag)
{
    unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        b[i] = (unsigned char)(tag * 31 + i);
}

static int intact(const void *p, size_t size, unsigned tag)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        if (b[i] != (unsigned char)(tag * 31 + i))
            return 0;
    return 1;
}

/* The pattern of the k-th object of this size in the class sweep. */
static unsigned tag(size_t size, unsigned k)
{
    return (unsigned)size * PER_CLASS + k;
}

START_TEST(test_slab_every_class)
{
    enum { SIZES = SLAB_MAX_SIZE + 1 };
    static void *objs[SIZES][PER_CLASS];
    struct slab s;

    slab_init(&s);
    ck_assert_uint_eq(slab_pages(&s), 0);
    for (size_t size = 0; size < SIZES; size++) {
        for (unsigned k = 0; k < PER_CLASS; k++) {
            void *p = slab_alloc(&s, size, NULL);
            REQUIRE(p != NULL);
            REQUIRE((uintptr_t)p % 8 == 0);
            fill(p, size, tag(size, k));
            objs[size][k] = p;
        }
    }
    /* One class per 8 bytes (size 0 shares the first), one page each. */
    ck_assert_uint_eq(slab_pages(&s), SLAB_CLASSES);
    for (size_t size = 0; size < SIZES; size++)
        for (unsigned k = 0; k < PER_CLASS; k++)
            REQUIRE(intact(objs[size][k], size, tag(size, k)));
    /* Free every other object, allocate them again: still no overlap. */
    for (size_t size = 0; size < SIZES; size++)
        for (unsigned k = 0; k < PER_CLASS; k += 2)
            slab_free(&s, objs[size][k], size);
    for (size_t size = 0; size < SIZES; size++) {
        for (unsigned k = 0; k < PER_CLASS; k += 2) {
            void *p = slab_alloc(&s, size, NULL);
            REQUIRE(p != NULL);
            fill(p, size, tag(size, k));
            objs[size][k] = p;
        }
    }
    for (size_t size = 0; size < SIZES; size++)
        for (unsigned k = 0; k < PER_CLASS; k++)
            REQUIRE(intact(objs[size][k], size, tag(size, k)));
    ck_assert_uint_eq(slab_pages(&s), SLAB_CLASSES);
    /* Freed with any size of the same class, as the contract allows. */
    for (size_t size = 0; size < SIZES; size++)
        for (unsigned k = 0; k < PER_CLASS; k++)
            slab_free(&s, objs[size][k], size == 0 ? 1 : (size + 7) / 8 * 8);
    /* Each class keeps its one (now empty) page. */
    ck_assert_uint_eq(slab_pages(&s), SLAB_CLASSES);
    slab_destroy(&s);
    ck_assert_uint_eq(slab_pages(&s), 0);
    slab_destroy(&s); /* a second destroy is harmless */
}
END_TEST

START_TEST(test_slab_page_reclaim)
{
    enum { SIZE = 40, MAX = 200000 };
    void **objs = calloc(MAX, sizeof(*objs));
    struct slab s;
    size_t n = 0, per_page = 0;

    ck_assert_ptr_nonnull(objs);
    slab_init(&s);
    /* Fill until a third page is started; count what one page holds. */
    while (slab_pages(&s) < 3) {
        REQUIRE(n < MAX);
        objs[n] = slab_alloc(&s, SIZE, NULL);
        REQUIRE(objs[n] != NULL);
        fill(objs[n], SIZE, (unsigned)n);
        n++;
        if (slab_pages(&s) == 2 && per_page == 0)
            per_page = n - 1;
    }
    ck_assert_uint_ge(per_page, SLAB_PAGE_SIZE / SIZE - 8);
    ck_assert_uint_le(per_page, SLAB_PAGE_SIZE / SIZE);
    ck_assert_uint_eq(n, 2 * per_page + 1);

    /* Emptying the first page gives it back: the third has room. */
    for (size_t i = 0; i < per_page; i++) {
        REQUIRE(intact(objs[i], SIZE, (unsigned)i));
        slab_free(&s, objs[i], SIZE);
        objs[i] = NULL;
    }
    ck_assert_uint_eq(slab_pages(&s), 2);

    /* A freed slot is handed out again before an unused one. */
    slab_free(&s, objs[per_page], SIZE);
    void *again = slab_alloc(&s, SIZE, NULL);
    ck_assert_ptr_eq(again, objs[per_page]);
    fill(again, SIZE, (unsigned)per_page);

    /* Empty the third page (its one object): the second is full, so the
     * third is the only page with room, and it stays. */
    slab_free(&s, objs[2 * per_page], SIZE);
    ck_assert_uint_eq(slab_pages(&s), 2);
    /* Alloc/free at that boundary: no page allocation at all. */
    unsigned long before = alloc_count();
    for (int i = 0; i < 1000; i++) {
        void *p = slab_alloc(&s, SIZE, NULL);
        REQUIRE(p != NULL);
        slab_free(&s, p, SIZE);
    }
    ck_assert_uint_eq(alloc_count(), before);
    ck_assert_uint_eq(slab_pages(&s), 2);

    /* A free slot in the second page puts it beside the empty third (a
     * page is only given back by the free that empties it); the rest of
     * the second page's objects are untouched. */
    slab_free(&s, objs[per_page + 1], SIZE);
    ck_assert_uint_eq(slab_pages(&s), 2);
    for (size_t i = per_page; i < 2 * per_page; i++) {
        if (i == per_page + 1)
            continue;
        REQUIRE(intact(objs[i], SIZE, (unsigned)i));
    }
    /* Emptying the second page gives it back (the third has room); the
     * empty third is the one page kept. */
    for (size_t i = per_page; i < 2 * per_page; i++)
        if (i != per_page + 1)
            slab_free(&s, objs[i], SIZE);
    ck_assert_uint_eq(slab_pages(&s), 1);
    slab_destroy(&s);
    free(objs);
}
END_TEST

START_TEST(test_slab_big_objects)
{
    enum { N = 100 };
    void *objs[N];
    struct slab s;

    slab_init(&s);
    unsigned long before = alloc_count();
    for (int i = 0; i < N; i++) {
        size_t size = SLAB_MAX_SIZE + 1 + (size_t)i * 97;
        objs[i] = slab_alloc(&s, size, NULL);
        ck_assert_ptr_nonnull(objs[i]);
        fill(objs[i], size, (unsigned)i);
    }
    /* One allocation per object, none of them a page, plus the doublings
     * of the table that numbers them (16, 32, 64 and 128 cells). */
    ck_assert_uint_eq(alloc_count() - before, N + 4);
    ck_assert_uint_eq(slab_pages(&s), 0);
    ck_assert_uint_eq(slab_apart(&s), N);
    for (int i = 0; i < N; i++) {
        size_t size = SLAB_MAX_SIZE + 1 + (size_t)i * 97;
        ck_assert(intact(objs[i], size, (unsigned)i));
        slab_free(&s, objs[i], size);
    }
    ck_assert_uint_eq(slab_apart(&s), 0);
    slab_free(&s, NULL, 8);   /* NULL: no-op */
    slab_free(&s, NULL, 999);
    slab_destroy(&s);
}
END_TEST

/* References: every slot of two pages of one class, objects of every
 * class, big objects and registered ones each have their own non-zero
 * reference, which slab_ptr resolves back to them; slot references carry
 * no SLAB_REF_APART bit and the others do.  A freed page's number and a
 * left object's number are taken again before the tables grow. */
START_TEST(test_slab_references)
{
    enum { SIZE = 56, BIG = 3 };
    struct slab s;
    size_t per_page = 0, n;
    void **objs;
    uint32_t *refs;

    slab_init(&s);
    /* How many SIZE objects a page holds: allocate until a second page. */
    ck_assert_ptr_nonnull(objs = calloc(2 * SLAB_PAGE_SIZE / SIZE, sizeof(*objs)));
    ck_assert_ptr_nonnull(refs = calloc(2 * SLAB_PAGE_SIZE / SIZE, sizeof(*refs)));
    for (n = 0; slab_pages(&s) < 2 || n < 2 * per_page; n++) {
        REQUIRE((objs[n] = slab_alloc(&s, SIZE, &refs[n])) != NULL);
        if (slab_pages(&s) == 2 && per_page == 0)
            per_page = n;
        REQUIRE(slab_ref_of(&s, objs[n], SIZE) == refs[n]);
        REQUIRE(refs[n] != SLAB_REF_NONE && !(refs[n] & SLAB_REF_APART));
        REQUIRE(slab_ptr(&s, refs[n]) == objs[n]);
        REQUIRE(n == 0 || refs[n] != refs[n - 1]);
    }
    ck_assert_uint_eq(slab_pages(&s), 2);
    /* The first page's slots: one page number, consecutive offsets. */
    for (size_t i = 1; i < per_page; i++)
        REQUIRE(refs[i] == refs[i - 1] + SIZE / SLAB_STEP);
    ck_assert_uint_ne(refs[0] >> SLAB_SLOT_BITS,
                      refs[per_page] >> SLAB_SLOT_BITS);
    /* Big objects and registered ones: the other table. */
    void *big[BIG];
    int local[BIG];
    uint32_t bref[BIG], lref[BIG];
    for (int i = 0; i < BIG; i++) {
        big[i] = slab_alloc(&s, SLAB_MAX_SIZE + 1 + (size_t)i, &bref[i]);
        ck_assert_ptr_nonnull(big[i]);
        ck_assert_uint_eq(slab_ref_of(&s, big[i], SLAB_MAX_SIZE + 1 + (size_t)i),
                          bref[i]);
        lref[i] = slab_enter(&s, &local[i]);
        ck_assert(bref[i] & SLAB_REF_APART);
        ck_assert(lref[i] & SLAB_REF_APART);
        ck_assert_ptr_eq(slab_ptr(&s, bref[i]), big[i]);
        ck_assert_ptr_eq(slab_ptr(&s, lref[i]), &local[i]);
    }
    ck_assert_uint_eq(slab_apart(&s), 2 * BIG);
    slab_leave(&s, lref[1]);
    ck_assert_uint_eq(slab_apart(&s), 2 * BIG - 1);
    ck_assert_uint_eq(slab_enter(&s, &local[1]), lref[1]); /* reused */
    for (int i = 0; i < BIG; i++) {
        slab_free(&s, big[i], SLAB_MAX_SIZE + 1 + (size_t)i);
        slab_leave(&s, lref[i]);
    }
    ck_assert_uint_eq(slab_apart(&s), 0);
    /* Emptying the first page (while the second has room) gives it back;
     * a later page takes its number without growing the directory. */
    uint32_t first_page = refs[0] >> SLAB_SLOT_BITS;
    slab_free(&s, objs[per_page], SIZE);
    for (size_t i = 0; i < per_page; i++)
        slab_free(&s, objs[i], SIZE);
    ck_assert_uint_eq(slab_pages(&s), 1);
    for (size_t i = per_page + 1; i < n; i++)
        slab_free(&s, objs[i], SIZE);
    ck_assert_uint_eq(slab_pages(&s), 1); /* the class keeps one */
    for (n = 0; n < 2 * per_page; n++)
        REQUIRE((objs[n] = slab_alloc(&s, SIZE, NULL)) != NULL);
    ck_assert_uint_eq(slab_pages(&s), 2);
    ck_assert_uint_eq(slab_ref_of(&s, objs[per_page], SIZE) >> SLAB_SLOT_BITS,
                      first_page);
    alloc_fail_nth(2); /* the page can be had, a grown directory not */
    void *third = slab_alloc(&s, SIZE, NULL);
    alloc_fail_reset();
    ck_assert_ptr_nonnull(third); /* two numbers of 16 used: no growth */
    ck_assert_uint_eq(slab_pages(&s), 3);
    ck_assert_ptr_eq(slab_ptr(&s, slab_ref_of(&s, third, SIZE)), third);
    slab_free(&s, third, SIZE);
    for (n = 0; n < 2 * per_page; n++)
        slab_free(&s, objs[n], SIZE);
    /* Every class: the reference of an object of each size resolves. */
    for (size_t size = 0; size <= SLAB_MAX_SIZE; size += 7) {
        uint32_t ref;
        void *p = slab_alloc(&s, size, &ref);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(slab_ref_of(&s, p, size), ref);
        ck_assert_ptr_eq(slab_ptr(&s, ref), p);
        slab_free(&s, p, size);
    }
    slab_destroy(&s);
    free(objs);
    free(refs);
}
END_TEST

/* A reference table that cannot grow: slab_enter says SLAB_REF_NONE, a
 * big object is refused with nothing left allocated (the sanitizer and
 * valgrind runs would see a leak), and both work again with memory. */
START_TEST(test_slab_reference_out_of_memory)
{
    enum { FIRST = 16 }; /* the table's first size */
    struct slab s;
    int local[FIRST + 1];
    uint32_t ref[FIRST + 1];

    slab_init(&s);
    alloc_fail_nth(1);
    ck_assert_uint_eq(slab_enter(&s, &local[0]), SLAB_REF_NONE);
    for (int i = 0; i < FIRST; i++)
        ck_assert_uint_ne(ref[i] = slab_enter(&s, &local[i]), SLAB_REF_NONE);
    alloc_fail_after(0);
    ck_assert_uint_eq(slab_enter(&s, &local[FIRST]), SLAB_REF_NONE);
    alloc_fail_reset();
    alloc_fail_nth(2); /* the big object's memory, then the table */
    ck_assert_ptr_null(slab_alloc(&s, SLAB_MAX_SIZE + 8, NULL));
    alloc_fail_reset();
    ck_assert_uint_eq(slab_apart(&s), FIRST);
    ck_assert_uint_ne(ref[FIRST] = slab_enter(&s, &local[FIRST]),
                      SLAB_REF_NONE);
    for (int i = 0; i <= FIRST; i++) {
        ck_assert_ptr_eq(slab_ptr(&s, ref[i]), &local[i]);
        slab_leave(&s, ref[i]);
    }
    slab_destroy(&s);
}
END_TEST

START_TEST(test_slab_out_of_memory)
{
    struct slab s;
    void *p, *q;

    slab_init(&s);
    alloc_fail_nth(1); /* the first page cannot be had */
    ck_assert_ptr_null(slab_alloc(&s, 24, NULL));
    ck_assert_uint_eq(slab_pages(&s), 0);
    ck_assert_ptr_nonnull(p = slab_alloc(&s, 24, NULL)); /* the next one can */
    ck_assert_uint_eq(slab_pages(&s), 1);

    /* With every allocation failing, a page with room still serves its
     * class, another class gets nothing, and big objects get nothing. */
    alloc_fail_after(0);
    ck_assert_ptr_nonnull(q = slab_alloc(&s, 17, NULL));
    ck_assert_ptr_null(slab_alloc(&s, 8, NULL));
    ck_assert_ptr_null(slab_alloc(&s, SLAB_MAX_SIZE + 1, NULL));
    alloc_fail_reset();
    ck_assert_uint_eq(slab_pages(&s), 1);
    slab_free(&s, q, 17);
    slab_free(&s, p, 24);
    ck_assert_ptr_nonnull(p = slab_alloc(&s, 8, NULL));
    ck_assert_uint_eq(slab_pages(&s), 2);
    slab_free(&s, p, 8);
    slab_destroy(&s);
    ck_assert_uint_eq(slab_pages(&s), 0);
}
END_TEST

#ifdef SLAB_ASAN
/* Free slots and the tail of a slot past the object's size are poisoned,
 * so AddressSanitizer sees slab objects as it sees malloc'd ones. */
START_TEST(test_slab_poisoning)
{
    struct slab s;
    char *p, *q;

    slab_init(&s);
    p = slab_alloc(&s, 29, NULL);
    q = slab_alloc(&s, 29, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(__asan_address_is_poisoned(p), 0);
    ck_assert_int_eq(__asan_address_is_poisoned(p + 28), 0);
    ck_assert_int_ne(__asan_address_is_poisoned(p + 29), 0);
    ck_assert_int_ne(__asan_address_is_poisoned(p + 31), 0);
    ck_assert_int_ne(__asan_address_is_poisoned(q + 40), 0); /* never used */
    slab_free(&s, p, 29);
    ck_assert_int_ne(__asan_address_is_poisoned(p), 0);
    ck_assert_int_ne(__asan_address_is_poisoned(p + 16), 0);
    ck_assert_int_eq(__asan_address_is_poisoned(q), 0);
    p = slab_alloc(&s, 32, NULL);
    ck_assert_int_eq(__asan_address_is_poisoned(p + 31), 0);
    slab_free(&s, p, 32);
    slab_free(&s, q, 29);
    slab_destroy(&s);
}
END_TEST

/* An object above SLAB_MAX_SIZE has its reference in the 8 bytes in
 * front of it: those are poisoned, as malloc's redzone was there before,
 * so a write just before a big entry is reported instead of silently
 * renumbering it (and slab_free then leaving another object's number). */
START_TEST(test_slab_big_prefix_poisoned)
{
    struct slab s;
    uint32_t ref;
    char *big;

    slab_init(&s);
    big = slab_alloc(&s, SLAB_MAX_SIZE + 1, &ref);
    ck_assert_ptr_nonnull(big);
    for (int i = 1; i <= 8; i++)
        ck_assert_int_ne(__asan_address_is_poisoned(big - i), 0);
    ck_assert_int_eq(__asan_address_is_poisoned(big), 0);
    ck_assert_int_eq(__asan_address_is_poisoned(big + SLAB_MAX_SIZE), 0);
    ck_assert_uint_eq(slab_ref_of(&s, big, SLAB_MAX_SIZE + 1), ref);
    ck_assert_int_ne(__asan_address_is_poisoned(big - 1), 0); /* again */
    ck_assert_ptr_eq(slab_ptr(&s, ref), big);
    slab_free(&s, big, SLAB_MAX_SIZE + 1);
    ck_assert_uint_eq(slab_apart(&s), 0);
    slab_destroy(&s);
}
END_TEST
#endif

static Suite *slab_suite(void)
{
    Suite *s = suite_create("slab");
    TCase *tc = tcase_create("slab");

    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_slab_every_class);
    tcase_add_test(tc, test_slab_page_reclaim);
    tcase_add_test(tc, test_slab_big_objects);
    tcase_add_test(tc, test_slab_out_of_memory);
    tcase_add_test(tc, test_slab_references);
    tcase_add_test(tc, test_slab_reference_out_of_memory);
#ifdef SLAB_ASAN
    tcase_add_test(tc, test_slab_poisoning);
    tcase_add_test(tc, test_slab_big_prefix_poisoned);
#endif
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(slab_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
