/* daemon/state_int.h - internal: what the state file's writer (state.c)
 * and its reader (state_load.c) share.
 *
 * Owns: the file format's version, the state of a running journal
 * (struct state), the two clocks a record's times are read with (struct
 * now) and a load under way (struct load).  Does not own: the format
 * itself (state.c's header paragraph), the life cycle (state.h).
 */
#ifndef CACHIFY_DAEMON_STATE_INT_H
#define CACHIFY_DAEMON_STATE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/log.h"

struct server;
struct event;

#define STATE_FORMAT 2

struct state {
    struct server *srv;
    const char *path;
    int fd;                /* the journal, for appends; -1 when none */
    off_t size;            /* its whole records end here */
    int must_replace;      /* appends untrusted: rewrite before the next */
    unsigned uncommitted;  /* hold records written, not yet fdatasynced */
    uint64_t ceiling;      /* token ceiling last written */
    uint64_t horizon;      /* lease horizon last written (monotonic us) */
    uint64_t slack_us;     /* how far past a deadline the horizon goes */
    size_t appended;       /* records appended since the last rewrite */
    size_t rewrite_after;  /* rewrite when `appended` reaches this */
    size_t written;        /* hold records in the last rewrite */
    uint64_t retry_at;     /* monotonic: no write attempt before this */
    struct event *rewrite; /* the deferred rewrite */
    struct event *flush;   /* writes the gathered free records */
    char *frees;           /* free records not written yet */
    size_t frees_len, frees_cap, frees_count;
    struct log_limit fail_log;
    char boot_id[64];      /* "" when the kernel does not say */
    char *line;            /* one encoded record (appends) */
    size_t line_cap;
};

/* A moment on both clocks, in microseconds. */
struct now {
    uint64_t mono, wall;
};

/* A start reading the state file back (state_start fills st, path and
 * now; the rest is the reader's). */
struct load {
    struct state *st;
    const char *path;
    unsigned long lineno;
    char *line;            /* line_max bytes */
    size_t line_max;       /* read_line_max() */
    char *key;             /* a decoded key, line_max / 2 bytes */
    char *value;           /* a decoded value, line_max / 2 bytes */
    struct now now;
    int same_boot;         /* the journal was written since this boot */
    int crashed;           /* the file is a journal: the last stop crashed */
    uint64_t horizon;      /* monotonic: leases from before it end by then */
    uint64_t plain_until;  /* latest end of a restored lock not durable */
    size_t restored;
};

/* Reads st's file back into the lock table, if it exists: a clean stop's
 * locks and slots, or a journal's leases, horizon and ceiling, into ld.
 * 0, or -1 (logged, naming the file and the line). */
int state_load(struct state *st, struct load *ld);

#endif
