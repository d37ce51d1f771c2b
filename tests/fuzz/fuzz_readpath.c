/* tests/fuzz/fuzz_readpath.c - libFuzzer target for the daemon's socket
 * read path (daemon/conn.c: on_readable, read_socket, sync_reading, the
 * linger): up to four clients over AF_UNIX socketpairs
 * (tests/support/cmdharness.h with hx.sockets), so every byte goes through
 * one readv into the request reader and the input evbuffer behind it, the
 * 64 KiB read-ahead mark, output pausing, EOF with requests still queued,
 * and the budget and output-limit closes.  fuzz_commands covers the
 * commands themselves through libevent's pairs.
 *
 * Input layout.  Byte 0 picks the configuration:
 *   bit 0  max_line 64, max_request 256 (the reader's bounds reachable)
 *   bit 1  client_output_limit 2048
 *   bit 2  client_buffer_budget 8192
 *   bit 3  timeout 5, request_timeout 3, client_stall_timeout 4 (seconds)
 *   bit 4  out-of-memory injection: byte 1 says which one allocation
 *          fails.  Not "every one after it" as fuzz_commands can: with
 *          the client side's libevent reads failing too (the harness holds
 *          injection off only around its own sends and reply copies),
 *          long fuzzing sessions here met runs of several seconds that
 *          replaying the same input did not repeat (3 of 3 under a 3-5 s
 *          -timeout, none in 28,000 runs without it); fuzz_commands covers
 *          the daemon under lasting out-of-memory.
 * Then operations, one byte each: client i = bits 4-5, operation = bits 0-3:
 *   0-7  send: the next byte is a length, that many bytes follow
 *   8    send one byte
 *   9    send client i's last segment again, (next byte + 1) * 4 times in
 *        one write (pipelines past READ_CHUNK and the read-ahead mark)
 *   10   run the loop                11  close client i
 *   12   reconnect client i          13  client i stops / starts reading
 *   14   advance the clock a second and fire the connection deadlines
 *   15   half-close client i (shutdown SHUT_WR: EOF behind its requests)
 * After each operation every reply is validated (RESP framing, error lines
 * never broken) and the harness's invariants are checked (the buffer
 * accounting among them); at the end every client closes and
 * LeakSanitizer sees everything freed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define HX_FAIL(...)                                                         \
    do {                                                                     \
        fprintf(stderr, "fuzz_readpath: ");                                  \
        fprintf(stderr, __VA_ARGS__);                                        \
        fprintf(stderr, "\n");                                               \
        abort();                                                             \
    } while (0)

#include "tests/support/cmdharness.h"

/* Longest segment op 9 repeats, and most bytes it sends at once. */
#define SEG_MAX 255
#define REPEAT_MAX (256 * 4 * SEG_MAX)
/* Most bytes one input may send in all: each byte costs loop passes
 * through two sockets, and an input of a hundred repeats would otherwise
 * move tens of MiB (seconds per run under the sanitizers). */
#define SENT_MAX (1024 * 1024)

static void configure(struct hx *h, uint8_t flags)
{
    if (config_defaults(&h->cfg) != 0)
        HX_FAIL("config_defaults: out of memory");
    h->cfg.loglevel = LOG_ERROR;
    h->cfg.max_key_len = 64;
    if (flags & 1) {
        h->cfg.max_line = 64;
        h->cfg.max_request = 256;
        h->cfg.max_value_len = 64;
    }
    if (flags & 2)
        h->cfg.client_output_limit = 2048;
    if (flags & 4)
        h->cfg.client_buffer_budget = 8192;
    if (flags & 8)
        hx_short_deadlines(&h->cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    static uint8_t *big;
    struct hx h;
    size_t pos = 0;
    const uint8_t *last[HX_CLIENTS] = { 0 };
    size_t last_len[HX_CLIENTS] = { 0 };
    size_t sent = 0;

    if (!started) {
        hx_route_allocations();
        log_set_level(LOG_ERROR);
        /* A write to a socket the daemon closed must fail, not kill. */
        signal(SIGPIPE, SIG_IGN);
        big = malloc(REPEAT_MAX);
        if (!big)
            HX_FAIL("out of memory");
        started = 1;
    }
    if (size < 1)
        return 0;
    memset(&h, 0, sizeof(h));
    h.sockets = 1;
    uint8_t flags = data[pos++];
    configure(&h, flags);
    if (hx_start(&h) != 0)
        HX_FAIL("harness start: out of memory");
    hx_inject_from(data, size, &pos, flags & 16, 0); /* one failure */
    while (pos < size) {
        uint8_t op = data[pos++];
        int i = (op >> 4) & 3;
        size_t n;
        switch (op & 15) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
            last_len[i] = hx_segment(data, size, &pos, &last[i]);
            if (last_len[i] > 0)
                hx_send(&h, i, last[i], last_len[i]);
            break;
        case 8:
            if (pos < size)
                hx_send(&h, i, data + pos++, 1);
            break;
        case 9:
            n = pos < size ? ((size_t)data[pos++] + 1) * 4 : 4;
            if (last_len[i] > 0 && sent + n * last_len[i] <= SENT_MAX) {
                sent += n * last_len[i];
                size_t len = 0;
                for (size_t k = 0; k < n; k++) {
                    memcpy(big + len, last[i], last_len[i]);
                    len += last_len[i];
                }
                hx_send(&h, i, big, len);
            }
            break;
        case 10:
            hx_loop(&h);
            break;
        case 11:
            hx_close(&h, i);
            break;
        case 12:
            hx_reconnect(&h, i);
            break;
        case 13:
            hx_set_reading(&h, i, !h.cl[i].reading);
            break;
        case 14:
            hx_advance(&h, 1000000);
            break;
        case 15:
            if (h.cl[i].bev) {
                /* What the client queued goes first, then the FIN. */
                hx_loop(&h);
                shutdown(bufferevent_getfd(h.cl[i].bev), SHUT_WR);
                hx_loop(&h);
            }
            break;
        }
        hx_check(&h);
    }
    hx_finish(&h);
    return 0;
}
