/* tests/unit/test_proto.c - Check suite for proto/reader.c and proto/reply.c.
 *
 * Owns: the unit tests of the request parser and the reply helpers; no
 * sockets, no daemon.  Most parser tests go through transcript(), which
 * feeds an input whole, byte by byte and in odd chunks through both feeding
 * APIs (feed, space + commit) and renders what the reader returned as one
 * string, e.g. "2[3:GET 1:k]" or "E(<message>)".  Every input must give the
 * same transcript however it is cut, which is what "incremental" promises.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/reader.h"
#include "proto/reply.h"

/* Tight limits make the bounds reachable with short literals. */
static const struct proto_limits LIM_SMALL = {16, 64};
/* Room for exactly one 9-byte bulk plus the start of another. */
static const struct proto_limits LIM_TINY = {16, 20};
/* The daemon's defaults: 64 KiB lines, 1 MiB requests. */
static const struct proto_limits LIM_DEFAULT = {65536, 1048576};

/* ---- helpers ---- */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *s, const char *src, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap : 256;
        while (ncap < s->len + n + 1)
            ncap *= 2;
        s->p = realloc(s->p, ncap);
        ck_assert_ptr_nonnull(s->p);
        s->cap = ncap;
    }
    memcpy(s->p + s->len, src, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_str(struct sbuf *s, const char *str)
{
    sb_add(s, str, strlen(str));
}

static void sb_size(struct sbuf *s, size_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v);
    sb_add(s, tmp, (size_t)n);
}

static void sb_escaped(struct sbuf *s, const char *src, size_t n)
{
    size_t m = proto_escaped_len(src, n);
    char *tmp = malloc(m + 1);

    ck_assert_ptr_nonnull(tmp);
    ck_assert_uint_eq(proto_escape(src, n, tmp), m);
    sb_add(s, tmp, m);
    free(tmp);
}

/* Invariants of every request the reader hands out. */
static void check_request(const struct proto_request *q)
{
    ck_assert_uint_ge(q->argc, 1);
    ck_assert_uint_le(q->argc, PROTO_MAX_ARGS);
    ck_assert_ptr_nonnull(q->argv);
    ck_assert_ptr_nonnull(q->argvlen);
    for (size_t i = 0; i < q->argc; i++) {
        ck_assert_ptr_nonnull(q->argv[i]);
        ck_assert_int_eq(q->argv[i][q->argvlen[i]], '\0');
    }
}

/* Error messages go into "-PROTO <msg>\r\n": printable ASCII only. */
static void check_error_text(const char *msg)
{
    ck_assert_uint_gt(strlen(msg), 0);
    ck_assert_uint_lt(strlen(msg), 96);
    for (const char *p = msg; *p; p++)
        ck_assert_msg(*p >= 0x20 && *p <= 0x7e, "bad byte in \"%s\"", msg);
}

static void describe_request(struct sbuf *s, const struct proto_request *q)
{
    check_request(q);
    sb_size(s, q->argc);
    sb_str(s, "[");
    for (size_t i = 0; i < q->argc; i++) {
        if (i)
            sb_str(s, " ");
        sb_size(s, q->argvlen[i]);
        sb_str(s, ":");
        sb_escaped(s, q->argv[i], q->argvlen[i]);
    }
    sb_str(s, "]");
}

enum feed_mode { FEED_COPY, FEED_SPACE };

/* Parses in[0..n), fed `chunk` bytes at a time (0: as much as it takes),
 * draining requests after every feed.  Returns (malloc'd) one
 * "<argc>[<len>:<escaped arg> ...]" per request, then "E(<message>)" on a
 * framing error, or " P<n>" when n bytes are left pending at the end. */
static char *transcript(const struct proto_limits *lim, const char *in,
                        size_t n, size_t chunk, enum feed_mode mode)
{
    struct proto_reader *r = proto_reader_new(lim);
    struct sbuf s = {0};
    size_t off = 0;
    enum proto_status st;

    ck_assert_ptr_nonnull(r);
    sb_str(&s, "");
    for (;;) {
        struct proto_request q;
        size_t want, took;

        while ((st = proto_reader_next(r, &q)) == PROTO_OK)
            describe_request(&s, &q);
        if (st == PROTO_ERROR) {
            check_error_text(proto_reader_error(r));
            sb_str(&s, "E(");
            sb_str(&s, proto_reader_error(r));
            sb_str(&s, ")");
            break;
        }
        ck_assert_int_eq(st, PROTO_NEED_MORE);
        ck_assert_str_eq(proto_reader_error(r), "");
        if (off == n)
            break;
        want = n - off;
        if (chunk && chunk < want)
            want = chunk;
        if (mode == FEED_COPY) {
            took = proto_reader_feed(r, in + off, want);
            ck_assert_uint_ne(took, (size_t)-1);
        } else {
            size_t avail;
            char *p = proto_reader_space(r, &avail);
            ck_assert_ptr_nonnull(p);
            took = want < avail ? want : avail;
            memcpy(p, in + off, took);
            proto_reader_commit(r, took);
        }
        /* NEED_MORE and no room would stall the connection forever: the
         * reader must have failed instead. */
        ck_assert_uint_gt(took, 0);
        ck_assert_uint_le(proto_reader_pending(r), lim->max_request);
        off += took;
    }
    if (st == PROTO_NEED_MORE && proto_reader_pending(r) > 0) {
        sb_str(&s, " P");
        sb_size(&s, proto_reader_pending(r));
    }
    proto_reader_free(r);
    return s.p;
}

