/* daemon/wait_hist.c - the wait-time histogram (see wait_hist.h). */
#include "daemon/wait_hist.h"

#include <inttypes.h>
#include <stdio.h>

#include <jansson.h>

static const uint64_t bounds_us[WAIT_HIST_FINITE] = WAIT_HIST_BOUNDS_US;

void wait_hist_observe(struct wait_hist *h, uint64_t us)
{
    size_t i = 0;

    while (i < WAIT_HIST_FINITE && us > bounds_us[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_us += us;
}

uint64_t wait_hist_bound_us(size_t i)
{
    return i < WAIT_HIST_FINITE ? bounds_us[i] : UINT64_MAX;
}

uint64_t wait_hist_cumulative(const struct wait_hist *h, size_t i)
{
    uint64_t n = 0;

    for (size_t j = 0; j <= i && j <= WAIT_HIST_FINITE; j++)
        n += h->bucket[j];
    return n;
}

void wait_hist_le(size_t i, char *buf, size_t len)
{
    uint64_t us;

    if (i >= WAIT_HIST_FINITE) {
        snprintf(buf, len, "+Inf");
        return;
    }
    /* Exact decimal, trailing zeros dropped: 1000 us is "0.001". */
    us = bounds_us[i];
    if (us % 1000000 == 0) {
        snprintf(buf, len, "%" PRIu64, us / 1000000);
        return;
    }
    char frac[8];
    int n = snprintf(frac, sizeof frac, "%06" PRIu64, us % 1000000);
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    snprintf(buf, len, "%" PRIu64 ".%s", us / 1000000, frac);
}

json_t *wait_hist_json(const struct wait_hist *h)
{
    json_t *buckets = json_object();
    json_t *doc = json_pack("{s:I, s:I}", "count", (json_int_t)h->count,
                            "sum_us", (json_int_t)h->sum_us);
    char le[32];

    if (buckets == NULL || doc == NULL)
        goto fail;
    for (size_t i = 0; i <= WAIT_HIST_FINITE; i++) {
        wait_hist_le(i, le, sizeof le);
        if (json_object_set_new(buckets, le, json_integer(
                (json_int_t)wait_hist_cumulative(h, i))) != 0)
            goto fail;
    }
    if (json_object_set_new(doc, "buckets", buckets) == 0)
        return doc;
    buckets = NULL; /* set_new took it even when it failed */
fail:
    json_decref(buckets);
    json_decref(doc);
    return NULL;
}
