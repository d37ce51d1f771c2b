/* proto/reader.c - incremental request parser (implements proto/reader.h).
 *
 * Owns: one connection's input buffer, the scan state of the request being
 * parsed, and the argv arrays of the request it last returned.  Does not
 * own: sockets (it does no I/O), replies, or what commands mean.
 *
 * Buffer layout (all sizes in bytes):
 *
 *   0            start               start+scan              len       cap
 *   | consumed   | request in progress: scanned | not scanned | free    |
 *
 * Every position inside the request in progress (scan point, argument
 * offsets, header starts) is kept relative to `start`.  Moving the
 * unconsumed bytes to the front (compaction) or reallocating the buffer
 * therefore never disturbs parse state, and a request that arrives one byte
 * at a time is scanned exactly once.  Bytes of a request already returned
 * stay in place until the next call on the reader, because the argv handed
 * out points into them; every entry point first drops them (release()).
 *
 * Arguments are finished in place: inline quoted words are unescaped over
 * their own source bytes (the output never outruns the input, since the
 * opening quote is never written), and each argument gets a '\0' over the
 * byte after it, which the scanner has already consumed and validated.
 */
#include "proto/reader.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/reply.h"

/* First buffer size and the size an emptied big buffer shrinks back to:
 * most requests are tens of bytes, and 10,000 idle connections should hold
 * about 5 MB of input buffers, not gigabytes. */
#define BUF_INITIAL 512
/* An empty buffer larger than this is shrunk to BUF_INITIAL, so one big
 * request does not pin its memory for the life of the connection. */
#define BUF_KEEP_MAX (64 * 1024)
/* Least free room proto_reader_space() tries to offer (when the request
 * bound allows), so reads into the buffer are not a few bytes each. */
#define SPACE_MIN 512
/* A RESP header line ("*<n>" or "$<len>", type byte included, CRLF not)
 * longer than this is broken: the longest useful one is 1 + 19 digits.
 * Bounds how long a header that never ends is scanned. */
#define HDR_MAX 32
/* Digits a header number may have: 10^19 - 1 fits an unsigned long long,
 * so accumulating at most this many digits cannot overflow. */
#define NUM_DIGITS_MAX 19
/* argv arrays start this big, grow by doubling up to PROTO_MAX_ARGS, and are
 * given back when the reader is idle and they grew above ARGS_KEEP_MAX. */
#define ARGS_INITIAL 8
#define ARGS_KEEP_MAX 64
/* Room for the longest error message (a few words and one size_t). */
#define ERR_MAX 96

/* Where the reader is within the request stream. */
enum frame {
    FR_START,     /* between requests: the next byte picks the framing */
    FR_INLINE,    /* in an inline line; `ws` says where within a word */
    FR_COUNT,     /* in "*<n>\r\n" */
    FR_BULK_HDR,  /* in "$<len>\r\n" (scan == hdr: the '$' is unchecked) */
    FR_BULK_DATA, /* waiting for <len> bytes and their "\r\n" */
    FR_DEAD,      /* framing error: err says why, input is discarded */
};

/* Where an inline scan is relative to words. */
enum word_state {
    WS_BLANK,       /* between words */
    WS_WORD,        /* in an unquoted word */
    WS_QUOTE,       /* in a double-quoted word */
    WS_ESC,         /* right after a backslash inside quotes */
    WS_HEX1,        /* after "\x": expecting the first hex digit */
    WS_HEX2,        /* after "\xH": expecting the second hex digit */
    WS_AFTER_QUOTE, /* right after a closing quote: needs a blank or EOL */
};

/* Result of one scanning step; STEP_AGAIN means "a request boundary moved
 * (an empty inline line was skipped), look at the next request". */
enum step { STEP_OK, STEP_MORE, STEP_ERROR, STEP_AGAIN };