static const struct {
    size_t chunk;
    enum feed_mode mode;
} cuts[] = {
    {0, FEED_COPY}, {1, FEED_COPY}, {1, FEED_SPACE},
    {3, FEED_SPACE}, {7, FEED_COPY}, {64, FEED_SPACE},
};

/* Every way of cutting `in` must give exactly `want`. */
static void check_tr(const struct proto_limits *lim, const char *in, size_t n,
                     const char *want)
{
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char *got = transcript(lim, in, n, cuts[i].chunk, cuts[i].mode);
        ck_assert_msg(strcmp(got, want) == 0,
                      "chunk %zu mode %d: got \"%s\", want \"%s\"",
                      cuts[i].chunk, (int)cuts[i].mode, got, want);
        free(got);
    }
}

/* String literals may hold NUL bytes: take their size, not strlen. */
#define TR(lim, lit, want) check_tr((lim), (lit), sizeof(lit) - 1, (want))

/* n copies of `unit` followed by `tail`, malloc'd. */
static char *repeat(const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *p = malloc(ul * n + tl + 1);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        memcpy(p + i * ul, unit, ul);
    memcpy(p + ul * n, tail, tl + 1);
    *len = ul * n + tl;
    return p;
}

static struct proto_reader *reader_with(const struct proto_limits *lim,
                                        const char *in, size_t n)
{
    struct proto_reader *r = proto_reader_new(lim);

    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(proto_reader_feed(r, in, n), n);
    return r;
}

/* ---- reply helpers ---- */

START_TEST(reply_int)
{
    char out[PROTO_HEADER_MAX];

    ck_assert_uint_eq(proto_fmt_int(out, 0), 4);
    ck_assert_str_eq(out, ":0\r\n");
    ck_assert_uint_eq(proto_fmt_int(out, 42), 5);
    ck_assert_str_eq(out, ":42\r\n");
    ck_assert_uint_eq(proto_fmt_int(out, -7), 5);
    ck_assert_str_eq(out, ":-7\r\n");
    ck_assert_uint_eq(proto_fmt_int(out, -2), 5);
    ck_assert_str_eq(out, ":-2\r\n");
    ck_assert_uint_eq(proto_fmt_int(out, LLONG_MAX), 22);
    ck_assert_str_eq(out, ":9223372036854775807\r\n");
    ck_assert_uint_eq(proto_fmt_int(out, LLONG_MIN), 23);
    ck_assert_str_eq(out, ":-9223372036854775808\r\n");
}
END_TEST

START_TEST(reply_headers)
{
    char out[PROTO_HEADER_MAX], want[64];

    ck_assert_uint_eq(proto_fmt_bulk_header(out, 0), 4);
    ck_assert_mem_eq(out, "$0\r\n", 4);
    ck_assert_uint_eq(proto_fmt_bulk_header(out, 1234), 7);
    ck_assert_mem_eq(out, "$1234\r\n", 7);
    snprintf(want, sizeof want, "$%zu\r\n", (size_t)SIZE_MAX);
    ck_assert_uint_eq(proto_fmt_bulk_header(out, SIZE_MAX), strlen(want));
    ck_assert_mem_eq(out, want, strlen(want));
    ck_assert_uint_eq(proto_fmt_array_header(out, 3), 4);
    ck_assert_mem_eq(out, "*3\r\n", 4);
    ck_assert_uint_eq(proto_fmt_array_header(out, 1024), 7);
    ck_assert_mem_eq(out, "*1024\r\n", 7);
}
END_TEST

START_TEST(reply_escape)
{
    static const char in[] = "ab ~\\\x00\r\n\x7f\x80\xff\x1f\"";
    static const char want[] = "ab ~\\\\\\x00\\x0d\\x0a\\x7f\\x80\\xff\\x1f\"";
    char out[128];
    size_t n = sizeof in - 1;

    ck_assert_uint_eq(proto_escaped_len(in, n), sizeof want - 1);
    memset(out, '#', sizeof out);
    ck_assert_uint_eq(proto_escape(in, n, out), sizeof want - 1);
    ck_assert_mem_eq(out, want, sizeof want - 1);
    ck_assert_int_eq(out[sizeof want - 1], '#'); /* no NUL added */
    ck_assert_uint_eq(proto_escaped_len("", 0), 0);
    ck_assert_uint_eq(proto_escape("", 0, out), 0);

    /* Every byte value: only printable ASCII comes out. */
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        size_t m = proto_escape(&b, 1, out);
        ck_assert_uint_eq(m, proto_escaped_len(&b, 1));
        ck_assert_uint_eq(m, c == '\\' ? 2 : (c >= 0x20 && c <= 0x7e) ? 1 : 4);
        for (size_t i = 0; i < m; i++)
            ck_assert(out[i] >= 0x20 && out[i] <= 0x7e);
    }
}
END_TEST

