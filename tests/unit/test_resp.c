/* tests/unit/test_resp.c - Check suite for proto/resp.c, the reply parser.
 *
 * Owns: the unit tests of the client's RESP2 reply parser; no sockets.  Most
 * tests go through check_cut(), which feeds an input whole, byte by byte and
 * in pseudo-random chunks and renders every reply the parser returns as one
 * string ("S(text)", "E(text)", "I(n)", "B(len:text)", "N", "A[...]",
 * each followed by ';', then "!" on RESP_ERROR; a reply cut short renders
 * as nothing).  Every way
 * of cutting an input must give the same string: that is what "incremental"
 * promises.  Hostile inputs must give RESP_ERROR, never a crash or a large
 * allocation (run under ASan and valgrind).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp.h"

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg("requirement failed: %s", #cond);                   \
    } while (0)

static const struct resp_limits LIM_SMALL = {16, 4};

static void render(FILE *out, const struct resp_reply *r)
{
    switch (r->type) {
    case RESP_STATUS: fprintf(out, "S(%s)", r->str); break;
    case RESP_ERROR_REPLY: fprintf(out, "E(%s)", r->str); break;
    case RESP_INTEGER: fprintf(out, "I(%lld)", r->integer); break;
    case RESP_NIL: REQUIRE(r->str == NULL); fputs("N", out); break;
    case RESP_BULK:
        REQUIRE(r->str[r->len] == '\0');
        fprintf(out, "B(%zu:", r->len);
        for (size_t i = 0; i < r->len; i++) {
            unsigned char ch = (unsigned char)r->str[i];

            if (ch >= 0x20 && ch < 0x7f)
                fputc(ch, out);
            else
                fprintf(out, "\\x%02x", ch);
        }
        fputs(")", out);
        break;
    case RESP_ARRAY:
        fputs("A[", out);
        for (size_t i = 0; i < r->nelements; i++) {
            if (i)
                fputs(",", out);
            render(out, r->elements[i]);
        }
        fputs("]", out);
        break;
    }
}

/* Feeds in[0..n) in chunks chosen by mode (0 whole, 1 bytes, else a seed
 * for random sizes 1..7), draining replies after every chunk.  Returns a
 * malloc'd rendering. */
static char *run(const char *in, size_t n, const struct resp_limits *lim,
                 unsigned mode)
{
    struct resp_parser *p = resp_parser_new(lim);
    char *text = NULL;
    size_t textlen = 0;
    FILE *out = open_memstream(&text, &textlen);
    size_t off = 0;
    unsigned seed = mode;
    int dead = 0;

    REQUIRE(p != NULL && out != NULL);
    while (off < n && !dead) {
        size_t chunk = mode == 0 ? n : mode == 1 ? 1 : (size_t)(1 + rand_r(&seed) % 7);
        struct resp_reply *r;
        enum resp_status st;

        if (chunk > n - off)
            chunk = n - off;
        REQUIRE(resp_parser_feed(p, in + off, chunk) == 0);
        off += chunk;
        while ((st = resp_parser_next(p, &r)) == RESP_OK) {
            REQUIRE(r != NULL);
            render(out, r);
            fputs(";", out);
            resp_reply_free(r);
        }
        REQUIRE(r == NULL);
        if (st == RESP_ERROR) {
            REQUIRE(strlen(resp_parser_error(p)) > 0);
            fputs("!", out);
            dead = 1;
        }
    }
    fclose(out);
    resp_parser_free(p);
    return text;
}

/* Every cut of the input renders as `want`. */
static void check_cut_lim(const char *in, size_t n, const char *want,
                          const struct resp_limits *lim)
{
    for (unsigned mode = 0; mode < 12; mode++) {
        char *got = run(in, n, lim, mode);

        if (strcmp(got, want) != 0)
            ck_abort_msg("mode %u: want \"%s\", got \"%s\"", mode, want, got);
        free(got);
    }
}

static void check_cut(const char *in, const char *want)
{
    check_cut_lim(in, strlen(in), want, NULL);
}

START_TEST(scalars)
{
    check_cut("+OK\r\n", "S(OK);");
    check_cut("+\r\n", "S();");
    check_cut("-LOCKED job is already locked!\r\n",
              "E(LOCKED job is already locked!);");
    check_cut(":0\r\n:1\r\n:-2\r\n", "I(0);I(1);I(-2);");
    check_cut(":9223372036854775807\r\n", "I(9223372036854775807);");
    check_cut(":-9223372036854775808\r\n", "I(-9223372036854775808);");
    check_cut(":1746000000000000\r\n", "I(1746000000000000);");
    check_cut("$5\r\nhello\r\n", "B(5:hello);");
    check_cut("$0\r\n\r\n", "B(0:);");
    check_cut("$-1\r\n", "N;");
    check_cut("*-1\r\n", "N;");
    check_cut("*0\r\n", "A[];");
}
END_TEST