/* A decimal header number being scanned. */
struct numscan {
    unsigned long long val; /* of the first NUM_DIGITS_MAX digits */
    size_t digits;          /* how many digits were seen */
    bool neg;               /* it started with '-' */
    bool cr;                /* the '\r' was seen; '\n' must come next */
};

struct proto_reader {
    struct proto_limits lim;

    char *buf;
    size_t cap;   /* bytes allocated at buf */
    size_t len;   /* bytes filled */
    size_t start; /* first byte not yet returned as (part of) a request */

    enum frame fr;
    size_t scan; /* next byte to scan, relative to start */

    /* Inline state. */
    enum word_state ws;
    bool cr_pending; /* an unquoted '\r' just seen: dropped if '\n' follows,
                        data otherwise */
    char hex;        /* the first digit of a \xHH escape in progress */
    size_t wbeg;     /* start of the current word, relative to start */
    size_t wr;       /* where its next unescaped byte goes */

    /* RESP state. */
    size_t nbulk;        /* bulks the array announced */
    size_t hdr;          /* where the current header line starts */
    struct numscan num;  /* the number in that header */
    size_t blen;         /* length of the current bulk */
    size_t data;         /* where its bytes start */

    /* Arguments of the request in progress (offsets relative to start),
     * and the pointer array filled from them on PROTO_OK. */
    size_t argc;
    size_t argcap;
    size_t *argoff;
    size_t *arglen; /* handed out as proto_request.argvlen */
    char **argv;

