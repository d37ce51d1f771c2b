/* tests/unit/test_wire.c - Check suite for client/wire.c, the client's side
 * of the protocol shared by the sync and the async API.
 *
 * Owns: the unit tests of option and argument checks (with their messages),
 * lock options turned into ACQUIRE arguments (zeros as defaults, "forever"
 * only by name), the RESP bytes of every request, reply bounds, and
 * replies turned into statuses, values and messages: every error code, and hostile or odd replies (wrong types,
 * empty or unknown codes, bad tokens, a nil).  No sockets: replies are made
 * by proto/resp.c's parser from the bytes a server would send.
 */
#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cachify.h"
#include "client/wire.h"
#include "proto/limits.h"
#include "proto/resp.h"

/* ---- helpers ---- */

/* q's arguments joined by '|' (arguments here hold no '|' or NUL). */
static const char *args_of(const struct wire_req *q)
{
    static char out[256];
    struct wire_args a;
    size_t off = 0;

    wire_args(q, &a);
    out[0] = '\0';
    for (int i = 0; i < a.argc; i++) {
        ck_assert_uint_lt(off + a.len[i] + 2, sizeof out);
        if (i > 0)
            out[off++] = '|';
        memcpy(out + off, a.argv[i], a.len[i]);
        off += a.len[i];
        out[off] = '\0';
    }
    return out;
}

static struct wire_req req(enum wire_op op, const char *key)
{
    struct wire_req q = {.op = op, .key = key, .keylen = strlen(key)};

    return q;
}

/* The one reply in bytes, parsed as the client parses it. */
static struct resp_reply *reply_of(const char *bytes)
{
    struct resp_parser *p = resp_parser_new(NULL);
    struct resp_reply *r = NULL;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(resp_parser_feed(p, bytes, strlen(bytes)), 0);
    ck_assert_int_eq(resp_parser_next(p, &r), RESP_OK);
    resp_parser_free(p);
    return r;
}

/* ---- checks ---- */

