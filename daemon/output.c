/* daemon/output.c - RESP2 replies on a connection's output (see output.h).
 *
 * Appends go straight into the bufferevent's output evbuffer: libevent
 * coalesces them into its chains, so a burst of pipelined replies leaves in
 * as few write() calls as the socket allows.
 */
#include "daemon/output.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "daemon/conn.h"
#include "proto/reply.h"

void reply_status(struct conn *c, const char *text)
{
    evbuffer_add_printf(conn_output(c), "+%s\r\n", text);
}

void reply_error(struct conn *c, const char *code, const char *fmt, ...)
{
    struct evbuffer *out = conn_output(c);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1; /* our own texts: a cut is still one line */
    evbuffer_add_printf(out, "-%s ", code);
    evbuffer_add(out, msg, (size_t)n);
    evbuffer_add(out, "\r\n", 2);
}

void reply_error_quoted(struct conn *c, const char *code, const char *before,
                        const char *arg, size_t arglen, const char *after)
{
    struct evbuffer *out = conn_output(c);
    evbuffer_add_printf(out, "-%s %s", code, before);
    size_t need = proto_escaped_len(arg, arglen);
    struct evbuffer_iovec vec;
    if (need > 0 && evbuffer_reserve_space(out, (ev_ssize_t)need, &vec, 1) == 1
        && vec.iov_len >= need) {
        proto_escape(arg, arglen, vec.iov_base);
        vec.iov_len = need;
        evbuffer_commit_space(out, &vec, 1);
    }
    evbuffer_add_printf(out, "%s\r\n", after);
}

void reply_int(struct conn *c, long long v)
{
    char buf[PROTO_HEADER_MAX];
    evbuffer_add(conn_output(c), buf, proto_fmt_int(buf, v));
}

void reply_bulk(struct conn *c, const char *bytes, size_t len)
{
    struct evbuffer *out = conn_output(c);
    char buf[PROTO_HEADER_MAX];
    evbuffer_add(out, buf, proto_fmt_bulk_header(buf, len));
    evbuffer_add(out, bytes, len);
    evbuffer_add(out, "\r\n", 2);
}

void reply_array(struct conn *c, size_t n)
{
    char buf[PROTO_HEADER_MAX];
    evbuffer_add(conn_output(c), buf, proto_fmt_array_header(buf, n));
}