    char err[ERR_MAX];
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static enum step fail(struct proto_reader *r, const char *fmt, ...);

/* ---- buffer and array management ---- */

static void compact(struct proto_reader *r)
{
    size_t pending = r->len - r->start;

    memmove(r->buf, r->buf + r->start, pending);
    r->start = 0;
    r->len = pending;
}

/* Gives memory back once the reader holds nothing: a connection that sent
 * one huge request must not keep a huge buffer while it idles.  A failed
 * shrinking realloc just keeps the big block. */
static void shrink_if_idle(struct proto_reader *r)
{
    if (r->cap > BUF_KEEP_MAX) {
        char *p = realloc(r->buf, BUF_INITIAL);
        if (p) {
            r->buf = p;
            r->cap = BUF_INITIAL;
        }
    }
    if (r->argcap > ARGS_KEEP_MAX) {
        /* Free rather than realloc: three shrinking reallocs could fail
         * half-way and leave arrays of different sizes. */
        free(r->argoff);
        free(r->arglen);
        free(r->argv);
        r->argoff = r->arglen = NULL;
        r->argv = NULL;
        r->argcap = 0;
    }
}

/* Drops the bytes of requests already returned (their argv dies with the
 * call that runs this).  Compacts only when the consumed part is at least as
 * big as what has to move, so the memmove cost stays linear overall. */
static void release(struct proto_reader *r)
{
    size_t pending = r->len - r->start;

    if (pending == 0) {
        r->start = r->len = 0;
        shrink_if_idle(r);
    } else if (r->start >= pending && r->start >= r->cap / 2) {
        compact(r);
    }
}

/* Makes room for `need` more bytes at buf + len.  The caller guarantees
 * pending + need <= max_request, so the buffer never outgrows
 * max(max_request, BUF_INITIAL).  False when out of memory. */
static bool reserve(struct proto_reader *r, size_t need)
{
    size_t limit = r->lim.max_request > BUF_INITIAL ? r->lim.max_request
                                                    : BUF_INITIAL;
    size_t pending = r->len - r->start;
    size_t ncap;
    char *p;

    if (r->cap - r->len >= need)
        return true;
    /* Compact when the consumed part pays for the move, or when the bytes
     * would not fit even in the biggest buffer without it. */
    if (r->start > 0 && (r->start >= pending || r->len + need > limit)) {
        compact(r);
        if (r->cap - r->len >= need)
            return true;
    }
    ncap = r->cap;
    while (ncap < r->len + need)
        ncap = ncap >= limit / 2 ? limit : ncap * 2;
    p = realloc(r->buf, ncap);
    if (!p)
        return false;
    r->buf = p;
    r->cap = ncap;
    return true;
}

/* Makes argoff/arglen/argv hold at least argc + 1 entries.  Growing one
 * array and failing on the next is harmless: argcap only counts what all
 * three have. */
static bool reserve_arg(struct proto_reader *r)
{
    size_t ncap;
    void *p;

    if (r->argc < r->argcap)
        return true;
    ncap = r->argcap ? r->argcap * 2 : ARGS_INITIAL;
    if (ncap > PROTO_MAX_ARGS)
        ncap = PROTO_MAX_ARGS;
    if (!(p = realloc(r->argoff, ncap * sizeof *r->argoff)))
        return false;
    r->argoff = p;
    if (!(p = realloc(r->arglen, ncap * sizeof *r->arglen)))
        return false;
    r->arglen = p;
    if (!(p = realloc(r->argv, ncap * sizeof *r->argv)))
        return false;
    r->argv = p;
    r->argcap = ncap;
    return true;
}

/* Records argument argc as [off, off + len) and NUL-terminates it in place:
 * the byte at off + len has been consumed and validated by now. */
static void add_arg(struct proto_reader *r, size_t off, size_t len)
{
    r->buf[r->start + off + len] = '\0';
    r->argoff[r->argc] = off;
    r->arglen[r->argc] = len;
    r->argc++;
}

/* Kills the reader: the message is kept for proto_reader_error(), and the
 * buffered input is dropped because nothing after broken framing can be
 * trusted to be a request (it may be a payload). */
static enum step fail(struct proto_reader *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->fr = FR_DEAD;
    r->argc = 0;
    r->start = r->len = 0;
    shrink_if_idle(r);
    return STEP_ERROR;
}

/* ---- inline framing ---- */

static bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void emit(struct proto_reader *r, char c)
{
    r->buf[r->start + r->wr++] = c;
}

static enum step start_word(struct proto_reader *r, size_t pos)
{
    if (r->argc == PROTO_MAX_ARGS)
        return fail(r, "too many arguments (max %d)", PROTO_MAX_ARGS);
    if (!reserve_arg(r))
        return fail(r, "out of memory");
    r->wbeg = r->wr = pos;
    return STEP_MORE;
}

static void end_word(struct proto_reader *r)
{
    add_arg(r, r->wbeg, r->wr - r->wbeg);
}

/* Feeds one byte at offset pos of an inline line (not its '\n') through the
 * word state machine.  A '"' opens a quoted word only at the start of a
 * word; inside an unquoted word it is an ordinary byte. */
static enum step inline_byte(struct proto_reader *r, size_t pos, unsigned char c)
{
    int h;

