/* tests/unit/test_proto.c - Check suite for proto/reader.c and proto/encode.c.
 *
 * Owns: the unit tests of the request parser and the reply helpers; no
 * sockets, no daemon.  Most parser tests go through check_tr(), which feeds
 * an input whole, byte by byte and in odd chunks, through both feeding APIs
 * (feed; space + commit), and renders what the reader returned as one
 * string: "<argc>[<len>:<escaped arg> ...]" per request, then "E(<message>)"
 * on a framing error or " P<n>" when n bytes are left pending.  Every way of
 * cutting an input must give the same string: that is what "incremental"
 * promises.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/reader.h"
#include "proto/encode.h"

/* Tight limits make the bounds reachable with short literals. */
static const struct proto_limits LIM_SMALL = {16, 0, 64};
/* Room for one 9-byte bulk and the start of another. */
static const struct proto_limits LIM_TINY = {16, 0, 20};
/* The daemon's defaults: 64 KiB lines, 1 MiB requests. */
static const struct proto_limits LIM_DEFAULT = {65536, 0, 1048576};

/* ck_assert records a checkpoint on every call, which dominated the byte by
 * byte loops (and made valgrind runs crawl); REQUIRE calls into Check only
 * when the condition fails. */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg("requirement failed: %s", #cond);                   \
    } while (0)

/* Invariants of every request the reader hands out. */
static void check_request(const struct proto_request *q)
{
    REQUIRE(q->argc >= 1 && q->argc <= PROTO_MAX_ARGS);
    REQUIRE(q->argv != NULL && q->argvlen != NULL);
    for (size_t i = 0; i < q->argc; i++)
        REQUIRE(q->argv[i] != NULL && q->argv[i][q->argvlen[i]] == '\0');
}

/* Error messages go into "-PROTO <msg>\r\n": short printable ASCII. */
static void check_error_text(const char *msg)
{
    REQUIRE(strlen(msg) > 0 && strlen(msg) < 96);
    for (const char *p = msg; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            ck_abort_msg("bad byte in \"%s\"", msg);
}

static void describe_request(FILE *out, const struct proto_request *q)
{
    check_request(q);
    fprintf(out, "%zu[", q->argc);
    for (size_t i = 0; i < q->argc; i++) {
        size_t n = proto_escaped_len(q->argv[i], q->argvlen[i]);
        char *esc = malloc(n + 1);
        REQUIRE(esc != NULL);
        REQUIRE(proto_escape(q->argv[i], q->argvlen[i], esc) == n);
        fprintf(out, "%s%zu:%.*s", i ? " " : "", q->argvlen[i], (int)n, esc);
        free(esc);
    }
    fputc(']', out);
}

/* Hands up to `want` bytes of in to r through proto_reader_feed or (with
 * use_space) proto_reader_space + _commit; returns how many it took. */
static size_t feed_some(struct proto_reader *r, const char *in, size_t want,
                        int use_space)
{
    size_t took, avail;
    char *p;

    if (!use_space) {
        took = proto_reader_feed(r, in, want);
        REQUIRE(took != (size_t)-1);
        return took;
    }
    REQUIRE((p = proto_reader_space(r, &avail)) != NULL);
    took = want < avail ? want : avail;
    memcpy(p, in, took);
    proto_reader_commit(r, took);
    return took;
}

/* Feeds in[0..len) `chunk` bytes at a time, checking before each piece
 * that no request is complete yet; the last piece is left unparsed. */
static void feed_in_pieces(struct proto_reader *r, const char *in,
                           size_t len, size_t chunk, int use_space)
{
    struct proto_request q;

    for (size_t off = 0, n; off < len; off += n) {
        REQUIRE(proto_reader_next(r, &q) == PROTO_NEED_MORE);
        n = feed_some(r, in + off, len - off < chunk ? len - off : chunk,
                      use_space);
        REQUIRE(n > 0);
    }
}

/* Returns (malloc'd) the transcript of feeding in[0..len) `chunk` bytes
 * at a time (0: as much as it takes), draining requests after each feed. */
static char *transcript(const struct proto_limits *lim, const char *in,
                        size_t len, size_t chunk, int use_space)
{
    struct proto_reader *r = proto_reader_new(lim);
    struct proto_request q;
    enum proto_status st;
    char *text = NULL;
    size_t size = 0, off = 0, took;
    FILE *out = open_memstream(&text, &size);

    REQUIRE(r != NULL && out != NULL);
    for (;;) {
        while ((st = proto_reader_next(r, &q)) == PROTO_OK)
            describe_request(out, &q);
        if (st == PROTO_ERROR || off == len)
            break;
        REQUIRE(st == PROTO_NEED_MORE && proto_reader_error(r)[0] == '\0');
        took = feed_some(r, in + off,
                         chunk && chunk < len - off ? chunk : len - off,
                         use_space);
        /* NEED_MORE with no room left would stall the connection forever:
         * the reader must have failed instead. */
        REQUIRE(took > 0);
        off += took;
    }
    if (st == PROTO_ERROR) {
        check_error_text(proto_reader_error(r));
        fprintf(out, "E(%s)", proto_reader_error(r));
    } else if (proto_reader_pending(r) > 0) {
        fprintf(out, " P%zu", proto_reader_pending(r));
    }
    REQUIRE(fclose(out) == 0);
    proto_reader_free(r);
    return text;
}

/* Every way of cutting in[0..len) must give exactly `want`. */
static void check_tr(const struct proto_limits *lim, const char *in,
                     size_t len, const char *want)
{
    static const size_t chunks[] = {0, 1, 1, 3, 7, 64};

    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        char *got = transcript(lim, in, len, chunks[i], (int)(i & 1));
        if (strcmp(got, want) != 0)
            ck_abort_msg("chunk %zu space %d: got \"%s\", want \"%s\"",
                         chunks[i], (int)(i & 1), got, want);
        free(got);
    }
}

