/* client/base64.h - internal: standard base64 (RFC 4648, with padding), as
 * etcd's JSON gateway writes every key and value.
 *
 * Owns: encoding bytes into text and decoding text back, into buffers the
 * caller sized with the two length macros.  No allocation, no I/O.  Here
 * because none of the project's dependencies (libevent, jansson) has a
 * base64 codec.
 */
#ifndef CACHIFY_CLIENT_BASE64_H
#define CACHIFY_CLIENT_BASE64_H

#include <stddef.h>

/* Room for the encoding of n bytes, with its NUL. */
#define BASE64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)
/* Room for the decoding of a text of n characters (at least). */
#define BASE64_DECODED_SIZE(n) ((n) / 4 * 3 + 3)

/* Encodes src[0..n) into out (BASE64_ENCODED_SIZE(n) bytes), NUL-ended.
 * Returns the text's length. */
size_t base64_encode(const void *src, size_t n, char *out);

/* Decodes text[0..n) into out (BASE64_DECODED_SIZE(n) bytes).  Returns the
 * number of bytes, or -1 when text is not canonical base64 (a length that
 * is not a multiple of 4, a character outside the alphabet, a NUL or a
 * blank included, padding anywhere but at the end, bits left over before
 * the padding that are not zero). */
long base64_decode(const char *text, size_t n, unsigned char *out);

#endif
