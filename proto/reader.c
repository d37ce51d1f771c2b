/* proto/reader.c - incremental request parser (implements proto/reader.h).
 *
 * Owns: one connection's input buffer, the scan state of the request being
 * parsed, and the argv arrays of the request it last returned.  Does not
 * own: sockets (it does no I/O), replies, or what commands mean.
 *
 *   0            start                start+scan            len        cap
 *   | consumed   | request in progress: scanned | unscanned | free       |
 *
 * Every position inside the request in progress (scan point, argument
 * offsets, header starts) is relative to `start`, so compaction (moving the
 * unconsumed bytes to the front) and realloc never disturb parse state, and
 * a request arriving one byte at a time is scanned exactly once.  Bytes of
 * a request already returned stay put until the next call on the reader,
 * because the argv handed out points into them; each entry point first
 * drops them (release()).
 *
 * Arguments are finished in place: quoted inline words are unescaped over
 * their own source bytes (the output never outruns the input: the opening
 * quote is never written), and each argument gets a '\0' over the byte
 * after it, which the scanner has already consumed and validated.
 */
#include "proto/reader.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "proto/encode.h"

/* First buffer size, and what an idle buffer above BUF_KEEP_MAX shrinks back
 * to: most requests are tens of bytes, so 10,000 idle connections hold ~5 MB
 * of input buffers, and one big request does not pin its memory for the
 * life of the connection. */
#define BUF_INITIAL 512
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
/* argv arrays start this big, double up to PROTO_MAX_ARGS, and are given
 * back when the reader is idle and they grew above ARGS_KEEP_MAX. */
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

/* Result of one scanning step.  STEP_AGAIN: an empty inline line was
 * skipped, so look at the next request. */
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
    size_t cap, len; /* bytes allocated / filled at buf */
    size_t start;    /* first byte not yet returned in a request */
    enum frame fr;
    size_t scan;     /* next byte to scan; this and every offset below are
                        relative to start */
    /* Inline state. */
    enum word_state ws;
    bool cr_pending; /* an unquoted '\r' was just seen: dropped if '\n'
                        follows, data otherwise */
    char hex;        /* the first digit of a \xHH escape in progress */
    size_t wbeg, wr; /* current word: its start, its next write point */
    /* RESP state. */
    size_t nbulk;       /* bulks the array announced */
    size_t hdr;         /* where the current header line starts */
    struct numscan num; /* the number in that header */
    size_t blen, data;  /* current bulk: its length, where its bytes start */
    /* Arguments of the request in progress, and the pointers filled from
     * them on PROTO_OK (arglen is handed out as argvlen). */
    size_t argc, argcap;
    size_t *argoff, *arglen;
    char **argv;
    char err[ERR_MAX];
};

/* ---- buffer and array management ---- */

static void compact(struct proto_reader *r)
{
    size_t pending = r->len - r->start;
    memmove(r->buf, r->buf + r->start, pending);
    r->start = 0;
    r->len = pending;
}

/* Gives memory back once the reader holds nothing.  A failed shrinking
 * realloc just keeps the big block. */
static void shrink_if_idle(struct proto_reader *r)
{
    if (r->cap > BUF_KEEP_MAX) {
        char *p = cfy_realloc(r->buf, BUF_INITIAL);
        if (p) {
            r->buf = p;
            r->cap = BUF_INITIAL;
        }
    }
    if (r->argcap > ARGS_KEEP_MAX) {
        /* Free rather than realloc: three shrinking reallocs could fail
         * half-way and leave arrays of different sizes. */
        cfy_free(r->argoff);
        cfy_free(r->arglen);
        cfy_free(r->argv);
        r->argoff = r->arglen = NULL;
        r->argv = NULL;
        r->argcap = 0;
    }
}

/* Drops the bytes of requests already returned (their argv dies with the
 * call that runs this).  Compacts only when the consumed part is at least as
 * big as what has to move, so memmove costs stay linear overall. */
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

/* Bytes that may still be buffered: unconsumed input is held to
 * max_request, so a client cannot make its connection hold more. */
static size_t room_left(const struct proto_reader *r)
{
    return r->lim.max_request - (r->len - r->start);
}