/* Literals may hold NUL bytes: use their size, not strlen. */
#define TR(lim, lit, want) check_tr((lim), (lit), sizeof(lit) - 1, (want))
#define TRD(lit, want) TR(&LIM_DEFAULT, lit, want)
#define TRS(lit, want) TR(&LIM_SMALL, lit, want)

#define E_QUOTES "E(unbalanced quotes in request)"
#define E_CLOSE "E(closing quote must be followed by a space)"
#define E_LONG16 "E(inline request too long (max 16 bytes))"
#define E_COUNT "E(invalid multibulk count)"
#define E_COUNT_RANGE "E(multibulk count out of range (1..1024))"
#define E_COUNT_CRLF "E(expected CRLF after multibulk count)"
#define E_LEN "E(invalid bulk length)"
#define E_LEN_RANGE16 "E(bulk length out of range (0..16))"
#define E_LEN_CRLF "E(expected CRLF after bulk length)"
#define E_BULK_CRLF "E(expected CRLF after bulk string)"

/* n copies of `unit` then `tail`, malloc'd; *len gets the length. */
static char *repeat(const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *p = malloc(ul * n + tl + 1);

    REQUIRE(p != NULL);
    for (size_t i = 0; i < n; i++)
        memcpy(p + i * ul, unit, ul);
    memcpy(p + ul * n, tail, tl + 1);
    *len = ul * n + tl;
    return p;
}

/* The transcript of one request of argc copies of arg (malloc'd). */
static char *same_args(size_t argc, const char *arg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    REQUIRE(out != NULL);
    fprintf(out, "%zu[", argc);
    for (size_t i = 0; i < argc; i++)
        fprintf(out, "%s%zu:%s", i ? " " : "", strlen(arg), arg);
    fputc(']', out);
    REQUIRE(fclose(out) == 0);
    return text;
}

/* ---- reply helpers ---- */

#define FMT_EQ(call, want)                                                   \
    do {                                                                     \
        char out_[PROTO_HEADER_MAX];                                         \
        ck_assert_uint_eq(call, strlen(want));                               \
        ck_assert_str_eq(out_, want);                                        \
    } while (0)

