/* tests/fuzz/fuzz_reader.c - libFuzzer target for the request parser
 * (proto/reader.c), fed arbitrary bytes in arbitrary chunks.
 *
 * Input layout: byte 0 picks the limits and the feeding style, bytes 1 and 2
 * the chunk sizes (used alternately), the rest is the byte stream a client
 * would send.  The stream is parsed twice: once in those chunks, once fed
 * whole.  Both runs write what they saw (each request's arguments, then the
 * error or the bytes left pending) to a log, and the two logs must be equal:
 * the parser's answers may not depend on how TCP happened to cut the stream.
 * Along the way every request is checked (argc >= 1 and <= 1024, every
 * argument NUL-terminated and no longer than max_line, pending() within
 * max_request) and so is every error message (non-empty, printable, one
 * line).  Crashes, leaks and undefined behaviour are ASan/UBSan's to find.
 *
 * Also built without libFuzzer as a replay program (tests/fuzz/replay.c)
 * that `make check-suites` runs over the committed corpus.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/reader.h"

/* Fails loudly: abort() is what libFuzzer and the replay program both
 * report as a crash, with the input that caused it. */
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_reader: check failed: %s (line %d)\n",    \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* What one run saw, appended as bytes and compared with memcmp. */
struct log {
    unsigned char *p;
    size_t len, cap;
};

static void log_add(struct log *l, const void *src, size_t n)
{
    if (l->len + n > l->cap) {
        size_t ncap = l->cap ? l->cap : 1024;
        while (ncap < l->len + n)
            ncap *= 2;
        l->p = realloc(l->p, ncap);
        CHECK(l->p != NULL);
        l->cap = ncap;
    }
    memcpy(l->p + l->len, src, n);
    l->len += n;
}

static void log_num(struct log *l, size_t v)
{
    log_add(l, &v, sizeof v);
}

static void check_error_text(const char *e)
{
    size_t n = strlen(e);
    CHECK(n > 0 && n < 96);
    for (size_t i = 0; i < n; i++)
        CHECK(e[i] >= 0x20 && e[i] < 0x7f);
}

/* Drains every whole request; returns 1 once the reader has failed. */
static int drain(struct proto_reader *r, const struct proto_limits *lim,
                 struct log *l)
{
    struct proto_request req;
    for (;;) {
        enum proto_status st = proto_reader_next(r, &req);
        if (st == PROTO_NEED_MORE) {
            CHECK(proto_reader_error(r)[0] == '\0');
            CHECK(proto_reader_pending(r) <= lim->max_request);
            return 0;
        }
        if (st == PROTO_ERROR) {
            const char *e = proto_reader_error(r);
            check_error_text(e);
            /* A dead reader stays dead and says the same. */
            CHECK(proto_reader_next(r, &req) == PROTO_ERROR);
            CHECK(strcmp(proto_reader_error(r), e) == 0);
            log_add(l, "E", 1);
            log_add(l, e, strlen(e));
            return 1;
        }
        CHECK(st == PROTO_OK);
        CHECK(req.argc >= 1 && req.argc <= PROTO_MAX_ARGS);
        log_add(l, "R", 1);
        log_num(l, req.argc);
        for (size_t i = 0; i < req.argc; i++) {
            CHECK(req.argvlen[i] <= (lim->max_bulk > lim->max_line
                                         ? lim->max_bulk : lim->max_line));
            CHECK(req.argv[i][req.argvlen[i]] == '\0');
            log_num(l, req.argvlen[i]);
            log_add(l, req.argv[i], req.argvlen[i]);
        }
    }
}

/* Feeds n bytes, draining whenever the reader is full; style 1 uses
 * proto_reader_space/commit instead of proto_reader_feed.  Returns 1 once
 * the reader has failed. */
static int feed(struct proto_reader *r, const struct proto_limits *lim,
                const uint8_t *p, size_t n, int style, struct log *l)
{
    while (n > 0) {
        size_t took;
        if (style) {
            size_t avail;
            char *space = proto_reader_space(r, &avail);
            CHECK(space != NULL);
            took = avail < n ? avail : n;
            memcpy(space, p, took);
            proto_reader_commit(r, took);
        } else {
            took = proto_reader_feed(r, p, n);
            CHECK(took != (size_t)-1 && took <= n);
        }
        p += took;
        n -= took;
        if (drain(r, lim, l))
            return 1;
        /* Nothing taken and nothing parsed would loop forever: feed and
         * space must make room once the whole requests are drained. */
        CHECK(took > 0 || n == 0);
    }
    return 0;
}

static size_t chunk_size(uint8_t b, size_t left)
{
    /* Mostly small chunks (1..64 bytes), sometimes everything left. */
    return b < 192 ? (size_t)(b % 64) + 1 : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t lines[] = { 64, 100, 1024, 65536 };
    if (size < 3)
        return 0;
    struct proto_limits lim;
    lim.max_line = lines[data[0] & 3];
    lim.max_request = lim.max_line + 2 + (size_t)((data[0] >> 2) & 3) *
                      lim.max_line;
    /* Half the runs let bulks (a SET's value) be longer than a line. */
    lim.max_bulk = (data[0] >> 5) & 1 ? 2 * lim.max_line : 0;
    if (lim.max_request < lim.max_bulk + 2)
        lim.max_request = lim.max_bulk + 2; /* as the reader would */
    int style = (data[0] >> 4) & 1;
    uint8_t sizes[2] = { data[1], data[2] };
    const uint8_t *stream = data + 3;
    size_t n = size - 3;

    struct log chunked = { 0 }, whole = { 0 };
    struct proto_reader *a = proto_reader_new(&lim);
    struct proto_reader *b = proto_reader_new(&lim);
    CHECK(a && b);
    CHECK(proto_reader_pending(a) == 0);

    size_t off = 0, k = 0;
    int dead = 0;
    while (off < n && !dead) {
        size_t c = chunk_size(sizes[k++ & 1], n - off);
        if (c > n - off)
            c = n - off;
        dead = feed(a, &lim, stream + off, c, style, &chunked);
        off += c;
    }
    if (!dead) {
        log_add(&chunked, "P", 1);
        log_num(&chunked, proto_reader_pending(a));
    }
    if (!feed(b, &lim, stream, n, !style, &whole)) {
        log_add(&whole, "P", 1);
        log_num(&whole, proto_reader_pending(b));
    }
    CHECK(chunked.len == whole.len);
    CHECK(chunked.len == 0 || memcmp(chunked.p, whole.p, whole.len) == 0);

    proto_reader_free(a);
    proto_reader_free(b);
    free(chunked.p);
    free(whole.p);
    return 0;
}