/* ---- inline framing ---- */

START_TEST(inline_words)
{
    TR(&LIM_DEFAULT, "PING\r\n", "1[4:PING]");
    TR(&LIM_DEFAULT, "PING\n", "1[4:PING]");
    TR(&LIM_DEFAULT, "SET foo bar\r\n", "3[3:SET 3:foo 3:bar]");
    TR(&LIM_DEFAULT, "  SET \t foo\t\tbar  \t\r\n", "3[3:SET 3:foo 3:bar]");
    TR(&LIM_DEFAULT, "get k\r\nget j\nget i\r\n",
       "2[3:get 1:k]2[3:get 1:j]2[3:get 1:i]");
    /* Single quotes and '"' inside an unquoted word are plain bytes. */
    TR(&LIM_DEFAULT, "'a b'\n", "2[2:'a 2:b']");
    TR(&LIM_DEFAULT, "a\"b c\"d\n", "2[3:a\"b 3:c\"d]");
    /* A '\r' not right before '\n' is data, not a separator. */
    TR(&LIM_DEFAULT, "a\rb c\r\r\n", "2[3:a\\x0db 2:c\\x0d]");
    TR(&LIM_DEFAULT, "\rx\n", "1[2:\\x0dx]");
    TR(&LIM_DEFAULT, "\r\r\n", "1[1:\\x0d]");
    TR(&LIM_DEFAULT, "a\0b\n", "1[3:a\\x00b]");
    /* Partial lines stay pending. */
    TR(&LIM_DEFAULT, "PING", " P4");
    TR(&LIM_DEFAULT, "PING\r", " P5");
    TR(&LIM_DEFAULT, "PING\r\nSET a", "1[4:PING] P5");
}
END_TEST

START_TEST(inline_empty_lines)
{
    TR(&LIM_DEFAULT, "\r\n\n \t \r\n\nPING\n\n", "1[4:PING]");
    TR(&LIM_DEFAULT, "\n\n\r\n   \n", "");
    TR(&LIM_DEFAULT, "\n\n  ", " P2");
    /* An empty line before a RESP request does not make it inline. */
    TR(&LIM_DEFAULT, "\r\n*1\r\n$4\r\nPING\r\n", "1[4:PING]");
    /* Quoted empty strings are arguments. */
    TR(&LIM_DEFAULT, "\"\"\n", "1[0:]");
    TR(&LIM_DEFAULT, "a \"\" b \"\"\r\n", "4[1:a 0: 1:b 0:]");
}
END_TEST

START_TEST(inline_quotes)
{
    TR(&LIM_DEFAULT, "SET \"hello world\" x\r\n", "3[3:SET 11:hello world 1:x]");
    TR(&LIM_DEFAULT, "\"a\\\"b\" \"c\\\\d\" \"\\n\\r\\t\"\n",
       "3[3:a\"b 3:c\\\\d 3:\\x0a\\x0d\\x09]");
    TR(&LIM_DEFAULT, "\"\\x41\\x6a\\x6A\\x00\\xff\\xFF\"\n",
       "1[6:Ajj\\x00\\xff\\xff]");
    /* Unknown escapes keep the byte after the backslash. */
    TR(&LIM_DEFAULT, "\"\\q\\a\\0\\ \"\n", "1[4:qa0 ]");
    /* \x without two hex digits is an unknown escape: 'x' is kept. */
    TR(&LIM_DEFAULT, "\"\\xZZ\" \"\\x4g\" \"\\x\" \"\\x4\"\n",
       "4[3:xZZ 3:x4g 1:x 2:x4]");
    TR(&LIM_DEFAULT, "\"\\x\\\"\"\n", "1[2:x\"]");
    TR(&LIM_DEFAULT, "\"\\x4\\n\"\n", "1[3:x4\\x0a]");
    /* Raw CR, tab and NUL inside quotes are data. */
    TR(&LIM_DEFAULT, "\"a\rb\tc\0\"\r\n", "1[5:a\\x0db\\x09c\\x00]");
    /* After a closing quote: blank, CRLF or LF. */
    TR(&LIM_DEFAULT, "\"a\"\t\"b\"\n", "2[1:a 1:b]");
    TR(&LIM_DEFAULT, "\"a\"\r\n", "1[1:a]");
    TR(&LIM_DEFAULT, "x \"a b\"\n", "2[1:x 3:a b]");
}
END_TEST

