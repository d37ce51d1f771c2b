/* engine/siphash.h - SipHash-2-4, the keyed hash behind the key map.
 *
 * Owns: one pure function.  Does not own: the key (the caller picks it, the
 * daemon draws it at random at start so clients cannot aim many keys at one
 * hash bucket).  SipHash-2-4 is the pseudo-random function of Aumasson and
 * Bernstein ("SipHash: a fast short-input PRF", 2012): 2 compression rounds
 * per 8-byte block, 4 finalization rounds, a 64-bit result.  The result
 * equals the reference implementation's 8 output bytes read as a
 * little-endian integer, on any host byte order.
 */
#ifndef CACHIFY_ENGINE_SIPHASH_H
#define CACHIFY_ENGINE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* Hashes len bytes at data (may be NULL when len is 0) under the 16-byte
 * key; reads both, keeps neither. */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
