/* client/wire.c - the client's side of the protocol (implements
 * client/wire.h).
 *
 * Owns: the checks and messages for call arguments, the formatting of
 * decorated keys for both decorator runtimes, the argument list of each
 * command, RESP framing of requests (with proto/encode.c's headers, the
 * daemon's own), and the meaning of replies, error codes included.  Does
 * not own: any I/O, any handle or any buffer it was not given, except the
 * allocations wire_request and wire_format_key return for a request or a
 * key too long for the caller's buffer.
 *
 * The table of error codes is the one place a new code gets its status;
 * the daemon's codes are listed in docs/protocol.md.
 */
#include "client/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/limits.h"
#include "proto/encode.h"

/* A connect and a reply each get 5 s unless the options say otherwise;
 * a lock lives 30 s, py-cachify's default_lock_expiration. */
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_EXP_MS 30000LL

/* ---- commands ---- */

const char *wire_op_name(enum wire_op op)
{
    switch (op) {
    case WIRE_AUTH: return "AUTH";
    case WIRE_PING: return "PING";
    case WIRE_ACQUIRE: return "ACQUIRE";
    case WIRE_RELEASE: case WIRE_FORCE: return "RELEASE";
    case WIRE_IS_LOCKED: return "IS_LOCKED";
    case WIRE_EXTEND: return "EXTEND";
    case WIRE_PTTL: return "PTTL";
    case WIRE_POOL_ACQUIRE: return "POOL_ACQUIRE";
    case WIRE_POOL_RELEASE: case WIRE_POOL_FORCE: return "POOL_RELEASE";
    case WIRE_POOL_SIZE: return "POOL_SIZE";
    case WIRE_POOL_EXTEND: return "POOL_EXTEND";
    }
    return "?";
}

/* ---- checks ---- */

int wire_refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CACHIFY_ERR_ARG;
}

int wire_options(const struct cachify_options *opts, struct wire_options *out,
                 char *err, size_t errlen)
{
    static const struct cachify_options none = {0};

    if (opts == NULL)
        opts = &none;
    /* 0 means the default, so only a negative (or too long) one is bad. */
    if (opts->connect_timeout_ms < 0 || opts->io_timeout_ms < 0 ||
        opts->default_exp_ms < 0 || opts->default_exp_ms > PROTO_MS_MAX)
        return wire_refuse(err, errlen,
                           "bad options: timeouts and default_exp_ms must be "
                           "0 (default) or positive");
    out->pycachify_keys = opts->pycachify_keys != 0;
    if (opts->prefix != NULL)
        out->prefix = opts->prefix;
    else
        out->prefix = out->pycachify_keys ? WIRE_PYCACHIFY_PREFIX : "";
    out->prefixlen = strlen(out->prefix);
    if (out->prefixlen > CACHIFY_KEY_MAX)
        return wire_refuse(err, errlen, "prefix too long");
    out->connect_timeout_ms = opts->connect_timeout_ms
                                  ? opts->connect_timeout_ms
                                  : DEFAULT_TIMEOUT_MS;
    out->io_timeout_ms = opts->io_timeout_ms ? opts->io_timeout_ms
                                             : DEFAULT_TIMEOUT_MS;
    out->default_exp_ms = opts->default_exp_ms ? opts->default_exp_ms
                                               : DEFAULT_EXP_MS;
    return CACHIFY_OK;
}

int wire_check_key(const char *key, size_t prefixlen, size_t *klen, char *err,
                   size_t errlen)
{
    size_t n;

    /* Empty, as the server says too: a lock needs a name. */
    if (key == NULL || key[0] == '\0')
        return wire_refuse(err, errlen, "empty key");
    n = strlen(key);
    if (n > CACHIFY_KEY_MAX || prefixlen + n > CACHIFY_KEY_MAX)
        return wire_refuse(err, errlen,
                           "key longer than %d bytes (prefix included)",
                           CACHIFY_KEY_MAX);
    *klen = n;
    return CACHIFY_OK;
}

