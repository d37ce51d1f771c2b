/* daemon/reply.h - the reply writer: RESP2 replies appended to a
 * connection's output.
 *
 * Owns: turning reply values into bytes on a conn's output buffer, using the
 * encoders in proto/encode.h.  Does not own: which reply a request gets
 * (the commands), or when the output is sent (conn.c).
 * Error lines built from client bytes go through reply_error_quoted, which
 * escapes them, so no reply line can be broken by a key.
 */
#ifndef CACHIFY_DAEMON_REPLY_H
#define CACHIFY_DAEMON_REPLY_H

#include <stddef.h>

struct conn;

/* "+text\r\n"; text must be printable ASCII. */
void reply_status(struct conn *c, const char *text);

/* "-CODE message\r\n"; the formatted message must be printable ASCII
 * (quote client bytes with reply_error_quoted instead). */
void reply_error(struct conn *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "-CODE <before><escaped arg><after>\r\n". */
void reply_error_quoted(struct conn *c, const char *code, const char *before,
                        const char *arg, size_t arglen, const char *after);

/* ":v\r\n". */
void reply_int(struct conn *c, long long v);

/* "$len\r\n<bytes>\r\n". */
void reply_bulk(struct conn *c, const char *bytes, size_t len);

/* "$-1\r\n": Redis's nil (a missing key, a SET that NX or XX stopped). */
void reply_nil(struct conn *c);

/* "*n\r\n"; the n elements follow as further replies. */
void reply_array(struct conn *c, size_t n);

#endif