START_TEST(reply_headers)
{
    char want[64];

    FMT_EQ(proto_fmt_int(out_, 0), ":0\r\n");
    FMT_EQ(proto_fmt_int(out_, 42), ":42\r\n");
    FMT_EQ(proto_fmt_int(out_, -2), ":-2\r\n");
    FMT_EQ(proto_fmt_int(out_, LLONG_MAX), ":9223372036854775807\r\n");
    FMT_EQ(proto_fmt_int(out_, LLONG_MIN), ":-9223372036854775808\r\n");
    FMT_EQ(proto_fmt_bulk_header(out_, 0), "$0\r\n");
    FMT_EQ(proto_fmt_bulk_header(out_, 1234), "$1234\r\n");
    snprintf(want, sizeof want, "$%zu\r\n", (size_t)SIZE_MAX);
    FMT_EQ(proto_fmt_bulk_header(out_, SIZE_MAX), want);
    FMT_EQ(proto_fmt_array_header(out_, 3), "*3\r\n");
    FMT_EQ(proto_fmt_array_header(out_, 1024), "*1024\r\n");
}
END_TEST

START_TEST(reply_escape)
{
    static const char in[] = "ab ~\\\x00\r\n\x7f\x80\xff\x1f\"";
    static const char want[] = "ab ~\\\\\\x00\\x0d\\x0a\\x7f\\x80\\xff\\x1f\"";
    char out[128];

    ck_assert_uint_eq(proto_escaped_len(in, sizeof in - 1), sizeof want - 1);
    memset(out, '#', sizeof out);
    ck_assert_uint_eq(proto_escape(in, sizeof in - 1, out), sizeof want - 1);
    ck_assert_mem_eq(out, want, sizeof want - 1);
    ck_assert_int_eq(out[sizeof want - 1], '#'); /* no NUL added */
    ck_assert_uint_eq(proto_escaped_len("", 0), 0);
    ck_assert_uint_eq(proto_escape("", 0, out), 0);
    for (int c = 0; c < 256; c++) { /* only printable ASCII comes out */
        char b = (char)c;
        size_t m = proto_escape(&b, 1, out);
        ck_assert_uint_eq(m, proto_escaped_len(&b, 1));
        ck_assert_uint_eq(m, c == '\\' ? 2 : c >= 0x20 && c <= 0x7e ? 1 : 4);
        for (size_t i = 0; i < m; i++)
            ck_assert(out[i] >= 0x20 && out[i] <= 0x7e);
    }
}
END_TEST

/* ---- inline framing ---- */

START_TEST(inline_words)
{
    TRD("PING\r\n", "1[4:PING]");
    TRD("PING\n", "1[4:PING]");
    TRD("SET foo bar\r\n", "3[3:SET 3:foo 3:bar]");
    TRD("  SET \t foo\t\tbar  \t\r\n", "3[3:SET 3:foo 3:bar]");
    TRD("get k\r\nget j\nget i\r\n", "2[3:get 1:k]2[3:get 1:j]2[3:get 1:i]");
    /* Single quotes, and '"' inside an unquoted word, are plain bytes. */
    TRD("'a b'\n", "2[2:'a 2:b']");
    TRD("a\"b c\"d\n", "2[3:a\"b 3:c\"d]");
    /* A '\r' not right before '\n' is data, not a separator. */
    TRD("a\rb c\r\r\n", "2[3:a\\x0db 2:c\\x0d]");
    TRD("\rx\n", "1[2:\\x0dx]");
    TRD("\r\r\n", "1[1:\\x0d]");
    TRD("a\0b\n", "1[3:a\\x00b]");
    /* Partial lines stay pending. */
    TRD("PING", " P4");
    TRD("PING\r", " P5");
    TRD("PING\r\nSET a", "1[4:PING] P5");
    /* Empty and blank lines are skipped, also before a RESP request. */
    TRD("\r\n\n \t \r\n\nPING\n\n", "1[4:PING]");
    TRD("\n\n\r\n   \n", "");
    TRD("\n\n  ", " P2");
    TRD("\r\n*1\r\n$4\r\nPING\r\n", "1[4:PING]");
}
END_TEST