START_TEST(binary_bulk)
{
    static const char in[] = "$6\r\na\r\n\0b\n\r\n";

    check_cut_lim(in, sizeof in - 1, "B(6:a\\x0d\\x0a\\x00b\\x0a);", NULL);
}
END_TEST

START_TEST(arrays)
{
    check_cut("*2\r\n$4\r\nPING\r\n:7\r\n", "A[B(4:PING),I(7)];");
    check_cut("*3\r\n*1\r\n+a\r\n*0\r\n$-1\r\n", "A[A[S(a)],A[],N];");
    check_cut("*1\r\n*1\r\n*1\r\n:1\r\n", "A[A[A[I(1)]]];");
    /* Deepest allowed nesting. */
    {
        char in[256] = "";
        char want[256] = "";

        for (int i = 0; i < RESP_MAX_DEPTH; i++) {
            strcat(in, "*1\r\n");
            strcat(want, "A[");
        }
        strcat(in, ":5\r\n");
        strcat(want, "I(5)");
        for (int i = 0; i < RESP_MAX_DEPTH; i++)
            strcat(want, "]");
        strcat(want, ";");
        check_cut(in, want);
    }
}
END_TEST

START_TEST(pipeline)
{
    check_cut(":1\r\n-ERR x\r\n$-1\r\n+PONG\r\n*1\r\n$2\r\nhi\r\n:3\r\n",
              "I(1);E(ERR x);N;S(PONG);A[B(2:hi)];I(3);");
}
END_TEST

START_TEST(incomplete)
{
    check_cut(":1\r\n:2", "I(1);");
    check_cut("$5\r\nhel", "");
    check_cut("*2\r\n:1\r\n", "");
    check_cut("*2\r\n*1\r\n:1\r\n", "");
    check_cut("+OK\r", "");
}
END_TEST

/* The hiredis #242 trap: an error reply and a nil reply are different. */
START_TEST(error_vs_nil)
{
    struct resp_parser *p = resp_parser_new(NULL);
    struct resp_reply *r;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(resp_parser_feed(p, "-ERR boom\r\n$-1\r\n", 16), 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_OK);
    ck_assert_int_eq(r->type, RESP_ERROR_REPLY);
    ck_assert_str_eq(r->str, "ERR boom");
    ck_assert_uint_eq(r->len, 8);
    resp_reply_free(r);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_OK);
    ck_assert_int_eq(r->type, RESP_NIL);
    ck_assert_ptr_null(r->str);
    resp_reply_free(r);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_NEED_MORE);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(resp_parser_error(p), "");
    resp_parser_free(p);
}
END_TEST

START_TEST(hostile)
{
    /* Unknown type bytes, bad numbers, bad framing. */
    check_cut("?\r\n", "!");
    check_cut("hello\r\n", "!");
    check_cut("\r\n", "!");
    check_cut(":\r\n", "!");
    check_cut(":12a\r\n", "!");
    check_cut(": 1\r\n", "!");
    check_cut(":+1\r\n", "!");
    check_cut(":01\r\n", "!");
    check_cut(":-0\r\n", "!");
    check_cut(":9223372036854775808\r\n", "!");
    check_cut(":-9223372036854775809\r\n", "!");
    check_cut(":1\n", "!");
    check_cut(":1\rx", "!");
    check_cut("+OK\n", "!");
    check_cut("$-2\r\n", "!");
    check_cut("*-5\r\n", "!");
    check_cut("$3\r\nabcd\r\n", "!");
    check_cut("$3\r\nab\r\n\r\n", "!");
    /* Huge lengths: refused from the header, before any allocation. */
    check_cut("$9223372036854775807\r\n", "!");
    check_cut("$99999999999\r\n", "!");
    check_cut("*9223372036854775807\r\n", "!");
    check_cut("*100000000\r\n", "!");
    /* A header that never ends. */
    check_cut(":1111111111111111111111111111111111111111111111", "!");
    /* One reply, then junk: the reply is delivered, then the error. */
    check_cut(":1\r\n~junk\r\n", "I(1);!");
    /* Junk inside an array: the partial array is freed (ASan/valgrind). */
    check_cut("*3\r\n:1\r\n*2\r\n$1\r\nx\r\n#", "!");
}
END_TEST

