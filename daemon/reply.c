/* daemon/reply.c - RESP2 replies on a connection's output (see reply.h).
 *
 * Appends go straight into the bufferevent's output evbuffer: libevent
 * coalesces them into its chains, so a burst of pipelined replies leaves in
 * as few write() calls as the socket allows.
 *
 * An append that fails (out of memory) marks the connection output_failed:
 * part of a reply may be out already, so the stream cannot be repaired;
 * nothing more is appended and conn.c drops the connection rather than
 * leave its client waiting for a reply that will never come.
 */
#include "daemon/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "daemon/conn.h"
#include "proto/encode.h"

/* Appends n bytes to c's output unless an earlier append failed: after a
 * failure nothing more goes out, so the client sees at worst a cut reply
 * and then the close, never bytes of a reply whose start is missing. */
static void put(struct conn *c, const void *p, size_t n)
{
    if (!c->output_failed && evbuffer_add(conn_output(c), p, n) != 0)
        c->output_failed = 1;
}

__attribute__((format(printf, 2, 3)))
static void putf(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    if (c->output_failed)
        return;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(conn_output(c), fmt, ap) < 0)
        c->output_failed = 1;
    va_end(ap);
}

void reply_status(struct conn *c, const char *text)
{
    /* No printf here: +PONG answers every PING, and formatting it with
     * evbuffer_add_printf cost about 1,000 instructions a reply. */
    char line[128];
    size_t len = strlen(text);
    if (len > sizeof(line) - 3) {
        putf(c, "+%s\r\n", text);
        return;
    }
    line[0] = '+';
    memcpy(line + 1, text, len);
    line[len + 1] = '\r';
    line[len + 2] = '\n';
    put(c, line, len + 3);
}

void reply_error(struct conn *c, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1; /* our own texts: a cut is still one line */
    putf(c, "-%s ", code);
    put(c, msg, (size_t)n);
    put(c, "\r\n", 2);
}

void reply_error_quoted(struct conn *c, const char *code, const char *before,
                        const char *arg, size_t arglen, const char *after)
{
    struct evbuffer *out = conn_output(c);
    putf(c, "-%s %s", code, before);
    size_t need = proto_escaped_len(arg, arglen);
    struct evbuffer_iovec vec;
    if (need > 0 && !c->output_failed) {
        if (evbuffer_reserve_space(out, (ev_ssize_t)need, &vec, 1) == 1 &&
            vec.iov_len >= need) {
            proto_escape(arg, arglen, vec.iov_base);
            vec.iov_len = need;
            if (evbuffer_commit_space(out, &vec, 1) != 0)
                c->output_failed = 1;
        } else {
            c->output_failed = 1;
        }
    }
    putf(c, "%s\r\n", after);
}

void reply_int(struct conn *c, long long v)
{
    char buf[PROTO_HEADER_MAX];
    put(c, buf, proto_fmt_int(buf, v));
}

void reply_bulk(struct conn *c, const char *bytes, size_t len)
{
    char buf[PROTO_HEADER_MAX];
    put(c, buf, proto_fmt_bulk_header(buf, len));
    put(c, bytes, len);
    put(c, "\r\n", 2);
}

void reply_nil(struct conn *c)
{
    put(c, "$-1\r\n", 5);
}

void reply_array(struct conn *c, size_t n)
{
    char buf[PROTO_HEADER_MAX];
    put(c, buf, proto_fmt_array_header(buf, n));
}