START_TEST(inline_quotes)
{
    TRD("SET \"hello world\" x\r\n", "3[3:SET 11:hello world 1:x]");
    TRD("\"\"\n", "1[0:]");
    TRD("a \"\" b \"\"\r\n", "4[1:a 0: 1:b 0:]");
    TRD("\"a\\\"b\" \"c\\\\d\" \"\\n\\r\\t\"\n",
        "3[3:a\"b 3:c\\\\d 3:\\x0a\\x0d\\x09]");
    TRD("\"\\x41\\x6a\\x6A\\x00\\xff\\xFF\"\n", "1[6:Ajj\\x00\\xff\\xff]");
    /* Unknown escapes keep the byte after the backslash. */
    TRD("\"\\q\\a\\0\\ \"\n", "1[4:qa0 ]");
    /* \x without two hex digits is an unknown escape: 'x' is kept. */
    TRD("\"\\xZZ\" \"\\x4g\" \"\\x\" \"\\x4\"\n", "4[3:xZZ 3:x4g 1:x 2:x4]");
    TRD("\"\\x\\\"\"\n", "1[2:x\"]");
    TRD("\"\\x4\\n\"\n", "1[3:x4\\x0a]");
    /* Raw CR, tab and NUL inside quotes are data. */
    TRD("\"a\rb\tc\0\"\r\n", "1[6:a\\x0db\\x09c\\x00]");
    /* After a closing quote: a blank, CRLF or LF. */
    TRD("\"a\"\t\"b\"\n", "2[1:a 1:b]");
    TRD("\"a\"\r\n", "1[1:a]");
    TRD("x \"a b\"\n", "2[1:x 3:a b]");
}
END_TEST

START_TEST(inline_quote_errors)
{
    TRD("SET \"abc\r\n", E_QUOTES);
    TRD("\"abc\\\n", E_QUOTES);
    TRD("\"\\x\n", E_QUOTES);
    TRD("\"\\x4\n", E_QUOTES);
    TRD("\"\n", E_QUOTES);
    TRD("\"a\"b\n", E_CLOSE);
    TRD("\"a\"\"b\"\n", E_CLOSE);
    TRD("\"a\"\rb\n", E_CLOSE);
    TRD("\"a\"x", E_CLOSE); /* found on the byte after the quote */
    /* What follows a framing error is never parsed. */
    TRD("PING\n\"x\nPING\n", "1[4:PING]" E_QUOTES);
}
END_TEST

START_TEST(inline_max_line)
{
    /* max_line counts the raw line, its line end not included. */
    TRS("aaaaaaaaaaaaaaaa\r\n", "1[16:aaaaaaaaaaaaaaaa]");
    TRS("aaaaaaaaaaaaaaaa\n", "1[16:aaaaaaaaaaaaaaaa]");
    TRS("aaaaaaa bbbbbbbb\n", "2[7:aaaaaaa 8:bbbbbbbb]");
    TRS("aaaaaaaaaaaaaaaa", " P16");
    TRS("aaaaaaaaaaaaaaaa\r", " P17");
    TRS("aaaaaaaaaaaaaaaaa\n", E_LONG16);
    TRS("aaaaaaaaaaaaaaaa\rx", E_LONG16);
    TRS("aaaaaaaaaaaaaaaaa", E_LONG16); /* no newline needed */
    TRS("                 \n", E_LONG16);
    TRS("\"\\x41\\x41\\x41\\x41\"\n", E_LONG16);
    TRS("aaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb\n",
        "1[16:aaaaaaaaaaaaaaaa]1[16:bbbbbbbbbbbbbbbb]");
}
END_TEST

/* 64 KiB lines and bulks, byte by byte among other cuts: these finish
 * quickly only if each byte is scanned once. */
START_TEST(big_requests)
{
    size_t n;
    char *line = repeat("a", 65537, "", &n), *want, *bulk;

    check_tr(&LIM_DEFAULT, line, n,
             "E(inline request too long (max 65536 bytes))");
    check_tr(&LIM_DEFAULT, line, 65536, " P65536");
    line[65536] = '\0';
    want = same_args(1, line);
    line[65536] = '\n';
    check_tr(&LIM_DEFAULT, line, n, want);
    REQUIRE((bulk = malloc(12 + 65536 + 2)) != NULL);
    memcpy(bulk, "*1\r\n$65536\r\n", 12);
    memcpy(bulk + 12, line, 65536);
    memcpy(bulk + 12 + 65536, "\r\n", 2);
    check_tr(&LIM_DEFAULT, bulk, 12 + 65536 + 2, want);
    free(line);
    free(want);
    free(bulk);
}
END_TEST