START_TEST(inline_quote_errors)
{
    TR(&LIM_DEFAULT, "SET \"abc\r\n", "E(unbalanced quotes in request)");
    TR(&LIM_DEFAULT, "\"abc\\\n", "E(unbalanced quotes in request)");
    TR(&LIM_DEFAULT, "\"\\x\n", "E(unbalanced quotes in request)");
    TR(&LIM_DEFAULT, "\"\\x4\n", "E(unbalanced quotes in request)");
    TR(&LIM_DEFAULT, "\"\n", "E(unbalanced quotes in request)");
    TR(&LIM_DEFAULT, "\"a\"b\n", "E(closing quote must be followed by a space)");
    TR(&LIM_DEFAULT, "\"a\"\"b\"\n", "E(closing quote must be followed by a space)");
    TR(&LIM_DEFAULT, "\"a\"\rb\n", "E(closing quote must be followed by a space)");
    /* Detected on the byte after the quote, with no newline yet. */
    TR(&LIM_DEFAULT, "\"a\"x", "E(closing quote must be followed by a space)");
    /* What follows a framing error is never parsed. */
    TR(&LIM_DEFAULT, "PING\n\"x\nPING\n", "1[4:PING]E(unbalanced quotes in request)");
}
END_TEST

START_TEST(inline_max_line)
{
    /* max_line is 16 bytes of raw line, line end not counted. */
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaa\r\n", "1[16:aaaaaaaaaaaaaaaa]");
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaa\n", "1[16:aaaaaaaaaaaaaaaa]");
    TR(&LIM_SMALL, "aaaaaaa bbbbbbbb\n", "2[7:aaaaaaa 8:bbbbbbbb]");
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaa", " P16");
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaa\r", " P17");
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaaa\n", "E(inline request too long (max 16 bytes))");
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaa\rx", "E(inline request too long (max 16 bytes))");
    /* Detected once 17 bytes are in, before any newline. */
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaaa", "E(inline request too long (max 16 bytes))");
    /* Blank lines and escapes count as raw bytes too. */
    TR(&LIM_SMALL, "                 \n", "E(inline request too long (max 16 bytes))");
    TR(&LIM_SMALL, "\"\\x41\\x41\\x41\\x41\"\n", "E(inline request too long (max 16 bytes))");
    /* The limit is per line, not per buffer. */
    TR(&LIM_SMALL, "aaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb\n",
       "1[16:aaaaaaaaaaaaaaaa]1[16:bbbbbbbbbbbbbbbb]");
}
END_TEST

START_TEST(inline_max_line_default)
{
    size_t n;
    char *line = repeat("a", 65537, "", &n);
    struct proto_request q;
    struct proto_reader *r = reader_with(&LIM_DEFAULT, line, 65536);

    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_feed(r, "\r", 1), 1);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_feed(r, "\n", 1), 1);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 1);
    ck_assert_uint_eq(q.argvlen[0], 65536);
    ck_assert_mem_eq(q.argv[0], line, 65536);
    proto_reader_free(r);

    r = reader_with(&LIM_DEFAULT, line, 65537);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_ERROR);
    ck_assert_str_eq(proto_reader_error(r), "inline request too long (max 65536 bytes)");
    proto_reader_free(r);
    free(line);
}
END_TEST

START_TEST(inline_too_many_words)
{
    size_t n;
    char *in = repeat("a ", 1024, "\r\n", &n);
    struct proto_request q;
    struct proto_reader *r = reader_with(&LIM_DEFAULT, in, n);

    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    check_request(&q);
    ck_assert_uint_eq(q.argc, 1024);
    for (size_t i = 0; i < q.argc; i++) {
        ck_assert_uint_eq(q.argvlen[i], 1);
        ck_assert_str_eq(q.argv[i], "a");
    }
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    proto_reader_free(r);
    free(in);

    in = repeat("a ", 1025, "\r\n", &n);
    r = reader_with(&LIM_DEFAULT, in, n);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_ERROR);
    ck_assert_str_eq(proto_reader_error(r), "too many arguments (max 1024)");
    proto_reader_free(r);
    free(in);

    /* Empty quoted words count too, and the error needs no newline. */
    in = repeat("\"\" ", 1025, "", &n);
    check_tr(&LIM_DEFAULT, in, n, "E(too many arguments (max 1024))");
    free(in);
}
END_TEST

/* ---- RESP framing ---- */

START_TEST(resp_basic)
{
    TR(&LIM_DEFAULT, "*1\r\n$4\r\nPING\r\n", "1[4:PING]");
    TR(&LIM_DEFAULT, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n",
       "3[3:SET 3:key 0:]");
    TR(&LIM_DEFAULT, "*01\r\n$004\r\nPING\r\n", "1[4:PING]");
    /* Binary safe: NUL, CR, LF, quotes and backslashes are data. */
    TR(&LIM_DEFAULT, "*2\r\n$3\r\nGET\r\n$7\r\na\0\r\n\"\\b\r\n",
       "2[3:GET 7:a\\x00\\x0d\\x0a\"\\\\b]");
    TR(&LIM_DEFAULT, "*1\r\n$2\r\n\r\n\r\n", "1[2:\\x0d\\x0a]");
    /* Spaces inside a bulk do not split it. */
    TR(&LIM_DEFAULT, "*1\r\n$3\r\na b\r\n", "1[3:a b]");
    /* Partial requests stay pending, at every stage. */
    TR(&LIM_DEFAULT, "*2", " P2");
    TR(&LIM_DEFAULT, "*2\r\n$1\r\na\r\n", " P11");
    TR(&LIM_DEFAULT, "*2\r\n$1\r\na\r\n$1", " P13");
    TR(&LIM_DEFAULT, "*1\r\n$4\r\nPI", " P10");
    TR(&LIM_DEFAULT, "*1\r\n$4\r\nPING\r", " P13");
    /* The longest bulk max_line allows. */
    TR(&LIM_SMALL, "*1\r\n$16\r\n0123456789abcdef\r\n", "1[16:0123456789abcdef]");
}
END_TEST

