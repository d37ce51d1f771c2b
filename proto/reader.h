/* proto/reader.h - incremental, I/O-free parser for cachifyd requests.
 *
 * Owns: one connection's unparsed request bytes and the argument vector of
 * the request it last returned.  Does not own: sockets, replies, commands.
 * Feed it bytes (proto_reader_feed, or proto_reader_space + _commit to read
 * straight into its buffer), then ask for the next request.  It answers
 * PROTO_OK (a whole request), PROTO_NEED_MORE, or PROTO_ERROR (broken
 * framing; the reader is then dead and the connection should be closed after
 * replying -PROTO with proto_reader_error()).
 *
 * Two framings, told apart by the first byte of each request (see
 * docs/protocol.md): a RESP2 array of bulk strings when it is '*', otherwise
 * one inline line of words (spaces/tabs, double quotes with \" \\ \n \r \t
 * \xHH escapes, "\r\n" or "\n" ends it, empty lines skipped).
 *
 * Work is linear in the bytes fed: a request that arrives one byte at a time
 * is scanned once, not re-parsed from its start on every feed.
 */
#ifndef CACHIFY_PROTO_READER_H
#define CACHIFY_PROTO_READER_H

#include <stddef.h>

/* Spec: an array count above 1024 is a framing error.  Inline lines are held
 * to the same number of words so the two framings accept the same requests. */
#define PROTO_MAX_ARGS 1024

struct proto_limits {
    /* Longest inline line (without its line end), in bytes.  The config's
     * max_line, 64 KiB by default. */
    size_t max_line;
    /* Longest bulk string, in bytes: the larger of max_line and the
     * config's max_value_len (a Redis SET value is one bulk).  0 means
     * max_line. */
    size_t max_bulk;
    /* Most bytes one whole request may take in the buffer, framing
     * included.  Bounds a connection's input memory: 1024 bulks of max_line
     * bytes each would otherwise be 64 MiB.  Must be >= max_bulk + 2. */
    size_t max_request;
};

enum proto_status {
    PROTO_OK,        /* *req holds a whole request */
    PROTO_NEED_MORE, /* no whole request buffered yet: feed more bytes */
    PROTO_ERROR,     /* broken framing; proto_reader_error() says what */
};

/* A parsed request.  argv[i] points into the reader's buffer, is
 * argvlen[i] bytes long and is followed by a '\0' (arguments may hold NUL
 * bytes themselves in RESP framing).  Valid until the next call on the
 * reader.  argc >= 1 always. */
struct proto_request {
    size_t argc;
    char **argv;
    size_t *argvlen;
};

struct proto_reader;

/* New reader with a copy of *limits.  NULL when out of memory. */
struct proto_reader *proto_reader_new(const struct proto_limits *limits);

/* Frees the reader and its buffer.  NULL is a no-op. */
void proto_reader_free(struct proto_reader *r);

/* Copies up to len bytes of buf into the reader.  Returns how many it took,
 * which is less than len when the buffer already holds max_request bytes
 * (keep the rest and feed it after proto_reader_next); (size_t)-1 when out
 * of memory. */
size_t proto_reader_feed(struct proto_reader *r, const void *buf, size_t len);

/* Zero-copy feeding: returns where up to *avail bytes may be written, then
 * proto_reader_commit(r, n) with the n bytes actually written.  *avail is 0
 * when the buffer is full (see proto_reader_feed).  NULL when out of memory. */
char *proto_reader_space(struct proto_reader *r, size_t *avail);
void proto_reader_commit(struct proto_reader *r, size_t n);

/* Parses the next request.  On PROTO_OK fills *req (see struct
 * proto_request).  After PROTO_ERROR every later call returns PROTO_ERROR. */
enum proto_status proto_reader_next(struct proto_reader *r,
                                    struct proto_request *req);

/* Why the reader failed, e.g. "expected '$', got 'x'"; printable ASCII, no
 * line breaks.  "" when it has not failed.  Owned by the reader. */
const char *proto_reader_error(const struct proto_reader *r);

/* Bytes fed but not yet returned as requests (0 when idle). */
size_t proto_reader_pending(const struct proto_reader *r);

#endif