START_TEST(too_many_args)
{
    size_t n;
    char *in = repeat("a ", 1024, "\r\n", &n), *want = same_args(1024, "a");

    check_tr(&LIM_DEFAULT, in, n, want);
    free(in);
    free(want);
    in = repeat("a ", 1025, "\r\n", &n);
    check_tr(&LIM_DEFAULT, in, n, "E(too many arguments (max 1024))");
    free(in);
    in = repeat("\"\" ", 1025, "", &n); /* empty words count; no newline */
    check_tr(&LIM_DEFAULT, in, n, "E(too many arguments (max 1024))");
    free(in);
    /* RESP: 1024 bulks are fine. */
    in = repeat("$1\r\nx\r\n", 1025, "", &n);
    memcpy(in, "*1024\r", 6); /* the first "$1\r\nx\r\n" becomes "*1024\r\n" */
    want = same_args(1024, "x");
    check_tr(&LIM_DEFAULT, in, n, want);
    free(in);
    free(want);
}
END_TEST

/* ---- RESP framing ---- */

START_TEST(resp_good)
{
    TRD("*1\r\n$4\r\nPING\r\n", "1[4:PING]");
    TRD("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n", "3[3:SET 3:key 0:]");
    TRD("*01\r\n$004\r\nPING\r\n", "1[4:PING]");
    /* Binary safe: NUL, CR, LF, quotes, backslashes, spaces are data. */
    TRD("*2\r\n$3\r\nGET\r\n$7\r\na\0\r\n\"\\b\r\n",
        "2[3:GET 7:a\\x00\\x0d\\x0a\"\\\\b]");
    TRD("*1\r\n$2\r\n\r\n\r\n", "1[2:\\x0d\\x0a]");
    TRD("*1\r\n$3\r\na b\r\n", "1[3:a b]");
    /* Partial requests stay pending, at every stage. */
    TRD("*2", " P2");
    TRD("*2\r\n$1\r\na\r\n", " P11");
    TRD("*2\r\n$1\r\na\r\n$1", " P13");
    TRD("*1\r\n$4\r\nPI", " P10");
    TRD("*1\r\n$4\r\nPING\r", " P13");
    TRD("*1024\r\n", " P7");
    TRS("*1\r\n$16\r\n0123456789abcdef\r\n", "1[16:0123456789abcdef]");
    /* A header line may be 32 bytes long (leading zeros here). */
    TRD("*0000000000000000000000000000001", " P32");
}
END_TEST

START_TEST(resp_bad_count)
{
    TRD("*x\r\n", E_COUNT);
    TRD("*\r\n", E_COUNT);
    TRD("*1x", E_COUNT); /* found at once, no CRLF needed */
    TRD("*+1\r\n", E_COUNT);
    TRD("* 1\r\n", E_COUNT);
    TRD("*1 \r\n", E_COUNT);
    TRD("*-\r\n", E_COUNT);
    TRD("*1-1\r\n", E_COUNT);
    TRD("*0\r\n", E_COUNT_RANGE);
    TRD("*-1\r\n", E_COUNT_RANGE);
    TRD("*1025\r\n", E_COUNT_RANGE);
    TRD("*99999999999999999999\r\n", E_COUNT_RANGE);
    TRD("*18446744073709551617\r\n", E_COUNT_RANGE);
    TRD("*1\n", E_COUNT_CRLF);
    TRD("*1\rx", E_COUNT_CRLF);
    TRD("*1\r\r\n", E_COUNT_CRLF);
    TRD("*00000000000000000000000000000001", E_COUNT_CRLF); /* 33 bytes */
}
END_TEST

