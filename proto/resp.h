/* proto/resp.h - I/O-free parser for RESP2 replies, for the client library.
 *
 * Owns: turning reply bytes into struct resp_reply values.  Does not own:
 * sockets, or what a reply means for a command.  Feed bytes, ask for the
 * next whole reply: RESP_OK, RESP_NEED_MORE, or RESP_ERROR (bytes that are
 * not RESP; the connection must be dropped).  Bounded: a bulk string longer
 * than max_bulk, an array deeper than RESP_MAX_DEPTH or longer than
 * max_elements, or a reply whose arrays hold more than max_elements
 * elements in all (counted over every nesting level, from the array
 * headers, before anything is allocated; the count restarts with each
 * top-level reply) is an error, so a hostile server cannot make the client
 * allocate without limit.
 */
#ifndef CACHIFY_PROTO_RESP_H
#define CACHIFY_PROTO_RESP_H

#include <stddef.h>

/* Arrays within arrays: cachifyd never nests; 8 is generous. */
#define RESP_MAX_DEPTH 8

enum resp_type {
    RESP_STATUS,  /* +text */
    RESP_ERROR_REPLY, /* -CODE message */
    RESP_INTEGER, /* :n */
    RESP_BULK,    /* $len bytes */
    RESP_NIL,     /* $-1 or *-1 */
    RESP_ARRAY,   /* *n elements */
};

struct resp_reply {
    enum resp_type type;
    long long integer;        /* RESP_INTEGER */
    char *str;                /* STATUS, ERROR_REPLY, BULK: NUL-terminated */
    size_t len;               /* its length in bytes */
    struct resp_reply **elements; /* RESP_ARRAY */
    size_t nelements;
};

enum resp_status { RESP_OK, RESP_NEED_MORE, RESP_ERROR };

struct resp_limits {
    size_t max_bulk;     /* longest bulk or status line, bytes */
    size_t max_elements; /* longest array, and most array elements (all
                            nesting levels together) in one reply */
};

struct resp_parser;

/* New parser; NULL when out of memory. */
struct resp_parser *resp_parser_new(const struct resp_limits *limits);
void resp_parser_free(struct resp_parser *p);

/* Copies len bytes in.  0, or -1 when out of memory. */
int resp_parser_feed(struct resp_parser *p, const void *buf, size_t len);

/* The next whole reply: RESP_OK with *out (free it with resp_reply_free),
 * RESP_NEED_MORE, or RESP_ERROR (resp_parser_error says why; the parser is
 * dead from then on). */
enum resp_status resp_parser_next(struct resp_parser *p,
                                  struct resp_reply **out);

const char *resp_parser_error(const struct resp_parser *p);

/* 1 when the parser holds bytes not yet returned as part of a whole reply
 * (the start of a reply, or bytes after the last one), else 0.  A client
 * that reads one reply per request uses it to notice bytes it did not ask
 * for. */
int resp_parser_busy(const struct resp_parser *p);

/* Frees a reply and its elements.  NULL is a no-op. */
void resp_reply_free(struct resp_reply *r);

#endif
