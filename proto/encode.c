/* proto/encode.c - RESP2 reply headers and safe quoting (implements
 * proto/encode.h).
 *
 * Owns: the exact bytes of ":<n>\r\n", "$<len>\r\n", "*<n>\r\n" and the
 * \xHH escaping used inside error and status lines.  Does not own: any
 * buffer (callers pass memory sized per the header) or any I/O.  Numbers are
 * formatted by hand rather than with snprintf: these run once per reply on
 * the daemon's hot path and need no locale or format parsing.
 */
#include "proto/encode.h"

#include <stdbool.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

/* "00" to "99": two digits per division (a token has 16 digits, and every
 * ACQUIRE reply carries one). */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t proto_fmt_decimal(char *out, unsigned long long v)
{
    char tmp[24]; /* 2^64-1 has 20 digits; filled from the end */
    size_t i = sizeof(tmp);

    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        tmp[--i] = digit_pairs[d + 1];
        tmp[--i] = digit_pairs[d];
    }
    if (v >= 10) {
        tmp[--i] = digit_pairs[v * 2 + 1];
        tmp[--i] = digit_pairs[v * 2];
    } else {
        tmp[--i] = (char)('0' + v);
    }
    memcpy(out, tmp + i, sizeof(tmp) - i);
    return sizeof(tmp) - i;
}

/* "<type>[-]<mag>\r\n" plus a NUL; the longest is 1 + 1 + 20 + 2 + 1 = 25
 * bytes, within PROTO_HEADER_MAX. */
static size_t put_header(char *out, char type, bool neg, unsigned long long mag)
{
    size_t i = 0;

    out[i++] = type;
    if (neg)
        out[i++] = '-';
    i += proto_fmt_decimal(out + i, mag);
    out[i++] = '\r';
    out[i++] = '\n';
    out[i] = '\0';
    return i;
}

size_t proto_fmt_int(char *out, long long v)
{
    /* Negate in unsigned arithmetic so LLONG_MIN does not overflow. */
    unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v
                                   : (unsigned long long)v;
    return put_header(out, ':', v < 0, mag);
}

size_t proto_fmt_bulk_header(char *out, size_t len)
{
    return put_header(out, '$', false, (unsigned long long)len);
}

size_t proto_fmt_array_header(char *out, size_t n)
{
    return put_header(out, '*', false, (unsigned long long)n);
}

/* Bytes one input byte takes once escaped: 1, 2 (backslash) or 4 (\xHH). */
static size_t escaped_width(unsigned char c)
{
    if (c == '\\')
        return 2;
    if (c >= 0x20 && c <= 0x7e)
        return 1;
    return 4;
}

size_t proto_escaped_len(const char *in, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += escaped_width((unsigned char)in[i]);
    return n;
}

size_t proto_escape(const char *in, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        switch (escaped_width(c)) {
        case 1:
            out[o++] = (char)c;
            break;
        case 2:
            /* The escape character itself must be escaped, or "\x41" in a
             * key could not be told from the byte 'A'. */
            out[o++] = '\\';
            out[o++] = '\\';
            break;
        default:
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex_digits[c >> 4];
            out[o++] = hex_digits[c & 0x0f];
            break;
        }
    }
    return o;
}