START_TEST(resp_bad_bulk)
{
    TRS("*1\r\nPING\r\n", "E(expected '$', got 'P')");
    TRS("*1\r\n\x01", "E(expected '$', got '\\x01')");
    TRS("*1\r\n\\", "E(expected '$', got '\\\\')");
    TRS("*1\r\n\r\n", "E(expected '$', got '\\x0d')");
    TRS("*2\r\n$1\r\na\r\n:1\r\n", "E(expected '$', got ':')");
    TRS("*1\r\n$x\r\n", E_LEN);
    TRS("*1\r\n$\r\n", E_LEN);
    TRS("*1\r\n$4x", E_LEN);
    TRS("*1\r\n$-1\r\n", E_LEN_RANGE16);
    TRS("*1\r\n$-0\r\n", E_LEN_RANGE16);
    TRS("*1\r\n$17\r\n", E_LEN_RANGE16);
    TRS("*1\r\n$99999999999999999999999\r\n", E_LEN_RANGE16);
    TRD("*1\r\n$65537\r\n", "E(bulk length out of range (0..65536))");
    TRS("*1\r\n$3\n", E_LEN_CRLF);
    TRS("*1\r\n$3\rx", E_LEN_CRLF);
    TRS("*1\r\n$4\r\nPINGxx", E_BULK_CRLF);
    TRS("*1\r\n$4\r\nPINGx", E_BULK_CRLF);
    TRS("*1\r\n$4\r\nPING\rx", E_BULK_CRLF);
    TRS("*1\r\n$4\r\nPING\n\r", E_BULK_CRLF);
    TRS("*1\r\n$4\r\nPIN\r\n", E_BULK_CRLF); /* short bulk eats its CR */
    TRS("*2\r\n$1\r\na\r\n$1\r\nbb\r\n", E_BULK_CRLF);
}
END_TEST

START_TEST(resp_request_too_large)
{
    static const struct proto_limits exact = {16, 0, 25};
    size_t n;
    char *in = repeat("$0\r\n\r\n", 200, "", &n);

    /* Announced bytes that cannot fit fail at the bulk header. */
    TRS("*3\r\n$16\r\naaaaaaaaaaaaaaaa\r\n$16\r\nbbbbbbbbbbbbbbbb\r\n$16\r\n",
        "E(request too large (max 64 bytes))");
    memcpy(in, "*200\r\n", 6); /* 199 empty bulks follow */
    check_tr(&LIM_SMALL, in, n, "E(request too large (max 64 bytes))");
    free(in);
    /* 20 bytes buffered, request incomplete, no room left: fails. */
    TR(&LIM_TINY, "*2\r\n$9\r\n012345678\r\n$1\r\nx\r\n",
       "E(request too large (max 20 bytes))");
    /* A request of exactly max_request bytes is fine, and so is the next. */
    TR(&exact, "*2\r\n$9\r\n012345678\r\n$0\r\n\r\nPING\r\n",
       "2[9:012345678 0:]1[4:PING]");
    /* max_request below max_line + 2 is raised to it. */
    TR(&((struct proto_limits){16, 0, 4}), "0123456789abcdef\r\n",
       "1[16:0123456789abcdef]");
    TR(&((struct proto_limits){16, 0, 4}), "*1\r\n$10\r\n0123456789\r\n",
       "E(request too large (max 18 bytes))");
}
END_TEST

/* ---- pipelines ---- */

START_TEST(pipeline_mixed)
{
    size_t n;
    char *in = repeat("PING\r\n", 30, "", &n);
    char *want = repeat("1[4:PING]", 30, "", &n);

    TRD("PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\nset a \"b c\"\n"
        "*1\r\n$4\r\nQUIT\r\n*1\r\n$1\r\n*\r\n\n*1\r\n$1\r\n\n\r\n",
        "1[4:PING]2[3:GET 1:k]3[3:set 1:a 3:b c]1[4:QUIT]1[1:*]1[1:\\x0a]");
    /* More than max_request at once: feed takes part, next frees room. */
    check_tr(&LIM_SMALL, in, 180, want);
    free(in);
    free(want);
}
END_TEST

/* Request i of the large pipeline into req (returns its length), and its
 * arguments joined by '|' into args. */
static size_t pipeline_request(size_t i, char *req, char *args)
{
    char key[32];
    int kl = snprintf(key, sizeof key, "lock:%zu", i);

    switch (i % 3) {
    case 0:
        snprintf(args, 64, "ACQUIRE|%s|TTL|100", key);
        return (size_t)snprintf(req, 64, "ACQUIRE %s TTL 100\r\n", key);
    case 1:
        snprintf(args, 64, "RELEASE|%s", key);
        return (size_t)snprintf(req, 64, "*2\r\n$7\r\nRELEASE\r\n$%d\r\n%s\r\n",
                                kl, key);
    default:
        snprintf(args, 64, "PING");
        return (size_t)snprintf(req, 64, "PING\n");
    }
}