START_TEST(resp_max_args)
{
    size_t n;
    char *body = repeat("$1\r\nx\r\n", 1024, "", &n);
    char *in = malloc(n + 16);
    struct proto_request q;
    struct proto_reader *r;

    ck_assert_ptr_nonnull(in);
    memcpy(in, "*1024\r\n", 7);
    memcpy(in + 7, body, n);
    r = reader_with(&LIM_DEFAULT, in, n + 7);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    check_request(&q);
    ck_assert_uint_eq(q.argc, 1024);
    for (size_t i = 0; i < q.argc; i++)
        ck_assert_str_eq(q.argv[i], "x");
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    proto_reader_free(r);
    free(in);
    free(body);
}
END_TEST

START_TEST(resp_bad_count)
{
    TR(&LIM_DEFAULT, "*x\r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*\r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*1x", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*+1\r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "* 1\r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*1 \r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*-\r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*1-1\r\n", "E(invalid multibulk count)");
    TR(&LIM_DEFAULT, "*0\r\n", "E(multibulk count out of range (1..1024))");
    TR(&LIM_DEFAULT, "*-1\r\n", "E(multibulk count out of range (1..1024))");
    TR(&LIM_DEFAULT, "*1025\r\n", "E(multibulk count out of range (1..1024))");
    TR(&LIM_DEFAULT, "*99999999999999999999\r\n",
       "E(multibulk count out of range (1..1024))");
    TR(&LIM_DEFAULT, "*18446744073709551617\r\n",
       "E(multibulk count out of range (1..1024))");
    TR(&LIM_DEFAULT, "*1024\r\n", " P7");
    TR(&LIM_DEFAULT, "*1\n", "E(expected CRLF after multibulk count)");
    TR(&LIM_DEFAULT, "*1\rx", "E(expected CRLF after multibulk count)");
    TR(&LIM_DEFAULT, "*1\r\r\n", "E(expected CRLF after multibulk count)");
    /* A header line of 32 bytes may still end; the 33rd byte fails it. */
    TR(&LIM_DEFAULT, "*0000000000000000000000000000001", " P32");
    TR(&LIM_DEFAULT, "*00000000000000000000000000000001",
       "E(expected CRLF after multibulk count)");
}
END_TEST

START_TEST(resp_bad_bulk)
{
    TR(&LIM_SMALL, "*1\r\nPING\r\n", "E(expected '$', got 'P')");
    TR(&LIM_SMALL, "*1\r\n\x01", "E(expected '$', got '\\x01')");
    TR(&LIM_SMALL, "*1\r\n\\", "E(expected '$', got '\\\\')");
    TR(&LIM_SMALL, "*1\r\n\r\n", "E(expected '$', got '\\x0d')");
    TR(&LIM_SMALL, "*2\r\n$1\r\na\r\n:1\r\n", "E(expected '$', got ':')");
    TR(&LIM_SMALL, "*1\r\n$x\r\n", "E(invalid bulk length)");
    TR(&LIM_SMALL, "*1\r\n$\r\n", "E(invalid bulk length)");
    TR(&LIM_SMALL, "*1\r\n$4x", "E(invalid bulk length)");
    TR(&LIM_SMALL, "*1\r\n$-1\r\n", "E(bulk length out of range (0..16))");
    TR(&LIM_SMALL, "*1\r\n$-0\r\n", "E(bulk length out of range (0..16))");
    TR(&LIM_SMALL, "*1\r\n$17\r\n", "E(bulk length out of range (0..16))");
    TR(&LIM_SMALL, "*1\r\n$99999999999999999999999\r\n",
       "E(bulk length out of range (0..16))");
    TR(&LIM_DEFAULT, "*1\r\n$65537\r\n", "E(bulk length out of range (0..65536))");
    TR(&LIM_SMALL, "*1\r\n$3\n", "E(expected CRLF after bulk length)");
    TR(&LIM_SMALL, "*1\r\n$3\rx", "E(expected CRLF after bulk length)");
    TR(&LIM_SMALL, "*1\r\n$4\r\nPINGxx", "E(expected CRLF after bulk string)");
    TR(&LIM_SMALL, "*1\r\n$4\r\nPINGx", "E(expected CRLF after bulk string)");
    TR(&LIM_SMALL, "*1\r\n$4\r\nPING\rx", "E(expected CRLF after bulk string)");
    TR(&LIM_SMALL, "*1\r\n$4\r\nPING\n\r", "E(expected CRLF after bulk string)");
    /* A bulk shorter than announced eats its CRLF as data. */
    TR(&LIM_SMALL, "*1\r\n$4\r\nPIN\r\n", "E(expected CRLF after bulk string)");
    TR(&LIM_SMALL, "*2\r\n$1\r\na\r\n$1\r\nbb\r\n", "E(expected CRLF after bulk string)");
}
END_TEST

