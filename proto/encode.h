/* proto/encode.h - RESP2 reply encoding, I/O-free.
 *
 * Owns: the byte forms of reply headers and the safe quoting of arbitrary
 * bytes inside error and status lines.  Does not own: buffers or sockets;
 * every function writes into memory the caller provides and never allocates.
 * Used by the daemon's reply writer (daemon/reply.c, which appends the
 * results to a connection's output) and by the request reader (reader.c,
 * which quotes a bad byte in its error text).
 */
#ifndef CACHIFY_PROTO_ENCODE_H
#define CACHIFY_PROTO_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest header: a type byte, "-9223372036854775808", CRLF,
 * a terminating NUL, and slack. */
#define PROTO_HEADER_MAX 32

/* v in decimal into out (room for 20 bytes; no sign, no NUL), two digits
 * per division.  Returns the digit count (1..20).  Also what the daemon's
 * state file writes its numbers with. */
size_t proto_fmt_decimal(char *out, unsigned long long v);

/* ":<v>\r\n" into out (PROTO_HEADER_MAX bytes).  Returns bytes written
 * (out is also NUL-terminated). */
size_t proto_fmt_int(char *out, long long v);

/* "$<len>\r\n" into out (PROTO_HEADER_MAX bytes).  Returns bytes written. */
size_t proto_fmt_bulk_header(char *out, size_t len);

/* "*<n>\r\n" into out (PROTO_HEADER_MAX bytes).  Returns bytes written. */
size_t proto_fmt_array_header(char *out, size_t n);

/* Bytes proto_escape() writes for in[0..len): printable ASCII 0x20..0x7e
 * except '\\' is one byte; '\\' becomes "\\\\" (two bytes); every other byte
 * becomes "\xHH" (four bytes, lower-case hex). */
size_t proto_escaped_len(const char *in, size_t len);

/* Writes the escaped form of in[0..len) to out, which must have room for
 * proto_escaped_len(in, len) bytes; no NUL is added.  Returns bytes written.
 * The result never holds CR, LF or any byte outside printable ASCII, so it
 * is safe inside a "-CODE message\r\n" line. */
size_t proto_escape(const char *in, size_t len, char *out);

#endif
