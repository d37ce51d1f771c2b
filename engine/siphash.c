/* engine/siphash.c - SipHash-2-4 (see engine/siphash.h).
 *
 * Owns: the four-word state and its rounds, nothing else.  Written from the
 * algorithm as the paper states it: the key is two little-endian 64-bit
 * words k0 k1; the state starts as the key xored with the ASCII of
 * "somepseudorandomlygeneratedbytes"; each 8-byte little-endian message word
 * m is absorbed as v3 ^= m, c = 2 SipRounds, v0 ^= m; the last word holds
 * the 0..7 leftover bytes and, in its top byte, the message length mod 256;
 * then v2 ^= 0xff, d = 4 SipRounds, and the result is v0^v1^v2^v3.
 *
 * Whole message words, the key's two words and the last word (its 0..7
 * bytes copied into a zeroed word first) are loaded with memcpy (any
 * alignment) and, on a big-endian host, byte-swapped.  The word loads
 * matter: every lock request hashes its key once, and assembling every
 * byte by hand cost about a third of the hash (and loading the key and
 * the last bytes so, 130 of the 396 instructions a 30-byte key took:
 * callgrind).
 */
#include "engine/siphash.h"

#include <string.h>

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* The 8 bytes at p as a little-endian word. */
static uint64_t load_word(const uint8_t *p)
{
    uint64_t w;

    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#elif !defined(__BYTE_ORDER__)
    w = 0; /* byte order unknown: assembled byte by byte */
    for (int i = 0; i < 8; i++)
        w |= (uint64_t)p[i] << (8 * i);
#endif
    return w;
}

/* One SipRound: the add-rotate-xor network on the four state words. */
static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL64(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL64(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL64(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL64(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL64(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL64(v[2], 32);
}

/* Absorbs one message word with the c = 2 compression rounds. */
static inline void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = load_word(key);
    uint64_t k1 = load_word(key + 8);
    uint64_t v[4];
    size_t whole = len - len % 8;
    uint64_t tail;

    v[0] = k0 ^ UINT64_C(0x736f6d6570736575); /* "somepseu" */
    v[1] = k1 ^ UINT64_C(0x646f72616e646f6d); /* "dorandom" */
    v[2] = k0 ^ UINT64_C(0x6c7967656e657261); /* "lygenera" */
    v[3] = k1 ^ UINT64_C(0x7465646279746573); /* "tedbytes" */

    for (size_t off = 0; off < whole; off += 8)
        sip_absorb(v, load_word(p + off));
    /* Even an empty or block-aligned message absorbs this final word, so
     * messages that differ only by trailing zero bytes hash differently. */
    tail = 0;
    if (len % 8) { /* p may be NULL when len is 0 */
        uint8_t last[8] = { 0 };
        memcpy(last, p + whole, len % 8);
        tail = load_word(last);
    }
    sip_absorb(v, tail | ((uint64_t)(len & 0xff) << 56));

    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
