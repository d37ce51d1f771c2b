/* tests/fuzz/fuzz_commands.c - libFuzzer target for the whole command path:
 * reader, dispatch, every command, the lock engine, waits and hand-offs,
 * output pausing, closing, connection deadlines, and out-of-memory paths,
 * driven through the daemon's own conn.c by up to four fake clients
 * (tests/support/cmdharness.h) on a fake clock.
 *
 * Input layout.  Byte 0 picks the configuration:
 *   bit 0  max_locks 8 and max_waiters 2 (limits reachable)
 *   bit 1  requirepass "fuzzpass" (AUTH gate)
 *   bit 2  max_ttl_ms 60000 (TTL FOREVER refused)
 *   bit 3  client_output_limit 1024 (drops reachable)
 *   bit 4  timeout 5, request_timeout 3, client_stall_timeout 4 (seconds)
 *   bit 5  out-of-memory injection: byte 1 says which allocation fails
 *   bit 6  ... and with bit 5, every allocation after it fails too
 *   bit 7  maxmemory 64 (refusals of SET and ACQUIRE reachable)
 * Then operations, one byte each: client i = bits 4-5, operation = bits 0-3:
 *   0-7  send: the next byte is a length, that many bytes follow
 *   8    send one byte (slow loris)
 *   9    run the loop
 *   10   advance the clock by the next two bytes in milliseconds
 *   11   close client i          12  reconnect client i
 *   13   client i stops / starts reading its replies
 *   14   fire the connection deadlines now
 *   15   advance the clock by an hour
 * After each operation every reply is validated (RESP framing, error lines
 * never broken) and the engine's invariants are checked; at the end every
 * client closes, no wait may remain, and LeakSanitizer sees everything freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define HX_FAIL(...)                                                         \
    do {                                                                     \
        fprintf(stderr, "fuzz_commands: ");                                  \
        fprintf(stderr, __VA_ARGS__);                                        \
        fprintf(stderr, "\n");                                               \
        abort();                                                             \
    } while (0)

#include "tests/support/cmdharness.h"

static void configure(struct hx *h, uint8_t flags)
{
    if (config_defaults(&h->cfg) != 0)
        HX_FAIL("config_defaults: out of memory");
    h->cfg.max_line = 256;
    h->cfg.max_request = 1024;
    h->cfg.max_key_len = 16;
    h->cfg.max_value_len = 64; /* a value may be a few lines long */
    h->cfg.loglevel = LOG_ERROR;
    if (flags & 1) {
        h->cfg.max_locks = 8;
        h->cfg.max_waiters = 2;
    }
    if (flags & 2) {
        cfy_free(h->cfg.requirepass);
        h->cfg.requirepass = cfy_strdup("fuzzpass");
        if (!h->cfg.requirepass)
            HX_FAIL("strdup: out of memory");
    }
    if (flags & 4)
        h->cfg.max_ttl_ms = 60000;
    if (flags & 8)
        h->cfg.client_output_limit = 1024;
    if (flags & 128)
        h->cfg.maxmemory = 64;
    if (flags & 16) {
        h->cfg.timeout = 5;
        h->cfg.request_timeout = 3;
        h->cfg.client_stall_timeout = 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int routed;
    struct hx h;
    size_t pos = 0;

    if (!routed) {
        hx_route_allocations();
        log_set_level(LOG_ERROR);
        routed = 1;
    }
    if (size < 1)
        return 0;
    memset(&h, 0, sizeof(h));
    uint8_t flags = data[pos++];
    configure(&h, flags);
    if (hx_start(&h) != 0)
        HX_FAIL("harness start: out of memory");
    if ((flags & 32) && pos < size) {
        long nth = (long)data[pos++] + 1;
        if (flags & 64)
            alloc_fail_after(nth - 1);
        else
            alloc_fail_nth(nth);
    }
    while (pos < size) {
        uint8_t op = data[pos++];
        int i = (op >> 4) & 3;
        size_t n;
        switch (op & 15) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
            if (pos >= size)
                break;
            n = data[pos++];
            if (n > size - pos)
                n = size - pos;
            hx_send(&h, i, data + pos, n);
            pos += n;
            break;
        case 8:
            if (pos < size)
                hx_send(&h, i, data + pos++, 1);
            break;
        case 9:
            hx_loop(&h);
            break;
        case 10:
            n = pos + 1 < size ? (size_t)data[pos] << 8 | data[pos + 1] : 0;
            pos += 2;
            hx_advance(&h, (uint64_t)n * 1000);
            break;
        case 11:
            hx_close(&h, i);
            break;
        case 12:
            hx_close(&h, i);
            hx_connect(&h, i);
            hx_loop(&h);
            break;
        case 13:
            hx_set_reading(&h, i, !h.cl[i].reading);
            break;
        case 14:
            hx_advance(&h, 0);
            break;
        case 15:
            hx_advance(&h, 3600ULL * 1000000);
            break;
        }
        hx_check(&h);
    }
    /* Closing must work under out-of-memory too; only the harness's own
     * teardown below runs with the allocator healthy again. */
    for (int i = 0; i < HX_CLIENTS; i++)
        hx_close(&h, i);
    alloc_fail_reset();
    hx_stop(&h);
    return 0;
}
