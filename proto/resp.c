/* proto/resp.c - incremental RESP2 reply parser (implements proto/resp.h).
 *
 * Owns: a buffer of bytes fed but not yet consumed, a stack of arrays being
 * filled, and the reply values it builds.  Does not own: sockets, commands,
 * or what a reply means.
 *
 * How it stays incremental and cheap when bytes arrive one at a time:
 *   - a scalar element (+ - : $) is consumed only once it is whole, so a
 *     partial element leaves nothing half-built; the search for its header's
 *     CRLF resumes where the last call stopped (`scan`), so each byte is
 *     looked at once, and a bulk body is only measured, never rescanned;
 *   - an array header is consumed at once and pushes a frame; elements are
 *     attached as they complete and the frame pops when full.
 * Bounds: a header line (type byte, digits) is at most HEADER_MAX bytes, a
 * status/error line or bulk at most max_bulk, an array at most max_elements
 * long and RESP_MAX_DEPTH deep, and all the arrays of one reply together at
 * most max_elements elements (a running total, reset when a top-level reply
 * is returned).  Anything else is RESP_ERROR, after which the
 * parser answers RESP_ERROR forever (the caller drops the connection).
 */
#include "proto/resp.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "$-1", ":-9223372036854775808": a sign and 19 digits, plus the type byte,
 * fit in 21 bytes; 32 leaves room without letting junk run on. */
#define HEADER_MAX 32
/* Defaults when limits are NULL or zero: cachifyd's largest reply is STATS
 * (a few hundred bytes) or HELP (a dozen lines); 1 MiB and 4096 are far
 * above that and still small enough that a hostile server is harmless. */
#define DEFAULT_MAX_BULK (1024 * 1024)
#define DEFAULT_MAX_ELEMENTS 4096
/* First buffer size; replies are usually a few bytes. */
#define BUF_INITIAL 256

/* An array being filled. */
struct frame {
    struct resp_reply *array;
    size_t filled;
};

struct resp_parser {
    struct resp_limits lim;
    char *buf;          /* bytes fed and not consumed: buf[pos..len) */
    size_t pos, len, cap;
    size_t scan;        /* CRLF search of the element at pos resumes here */
    struct frame stack[RESP_MAX_DEPTH];
    size_t depth;       /* frames in use */
    size_t total;       /* array elements announced in the current reply */
    int dead;           /* a framing error happened */
    char err[96];
};

struct resp_parser *resp_parser_new(const struct resp_limits *limits)
{
    struct resp_parser *p = calloc(1, sizeof *p);

    if (p == NULL)
        return NULL;
    p->lim.max_bulk = limits && limits->max_bulk ? limits->max_bulk
                                                 : DEFAULT_MAX_BULK;
    p->lim.max_elements = limits && limits->max_elements
                              ? limits->max_elements
                              : DEFAULT_MAX_ELEMENTS;
    return p;
}

void resp_reply_free(struct resp_reply *r)
{
    if (r == NULL)
        return;
    if (r->elements != NULL) {
        for (size_t i = 0; i < r->nelements; i++)
            resp_reply_free(r->elements[i]);
        free(r->elements);
    }
    free(r->str);
    free(r);
}

/* Frees the arrays under construction.  Each frame owns its own array: a
 * nested array is attached to its parent only once it is complete. */
static void drop_stack(struct resp_parser *p)
{
    while (p->depth > 0) {
        struct frame *f = &p->stack[--p->depth];

        f->array->nelements = f->filled; /* the rest are still NULL */
        resp_reply_free(f->array);
    }
}

void resp_parser_free(struct resp_parser *p)
{
    if (p == NULL)
        return;
    drop_stack(p);
    free(p->buf);
    free(p);
}

const char *resp_parser_error(const struct resp_parser *p)
{
    return p->dead ? p->err : "";
}

int resp_parser_busy(const struct resp_parser *p)
{
    return p->pos < p->len || p->depth > 0;
}