START_TEST(limits)
{
    static const char big_bulk[] = "$17\r\n12345678901234567\r\n";
    static const char ok_bulk[] = "$16\r\n1234567890123456\r\n";
    static const char big_status[] = "+12345678901234567\r\n";
    static const char long_array[] = "*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n";

    check_cut_lim(ok_bulk, strlen(ok_bulk), "B(16:1234567890123456);",
                  &LIM_SMALL);
    check_cut_lim(big_bulk, strlen(big_bulk), "!", &LIM_SMALL);
    check_cut_lim(big_status, strlen(big_status), "!", &LIM_SMALL);
    /* A status line that never ends is refused once past the bound. */
    check_cut_lim("+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 31, "!", &LIM_SMALL);
    check_cut_lim(long_array, strlen(long_array), "!", &LIM_SMALL);
    check_cut_lim("*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n", 20,
                  "A[I(1),I(2),I(3),I(4)];", &LIM_SMALL);
}
END_TEST

START_TEST(too_deep)
{
    char in[256] = "";

    for (int i = 0; i <= RESP_MAX_DEPTH; i++)
        strcat(in, "*1\r\n");
    strcat(in, ":5\r\n");
    check_cut(in, "!");
    /* Deeper still, fed as one block of 10,000 levels. */
    {
        size_t n = 10000 * 4;
        char *deep = malloc(n + 1);

        ck_assert_ptr_nonnull(deep);
        for (size_t i = 0; i < n; i += 4)
            memcpy(deep + i, "*1\r\n", 4);
        deep[n] = '\0';
        check_cut(deep, "!");
        free(deep);
    }
}
END_TEST

/* max_elements bounds the elements of a whole reply, not only of one
 * array: nested arrays each within the limit must not add up past it. */
START_TEST(total_elements)
{
    static const char nested6[] =
        "*2\r\n*2\r\n:1\r\n:2\r\n*2\r\n:3\r\n:4\r\n";
    static const char nested4[] = "*3\r\n*1\r\n:1\r\n:2\r\n:3\r\n";
    static const char two4[] =
        "*3\r\n*1\r\n:1\r\n:2\r\n:3\r\n*3\r\n*1\r\n:1\r\n:2\r\n:3\r\n";

    /* 2 + 2 + 2 = 6 elements in one reply, over 4. */
    check_cut_lim(nested6, strlen(nested6), "!", &LIM_SMALL);
    /* 3 + 1 = 4: at the limit. */
    check_cut_lim(nested4, strlen(nested4), "A[A[I(1)],I(2),I(3)];",
                  &LIM_SMALL);
    /* The count restarts with each top-level reply. */
    check_cut_lim(two4, strlen(two4),
                  "A[A[I(1)],I(2),I(3)];A[A[I(1)],I(2),I(3)];", &LIM_SMALL);
    /* Many small replies pipelined: never add up. */
    {
        struct resp_parser *p = resp_parser_new(&LIM_SMALL);
        struct resp_reply *r;

        ck_assert_ptr_nonnull(p);
        for (int i = 0; i < 1000; i++) {
            REQUIRE(resp_parser_feed(p, "*2\r\n*0\r\n:1\r\n", 12) == 0);
            REQUIRE(resp_parser_next(p, &r) == RESP_OK);
            resp_reply_free(r);
        }
        resp_parser_free(p);
    }
}
END_TEST

/* The hostile server of the review: a tree RESP_MAX_DEPTH - 1 levels deep
 * whose every array holds the default 4096 elements, *0 at the leaves,
 * streamed depth first (4096^7 leaves: 1.5 GB of replies and pointers
 * before the parser would see the end).  Each array is within the limits;
 * the reply must be refused once 4096 elements are announced in all. */
START_TEST(hostile_total)
{
    struct resp_parser *p = resp_parser_new(NULL);
    struct resp_reply *r = NULL;
    enum resp_status st = RESP_NEED_MORE;
    size_t left[RESP_MAX_DEPTH]; /* elements still to send, per level */
    size_t depth = 0, fed = 0;

    ck_assert_ptr_nonnull(p);
    /* Feeds nodes depth first; gives up after 200,000 of them (the parser
     * must have refused the reply long before). */
    while (st == RESP_NEED_MORE && fed < 200000) {
        if (depth < RESP_MAX_DEPTH - 1) {
            REQUIRE(resp_parser_feed(p, "*4096\r\n", 7) == 0);
            left[depth++] = 4096;
        } else {
            REQUIRE(resp_parser_feed(p, "*0\r\n", 4) == 0);
            /* That node is done: count it off up the tree. */
            while (depth > 0 && --left[depth - 1] == 0)
                depth--;
        }
        fed++;
        st = resp_parser_next(p, &r);
    }
    ck_assert_int_eq(st, RESP_ERROR);
    ck_assert_ptr_null(r);
    ck_assert_uint_le(fed, 4096 + RESP_MAX_DEPTH);
    resp_parser_free(p);

    /* A flat array at the limit is still fine. */
    p = resp_parser_new(NULL);
    ck_assert_ptr_nonnull(p);
    REQUIRE(resp_parser_feed(p, "*4096\r\n", 7) == 0);
    for (int i = 0; i < 4096; i++)
        REQUIRE(resp_parser_feed(p, "*0\r\n", 4) == 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_OK);
    ck_assert_uint_eq(r->nelements, 4096);
    resp_reply_free(r);
    resp_parser_free(p);
}
END_TEST

START_TEST(dead_after_error)
{
    struct resp_parser *p = resp_parser_new(NULL);
    struct resp_reply *r;

    ck_assert_int_eq(resp_parser_feed(p, "x", 1), 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_ERROR);
    ck_assert_str_eq(resp_parser_error(p), "unexpected reply type byte");
    ck_assert_int_eq(resp_parser_feed(p, "+OK\r\n", 5), 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_ERROR);
    ck_assert_ptr_null(r);
    resp_parser_free(p);
    resp_parser_free(NULL);
    resp_reply_free(NULL);
}
END_TEST

/* A large bulk arriving a byte at a time, and many small replies: the
 * buffer compacts and the parse stays linear (this would crawl otherwise). */
START_TEST(big_bytewise)
{
    size_t blen = 200000;
    struct resp_limits lim = {blen, 16};
    struct resp_parser *p = resp_parser_new(&lim);
    char hdr[32];
    struct resp_reply *r;
    int hl = snprintf(hdr, sizeof hdr, "$%zu\r\n", blen);

    ck_assert_int_eq(resp_parser_feed(p, hdr, (size_t)hl), 0);
    for (size_t i = 0; i < blen; i++) {
        char ch = (char)('a' + i % 26);

        REQUIRE(resp_parser_feed(p, &ch, 1) == 0);
        REQUIRE(resp_parser_next(p, &r) == RESP_NEED_MORE);
    }
    ck_assert_int_eq(resp_parser_feed(p, "\r", 1), 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_NEED_MORE);
    ck_assert_int_eq(resp_parser_feed(p, "\n", 1), 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_OK);
    ck_assert_uint_eq(r->len, blen);
    ck_assert_int_eq(r->str[blen - 1], 'a' + (int)((blen - 1) % 26));
    resp_reply_free(r);
    for (int i = 0; i < 100000; i++) {
        REQUIRE(resp_parser_feed(p, ":42\r\n", 5) == 0);
        REQUIRE(resp_parser_next(p, &r) == RESP_OK && r->integer == 42);
        resp_reply_free(r);
    }
    resp_parser_free(p);
}
END_TEST

/* Random bytes, and random mutations of good replies: never a crash; every
 * reply handed out is well formed. */
START_TEST(fuzz)
{
    static const char *good[] = {
        "+OK\r\n", ":123\r\n", "$3\r\nabc\r\n", "*2\r\n:1\r\n$-1\r\n",
        "-TIMEOUT k is already locked!\r\n", "*1\r\n*1\r\n+x\r\n",
    };
    unsigned seed = 12345;

    for (int iter = 0; iter < 20000; iter++) {
        char in[64];
        size_t n = 0;

        if (iter % 2 == 0) {
            n = (size_t)(rand_r(&seed) % sizeof in);
            for (size_t i = 0; i < n; i++)
                in[i] = "+-:$*\r\n0123456789-ab"[rand_r(&seed) % 21];
        } else {
            const char *g = good[rand_r(&seed) % 6];

            n = strlen(g);
            memcpy(in, g, n);
            in[rand_r(&seed) % n] = (char)(rand_r(&seed) & 0xff);
        }
        free(run(in, n, &LIM_SMALL, (unsigned)iter % 3));
    }
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        scalars, binary_bulk, arrays, pipeline, incomplete, error_vs_nil,
        hostile, limits, too_deep, total_elements, hostile_total,
        dead_after_error, big_bytewise, fuzz,
    };
    Suite *s = suite_create("resp");
    TCase *tc = tcase_create("resp");
    SRunner *sr;
    int failed;

    suite_add_tcase(s, tc);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        tcase_add_test(tc, tests[i]);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