int wire_format_key(char *buf, size_t cap, char **out, const char *suffix,
                    char *err, size_t errlen, const char *fmt, va_list ap)
{
    size_t slen = suffix != NULL ? strlen(suffix) : 0;
    char *key = buf;
    va_list ap2;
    size_t len;
    int n;

    *out = NULL;
    va_copy(ap2, ap);
    n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0 || (size_t)n + slen > CACHIFY_KEY_MAX) {
        va_end(ap2);
        return n < 0 ? wire_refuse(err, errlen, "bad key format")
                     : wire_refuse(err, errlen,
                                   "formatted key longer than %d bytes",
                                   CACHIFY_KEY_MAX);
    }
    if ((size_t)n + slen >= cap) {
        key = malloc((size_t)n + slen + 1);
        if (key == NULL) {
            va_end(ap2);
            return CACHIFY_ERR_NOMEM;
        }
        vsnprintf(key, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    memcpy(key + n, suffix != NULL ? suffix : "", slen + 1);
    /* vsnprintf counts every byte it wrote; strlen stops at the first
     * NUL.  Taking the shorter key would lock another key than the one the
     * arguments name. */
    len = strlen(key);
    if (len != (size_t)n + slen) {
        if (key != buf)
            free(key);
        return wire_refuse(err, errlen,
                           "formatted key has a NUL byte at offset %zu "
                           "(of %d bytes): keys cannot hold NUL", len, n);
    }
    *out = key;
    return CACHIFY_OK;
}

int wire_lock_opts(const struct cachify_lock_opts *opts,
                   long long default_exp_ms, struct wire_lock *out, char *err,
                   size_t errlen)
{
    static const struct cachify_lock_opts defaults = CACHIFY_LOCK_OPTS_DEFAULT;
    long long exp, wait_ms;

    if (opts == NULL)
        opts = &defaults;
    /* 0 is the default, so a zeroed struct never makes a lock that
     * outlives a crashed holder; "never" is CACHIFY_EXP_NONE, by name. */
    if (opts->exp_ms == CACHIFY_EXP_NONE)
        exp = 0; /* TTL FOREVER */
    else if (opts->exp_ms == CACHIFY_EXP_DEFAULT)
        exp = default_exp_ms;
    else if (opts->exp_ms < 0 || opts->exp_ms > PROTO_MS_MAX)
        return wire_refuse(err, errlen,
                           "bad exp_ms %lld: expected milliseconds, "
                           "CACHIFY_EXP_DEFAULT (0) or CACHIFY_EXP_NONE",
                           opts->exp_ms);
    else
        exp = opts->exp_ms;
    /* nowait, or a wait of 0 ms, is one attempt: no WAIT is sent.  A
     * negative wait is refused rather than read as "forever" (C's -1
     * habit) or as "one attempt" (py-cachify's arithmetic): the caller
     * meant one of them, and only they know which. */
    if (opts->nowait)
        wait_ms = 0;
    else if (opts->timeout_ms == CACHIFY_FOREVER)
        wait_ms = WIRE_WAIT_FOREVER;
    else if (opts->timeout_ms < 0 || opts->timeout_ms > PROTO_MS_MAX)
        return wire_refuse(err, errlen,
                           "bad timeout_ms %lld: expected milliseconds or "
                           "CACHIFY_FOREVER (a negative is not a wait)",
                           opts->timeout_ms);
    else
        wait_ms = opts->timeout_ms;
    out->ttl_ms = exp;
    out->wait_ms = wait_ms;
    out->session = opts->session != 0;
    return CACHIFY_OK;
}

int wire_check_release(uint64_t token, char *err, size_t errlen)
{
    /* 0 would read as a forced release; say which call does that. */
    if (token == 0 || token > PROTO_TOKEN_MAX)
        return wire_refuse(err, errlen,
                           "bad token %llu: tokens are positive; use "
                           "cachify_force_release to free any holder",
                           (unsigned long long)token);
    return CACHIFY_OK;
}

int wire_check_max_size(unsigned max_size, char *err, size_t errlen)
{
    if (max_size < 1 || max_size > WIRE_POOL_MAX_SIZE)
        return wire_refuse(err, errlen, "bad max_size %u: expected 1..%u",
                           max_size, WIRE_POOL_MAX_SIZE);
    return CACHIFY_OK;
}

int wire_check_extend(uint64_t token, long long ms, char *err, size_t errlen)
{
    if (token == 0 || token > PROTO_TOKEN_MAX)
        return wire_refuse(err, errlen, "bad token %llu",
                           (unsigned long long)token);
    if (ms <= 0 || ms > PROTO_MS_MAX)
        return wire_refuse(err, errlen, "bad ms %lld: expected 1..%lld", ms,
                           PROTO_MS_MAX);
    return CACHIFY_OK;
}

/* ---- requests ---- */

static void put(struct wire_args *a, const char *s, size_t n)
{
    a->argv[a->argc] = s;
    a->len[a->argc++] = n;
}

static void put_str(struct wire_args *a, const char *s)
{
    put(a, s, strlen(s));
}

/* v in decimal, in the next of a's two number slots (the commands that
 * carry numbers carry at most two, see wire.h). */
static void put_num(struct wire_args *a, unsigned long long v)
{
    char *num = a->num[a->nnum++];
    int n = snprintf(num, WIRE_NUM_MAX, "%llu", v);

    put(a, num, (size_t)n);
}

/* A TTL or WAIT: milliseconds, or FOREVER for none (0 or below: the
 * checks above let through only 0 for TTL and WIRE_WAIT_FOREVER for
 * WAIT). */
static void put_ms(struct wire_args *a, long long ms)
{
    if (ms > 0)
        put_num(a, (unsigned long long)ms);
    else
        put_str(a, "FOREVER");
}

void wire_args(const struct wire_req *q, struct wire_args *a)
{
    a->argc = 0;
    a->nnum = 0;
    put_str(a, wire_op_name(q->op));
    if (q->op == WIRE_PING)
        return;
    put(a, q->key, q->keylen); /* the key, or AUTH's password */
    switch (q->op) {
    case WIRE_POOL_ACQUIRE:
    case WIRE_ACQUIRE:
        if (q->op == WIRE_POOL_ACQUIRE)
            put_num(a, q->max_size);
        put_str(a, "TTL");
        put_ms(a, q->lock.ttl_ms);
        if (q->lock.wait_ms != 0) {
            put_str(a, "WAIT");
            put_ms(a, q->lock.wait_ms);
        }
        if (q->lock.session)
            put_str(a, "SESSION");
        break;
    case WIRE_RELEASE:
    case WIRE_POOL_RELEASE:
        put_num(a, q->token);
        break;
    case WIRE_EXTEND:
    case WIRE_POOL_EXTEND:
        put_num(a, q->token);
        put_num(a, (unsigned long long)q->ms);
        break;
    case WIRE_AUTH:
    case WIRE_PING:
    case WIRE_FORCE:
    case WIRE_IS_LOCKED:
    case WIRE_PTTL:
    case WIRE_POOL_FORCE:
    case WIRE_POOL_SIZE:
        break;
    }
}

/* Copies n bytes of p to out + off when out is not NULL; returns n. */
static size_t emit(char *out, size_t off, const void *p, size_t n)
{
    if (out != NULL)
        memcpy(out + off, p, n);
    return n;
}

size_t wire_encode(const struct wire_args *a, char *out)
{
    /* Headers go through hdr: proto_fmt_* writes a NUL after them and
     * wants PROTO_HEADER_MAX bytes of room, which out may not have. */
    char hdr[PROTO_HEADER_MAX];
    size_t off = 0;

    off += emit(out, off, hdr, proto_fmt_array_header(hdr, (size_t)a->argc));
    for (int i = 0; i < a->argc; i++) {
        off += emit(out, off, hdr, proto_fmt_bulk_header(hdr, a->len[i]));
        off += emit(out, off, a->argv[i], a->len[i]);
        off += emit(out, off, "\r\n", 2);
    }
    return off;
}

char *wire_request(const struct wire_req *q, char *buf, size_t cap,
                   size_t *len)
{
    struct wire_args a;
    char *out = buf;

    wire_args(q, &a);
    *len = wire_encode(&a, NULL);
    if (*len > cap && (out = malloc(*len)) == NULL)
        return NULL;
    wire_encode(&a, out);
    return out;
}

long long wire_reply_timeout_ms(enum wire_op op, const struct wire_lock *lock,
                                int io_timeout_ms)
{
    if ((op != WIRE_ACQUIRE && op != WIRE_POOL_ACQUIRE) || lock->wait_ms == 0)
        return io_timeout_ms;
    if (lock->wait_ms == WIRE_WAIT_FOREVER)
        return -1;
    return io_timeout_ms + lock->wait_ms;
}

/* ---- replies ---- */

/* Error replies "CODE message" by their code.  Any other code (ERR, LIMIT,
 * DENIED, ...) is the server refusing for a reason of its own:
 * CACHIFY_ERR_SERVER, with its line as the message. */
static const struct {
    const char *code;
    int status;
} error_codes[] = {
    {"LOCKED", CACHIFY_LOCKED},      /* held, no wait asked */
    {"TIMEOUT", CACHIFY_TIMEOUT},    /* held until the wait ran out */
    {"NOAUTH", CACHIFY_ERR_AUTH},    /* AUTH needed first */
    {"WRONGPASS", CACHIFY_ERR_AUTH}, /* AUTH with the wrong password */
    {"FULL", CACHIFY_FULL},          /* every slot of a pool held */
    {"WRONGTYPE", CACHIFY_ERR_TYPE}, /* a lock where a pool is, or back */
    {"WRONGSIZE", CACHIFY_ERR_TYPE}, /* a pool of another max_size */
};

static int error_status(const char *text)
{
    size_t n = strcspn(text, " ");

    for (size_t i = 0; i < sizeof error_codes / sizeof error_codes[0]; i++)
        if (strlen(error_codes[i].code) == n &&
            memcmp(text, error_codes[i].code, n) == 0)
            return error_codes[i].status;
    return CACHIFY_ERR_SERVER;
}

static void say(struct wire_result *out, int status, const char *head,
                const char *text, const char *tail)
{
    out->status = status;
    out->head = head;
    out->text = text;
    out->tail = tail;
}

/* A reply that is not what op answers: CACHIFY_ERR_PROTO, worded here. */
__attribute__((format(printf, 2, 3)))
static void bad_reply(struct wire_result *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out->note, sizeof out->note, fmt, ap);
    va_end(ap);
    say(out, CACHIFY_ERR_PROTO, "", out->note, "");
}