START_TEST(handle_options)
{
    struct cachify_options o = {0, 0, 0, NULL, 0};
    struct wire_options w;
    char err[256];

    ck_assert_int_eq(wire_options(NULL, &w, err, sizeof err), CACHIFY_OK);
    ck_assert_int_eq(w.connect_timeout_ms, 5000);
    ck_assert_int_eq(w.io_timeout_ms, 5000);
    ck_assert_int_eq(w.default_exp_ms, 30000);
    ck_assert_str_eq(w.prefix, "");
    ck_assert_uint_eq(w.prefixlen, 0);

    o = (struct cachify_options){100, 200, 300, "app:", 0};
    ck_assert_int_eq(wire_options(&o, &w, err, sizeof err), CACHIFY_OK);
    ck_assert_int_eq(w.connect_timeout_ms, 100);
    ck_assert_int_eq(w.io_timeout_ms, 200);
    ck_assert_int_eq(w.default_exp_ms, 300);
    ck_assert_str_eq(w.prefix, "app:");
    ck_assert_uint_eq(w.prefixlen, 4);

    o = (struct cachify_options){0, -1, 0, NULL, 0};
    ck_assert_int_eq(wire_options(&o, &w, err, sizeof err), CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad options: timeouts and default_exp_ms must be "
                          "0 (default) or positive");
    o = (struct cachify_options){0, 0, PROTO_MS_MAX + 1, NULL, 0};
    ck_assert_int_eq(wire_options(&o, &w, NULL, 0), CACHIFY_ERR_ARG);
    o = (struct cachify_options){0, 0, PROTO_MS_MAX, NULL, 0};
    ck_assert_int_eq(wire_options(&o, &w, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(w.default_exp_ms, PROTO_MS_MAX);
    ck_assert_int_eq(w.pycachify_keys, 0);

    /* py-cachify's keys: its default prefix unless one is given ("" too). */
    o = (struct cachify_options){.pycachify_keys = 1};
    ck_assert_int_eq(wire_options(&o, &w, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(w.pycachify_keys, 1);
    ck_assert_str_eq(w.prefix, "PYC-");
    ck_assert_uint_eq(w.prefixlen, 4);
    o.prefix = "";
    ck_assert_int_eq(wire_options(&o, &w, NULL, 0), CACHIFY_OK);
    ck_assert_str_eq(w.prefix, "");
    o.prefix = "app-";
    ck_assert_int_eq(wire_options(&o, &w, NULL, 0), CACHIFY_OK);
    ck_assert_str_eq(w.prefix, "app-");
    ck_assert_int_eq(w.pycachify_keys, 1);
}
END_TEST

START_TEST(prefix_and_key_bounds)
{
    char *big = malloc(CACHIFY_KEY_MAX + 2);
    struct cachify_options o = {0, 0, 0, NULL, 0};
    struct wire_options w;
    char err[256];
    size_t klen = 0;

    ck_assert_ptr_nonnull(big);
    memset(big, 'k', CACHIFY_KEY_MAX + 1);
    big[CACHIFY_KEY_MAX + 1] = '\0';
    o.prefix = big;
    ck_assert_int_eq(wire_options(&o, &w, err, sizeof err), CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "prefix too long");

    ck_assert_int_eq(wire_check_key(NULL, 0, &klen, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "empty key");
    ck_assert_int_eq(wire_check_key("", 0, &klen, NULL, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(wire_check_key(big, 0, &klen, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "key longer than 65536 bytes (prefix included)");
    big[CACHIFY_KEY_MAX] = '\0'; /* exactly the bound */
    ck_assert_int_eq(wire_check_key(big, 0, &klen, NULL, 0), CACHIFY_OK);
    ck_assert_uint_eq(klen, CACHIFY_KEY_MAX);
    ck_assert_int_eq(wire_check_key(big, 1, &klen, NULL, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(wire_check_key("k", CACHIFY_KEY_MAX, &klen, NULL, 0),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(wire_check_key("k", CACHIFY_KEY_MAX - 1, &klen, NULL, 0),
                     CACHIFY_OK);
    ck_assert_uint_eq(klen, 1);
    /* A message longer than the buffer is cut, never overrun. */
    ck_assert_int_eq(wire_check_key("", 0, &klen, err, 3), CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "em");
    free(big);
}
END_TEST

START_TEST(lock_options)
{
    struct cachify_lock_opts o = CACHIFY_LOCK_OPTS_DEFAULT;
    struct wire_lock l;
    char err[256];

    ck_assert_int_eq(wire_lock_opts(NULL, 30000, &l, err, sizeof err),
                     CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, 30000);
    ck_assert_int_eq(l.wait_ms, 0);
    ck_assert_int_eq(l.session, 0);

    o = (struct cachify_lock_opts){0, 250, CACHIFY_EXP_NONE, 7, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 30000, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, 0);
    ck_assert_int_eq(l.wait_ms, 250);
    ck_assert_int_eq(l.session, 1);

    o = (struct cachify_lock_opts){0, CACHIFY_FOREVER, 1234, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 30000, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, 1234);
    ck_assert_int_eq(l.wait_ms, WIRE_WAIT_FOREVER);

    /* nowait: the timeout is not looked at. */
    o = (struct cachify_lock_opts){1, -77, CACHIFY_EXP_DEFAULT, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 500, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.wait_ms, 0);
    ck_assert_int_eq(l.ttl_ms, 500);

    o = (struct cachify_lock_opts){1, 0, -2, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 500, &l, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad exp_ms -2: expected milliseconds, "
                          "CACHIFY_EXP_DEFAULT (0) or CACHIFY_EXP_NONE");
    o = (struct cachify_lock_opts){1, 0, PROTO_MS_MAX + 1, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 500, &l, NULL, 0), CACHIFY_ERR_ARG);
    o = (struct cachify_lock_opts){1, 0, PROTO_MS_MAX, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 500, &l, NULL, 0), CACHIFY_OK);
    o = (struct cachify_lock_opts){0, -2, 10, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 500, &l, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad timeout_ms -2: expected milliseconds or "
                          "CACHIFY_FOREVER (a negative is not a wait)");
    o = (struct cachify_lock_opts){0, PROTO_MS_MAX + 1, 10, 0, 0};
    ck_assert_int_eq(wire_lock_opts(&o, 500, &l, NULL, 0), CACHIFY_ERR_ARG);
}
END_TEST

/* Every zero is the default: a zeroed struct, or one that names only the
 * fields it cares about, takes a lock that expires (the handle's default),
 * never one that outlives a crashed holder. */
START_TEST(zero_lock_options_are_defaults)
{
    struct cachify_lock_opts zero = {0};
    struct cachify_lock_opts some = {.nowait = 0, .timeout_ms = 2000};
    struct cachify_lock_opts dflt = CACHIFY_LOCK_OPTS_DEFAULT;
    struct wire_lock l, d;

    ck_assert_int_eq(wire_lock_opts(&zero, 30000, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, 30000);
    ck_assert_int_eq(l.wait_ms, 0); /* a wait of 0 ms: one attempt */
    ck_assert_int_eq(l.session, 0);
    ck_assert_int_eq(wire_lock_opts(&dflt, 30000, &d, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, d.ttl_ms);
    ck_assert_int_eq(l.wait_ms, d.wait_ms);
    ck_assert_int_eq(l.session, d.session);
    ck_assert_int_eq(wire_lock_opts(&some, 700, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, 700);
    ck_assert_int_eq(l.wait_ms, 2000);
    ck_assert_int_eq(CACHIFY_EXP_DEFAULT, 0);
    /* No expiry only by name. */
    some.exp_ms = CACHIFY_EXP_NONE;
    ck_assert_int_ne(CACHIFY_EXP_NONE, 0);
    ck_assert_int_eq(wire_lock_opts(&some, 700, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.ttl_ms, 0); /* TTL FOREVER */
}
END_TEST

/* Waiting forever is CACHIFY_FOREVER only: -1 (a likely accident) and
 * every other negative are refused, whatever else is set. */
START_TEST(negative_timeouts_refused)
{
    struct cachify_lock_opts o = {.nowait = 0, .timeout_ms = -1};
    struct wire_lock l;
    char err[256];

    ck_assert(CACHIFY_FOREVER != -1);
    ck_assert_int_eq(wire_lock_opts(&o, 30000, &l, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad timeout_ms -1: expected milliseconds or "
                          "CACHIFY_FOREVER (a negative is not a wait)");
    o.timeout_ms = LLONG_MIN;
    ck_assert_int_eq(wire_lock_opts(&o, 30000, &l, NULL, 0), CACHIFY_ERR_ARG);
    o.timeout_ms = CACHIFY_FOREVER;
    ck_assert_int_eq(wire_lock_opts(&o, 30000, &l, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(l.wait_ms, WIRE_WAIT_FOREVER);
    /* The same for exp_ms: -1 is neither the default nor "never". */
    o.exp_ms = -1;
    ck_assert_int_eq(wire_lock_opts(&o, 30000, &l, NULL, 0), CACHIFY_ERR_ARG);
}
END_TEST

/* wire_format_key with a suffix (NULL: none). */
static int format_sfx(char *buf, size_t cap, char **out, const char *suffix,
                      char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int format_sfx(char *buf, size_t cap, char **out, const char *suffix,
                      char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = wire_format_key(buf, cap, out, suffix, err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

#define format_key(buf, cap, out, err, errlen, ...)                           \
    format_sfx(buf, cap, out, NULL, err, errlen, __VA_ARGS__)

START_TEST(decorated_keys)
{
    char buf[8], err[256], *key;

    ck_assert_int_eq(format_key(buf, sizeof buf, &key, err, sizeof err,
                                "k-%d", 7), CACHIFY_OK);
    ck_assert_ptr_eq(key, buf);
    ck_assert_str_eq(key, "k-7");
    /* Too long for the buffer: allocated. */
    ck_assert_int_eq(format_key(buf, sizeof buf, &key, err, sizeof err,
                                "key-%s", "longer"), CACHIFY_OK);
    ck_assert_ptr_ne(key, buf);
    ck_assert_str_eq(key, "key-longer");
    free(key);
    ck_assert_int_eq(format_key(NULL, 0, &key, NULL, 0, "k"), CACHIFY_OK);
    ck_assert_str_eq(key, "k");
    free(key);
    /* A NUL inside, from the buffer or from an allocation. */
    ck_assert_int_eq(format_key(buf, sizeof buf, &key, err, sizeof err,
                                "a%cb", 0), CACHIFY_ERR_ARG);
    ck_assert_ptr_null(key);
    ck_assert_str_eq(err, "formatted key has a NUL byte at offset 1 (of 3 "
                          "bytes): keys cannot hold NUL");
    ck_assert_int_eq(format_key(NULL, 0, &key, NULL, 0, "%c", 0),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(format_key(buf, sizeof buf, &key, err, sizeof err,
                                "abcdefghij%c", 0), CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "formatted key has a NUL byte at offset 10 (of 11 "
                          "bytes): keys cannot hold NUL");
    /* Longer than CACHIFY_KEY_MAX. */
    ck_assert_int_eq(format_key(buf, sizeof buf, &key, err, sizeof err,
                                "%*s", CACHIFY_KEY_MAX + 1, ""),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "formatted key longer than 65536 bytes");
}
END_TEST

/* py-cachify 3.x's "-lock" / "-once" after the formatted key. */
START_TEST(decorated_key_suffix)
{
    char buf[16], err[256], *key;

    ck_assert_int_eq(format_sfx(buf, sizeof buf, &key, "-lock", err,
                                sizeof err, "job-%d", 7), CACHIFY_OK);
    ck_assert_ptr_eq(key, buf);
    ck_assert_str_eq(key, "job-7-lock");
    /* The suffix is what makes it too long for the buffer. */
    ck_assert_int_eq(format_sfx(buf, sizeof buf, &key, "-once", err,
                                sizeof err, "import-%s", "abcd"), CACHIFY_OK);
    ck_assert_ptr_ne(key, buf);
    ck_assert_str_eq(key, "import-abcd-once");
    free(key);
    ck_assert_int_eq(format_sfx(NULL, 0, &key, "-lock", NULL, 0, "k"),
                     CACHIFY_OK);
    ck_assert_str_eq(key, "k-lock");
    free(key);
    /* The bound counts the suffix; a NUL is still refused. */
    ck_assert_int_eq(format_sfx(buf, sizeof buf, &key, "-lock", err,
                                sizeof err, "%*s", CACHIFY_KEY_MAX - 5, ""),
                     CACHIFY_OK);
    ck_assert_uint_eq(strlen(key), CACHIFY_KEY_MAX);
    free(key);
    ck_assert_int_eq(format_sfx(buf, sizeof buf, &key, "-lock", err,
                                sizeof err, "%*s", CACHIFY_KEY_MAX - 4, ""),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(format_sfx(buf, sizeof buf, &key, "-lock", err,
                                sizeof err, "a%cb", 0), CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "formatted key has a NUL byte at offset 1 (of 3 "
                          "bytes): keys cannot hold NUL");
}
END_TEST

START_TEST(tokens_and_times)
{
    char err[256];

    ck_assert_int_eq(wire_check_release(1, err, sizeof err), CACHIFY_OK);
    ck_assert_int_eq(wire_check_release(PROTO_TOKEN_MAX, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(wire_check_release(0, err, sizeof err), CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad token 0: tokens are positive; use "
                          "cachify_force_release to free any holder");
    ck_assert_int_eq(wire_check_release((uint64_t)PROTO_TOKEN_MAX + 1, NULL,
                                        0), CACHIFY_ERR_ARG);

    ck_assert_int_eq(wire_check_extend(1, 1, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(wire_check_extend(1, PROTO_MS_MAX, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(wire_check_extend(0, 10, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad token 0");
    ck_assert_int_eq(wire_check_extend(UINT64_MAX, 10, NULL, 0),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(wire_check_extend(5, 0, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_eq(err, "bad ms 0: expected 1..1099511627776");
    ck_assert_int_eq(wire_check_extend(5, PROTO_MS_MAX + 1, NULL, 0),
                     CACHIFY_ERR_ARG);
}
END_TEST

/* ---- requests ---- */

START_TEST(arguments)
{
    struct wire_req q = req(WIRE_ACQUIRE, "job");

    q.lock = (struct wire_lock){30000, 0, 0};
    ck_assert_str_eq(args_of(&q), "ACQUIRE|job|TTL|30000");
    q.lock = (struct wire_lock){0, 0, 0};
    ck_assert_str_eq(args_of(&q), "ACQUIRE|job|TTL|FOREVER");
    q.lock = (struct wire_lock){10, 250, 0};
    ck_assert_str_eq(args_of(&q), "ACQUIRE|job|TTL|10|WAIT|250");
    q.lock = (struct wire_lock){10, WIRE_WAIT_FOREVER, 1};
    ck_assert_str_eq(args_of(&q), "ACQUIRE|job|TTL|10|WAIT|FOREVER|SESSION");
    q.lock = (struct wire_lock){PROTO_MS_MAX, PROTO_MS_MAX, 1};
    ck_assert_str_eq(args_of(&q), "ACQUIRE|job|TTL|1099511627776|WAIT|"
                                  "1099511627776|SESSION");

    q = req(WIRE_RELEASE, "job");
    q.token = (uint64_t)PROTO_TOKEN_MAX;
    ck_assert_str_eq(args_of(&q), "RELEASE|job|9223372036854775807");
    q = req(WIRE_FORCE, "job");
    q.token = 99; /* a forced release sends none */
    ck_assert_str_eq(args_of(&q), "RELEASE|job");
    q = req(WIRE_EXTEND, "job");
    q.token = 12;
    q.ms = 3400;
    ck_assert_str_eq(args_of(&q), "EXTEND|job|12|3400");
    q = req(WIRE_IS_LOCKED, "job");
    ck_assert_str_eq(args_of(&q), "IS_LOCKED|job");
    q = req(WIRE_PTTL, "job");
    ck_assert_str_eq(args_of(&q), "PTTL|job");
    q = req(WIRE_AUTH, "s3cr:t@x");
    ck_assert_str_eq(args_of(&q), "AUTH|s3cr:t@x");
    q = req(WIRE_PING, "ignored");
    ck_assert_str_eq(args_of(&q), "PING");
}
END_TEST

START_TEST(encoding)
{
    /* Binary-safe: the key's NUL, CR and LF go out as they are. */
    static const char key[] = "a\0b\r\nc";
    static const char want[] = "*2\r\n$4\r\nPTTL\r\n$6\r\na\0b\r\nc\r\n";
    struct wire_req q = {.op = WIRE_PTTL, .key = key, .keylen = 6};
    char buf[WIRE_REQUEST_STACK], *out;
    struct wire_args a;
    size_t n = 0;

    wire_args(&q, &a);
    ck_assert_uint_eq(wire_encode(&a, NULL), sizeof want - 1);
    out = wire_request(&q, buf, sizeof buf, &n);
    ck_assert_ptr_eq(out, buf);
    ck_assert_uint_eq(n, sizeof want - 1);
    ck_assert_int_eq(memcmp(out, want, n), 0);

    q = req(WIRE_ACQUIRE, "k");
    q.lock = (struct wire_lock){30000, WIRE_WAIT_FOREVER, 1};
    out = wire_request(&q, buf, sizeof buf, &n);
    ck_assert_ptr_eq(out, buf);
    ck_assert_uint_eq(n, strlen("*7\r\n$7\r\nACQUIRE\r\n$1\r\nk\r\n$3\r\nTTL"
                                "\r\n$5\r\n30000\r\n$4\r\nWAIT\r\n$7\r\n"
                                "FOREVER\r\n$7\r\nSESSION\r\n"));
    ck_assert_int_eq(memcmp(out, "*7\r\n$7\r\nACQUIRE\r\n$1\r\nk\r\n$3\r\nTTL"
                                 "\r\n$5\r\n30000\r\n$4\r\nWAIT\r\n$7\r\n"
                                 "FOREVER\r\n$7\r\nSESSION\r\n", n), 0);

    q = req(WIRE_PING, "");
    out = wire_request(&q, buf, sizeof buf, &n);
    ck_assert_uint_eq(n, 14);
    ck_assert_int_eq(memcmp(out, "*1\r\n$4\r\nPING\r\n", n), 0);

    /* Exactly the room it needs: still the caller's buffer. */
    out = wire_request(&q, buf, 14, &n);
    ck_assert_ptr_eq(out, buf);
}
END_TEST

START_TEST(long_request_allocated)
{
    size_t klen = 2 * CACHIFY_KEY_MAX; /* the longest prefix + key */
    char *key = malloc(klen), buf[WIRE_REQUEST_STACK], *out;
    struct wire_req q = {.op = WIRE_EXTEND, .token = 7, .ms = 9};
    char head[64];
    size_t n = 0, hl;

    ck_assert_ptr_nonnull(key);
    memset(key, 'x', klen);
    q.key = key;
    q.keylen = klen;
    out = wire_request(&q, buf, sizeof buf, &n);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_ne(out, buf);
    hl = (size_t)snprintf(head, sizeof head, "*4\r\n$6\r\nEXTEND\r\n$%zu\r\n",
                          klen);
    ck_assert_uint_eq(n, hl + klen + strlen("\r\n$1\r\n7\r\n$1\r\n9\r\n"));
    ck_assert_int_eq(memcmp(out, head, hl), 0);
    ck_assert_int_eq(memcmp(out + hl + klen, "\r\n$1\r\n7\r\n$1\r\n9\r\n",
                            n - hl - klen), 0);
    free(out);
    /* No room at all is a request of its own too. */
    q = req(WIRE_PING, "");
    out = wire_request(&q, NULL, 0, &n);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(memcmp(out, "*1\r\n$4\r\nPING\r\n", n), 0);
    free(out);
    free(key);
}
END_TEST

START_TEST(reply_bounds)
{
    struct wire_lock none = {10, 0, 0}, wait = {10, 250, 0},
                     forever = {10, WIRE_WAIT_FOREVER, 0};

    ck_assert_int_eq(wire_reply_timeout_ms(WIRE_PTTL, NULL, 5000), 5000);
    ck_assert_int_eq(wire_reply_timeout_ms(WIRE_AUTH, NULL, 300), 300);
    ck_assert_int_eq(wire_reply_timeout_ms(WIRE_ACQUIRE, &none, 5000), 5000);
    ck_assert_int_eq(wire_reply_timeout_ms(WIRE_ACQUIRE, &wait, 5000), 5250);
    ck_assert_int_eq(wire_reply_timeout_ms(WIRE_ACQUIRE, &forever, 5000), -1);
    /* Only ACQUIRE waits; another command's lock is not looked at. */
    ck_assert_int_eq(wire_reply_timeout_ms(WIRE_RELEASE, &forever, 5000),
                     5000);
}
END_TEST

/* ---- replies ---- */

/* One reply and what it must mean: the status, the value (when OK) and the
 * whole message. */
struct reply_case {
    enum wire_op op;
    const char *bytes; /* as the server sends it */
    const char *key;   /* the caller's key */
    int status;
    long long value;
    const char *msg;
};

static const struct reply_case replies[] = {
    /* Error codes, matched whole and by case. */
    {WIRE_ACQUIRE, "-LOCKED app:k is already locked!\r\n", "k",
     CACHIFY_LOCKED, 0, "k is already locked!"},
    {WIRE_ACQUIRE, "-TIMEOUT app:k is already locked!\r\n", "k",
     CACHIFY_TIMEOUT, 0, "k is already locked!"},
    {WIRE_ACQUIRE, "-LOCKED\r\n", "k", CACHIFY_LOCKED, 0,
     "k is already locked!"},
    {WIRE_RELEASE, "-NOAUTH Authentication required.\r\n", "k",
     CACHIFY_ERR_AUTH, 0, "NOAUTH Authentication required."},
    {WIRE_IS_LOCKED, "-WRONGPASS invalid password\r\n", "k",
     CACHIFY_ERR_AUTH, 0, "WRONGPASS invalid password"},
    {WIRE_EXTEND, "-ERR key too long\r\n", "k", CACHIFY_ERR_SERVER, 0,
     "ERR key too long"},
    {WIRE_PTTL, "-LIMIT max number of clients reached\r\n", "k",
     CACHIFY_ERR_SERVER, 0, "LIMIT max number of clients reached"},
    {WIRE_FORCE, "-DENIED go away\r\n", "k", CACHIFY_ERR_SERVER, 0,
     "DENIED go away"},
    /* No prefix matching (beanstalkd #337), no case folding. */
    {WIRE_ACQUIRE, "-LOCKEDX k\r\n", "k", CACHIFY_ERR_SERVER, 0, "LOCKEDX k"},
    {WIRE_ACQUIRE, "-LOCK k\r\n", "k", CACHIFY_ERR_SERVER, 0, "LOCK k"},
    {WIRE_ACQUIRE, "-locked k\r\n", "k", CACHIFY_ERR_SERVER, 0, "locked k"},
    {WIRE_ACQUIRE, "- LOCKED k\r\n", "k", CACHIFY_ERR_SERVER, 0, " LOCKED k"},
    {WIRE_ACQUIRE, "-\r\n", "k", CACHIFY_ERR_SERVER, 0, ""},
    /* The key as the caller gave it, whatever its bytes; none: "". */
    {WIRE_ACQUIRE, "-LOCKED x\r\n", "a b\x01\xff", CACHIFY_LOCKED, 0,
     "a b\x01\xff is already locked!"},
    {WIRE_ACQUIRE, "-LOCKED x\r\n", NULL, CACHIFY_LOCKED, 0,
     " is already locked!"},

    /* AUTH: a wrong or missing password, or another refusal. */
    {WIRE_AUTH, "+OK\r\n", NULL, CACHIFY_OK, 0, ""},
    {WIRE_AUTH, "-WRONGPASS invalid password\r\n", NULL, CACHIFY_ERR_AUTH, 0,
     "AUTH failed: WRONGPASS invalid password"},
    {WIRE_AUTH, "-NOAUTH x\r\n", NULL, CACHIFY_ERR_AUTH, 0,
     "AUTH failed: NOAUTH x"},
    {WIRE_AUTH, "-ERR no password is set\r\n", NULL, CACHIFY_ERR_AUTH, 0,
     "AUTH failed: ERR no password is set"},
    {WIRE_AUTH, "-ERR something else\r\n", NULL, CACHIFY_ERR_SERVER, 0,
     "AUTH failed: ERR something else"},
    {WIRE_AUTH, "-LIMIT max number of clients reached\r\n", NULL,
     CACHIFY_ERR_SERVER, 0,
     "AUTH failed: LIMIT max number of clients reached"},
    {WIRE_AUTH, "-LOCKED k\r\n", NULL, CACHIFY_ERR_SERVER, 0,
     "AUTH failed: LOCKED k"},
    {WIRE_AUTH, "-TIMEOUT k\r\n", NULL, CACHIFY_ERR_SERVER, 0,
     "AUTH failed: TIMEOUT k"},
    {WIRE_AUTH, ":1\r\n", NULL, CACHIFY_ERR_PROTO, 0,
     "unexpected reply to AUTH"},
    {WIRE_AUTH, "$-1\r\n", NULL, CACHIFY_ERR_PROTO, 0,
     "unexpected reply to AUTH"},

    /* PING. */
    {WIRE_PING, "+PONG\r\n", NULL, CACHIFY_OK, 0, ""},
    {WIRE_PING, "-ERR busy\r\n", NULL, CACHIFY_ERR_SERVER, 0, "ERR busy"},
    {WIRE_PING, "-NOAUTH Authentication required.\r\n", NULL,
     CACHIFY_ERR_AUTH, 0, "NOAUTH Authentication required."},
    {WIRE_PING, ":1\r\n", NULL, CACHIFY_ERR_PROTO, 0,
     "unexpected reply to PING"},
    {WIRE_PING, "$4\r\nPONG\r\n", NULL, CACHIFY_ERR_PROTO, 0,
     "unexpected reply to PING"},

    /* Integers: a token, 1 or 0, milliseconds. */
    {WIRE_ACQUIRE, ":42\r\n", "k", CACHIFY_OK, 42, ""},
    {WIRE_ACQUIRE, ":9223372036854775807\r\n", "k", CACHIFY_OK, LLONG_MAX,
     ""},
    {WIRE_RELEASE, ":1\r\n", "k", CACHIFY_OK, 1, ""},
    {WIRE_RELEASE, ":0\r\n", "k", CACHIFY_OK, 0, ""},
    {WIRE_FORCE, ":3\r\n", "k", CACHIFY_OK, 1, ""},
    {WIRE_IS_LOCKED, ":-1\r\n", "k", CACHIFY_OK, 1, ""},
    {WIRE_EXTEND, ":0\r\n", "k", CACHIFY_OK, 0, ""},
    {WIRE_PTTL, ":1500\r\n", "k", CACHIFY_OK, 1500, ""},
    {WIRE_PTTL, ":-1\r\n", "k", CACHIFY_OK, -1, ""},
    {WIRE_PTTL, ":-2\r\n", "k", CACHIFY_OK, -2, ""},

    /* Hostile or odd: not a token; a status, a nil, a bulk or an array
     * where an integer belongs is not an answer, nor an error reply
     * (hiredis #242).  The stream is not what we think it is. */
    {WIRE_ACQUIRE, ":0\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "bad token 0 from the server"},
    {WIRE_ACQUIRE, ":-5\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "bad token -5 from the server"},
    {WIRE_ACQUIRE, ":-9223372036854775808\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "bad token -9223372036854775808 from the server"},
    {WIRE_ACQUIRE, "+OK\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "unexpected reply type 0 to ACQUIRE"},
    {WIRE_ACQUIRE, "$-1\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "unexpected reply type 4 to ACQUIRE"},
    {WIRE_IS_LOCKED, "$1\r\n1\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "unexpected reply type 3 to IS_LOCKED"},
    {WIRE_FORCE, "*1\r\n:1\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "unexpected reply type 5 to RELEASE"},
    {WIRE_EXTEND, "*-1\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "unexpected reply type 4 to EXTEND"},
    {WIRE_PTTL, "+1500\r\n", "k", CACHIFY_ERR_PROTO, 0,
     "unexpected reply type 0 to PTTL"},
};

/* Case _i of replies[], parsed as the client parses it. */
START_TEST(reply_meanings)
{
    const struct reply_case *c = &replies[_i];
    struct resp_reply *r = reply_of(c->bytes);
    struct wire_result res;
    char got[512];

    wire_reply(c->op, r, c->key, &res);
    snprintf(got, sizeof got, "%s%s%s", res.head, res.text, res.tail);
    ck_assert_msg(res.status == c->status, "case %d (%s to %s): status %s, "
                  "want %s", _i, wire_op_name(c->op), c->bytes,
                  cachify_status_name(res.status),
                  cachify_status_name(c->status));
    if (c->status == CACHIFY_OK)
        ck_assert_int_eq(res.value, c->value);
    ck_assert_str_eq(got, c->msg);
    resp_reply_free(r);
}
END_TEST

START_TEST(long_error_kept_whole)
{
    /* An error line that quotes a long key comes back whole: the message
     * borrows the reply's text, it is not cut to a buffer here. */
    size_t n = 20000;
    char *bytes = malloc(n + 16), *want = malloc(n + 16);
    struct resp_reply *r;
    struct wire_result res;

    ck_assert_ptr_nonnull(bytes);
    ck_assert_ptr_nonnull(want);
    memcpy(bytes, "-ERR ", 5);
    memset(bytes + 5, 'q', n);
    memcpy(bytes + 5 + n, "\r\n", 3);
    memcpy(want, bytes + 1, n + 4);
    want[n + 4] = '\0';
    r = reply_of(bytes);
    wire_reply(WIRE_RELEASE, r, "k", &res);
    ck_assert_int_eq(res.status, CACHIFY_ERR_SERVER);
    ck_assert_str_eq(res.head, "");
    ck_assert_str_eq(res.text, want);
    ck_assert_str_eq(res.tail, "");
    resp_reply_free(r);
    free(bytes);
    free(want);
}
END_TEST

START_TEST(locked_wording)
{
    struct wire_result res;
    char got[64];

    wire_locked(&res, CACHIFY_TIMEOUT, "job-7");
    snprintf(got, sizeof got, "%s%s%s", res.head, res.text, res.tail);
    ck_assert_int_eq(res.status, CACHIFY_TIMEOUT);
    ck_assert_str_eq(got, "job-7 is already locked!");
    ck_assert_str_eq(WIRE_LOCKED_TAIL, " is already locked!");
}
END_TEST

START_TEST(op_names)
{
    static const char *const names[] = {
        [WIRE_AUTH] = "AUTH",           [WIRE_PING] = "PING",
        [WIRE_ACQUIRE] = "ACQUIRE",     [WIRE_RELEASE] = "RELEASE",
        [WIRE_FORCE] = "RELEASE",       [WIRE_IS_LOCKED] = "IS_LOCKED",
        [WIRE_EXTEND] = "EXTEND",       [WIRE_PTTL] = "PTTL",
    };

    for (int op = WIRE_AUTH; op <= WIRE_PTTL; op++)
        ck_assert_str_eq(wire_op_name((enum wire_op)op), names[op]);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        handle_options, prefix_and_key_bounds, lock_options,
        zero_lock_options_are_defaults, negative_timeouts_refused,
        decorated_keys, decorated_key_suffix, tokens_and_times, arguments, encoding, long_request_allocated, reply_bounds,
        long_error_kept_whole, locked_wording, op_names,
    };
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");
    SRunner *sr;
    int failed;

    suite_add_tcase(s, tc);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        tcase_add_test(tc, tests[i]);
    tcase_add_loop_test(tc, reply_meanings, 0,
                        (int)(sizeof replies / sizeof replies[0]));
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