START_TEST(resp_request_too_large)
{
    /* Announced bytes that cannot fit fail at the bulk header. */
    TR(&LIM_SMALL,
       "*3\r\n$16\r\naaaaaaaaaaaaaaaa\r\n$16\r\nbbbbbbbbbbbbbbbb\r\n$16\r\n",
       "E(request too large (max 64 bytes))");
    /* Many small bulks: fails once the bound is reached, not before. */
    {
        size_t n;
        char *in = repeat("$0\r\n\r\n", 200, "", &n);
        memcpy(in, "*200\r\n", 6); /* overwrite the first bulk */
        check_tr(&LIM_SMALL, in, n, "E(request too large (max 64 bytes))");
        free(in);
    }
    /* 20 bytes buffered, request incomplete, no room left: fails. */
    TR(&LIM_TINY, "*2\r\n$9\r\n012345678\r\n$1\r\nx\r\n",
       "E(request too large (max 20 bytes))");
    /* A request of exactly max_request bytes is fine, and so is the next. */
    {
        static const struct proto_limits lim = {16, 25};
        TR(&lim, "*2\r\n$9\r\n012345678\r\n$0\r\n\r\nPING\r\n",
           "2[9:012345678 0:]1[4:PING]");
    }
}
END_TEST

/* ---- pipelines ---- */

START_TEST(pipeline_mixed)
{
    TR(&LIM_DEFAULT,
       "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\nset a \"b c\"\n"
       "*1\r\n$4\r\nQUIT\r\n*1\r\n$1\r\n*\r\n\n*1\r\n$1\r\n\n\r\n",
       "1[4:PING]2[3:GET 1:k]3[3:set 1:a 3:b c]1[4:QUIT]1[1:*]1[1:\\x0a]");
    /* More than max_request in one go: feed takes part, next frees room. */
    {
        size_t n;
        char *in = repeat("PING\r\n", 30, "", &n);
        char *want = repeat("1[4:PING]", 30, "", &n);
        check_tr(&LIM_SMALL, in, 180, want);
        free(in);
        free(want);
    }
}
END_TEST

/* Request i of the large pipeline, and what the reader must return. */
static size_t pipeline_request(size_t i, char *out, char *args)
{
    int n;

    switch (i % 3) {
    case 0:
        n = snprintf(out, 128, "ACQUIRE lock:%zu TTL 100\r\n", i);
        snprintf(args, 128, "ACQUIRE|lock:%zu|TTL|100", i);
        break;
    case 1: {
        char key[32];
        int kl = snprintf(key, sizeof key, "lock:%zu", i);
        n = snprintf(out, 128, "*2\r\n$7\r\nRELEASE\r\n$%d\r\n%s\r\n", kl, key);
        snprintf(args, 128, "RELEASE|%s", key);
        break;
    }
    default:
        n = snprintf(out, 128, "PING\n");
        snprintf(args, 128, "PING");
        break;
    }
    return (size_t)n;
}

static void run_pipeline(size_t count, size_t chunk)
{
    struct sbuf in = {0};
    struct proto_reader *r = proto_reader_new(&LIM_DEFAULT);
    size_t off = 0, got = 0;
    char req[128], want[128];

    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < count; i++)
        sb_add(&in, req, pipeline_request(i, req, want));
    while (got < count) {
        struct proto_request q;
        enum proto_status st;

        while ((st = proto_reader_next(r, &q)) == PROTO_OK) {
            char joined[256] = "";
            check_request(&q);
            for (size_t a = 0; a < q.argc; a++) {
                if (a)
                    strcat(joined, "|");
                strncat(joined, q.argv[a], q.argvlen[a]);
            }
            pipeline_request(got, req, want);
            ck_assert_str_eq(joined, want);
            got++;
        }
        ck_assert_int_eq(st, PROTO_NEED_MORE);
        if (off == in.len)
            break;
        size_t avail;
        char *p = proto_reader_space(r, &avail);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_gt(avail, 0);
        size_t n = in.len - off;
        if (n > avail)
            n = avail;
        if (n > chunk)
            n = chunk;
        memcpy(p, in.p + off, n);
        proto_reader_commit(r, n);
        off += n;
    }
    ck_assert_uint_eq(got, count);
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    proto_reader_free(r);
    free(in.p);
}

START_TEST(pipeline_large)
{
    run_pipeline(10000, SIZE_MAX); /* as much as the reader takes */
    run_pipeline(10000, 4096);
    run_pipeline(10000, 1);
    run_pipeline(10000, 1000);
}
END_TEST