void wire_full(struct wire_result *out, int status, const char *key)
{
    out->value = 0;
    say(out, status, "", key != NULL ? key : "", WIRE_FULL_TAIL);
}

void wire_locked(struct wire_result *out, int status, const char *key)
{
    out->value = 0;
    say(out, status, "", key != NULL ? key : "", WIRE_LOCKED_TAIL);
}

/* AUTH's own mapping: a wrong or missing password (WRONGPASS, NOAUTH, or
 * "ERR no password is set": the URL has one, the server none) is
 * CACHIFY_ERR_AUTH; any other refusal (-LIMIT max number of clients
 * reached, -DENIED, ...) is CACHIFY_ERR_SERVER, not a wrong password, and
 * LOCKED or TIMEOUT mean nothing as a reply to AUTH. */
static void auth_reply(const struct resp_reply *r, struct wire_result *out)
{
    const char *text = r->str != NULL ? r->str : "";
    int st;

    if (r->type == RESP_STATUS) {
        say(out, CACHIFY_OK, "", "", "");
        return;
    }
    if (r->type != RESP_ERROR_REPLY) {
        bad_reply(out, "unexpected reply to AUTH");
        return;
    }
    st = error_status(text);
    if (strcmp(text, "ERR no password is set") == 0)
        st = CACHIFY_ERR_AUTH;
    else if (st != CACHIFY_ERR_AUTH)
        st = CACHIFY_ERR_SERVER;
    say(out, st, "AUTH failed: ", text, "");
}