int resp_parser_feed(struct resp_parser *p, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (p->pos > 0 && (p->pos == p->len || p->pos >= p->cap / 2)) {
        /* Compact: consumed bytes go, offsets relative to pos stay. */
        memmove(p->buf, p->buf + p->pos, p->len - p->pos);
        p->len -= p->pos;
        p->pos = 0;
    }
    if (len > SIZE_MAX / 2 - p->len)
        return -1;
    if (p->len + len > p->cap) {
        size_t ncap = p->cap ? p->cap : BUF_INITIAL;
        char *nb;

        while (ncap < p->len + len)
            ncap *= 2;
        nb = realloc(p->buf, ncap);
        if (nb == NULL)
            return -1;
        p->buf = nb;
        p->cap = ncap;
    }
    memcpy(p->buf + p->len, buf, len);
    p->len += len;
    return 0;
}

/* Marks the parser dead with a message; returns RESP_ERROR. */
static enum resp_status fail(struct resp_parser *p, const char *msg)
{
    p->dead = 1;
    snprintf(p->err, sizeof p->err, "%s", msg);
    drop_stack(p);
    return RESP_ERROR;
}

/* Parses a signed decimal in s[0..n) strictly (no spaces, no '+', no
 * leading zeros beyond "0", no overflow).  0 with *out, or -1. */
static int parse_ll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0, lim;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || (s[i] == '0' && n - i > 1))
        return -1;
    lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < n; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg && v == 0)
        return -1; /* "-0" */
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* Finds the CRLF ending the line that starts at pos, at most `bound` bytes
 * long.  1 with *eol (offset of '\r'), 0 need more, -1 error. */
static int find_eol(struct resp_parser *p, size_t bound, size_t *eol)
{
    size_t i = p->pos + (p->scan > 0 ? p->scan : 1);

    for (; i < p->len; i++) {
        char ch = p->buf[i];

        if (ch == '\n')
            return -1; /* a bare LF: not RESP */
        if (ch == '\r') {
            if (i + 1 >= p->len) {
                p->scan = i - p->pos; /* revisit the '\r' when more comes */
                return 0;
            }
            if (p->buf[i + 1] != '\n')
                return -1;
            *eol = i;
            return 1;
        }
        if (i - p->pos > bound)
            return -1;
    }
    p->scan = i - p->pos;
    return 0;
}

static struct resp_reply *new_reply(enum resp_type type)
{
    struct resp_reply *r = calloc(1, sizeof *r);

    if (r != NULL)
        r->type = type;
    return r;
}

/* A reply holding a copy of n bytes as a NUL-terminated string. */
static struct resp_reply *new_str(enum resp_type type, const char *s, size_t n)
{
    struct resp_reply *r = new_reply(type);

    if (r == NULL)
        return NULL;
    r->str = malloc(n + 1);
    if (r->str == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->str, s, n);
    r->str[n] = '\0';
    r->len = n;
    return r;
}

/* Consumes everything up to and including the element that ended at end. */
static void consume(struct resp_parser *p, size_t end)
{
    p->pos = end;
    p->scan = 0;
    if (p->pos == p->len)
        p->pos = p->len = 0;
}

/* Parses the element at pos.  RESP_OK with *out (a scalar, or an array that
 * is complete already: empty or nil), RESP_OK with *out NULL (an array frame
 * was pushed), RESP_NEED_MORE, or RESP_ERROR. */
static enum resp_status parse_one(struct resp_parser *p,
                                  struct resp_reply **out)
{
    char type;
    size_t eol, bound;
    long long n;
    int rc;

