/* engine/clock.h - the two clocks cachifyd reads, behind one replaceable seam.
 *
 * Owns: reading time.  Monotonic time (CLOCK_MONOTONIC) drives every
 * deadline; wall-clock time (CLOCK_REALTIME) only seeds fencing tokens, so
 * that tokens issued after a restart are larger than those before it.  Tests
 * pass their own struct lock_clock to the lock engine instead of these.
 */
#ifndef CACHIFY_ENGINE_CLOCK_H
#define CACHIFY_ENGINE_CLOCK_H

#include <stdint.h>

struct lock_clock {
    uint64_t (*mono_us)(void *arg); /* monotonic microseconds */
    uint64_t (*wall_us)(void *arg); /* microseconds since the Unix epoch */
    void *arg;
};

/* CLOCK_MONOTONIC in microseconds; arg is unused. */
uint64_t clock_mono_us(void *arg);

/* CLOCK_REALTIME in microseconds; arg is unused. */
uint64_t clock_wall_us(void *arg);

/* The real clocks, for the daemon and the embedded client. */
extern const struct lock_clock clock_system;

#endif