/* ---- buffer, feeding APIs, state ---- */

START_TEST(feed_partial_when_full)
{
    /* Three 27-byte requests; only 64 bytes may wait. */
    static const char one[] = "*1\r\n$16\r\n0123456789abcdef\r\n";
    char in[81];
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_SMALL);

    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 3; i++)
        memcpy(in + 27 * i, one, 27);
    ck_assert_uint_eq(proto_reader_feed(r, in, 81), 64);
    ck_assert_uint_eq(proto_reader_pending(r), 64);
    ck_assert_uint_eq(proto_reader_feed(r, in + 64, 17), 0);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 1);
    ck_assert_uint_eq(q.argvlen[0], 16);
    ck_assert_str_eq(q.argv[0], "0123456789abcdef");
    ck_assert_uint_eq(proto_reader_pending(r), 37);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(proto_reader_pending(r), 10);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_feed(r, in + 64, 17), 17);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_str_eq(q.argv[0], "0123456789abcdef");
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    ck_assert_uint_eq(proto_reader_feed(r, "", 0), 0);
    proto_reader_free(r);
}
END_TEST

START_TEST(space_commit)
{
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_SMALL);
    size_t avail;
    char *p;

    ck_assert_ptr_nonnull(r);
    p = proto_reader_space(r, &avail);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(avail, 64); /* never more than max_request */
    memcpy(p, "PING\r\nGET", 9);
    proto_reader_commit(r, 9);
    ck_assert_uint_eq(proto_reader_pending(r), 9);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 1);
    ck_assert_str_eq(q.argv[0], "PING");
    ck_assert_uint_eq(proto_reader_pending(r), 3);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    p = proto_reader_space(r, &avail);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(avail, 61);
    memcpy(p, " k\n", 3);
    proto_reader_commit(r, 3);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 2);
    ck_assert_str_eq(q.argv[0], "GET");
    ck_assert_str_eq(q.argv[1], "k");

    /* Full: avail 0 but not NULL (NULL means out of memory). */
    ck_assert_uint_eq(proto_reader_feed(r, "PING\r\nPING\r\nPING\r\nPING\r\n"
                                           "PING\r\nPING\r\nPING\r\nPING\r\n"
                                           "PING\r\nPING\r\nPING\r\n", 66), 64);
    p = proto_reader_space(r, &avail);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(avail, 0);
    proto_reader_commit(r, 0);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    p = proto_reader_space(r, &avail);
    ck_assert_uint_eq(avail, 6);
    proto_reader_free(r);
}
END_TEST

START_TEST(pending_counts)
{
    struct proto_request q;
    struct proto_reader *r = reader_with(&LIM_DEFAULT, "\n\nPING\r\nPI", 12);

    ck_assert_uint_eq(proto_reader_pending(r), 12);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(proto_reader_pending(r), 2);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_pending(r), 2);
    ck_assert_uint_eq(proto_reader_feed(r, "NG\n", 3), 3);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_str_eq(q.argv[0], "PING");
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    proto_reader_free(r);
}
END_TEST

START_TEST(buffer_shrinks_when_idle)
{
    static const struct proto_limits lim = {200000, 400000};
    size_t bulk = 100000, n, avail, off = 0;
    struct sbuf in = {0};
    char hdr[64], *p;
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&lim);

    ck_assert_ptr_nonnull(r);
    n = (size_t)snprintf(hdr, sizeof hdr, "*2\r\n$3\r\nSET\r\n$%zu\r\n", bulk);
    sb_add(&in, hdr, n);
    for (size_t i = 0; i < bulk; i++)
        sb_add(&in, &"0123456789\0\r\n"[i % 13], 1);
    sb_add(&in, "\r\n", 2);
    while (off < in.len) {
        ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
        p = proto_reader_space(r, &avail);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_gt(avail, 0);
        n = in.len - off < avail ? in.len - off : avail;
        memcpy(p, in.p + off, n);
        proto_reader_commit(r, n);
        off += n;
    }
    /* It grew past 64 KiB to hold the request... */
    p = proto_reader_space(r, &avail);
    ck_assert_uint_gt(avail, 0);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 2);
    ck_assert_uint_eq(q.argvlen[1], bulk);
    ck_assert_mem_eq(q.argv[1], in.p + in.len - bulk - 2, bulk);
    ck_assert_int_eq(q.argv[1][bulk], '\0');
    /* ...and gives it back once the request is done. */
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    p = proto_reader_space(r, &avail);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_gt(avail, 0);
    ck_assert_uint_le(avail, 4096);
    /* Still works after shrinking. */
    proto_reader_commit(r, 0);
    ck_assert_uint_eq(proto_reader_feed(r, "PING\r\n", 6), 6);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_str_eq(q.argv[0], "PING");
    proto_reader_free(r);
    free(in.p);
}
END_TEST