void wire_reply(enum wire_op op, const struct resp_reply *r, const char *key,
                struct wire_result *out)
{
    out->value = 0;
    out->note[0] = '\0';
    if (op == WIRE_AUTH) {
        auth_reply(r, out);
        return;
    }
    if (r->type == RESP_ERROR_REPLY) {
        const char *text = r->str != NULL ? r->str : "";
        int st = error_status(text);

        if (st == CACHIFY_FULL ||
            (st == CACHIFY_TIMEOUT && op == WIRE_POOL_ACQUIRE))
            wire_full(out, st, key);
        else if (st == CACHIFY_LOCKED || st == CACHIFY_TIMEOUT)
            wire_locked(out, st, key);
        else
            say(out, st, "", text, "");
        return;
    }
    /* A nil or a status where an integer belongs (or the reverse) is not
     * mistaken for an answer (hiredis #242): the stream is not what we
     * think it is. */
    if (op == WIRE_PING) {
        if (r->type == RESP_STATUS)
            say(out, CACHIFY_OK, "", "", "");
        else
            bad_reply(out, "unexpected reply to PING");
        return;
    }
    if (r->type != RESP_INTEGER) {
        bad_reply(out, "unexpected reply type %d to %s", (int)r->type,
                  wire_op_name(op));
        return;
    }
    if ((op == WIRE_ACQUIRE || op == WIRE_POOL_ACQUIRE) && r->integer <= 0) {
        bad_reply(out, "bad token %lld from the server", r->integer);
        return;
    }
    /* PTTL answers milliseconds (or -1 / -2); ACQUIRE a token; the others
     * a count, which the API reports as 1 or 0. */
    if (r->integer < 0 && (op == WIRE_POOL_FORCE || op == WIRE_POOL_SIZE)) {
        bad_reply(out, "negative count %lld from the server", r->integer);
        return;
    }
    out->value = op == WIRE_PTTL || op == WIRE_ACQUIRE ||
                         op == WIRE_POOL_ACQUIRE || op == WIRE_POOL_FORCE ||
                         op == WIRE_POOL_SIZE
                     ? r->integer
                     : r->integer != 0;
    say(out, CACHIFY_OK, "", "", "");
}