    *out = NULL;
    if (p->pos >= p->len)
        return RESP_NEED_MORE;
    type = p->buf[p->pos];
    switch (type) {
    case '+': case '-': bound = p->lim.max_bulk + 1; break;
    case ':': case '$': case '*': bound = HEADER_MAX; break;
    default: return fail(p, "unexpected reply type byte");
    }
    rc = find_eol(p, bound, &eol);
    if (rc < 0)
        return fail(p, type == '+' || type == '-'
                           ? "bad or too long status line"
                           : "bad or too long header line");
    if (rc == 0)
        return RESP_NEED_MORE;
    if (type == '+' || type == '-') {
        const char *s = p->buf + p->pos + 1;
        size_t n2 = eol - p->pos - 1;

        if (n2 > p->lim.max_bulk)
            return fail(p, "status line too long");
        *out = new_str(type == '+' ? RESP_STATUS : RESP_ERROR_REPLY, s, n2);
        if (*out == NULL)
            return fail(p, "out of memory");
        consume(p, eol + 2);
        return RESP_OK;
    }
    if (parse_ll(p->buf + p->pos + 1, eol - p->pos - 1, &n) != 0)
        return fail(p, "bad number in reply header");
    if (type == ':') {
        if ((*out = new_reply(RESP_INTEGER)) == NULL)
            return fail(p, "out of memory");
        (*out)->integer = n;
        consume(p, eol + 2);
        return RESP_OK;
    }
    if (n < -1)
        return fail(p, "negative length in reply header");
    if (n == -1) {
        if ((*out = new_reply(RESP_NIL)) == NULL)
            return fail(p, "out of memory");
        consume(p, eol + 2);
        return RESP_OK;
    }
    if (type == '$') {
        size_t blen = (size_t)n, body = eol + 2;

        if ((unsigned long long)n > p->lim.max_bulk)
            return fail(p, "bulk string longer than the limit");
        if (p->len - body < blen + 2) {
            p->scan = eol - p->pos; /* header found; only the body is short */
            return RESP_NEED_MORE;
        }
        if (p->buf[body + blen] != '\r' || p->buf[body + blen + 1] != '\n')
            return fail(p, "bulk string not followed by CRLF");
        if ((*out = new_str(RESP_BULK, p->buf + body, blen)) == NULL)
            return fail(p, "out of memory");
        consume(p, body + blen + 2);
        return RESP_OK;
    }
    /* '*' */
    if ((unsigned long long)n > p->lim.max_elements)
        return fail(p, "array longer than the limit");
    /* The running total over the whole reply: without it, arrays nested
     * RESP_MAX_DEPTH deep, each max_elements long, add up to
     * max_elements^RESP_MAX_DEPTH elements.  Counted from the headers,
     * before anything is allocated. */
    if ((size_t)n > p->lim.max_elements - p->total)
        return fail(p, "reply has more elements than the limit");
    p->total += (size_t)n;
    if ((*out = new_reply(RESP_ARRAY)) == NULL)
        return fail(p, "out of memory");
    if (n > 0) {
        if (p->depth >= RESP_MAX_DEPTH) {
            resp_reply_free(*out);
            *out = NULL;
            return fail(p, "arrays nested too deep");
        }
        (*out)->elements = calloc((size_t)n, sizeof *(*out)->elements);
        if ((*out)->elements == NULL) {
            resp_reply_free(*out);
            *out = NULL;
            return fail(p, "out of memory");
        }
        (*out)->nelements = (size_t)n;
        p->stack[p->depth].array = *out;
        p->stack[p->depth].filled = 0;
        p->depth++;
        *out = NULL;
    }
    consume(p, eol + 2);
    return RESP_OK;
}

enum resp_status resp_parser_next(struct resp_parser *p,
                                  struct resp_reply **out)
{
    *out = NULL;
    if (p->dead)
        return RESP_ERROR;
    for (;;) {
        struct resp_reply *r;
        enum resp_status st = parse_one(p, &r);

        if (st != RESP_OK)
            return st;
        if (r == NULL)
            continue; /* an array frame was pushed: parse its elements */
        /* Attach r; every array it completes attaches to its parent. */
        while (p->depth > 0) {
            struct frame *f = &p->stack[p->depth - 1];

            f->array->elements[f->filled++] = r;
            if (f->filled < f->array->nelements)
                break;
            r = f->array;
            p->depth--;
        }
        if (p->depth == 0) {
            p->total = 0; /* the next reply starts its own count */
            *out = r;
            return RESP_OK;
        }
    }
}
