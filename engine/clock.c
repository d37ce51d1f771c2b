/* engine/clock.c - real clocks for the lock engine (see clock.h). */
#include "engine/clock.h"

#include <time.h>

static uint64_t read_clock_us(clockid_t id)
{
    struct timespec ts;
    /* clock_gettime cannot fail for these two clock ids on Linux. */
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t clock_mono_us(void *arg)
{
    (void)arg;
    return read_clock_us(CLOCK_MONOTONIC);
}

uint64_t clock_wall_us(void *arg)
{
    (void)arg;
    return read_clock_us(CLOCK_REALTIME);
}

const struct lock_clock clock_system = { clock_mono_us, clock_wall_us, 0 };