/* Writes each request's joined arguments to out, one per line. */
static void drain_joined(struct proto_reader *r, FILE *out)
{
    struct proto_request q;

    while (proto_reader_next(r, &q) == PROTO_OK) {
        check_request(&q);
        for (size_t a = 0; a < q.argc; a++)
            fprintf(out, "%s%.*s", a ? "|" : "", (int)q.argvlen[a],
                    q.argv[a]);
        fputc('\n', out);
    }
}

START_TEST(pipeline_large)
{
    static const size_t chunks[] = {SIZE_MAX, 4096, 1000, 1};
    char *in = NULL, *want = NULL, req[64], args[64];
    size_t inlen = 0, wantlen = 0;
    FILE *fin = open_memstream(&in, &inlen);
    FILE *fwant = open_memstream(&want, &wantlen);

    for (size_t i = 0; i < 10000; i++) {
        fwrite(req, 1, pipeline_request(i, req, args), fin);
        fprintf(fwant, "%s\n", args);
    }
    fclose(fin);
    fclose(fwant);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        char *got = NULL;
        size_t gotlen = 0, off = 0, n;
        FILE *fgot = open_memstream(&got, &gotlen);
        struct proto_reader *r = proto_reader_new(&LIM_DEFAULT);

        REQUIRE(r != NULL);
        while (off < inlen) { /* read straight into the reader's buffer */
            n = inlen - off < chunks[c] ? inlen - off : chunks[c];
            REQUIRE((n = feed_some(r, in + off, n, 1)) > 0);
            off += n;
            drain_joined(r, fgot);
        }
        fclose(fgot);
        ck_assert_uint_eq(gotlen, wantlen);
        ck_assert(memcmp(got, want, wantlen) == 0);
        ck_assert_uint_eq(proto_reader_pending(r), 0);
        proto_reader_free(r);
        free(got);
    }
    free(in);
    free(want);
}
END_TEST

/* ---- buffer, feeding APIs, state ---- */

START_TEST(feed_partial_when_full)
{
    /* Three 27-byte requests; only 64 bytes may wait. */
    size_t n;
    char *in = repeat("*1\r\n$16\r\n0123456789abcdef\r\n", 3, "", &n);
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_SMALL);

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
    free(in);
}
END_TEST

START_TEST(space_commit_pending)
{
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_SMALL);
    size_t avail;
    char *p = proto_reader_space(r, &avail);

    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(avail, 64); /* never more than max_request */
    memcpy(p, "\n\nPING\r\nGET", 11);
    proto_reader_commit(r, 11);
    ck_assert_uint_eq(proto_reader_pending(r), 11);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 1);
    ck_assert_str_eq(q.argv[0], "PING");
    ck_assert_uint_eq(proto_reader_pending(r), 3);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_pending(r), 3);
    p = proto_reader_space(r, &avail);
    ck_assert_uint_eq(avail, 61);
    memcpy(p, " k\n", 3);
    proto_reader_commit(r, 3);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 2);
    ck_assert_str_eq(q.argv[0], "GET");
    ck_assert_str_eq(q.argv[1], "k");
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    /* Full: avail is 0 but the pointer is not NULL (that means OOM). */
    ck_assert_uint_eq(proto_reader_feed(r, "PING\r\nPING\r\nPING\r\nPING\r\n"
                                        "PING\r\nPING\r\nPING\r\nPING\r\n"
                                        "PING\r\nPING\r\nPING\r\n", 66), 64);
    ck_assert_ptr_nonnull(proto_reader_space(r, &avail));
    ck_assert_uint_eq(avail, 0);
    proto_reader_commit(r, 0);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    proto_reader_space(r, &avail);
    ck_assert_uint_eq(avail, 6);
    proto_reader_free(r);
}
END_TEST