    switch (r->ws) {
    case WS_BLANK:
        if (is_blank(c))
            return STEP_MORE;
        if (start_word(r, pos) == STEP_ERROR)
            return STEP_ERROR;
        if (c == '"') {
            r->ws = WS_QUOTE; /* the quote itself is never written */
            return STEP_MORE;
        }
        r->ws = WS_WORD;
        emit(r, (char)c);
        return STEP_MORE;
    case WS_WORD:
        if (is_blank(c)) {
            end_word(r);
            r->ws = WS_BLANK;
        } else {
            emit(r, (char)c);
        }
        return STEP_MORE;
    case WS_QUOTE:
        if (c == '\\') {
            r->ws = WS_ESC;
        } else if (c == '"') {
            end_word(r);
            r->ws = WS_AFTER_QUOTE;
        } else {
            emit(r, (char)c);
        }
        return STEP_MORE;
    case WS_ESC:
        /* Unknown escapes (\q, \a, \0, ...) keep the byte after the
         * backslash: a typo costs one backslash, never the request. */
        r->ws = WS_QUOTE;
        switch (c) {
        case 'n': emit(r, '\n'); break;
        case 'r': emit(r, '\r'); break;
        case 't': emit(r, '\t'); break;
        case 'x': r->ws = WS_HEX1; break;
        default: emit(r, (char)c); break; /* \" \\ and unknown ones */
        }
        return STEP_MORE;
    case WS_HEX1:
    case WS_HEX2:
        h = hex_value(c);
        if (h >= 0 && r->ws == WS_HEX1) {
            r->hex = (char)c;
            r->ws = WS_HEX2;
            return STEP_MORE;
        }
        if (h >= 0) {
            emit(r, (char)(hex_value((unsigned char)r->hex) << 4 | h));
            r->ws = WS_QUOTE;
            return STEP_MORE;
        }
        /* "\x" without two hex digits is an unknown escape like \q: it
         * keeps the 'x' and whatever digit followed, and c is read as an
         * ordinary quoted byte.  This writes at most two bytes for the
         * three consumed, so the write point stays behind pos. */
        emit(r, 'x');
        if (r->ws == WS_HEX2)
            emit(r, r->hex);
        r->ws = WS_QUOTE;
        return inline_byte(r, pos, c);
    case WS_AFTER_QUOTE:
        if (is_blank(c)) {
            r->ws = WS_BLANK;
            return STEP_MORE;
        }
        return fail(r, "closing quote must be followed by a space");
    }
    return STEP_MORE;
}

static bool in_quotes(enum word_state ws)
{
    return ws == WS_QUOTE || ws == WS_ESC || ws == WS_HEX1 || ws == WS_HEX2;
}

/* The '\n' at offset i ends the line.  A line without words is skipped. */
static enum step end_line(struct proto_reader *r, size_t i)
{
    r->cr_pending = false; /* a '\r' before '\n' is dropped */
    if (in_quotes(r->ws))
        return fail(r, "unbalanced quotes in request");
    if (r->ws == WS_WORD)
        end_word(r); /* its '\0' goes on the dropped '\r' or the '\n' */
    if (r->argc == 0) {
        r->start += i + 1;
        r->fr = FR_START;
        return STEP_AGAIN;
    }
    return STEP_OK;
}

static enum step scan_inline(struct proto_reader *r)
{
    size_t avail = r->len - r->start;

    while (r->scan < avail) {
        size_t i = r->scan++;
        unsigned char c = (unsigned char)r->buf[r->start + i];

        if (c == '\n')
            return end_line(r, i);
        /* The line's content is at least i bytes, and i + 1 unless this
         * is a '\r' that a '\n' may still drop.  Failing here, not at the
         * newline, keeps an endless line from filling the buffer. */
        if (i + (c != '\r') > r->lim.max_line)
            return fail(r, "inline request too long (max %zu bytes)",
                        r->lim.max_line);
        if (r->cr_pending) {
            /* The '\r' before this byte was data after all. */
            r->cr_pending = false;
            if (inline_byte(r, i - 1, '\r') == STEP_ERROR)
                return STEP_ERROR;
        }
        if (c == '\r' && !in_quotes(r->ws)) {
            r->cr_pending = true;
            continue;
        }
        if (inline_byte(r, i, c) == STEP_ERROR)
            return STEP_ERROR;
    }
    return STEP_MORE;
}

/* ---- RESP framing ---- */

static void begin_header(struct proto_reader *r)
{
    r->hdr = r->scan;
    memset(&r->num, 0, sizeof r->num);
}

/* Scans the rest of a header line "<type>[-]<digits>\r\n" whose type byte
 * is at hdr.  `what` names the number in messages.  A byte that cannot
 * belong to the number fails at once; the line must end in exactly CRLF
 * within HDR_MAX bytes. */
static enum step scan_number(struct proto_reader *r, const char *what)
{
    size_t avail = r->len - r->start;
    struct numscan *n = &r->num;