START_TEST(byte_by_byte_big)
{
    /* A 64 KiB line and a 64 KiB bulk, one byte per feed: must finish
     * quickly because each byte is scanned once. */
    size_t n;
    char *line = repeat("x", 65530, " y\r\n", &n);
    char hdr[32];
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_DEFAULT);
    size_t hl = (size_t)snprintf(hdr, sizeof hdr, "*1\r\n$%d\r\n", 65536);

    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
        ck_assert_uint_eq(proto_reader_feed(r, line + i, 1), 1);
    }
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 2);
    ck_assert_uint_eq(q.argvlen[0], 65530);
    ck_assert_str_eq(q.argv[1], "y");
    for (size_t i = 0; i < hl; i++)
        ck_assert_uint_eq(proto_reader_feed(r, hdr + i, 1), 1);
    for (size_t i = 0; i < 65536; i++) {
        ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
        ck_assert_uint_eq(proto_reader_feed(r, "\n", 1), 1);
    }
    ck_assert_uint_eq(proto_reader_feed(r, "\r\n", 2), 2);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 1);
    ck_assert_uint_eq(q.argvlen[0], 65536);
    ck_assert_int_eq(q.argv[0][0], '\n');
    ck_assert_int_eq(q.argv[0][65535], '\n');
    proto_reader_free(r);
    free(line);
}
END_TEST

START_TEST(dead_after_error)
{
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_SMALL);
    size_t avail;
    char *p;

    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(proto_reader_error(r), "");
    ck_assert_uint_eq(proto_reader_feed(r, "*1\r\n$x\r\nPING\r\n", 14), 14);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_ERROR);
    ck_assert_str_eq(proto_reader_error(r), "invalid bulk length");
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_ERROR);
    ck_assert_str_eq(proto_reader_error(r), "invalid bulk length");
    /* Later input is swallowed, never parsed. */
    ck_assert_uint_eq(proto_reader_feed(r, "PING\r\n", 6), 6);
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    p = proto_reader_space(r, &avail);
    ck_assert_ptr_nonnull(p);
    if (avail >= 6) {
        memcpy(p, "PING\r\n", 6);
        proto_reader_commit(r, 6);
    }
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_ERROR);
    ck_assert_str_eq(proto_reader_error(r), "invalid bulk length");
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    proto_reader_free(r);
    proto_reader_free(NULL);
}
END_TEST

START_TEST(limits_enforced)
{
    /* max_request below max_line + 2 is raised to it. */
    static const struct proto_limits bad = {16, 4};
    TR(&bad, "*1\r\n$10\r\n0123456789\r\n", "E(request too large (max 18 bytes))");
    TR(&bad, "0123456789abcdef\r\n", "1[16:0123456789abcdef]");
}
END_TEST

/* Deterministic xorshift: the same inputs on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(fuzz_cut_invariance)
{
    /* Bytes that matter to the framing, so the random inputs reach deep. */
    static const char alphabet[] = "*$\r\n\r\n 0123\"\\x4aZ-\t\0q*$\r\n1";
    static const struct proto_limits *lims[] = {&LIM_SMALL, &LIM_TINY,
                                                &LIM_DEFAULT};
    char in[96];

    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + rng() % sizeof in;
        const struct proto_limits *lim = lims[iter % 3];
        char *whole;

        for (size_t i = 0; i < n; i++)
            in[i] = alphabet[rng() % (sizeof alphabet - 1)];
        if (iter % 4 == 0)
            memcpy(in, "*2\r\n$", n < 5 ? n : 5);
        whole = transcript(lim, in, n, 0, FEED_COPY);
        check_tr(lim, in, n, whole);
        free(whole);
    }
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc;

    tc = tcase_create("reply");
    tcase_add_test(tc, reply_int);
    tcase_add_test(tc, reply_headers);
    tcase_add_test(tc, reply_escape);
    suite_add_tcase(s, tc);

    tc = tcase_create("inline");
    tcase_add_test(tc, inline_words);
    tcase_add_test(tc, inline_empty_lines);
    tcase_add_test(tc, inline_quotes);
    tcase_add_test(tc, inline_quote_errors);
    tcase_add_test(tc, inline_max_line);
    tcase_add_test(tc, inline_max_line_default);
    tcase_add_test(tc, inline_too_many_words);
    suite_add_tcase(s, tc);

    tc = tcase_create("resp");
    tcase_add_test(tc, resp_basic);
    tcase_add_test(tc, resp_max_args);
    tcase_add_test(tc, resp_bad_count);
    tcase_add_test(tc, resp_bad_bulk);
    tcase_add_test(tc, resp_request_too_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("pipeline");
    tcase_add_test(tc, pipeline_mixed);
    tcase_add_test(tc, pipeline_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("buffer");
    tcase_add_test(tc, feed_partial_when_full);
    tcase_add_test(tc, space_commit);
    tcase_add_test(tc, pending_counts);
    tcase_add_test(tc, buffer_shrinks_when_idle);
    tcase_add_test(tc, byte_by_byte_big);
    tcase_add_test(tc, dead_after_error);
    tcase_add_test(tc, limits_enforced);
    tcase_add_test(tc, fuzz_cut_invariance);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