START_TEST(buffer_shrinks_when_idle)
{
    static const struct proto_limits lim = {200000, 0, 400000};
    const size_t bulk = 100000;
    char *in = malloc(bulk + 64);
    int hl = snprintf(in, 64, "*2\r\n$3\r\nSET\r\n$%zu\r\n", bulk);
    size_t len = (size_t)hl + bulk + 2, avail;
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&lim);

    for (size_t i = 0; i < bulk; i++)
        in[hl + i] = "0123456789\0\r\n"[i % 13];
    memcpy(in + hl + bulk, "\r\n", 2);
    /* The buffer grows past 64 KiB to hold the request... */
    feed_in_pieces(r, in, len, 4096, 1);
    ck_assert_uint_eq(proto_reader_pending(r), len);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_uint_eq(q.argc, 2);
    ck_assert_uint_eq(q.argvlen[1], bulk);
    ck_assert_mem_eq(q.argv[1], in + hl, bulk);
    ck_assert_int_eq(q.argv[1][bulk], '\0');
    /* ...and gives it back once the request is done. */
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_NEED_MORE);
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    ck_assert_ptr_nonnull(proto_reader_space(r, &avail));
    ck_assert_uint_gt(avail, 0);
    ck_assert_uint_le(avail, 4096);
    ck_assert_uint_eq(proto_reader_feed(r, "PING\r\n", 6), 6);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_OK);
    ck_assert_str_eq(q.argv[0], "PING");
    proto_reader_free(r);
    free(in);
}
END_TEST

START_TEST(dead_after_error)
{
    struct proto_request q;
    struct proto_reader *r = proto_reader_new(&LIM_SMALL);
    size_t avail;
    char *p;

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
    ck_assert_uint_ge(avail, 6);
    memcpy(p, "PING\r\n", 6);
    proto_reader_commit(r, 6);
    ck_assert_int_eq(proto_reader_next(r, &q), PROTO_ERROR);
    ck_assert_str_eq(proto_reader_error(r), "invalid bulk length");
    ck_assert_uint_eq(proto_reader_pending(r), 0);
    proto_reader_free(r);
    proto_reader_free(NULL);
}
END_TEST

START_TEST(fuzz_cut_invariance)
{
    /* Bytes that matter to the framing, so random inputs reach deep. */
    static const char alphabet[] = "*$\r\n\r\n 0123\"\\x4aZ-\t\0q*$\r\n1";
    static const struct proto_limits *lims[] = {&LIM_SMALL, &LIM_TINY,
                                                &LIM_DEFAULT};
    uint64_t x = 0x9e3779b97f4a7c15ULL; /* xorshift: same inputs each run */
    char in[96];

    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + (size_t)(x % sizeof in);
        char *whole;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[i] = alphabet[x % (sizeof alphabet - 1)];
        }
        if (iter % 4 == 0)
            memcpy(in, "*2\r\n$", 5);
        whole = transcript(lims[iter % 3], in, n, 0, 0);
        check_tr(lims[iter % 3], in, n, whole);
        free(whole);
    }
}
END_TEST

int main(void)
{
    /* Test cases by TCase, in the order they run. */
    const struct {
        const char *tcase;
        const TTest *test;
    } tests[] = {
        {"reply", reply_headers},     {"reply", reply_escape},
        {"inline", inline_words},     {"inline", inline_quotes},
        {"inline", inline_quote_errors}, {"inline", inline_max_line},
        {"inline", big_requests},     {"inline", too_many_args},
        {"resp", resp_good},          {"resp", resp_bad_count},
        {"resp", resp_bad_bulk},      {"resp", resp_request_too_large},
        {"pipeline", pipeline_mixed}, {"pipeline", pipeline_large},
        {"pipeline", fuzz_cut_invariance},
        {"buffer", feed_partial_when_full},
        {"buffer", space_commit_pending},
        {"buffer", buffer_shrinks_when_idle},
        {"buffer", dead_after_error},
    };
    Suite *s = suite_create("proto");
    TCase *tc = NULL;
    SRunner *sr;
    int failed;

    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (i == 0 || strcmp(tests[i].tcase, tests[i - 1].tcase) != 0) {
            tc = tcase_create(tests[i].tcase);
            suite_add_tcase(s, tc);
        }
        tcase_add_test(tc, tests[i].test);
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