    while (r->scan < avail) {
        unsigned char c = (unsigned char)r->buf[r->start + r->scan++];

        if (n->cr) {
            if (c != '\n')
                return fail(r, "expected CRLF after %s", what);
            if (n->digits == 0)
                return fail(r, "invalid %s", what);
            return STEP_OK;
        }
        if (c == '\r') {
            n->cr = true;
            continue;
        }
        if (c == '\n')
            return fail(r, "expected CRLF after %s", what);
        if (c == '-' && r->scan == r->hdr + 2) {
            n->neg = true;
        } else if (c >= '0' && c <= '9') {
            if (++n->digits <= NUM_DIGITS_MAX)
                n->val = n->val * 10 + (c - '0');
        } else {
            return fail(r, "invalid %s", what);
        }
        if (r->scan - r->hdr > HDR_MAX)
            return fail(r, "expected CRLF after %s", what);
    }
    return STEP_MORE;
}

/* True when the scanned number is a non-negative value <= max.  A '-' sign
 * makes any number (even "-0") out of range: lengths and counts are
 * unsigned on the wire, and one rule for both keeps the messages
 * consistent. */
static bool num_within(const struct numscan *n, unsigned long long max)
{
    return !n->neg && n->digits <= NUM_DIGITS_MAX && n->val <= max;
}

static enum step scan_resp(struct proto_reader *r)
{
    for (;;) {
        size_t avail = r->len - r->start;
        char *b = r->buf + r->start;
        enum step s;
        size_t end;

        switch (r->fr) {
        case FR_COUNT:
            if ((s = scan_number(r, "multibulk count")) != STEP_OK)
                return s;
            if (!num_within(&r->num, PROTO_MAX_ARGS) || r->num.val < 1)
                return fail(r, "multibulk count out of range (1..%d)",
                            PROTO_MAX_ARGS);
            r->nbulk = (size_t)r->num.val;
            r->fr = FR_BULK_HDR;
            begin_header(r);
            break;
        case FR_BULK_HDR:
            if (r->scan == r->hdr) {
                char esc[4];
                if (r->scan >= avail)
                    return STEP_MORE;
                if (b[r->scan] != '$')
                    return fail(r, "expected '$', got '%.*s'",
                                (int)proto_escape(b + r->scan, 1, esc), esc);
                r->scan++;
            }
            if ((s = scan_number(r, "bulk length")) != STEP_OK)
                return s;
            if (!num_within(&r->num, r->lim.max_line))
                return fail(r, "bulk length out of range (0..%zu)",
                            r->lim.max_line);
            r->blen = (size_t)r->num.val;
            r->data = r->scan;
            /* Fail as soon as the announced bytes cannot fit, instead of
             * buffering max_request bytes first. */
            if (r->data + r->blen + 2 > r->lim.max_request)
                return fail(r, "request too large (max %zu bytes)",
                            r->lim.max_request);
            if (!reserve_arg(r))
                return fail(r, "out of memory");
            r->fr = FR_BULK_DATA;
            break;
        case FR_BULK_DATA:
            /* The payload is never scanned, only its two trailing bytes
             * are checked once they are there. */
            end = r->data + r->blen;
            if (avail <= end)
                return STEP_MORE;
            if (b[end] != '\r' || (avail > end + 1 && b[end + 1] != '\n'))
                return fail(r, "expected CRLF after bulk string");
            if (avail < end + 2)
                return STEP_MORE;
            add_arg(r, r->data, r->blen);
            r->scan = end + 2;
            if (r->argc == r->nbulk)
                return STEP_OK;
            r->fr = FR_BULK_HDR;
            begin_header(r);
            break;
        default:
            return STEP_ERROR; /* not reached: callers route other frames */
        }
    }
}

/* ---- public API ---- */

struct proto_reader *proto_reader_new(const struct proto_limits *limits)
{
    struct proto_reader *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->lim = *limits;
    /* The header requires max_request >= max_line + 2; enforce it rather
     * than trust it, or a legal bulk could never fit. */
    if (r->lim.max_line <= (size_t)-1 - 2 &&
        r->lim.max_request < r->lim.max_line + 2)
        r->lim.max_request = r->lim.max_line + 2;
    r->buf = malloc(BUF_INITIAL);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->cap = BUF_INITIAL;
    r->fr = FR_START;
    return r;
}

void proto_reader_free(struct proto_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r->argoff);
    free(r->arglen);
    free(r->argv);
    free(r);
}

