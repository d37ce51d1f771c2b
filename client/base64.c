/* client/base64.c - standard base64 with padding (implements
 * client/base64.h).
 *
 * Owns: the alphabet and both directions.  Strict on decoding: what etcd
 * sends is always canonical, so anything else means the reply is not what
 * it claims to be and is refused rather than guessed at.  OpenSSL's
 * EVP_DecodeBlock, linked for TLS, is not used: it skips blanks around the
 * text, counts the padding as zero bytes of output, takes pad bits that
 * are not zero and a character after '=' ("Zg=v" gives 3 bytes), so each
 * caller would have to redo those checks.
 */
#include "client/base64.h"

#include <stdint.h>

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const void *src, size_t n, char *out)
{
    const unsigned char *s = src;
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

        out[o++] = ALPHABET[v >> 18];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = ALPHABET[(v >> 6) & 63];
        out[o++] = ALPHABET[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;

        out[o++] = ALPHABET[v >> 18];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

        out[o++] = ALPHABET[v >> 18];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = ALPHABET[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* The value of one alphabet character, or -1. */
static int sextet(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

long base64_decode(const char *text, size_t n, unsigned char *out)
{
    size_t o = 0;

    if (n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int pad = 0, v[4];
        uint32_t w;

        for (int j = 0; j < 4; j++) {
            if (text[i + j] == '=' && last && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad > 0 || (v[j] = sextet(text[i + j])) < 0)
                return -1; /* a character after '=', or not base64 */
        }
        w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
            (uint32_t)v[3];
        /* The bits below the last byte must be zero: "Zh==" would decode
         * to the "f" of "Zg==", so two texts would stand for one value
         * (RFC 4648, 3.5); an encoder writes only the zero ones. */
        if ((pad == 2 && (w & 0xffff) != 0) || (pad == 1 && (w & 0xff) != 0))
            return -1;
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return (long)o;
}