/* Makes room for `need` more bytes at buf + len; the caller keeps
 * need <= room_left(), so the buffer never outgrows
 * max(max_request, BUF_INITIAL).  False when out of memory. */
static bool reserve(struct proto_reader *r, size_t need)
{
    size_t limit = r->lim.max_request > BUF_INITIAL ? r->lim.max_request
                                                    : BUF_INITIAL;
    size_t pending = r->len - r->start, ncap = r->cap;
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
    while (ncap < r->len + need)
        ncap = ncap >= limit / 2 ? limit : ncap * 2;
    if (!(p = cfy_realloc(r->buf, ncap)))
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
    size_t ncap = r->argcap ? r->argcap * 2 : ARGS_INITIAL;
    void *p;

    if (r->argc < r->argcap)
        return true;
    if (ncap > PROTO_MAX_ARGS)
        ncap = PROTO_MAX_ARGS;
    if (!(p = cfy_realloc(r->argoff, ncap * sizeof *r->argoff)))
        return false;
    r->argoff = p;
    if (!(p = cfy_realloc(r->arglen, ncap * sizeof *r->arglen)))
        return false;
    r->arglen = p;
    if (!(p = cfy_realloc(r->argv, ncap * sizeof *r->argv)))
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
 * buffered input is dropped, since nothing after broken framing can be
 * trusted to be a request (it may be a payload). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
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

static bool in_quotes(enum word_state ws)
{
    return ws == WS_QUOTE || ws == WS_ESC || ws == WS_HEX1 || ws == WS_HEX2;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void emit(struct proto_reader *r, char c)
{
    r->buf[r->start + r->wr++] = c;
}

static enum step start_word(struct proto_reader *r, size_t pos,
                            enum word_state ws)
{
    if (r->argc == PROTO_MAX_ARGS)
        return fail(r, "too many arguments (max %d)", PROTO_MAX_ARGS);
    if (!reserve_arg(r))
        return fail(r, "out of memory");
    r->wbeg = r->wr = pos;
    r->ws = ws;
    return STEP_MORE;
}

static void end_word(struct proto_reader *r, enum word_state next)
{
    add_arg(r, r->wbeg, r->wr - r->wbeg);
    r->ws = next;
}

/* Runs byte c, at offset pos of an inline line (never its '\n'), through
 * the word state machine.  A '"' opens a quoted word only at the start of a
 * word; inside an unquoted word it is an ordinary byte. */
static enum step inline_byte(struct proto_reader *r, size_t pos,
                             unsigned char c)
{
    int h;

    switch (r->ws) {
    case WS_BLANK:
        if (is_blank(c))
            return STEP_MORE;
        if (c == '"') /* the quote itself is never written */
            return start_word(r, pos, WS_QUOTE);
        if (start_word(r, pos, WS_WORD) == STEP_ERROR)
            return STEP_ERROR;
        emit(r, (char)c);
        return STEP_MORE;
    case WS_WORD:
        if (is_blank(c))
            end_word(r, WS_BLANK);
        else
            emit(r, (char)c);
        return STEP_MORE;
    case WS_QUOTE:
        if (c == '\\')
            r->ws = WS_ESC;
        else if (c == '"')
            end_word(r, WS_AFTER_QUOTE);
        else
            emit(r, (char)c);
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
         * keeps the 'x' and the digit that followed, if any, and c is read
         * as an ordinary quoted byte.  Two bytes written for three
         * consumed: the write point stays behind pos. */
        emit(r, 'x');
        if (r->ws == WS_HEX2)
            emit(r, r->hex);
        r->ws = WS_QUOTE;
        return inline_byte(r, pos, c);
    case WS_AFTER_QUOTE:
        if (!is_blank(c))
            return fail(r, "closing quote must be followed by a space");
        r->ws = WS_BLANK;
        return STEP_MORE;
    }
    return STEP_MORE;
}

/* The '\n' at offset i ends the line.  A line without words is skipped. */
static enum step end_line(struct proto_reader *r, size_t i)
{
    r->cr_pending = false; /* a '\r' right before the '\n' is dropped */
    if (in_quotes(r->ws))
        return fail(r, "unbalanced quotes in request");
    if (r->ws == WS_WORD) /* its '\0' goes on the dropped '\r' or '\n' */
        end_word(r, WS_BLANK);
    if (r->argc > 0)
        return STEP_OK;
    r->start += i + 1;
    r->fr = FR_START;
    return STEP_AGAIN;
}

static enum step scan_inline(struct proto_reader *r)
{
    size_t avail = r->len - r->start;

    while (r->scan < avail) {
        size_t i = r->scan++;
        unsigned char c = (unsigned char)r->buf[r->start + i];
        if (c == '\n')
            return end_line(r, i);
        /* The line holds at least i bytes, and i + 1 unless this is a '\r'
         * that a '\n' may still drop.  Failing here, not at the newline,
         * keeps an endless line from filling the buffer. */
        if (i + (c != '\r') > r->lim.max_line)
            return fail(r, "inline request too long (max %zu bytes)",
                        r->lim.max_line);
        if (r->cr_pending) {
            /* The '\r' before this byte was data after all. */
            r->cr_pending = false;
            if (inline_byte(r, i - 1, '\r') == STEP_ERROR)
                return STEP_ERROR;
        }
        if (c == '\r' && !in_quotes(r->ws))
            r->cr_pending = true;
        else if (inline_byte(r, i, c) == STEP_ERROR)
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
 * is at hdr; `what` names the number in messages.  A byte that cannot be
 * part of the number fails at once, and the line must end in exactly CRLF
 * within HDR_MAX bytes. */
static enum step scan_number(struct proto_reader *r, const char *what)
{
    size_t avail = r->len - r->start;
    struct numscan *n = &r->num;

    while (r->scan < avail) {
        unsigned char c = (unsigned char)r->buf[r->start + r->scan++];
        if (n->cr && c != '\n')
            return fail(r, "expected CRLF after %s", what);
        if (n->cr)
            return n->digits ? STEP_OK : fail(r, "invalid %s", what);
        if (c == '\r') {
            n->cr = true;
            continue;
        }
        if (c == '\n')
            return fail(r, "expected CRLF after %s", what);
        if (c == '-' && r->scan == r->hdr + 2)
            n->neg = true;
        else if (c < '0' || c > '9')
            return fail(r, "invalid %s", what);
        else if (++n->digits <= NUM_DIGITS_MAX)
            n->val = n->val * 10 + (c - '0');
        if (r->scan - r->hdr > HDR_MAX)
            return fail(r, "expected CRLF after %s", what);
    }
    return STEP_MORE;
}

/* True when the scanned number is a non-negative value <= max.  A '-' sign
 * makes any number (even "-0") out of range: counts and lengths are
 * unsigned on the wire, and one rule for both keeps messages consistent. */
static bool num_within(const struct numscan *n, unsigned long long max)
{
    return !n->neg && n->digits <= NUM_DIGITS_MAX && n->val <= max;
}

static enum step scan_resp(struct proto_reader *r)
{
    for (;;) {
        size_t avail = r->len - r->start, end;
        char *b = r->buf + r->start, esc[4];
        enum step s;

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
                if (r->scan >= avail)
                    return STEP_MORE;
                if (b[r->scan] != '$')
                    return fail(r, "expected '$', got '%.*s'",
                                (int)proto_escape(b + r->scan, 1, esc), esc);
                r->scan++;
            }
            if ((s = scan_number(r, "bulk length")) != STEP_OK)
                return s;
            if (!num_within(&r->num, r->lim.max_bulk))
                return fail(r, "bulk length out of range (0..%zu)",
                            r->lim.max_bulk);
            r->blen = (size_t)r->num.val;
            r->data = r->scan;
            /* Fail as soon as the announced bytes cannot fit, rather than
             * after buffering max_request bytes (data <= max_request: it
             * is inside the buffered bytes). */
            if (r->blen + 2 > r->lim.max_request - r->data)
                return fail(r, "request too large (max %zu bytes)",
                            r->lim.max_request);
            if (!reserve_arg(r))
                return fail(r, "out of memory");
            r->fr = FR_BULK_DATA;
            break;
        case FR_BULK_DATA:
            /* The payload is never scanned; only the two bytes after it
             * are checked, as soon as each is there. */
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
            return STEP_ERROR; /* not reached: next() routes the others */
        }
    }
}

/* ---- public API ---- */

struct proto_reader *proto_reader_new(const struct proto_limits *limits)
{
    struct proto_reader *r = cfy_calloc(1, sizeof *r);

    if (!r || !(r->buf = cfy_malloc(BUF_INITIAL))) {
        cfy_free(r);
        return NULL;
    }
    r->cap = BUF_INITIAL;
    r->fr = FR_START;
    r->lim = *limits;
    /* The header requires max_request >= max_bulk + 2; enforce it rather
     * than trust it, or a legal bulk could never fit. */
    if (r->lim.max_bulk < r->lim.max_line)
        r->lim.max_bulk = r->lim.max_line;
    if (r->lim.max_bulk <= (size_t)-1 - 2 &&
        r->lim.max_request < r->lim.max_bulk + 2)
        r->lim.max_request = r->lim.max_bulk + 2;
    return r;
}

void proto_reader_free(struct proto_reader *r)
{
    if (!r)
        return;
    cfy_free(r->buf);
    cfy_free(r->argoff);
    cfy_free(r->arglen);
    cfy_free(r->argv);
    cfy_free(r);
}

size_t proto_reader_feed(struct proto_reader *r, const void *buf, size_t len)
{
    size_t take;

    /* A dead reader swallows input, so a caller's feed loop always ends;
     * none of it is parsed (see fail()). */
    if (r->fr == FR_DEAD)
        return len;
    release(r);
    take = len < room_left(r) ? len : room_left(r);
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
    size_t room;

    if (r->fr == FR_DEAD) {
        /* Somewhere to read into; proto_reader_commit discards it. */
        *avail = r->cap;
        return r->buf;
    }
    release(r);
    room = room_left(r);
    *avail = 0;
    if (room == 0)
        return r->buf + r->len;
    if (!reserve(r, room < SPACE_MIN ? room : SPACE_MIN))
        return NULL;
    *avail = r->cap - r->len < room ? r->cap - r->len : room;
    return r->buf + r->len;
}

void proto_reader_commit(struct proto_reader *r, size_t n)
{
    if (r->fr == FR_DEAD)
        return;
    /* Clamp to what proto_reader_space could have offered: a caller bug
     * must not move len past the allocation or the request bound. */
    if (n > r->cap - r->len)
        n = r->cap - r->len;
    if (n > room_left(r))
        n = room_left(r);
    r->len += n;
}

/* Starts parsing the request whose first byte is at start. */
static void begin_request(struct proto_reader *r)
{
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

enum proto_status proto_reader_next(struct proto_reader *r,
                                    struct proto_request *req)
{
    enum step s;

    if (r->fr == FR_DEAD)
        return PROTO_ERROR;
    release(r);
    do {
        if (r->fr == FR_START) {
            if (r->start == r->len)
                return PROTO_NEED_MORE;
            begin_request(r);
        }
        s = r->fr == FR_INLINE ? scan_inline(r) : scan_resp(r);
    } while (s == STEP_AGAIN);
    if (s == STEP_ERROR)
        return PROTO_ERROR;
    if (s == STEP_MORE) {
        /* feed() never lets more than max_request bytes wait, so a request
         * still incomplete at that size could never finish. */
        if (room_left(r) == 0) {
            fail(r, "request too large (max %zu bytes)", r->lim.max_request);
            return PROTO_ERROR;
        }
        return PROTO_NEED_MORE;
    }
    for (size_t i = 0; i < r->argc; i++)
        r->argv[i] = r->buf + r->start + r->argoff[i];
    req->argc = r->argc;
    req->argv = r->argv;
    req->argvlen = r->arglen;
    r->start += r->scan; /* the bytes themselves stay until the next call */
    r->fr = FR_START;
    return PROTO_OK;
}

const char *proto_reader_error(const struct proto_reader *r)
{
    return r->err;
}

size_t proto_reader_pending(const struct proto_reader *r)
{
    return r->len - r->start;
}