size_t proto_reader_feed(struct proto_reader *r, const void *buf, size_t len)
{
    size_t room, take;

    /* A dead reader swallows input so a caller's feed loop always ends;
     * it is never parsed (see fail()). */
    if (r->fr == FR_DEAD)
        return len;
    release(r);
    room = r->lim.max_request - (r->len - r->start);
    take = len < room ? len : room;
    if (take == 0)
        return 0;
    if (!reserve(r, take))
        return (size_t)-1;
    memcpy(r->buf + r->len, buf, take);
    r->len += take;
    return take;
}

char *proto_reader_space(struct proto_reader *r, size_t *avail)
{
    size_t room, want, free_bytes;

    if (r->fr == FR_DEAD) {
        /* Somewhere to read into; proto_reader_commit discards it. */
        *avail = r->cap;
        return r->buf;
    }
    release(r);
    room = r->lim.max_request - (r->len - r->start);
    if (room == 0) {
        *avail = 0;
        return r->buf + r->len;
    }
    want = room < SPACE_MIN ? room : SPACE_MIN;
    if (!reserve(r, want)) {
        *avail = 0;
        return NULL;
    }
    free_bytes = r->cap - r->len;
    *avail = free_bytes < room ? free_bytes : room;
    return r->buf + r->len;
}

void proto_reader_commit(struct proto_reader *r, size_t n)
{
    size_t room;

    if (r->fr == FR_DEAD)
        return;
    /* Clamp to what proto_reader_space could have offered: a caller bug
     * must not move len past the allocation or the request bound. */
    room = r->lim.max_request - (r->len - r->start);
    if (n > r->cap - r->len)
        n = r->cap - r->len;
    if (n > room)
        n = room;
    r->len += n;
}

enum proto_status proto_reader_next(struct proto_reader *r,
                                    struct proto_request *req)
{
    if (r->fr == FR_DEAD)
        return PROTO_ERROR;
    release(r);
    for (;;) {
        enum step s;

        if (r->fr == FR_START) {
            if (r->start == r->len)
                return PROTO_NEED_MORE;
            r->argc = 0;
            r->scan = 0;
            if (r->buf[r->start] == '*') {
                r->fr = FR_COUNT;
                begin_header(r);
                r->scan = 1;
            } else {
                r->fr = FR_INLINE;
                r->ws = WS_BLANK;
                r->cr_pending = false;
            }
        }
        s = r->fr == FR_INLINE ? scan_inline(r) : scan_resp(r);
        if (s == STEP_AGAIN)
            continue;
        if (s == STEP_ERROR)
            return PROTO_ERROR;
        if (s == STEP_MORE) {
            /* feed() never lets more than max_request bytes wait, so a
             * request still incomplete at that size can never finish. */
            if (r->len - r->start >= r->lim.max_request) {
                fail(r, "request too large (max %zu bytes)",
                     r->lim.max_request);
                return PROTO_ERROR;
            }
            return PROTO_NEED_MORE;
        }
        for (size_t i = 0; i < r->argc; i++)
            r->argv[i] = r->buf + r->start + r->argoff[i];
        req->argc = r->argc;
        req->argv = r->argv;
        req->argvlen = r->arglen;
        r->start += r->scan; /* the bytes stay until the next call */
        r->fr = FR_START;
        return PROTO_OK;
    }
}

const char *proto_reader_error(const struct proto_reader *r)
{
    return r->err;
}

size_t proto_reader_pending(const struct proto_reader *r)
{
    return r->len - r->start;
}
