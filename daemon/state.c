/* daemon/state.c - the state file: what it says and when it is written
 * (see state.h for the life cycle, and docs/protocol.md "Restart safety"
 * for the reasoning); state_load.c reads it back at start-up.
 *
 * Format 2: one JSON object per line (jansson encodes and decodes one
 * record at a time, so memory stays bounded whatever the lock count).
 * Keys are hex because they are arbitrary bytes and JSON strings must be
 * UTF-8.  The first line says which of two kinds the file is:
 *
 *   {"cachifyd_state":2,"status":"clean","last_token":N}
 *   {"lock":"6b31","token":N,"ttl_ms":N[,"value":"6869"]}  one per held lock
 *   {"slot":"6b31","max":N,"token":N,"ttl_ms":N}    one per held pool slot
 *   {"end":COUNT}                                   the file is whole
 *                                                   (COUNT: locks + slots)
 *
 * written at a clean stop; ttl_ms is what was left (0 = no expiry) and
 * restarts counting at load, so a lock is never given back shorter than
 * its holder was promised.  And the journal a running daemon keeps:
 *
 *   {"cachifyd_state":2,"status":"running","boot_id":"..."}
 *   {"ceiling":N}                                   token ceiling raised
 *   {"horizon_wall_us":W,"horizon_mono_us":M}       lease horizon raised
 *   {"hold":"6b31","token":N,"until_wall_us":W,"until_mono_us":M
 *    [,"value":"6869"]}
 *   {"hold":"6b31","token":N,"until_wall_us":W,"until_mono_us":M,"max":N}
 *                                                   a pool slot's lease
 *   {"free":"6b31","token":N}                       a lock's or a slot's
 *
 * Times are written twice: CLOCK_MONOTONIC, which is exact across a
 * restart of the daemon on the same boot (boot_id says which), and the
 * wall clock, the only one left after a reboot.  until 0 = no expiry.
 * "value" is the holder's value (Redis SET), hex like the key; a lock
 * without one has no such field.
 * The journal only grows by appends (each one fdatasynced before the grant
 * it covers is answered; "free" records need not be), and is rewritten
 * whole, streamed, when the appends outnumber what it would hold.
 */
#include "daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "alloc.h"
#include "engine/clock.h"
#include "engine/lock_pool.h"
#include "proto/encode.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/state_file.h"
#include "daemon/state_int.h"

/* How far ahead of the last token the journal reserves: an hour of
 * microseconds, so the ceiling is written about once an hour. */
#define TOKEN_RESERVE_US (3600ULL * 1000000ULL)

/* After a failed write, how long durable work fails at once instead of
 * trying again: a failing disk costs one synchronous attempt a second, not
 * one per request on the event loop. */
#define WRITE_RETRY_US 1000000ULL

/* The journal is rewritten once its appends reach twice the records the
 * rewrite would hold, and never below this: amortised O(1) per append. */
#define REWRITE_MIN_RECORDS 4096u

/* Free records are gathered and written together (one write, no
 * fdatasync) this long after the first of them, or once this many bytes
 * wait, or before any other record (the journal keeps the engine's order).
 * A crash loses at most FREES_DELAY_US of them: each such lock comes back
 * held until its deadline, a late grant and never a second one (see
 * flush_frees).  5 ms gathers a few hundred RELEASEs under load into one
 * write, where once per loop turn wrote every few requests. */
#define FREES_FLUSH_BYTES (64u * 1024u)
#define FREES_DELAY_US 5000

/* Room a free record needs but its key's hex: {"free":"","token":} (21),
 * a number of at most 20 characters, the newline, to_hex's terminator. */
#define FREE_RECORD_FIXED 64u

/* ---- small helpers ---- */

static const char hexdigits[] = "0123456789abcdef";

/* key as hex in out (2 * keylen + 1 bytes). */
static void to_hex(const char *key, size_t keylen, char *out)
{
    for (size_t i = 0; i < keylen; i++) {
        out[2 * i] = hexdigits[(unsigned char)key[i] >> 4];
        out[2 * i + 1] = hexdigits[(unsigned char)key[i] & 15];
    }
    out[keylen * 2] = '\0';
}

static void read_boot_id(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        out[strcspn(out, "\n")] = '\0';
    else
        out[0] = '\0';
    fclose(f);
}

static struct now now_both(void)
{
    struct now n = { clock_mono_us(NULL), clock_wall_us(NULL) };
    return n;
}

/* A monotonic deadline as the wall-clock time it falls on (0 = none). */
static uint64_t wall_of(uint64_t deadline, struct now n)
{
    if (deadline == UINT64_MAX)
        return 0;
    uint64_t left = deadline > n.mono ? deadline - n.mono : 0;
    return n.wall + left;
}

/* ---- encoding records ---- */

/* Encodes rec (stolen) as one line in st->line.  Returns its length with
 * the '\n', or 0 when out of memory. */
static size_t encode(struct state *st, json_t *rec)
{
    /* Straight into the line buffer: a second pass only when it grows. */
    size_t room = st->line_cap ? st->line_cap - 1 : 0;
    size_t n = rec ? json_dumpb(rec, st->line, room, JSON_COMPACT) : 0;
    if (n == 0)
        goto fail;
    if (n > room) {
        size_t cap = n + 1 > 256 ? n + 1 : 256;
        char *grown = cfy_realloc(st->line, cap);
        if (!grown)
            goto fail;
        st->line = grown;
        st->line_cap = cap;
        json_dumpb(rec, st->line, n, JSON_COMPACT);
    }
    st->line[n] = '\n';
    json_decref(rec);
    return n + 1;
fail:
    json_decref(rec);
    return 0;
}

/* bytes as a new hex JSON string; NULL when out of memory. */
static json_t *hex_string(const char *bytes, size_t len)
{
    char *hex = cfy_malloc(len * 2 + 1);
    if (!hex)
        return NULL;
    to_hex(bytes, len, hex);
    json_t *str = json_stringn_nocheck(hex, len * 2);
    cfy_free(hex);
    return str;
}

/* rec with the lock's "value" added when it has one; NULL (rec freed)
 * when out of memory. */
static json_t *with_value(json_t *rec, const char *value, size_t vlen)
{
    if (rec && value &&
        json_object_set_new(rec, "value", hex_string(value, vlen)) != 0) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

/* Grows *buf (*cap bytes) to hold at least need bytes, doubling from
 * first; 0, or -1 when out of memory (*buf is kept). */
static int buf_room(char **buf, size_t *cap, size_t need, size_t first)
{
    if (*cap >= need)
        return 0;
    size_t grow = *cap ? *cap : first;
    while (grow < need) {
        if (grow > SIZE_MAX / 2)
            return -1;
        grow *= 2;
    }
    char *grown = cfy_realloc(*buf, grow);
    if (!grown)
        return -1;
    *buf = grown;
    *cap = grow;
    return 0;
}

/* Room for a line of n bytes in st->line; 0, or -1 when out of memory. */
static int line_room(struct state *st, size_t n)
{
    return buf_room(&st->line, &st->line_cap, n, 256);
}

/* Writes v in decimal at p (at most 20 characters, as "%lld" would);
 * returns the end.  snprintf's format machinery cost ~800 instructions a
 * number (callgrind), more than the rest of a record. */
static char *put_num(char *p, json_int_t v)
{
    if (v < 0) {
        *p++ = '-';
        return p + proto_fmt_decimal(p, 0ULL - (unsigned long long)v);
    }
    return p + proto_fmt_decimal(p, (unsigned long long)v);
}

/* Copies the len bytes of s to p; returns the end. */
static char *put_str(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

/* Bytes of a hold line but its key's and value's hex: the field names,
 * quotes and commas (62 with a slot's "max") and four numbers of at most
 * 20 characters each, with room to spare. */
#define HOLD_LINE_FIXED 160u

/* A hold record, as one line in st->line, formatted here: a long lease's
 * grant and every lock a journal rewrite lists pass through it, and
 * building and dumping a jansson object cost ~15,000 instructions per
 * record (callgrind), most of a RELEASE's when a rewrite falls among
 * them.  The bytes are the ones jansson's compact encoding gives
 * (numbers as json_int_t).  A pool slot's lease (max: the pool's size;
 * 0 for a lock) is the same record with "max" last.  Returns the length
 * with the '\n', or 0 when out of memory or too long to count. */
static size_t hold_line(struct state *st, const char *key, size_t keylen,
                        uint64_t token, uint64_t deadline, struct now n,
                        const char *value, size_t vlen, uint32_t max)
{
    size_t vhex = value ? 2 * vlen + 11 : 0; /* ,"value":"" */
    if (keylen > (SIZE_MAX - HOLD_LINE_FIXED) / 4 ||
        vlen > (SIZE_MAX - HOLD_LINE_FIXED) / 4 ||
        line_room(st, HOLD_LINE_FIXED + 2 * keylen + vhex) != 0)
        return 0;
    char *p = put_str(st->line, "{\"hold\":\"", 9);
    to_hex(key, keylen, p);
    p = put_str(p + 2 * keylen, "\",\"token\":", 10);
    p = put_num(p, (json_int_t)token);
    p = put_str(p, ",\"until_wall_us\":", 17);
    p = put_num(p, (json_int_t)wall_of(deadline, n));
    p = put_str(p, ",\"until_mono_us\":", 17);
    p = put_num(p, (json_int_t)(deadline == UINT64_MAX ? 0 : deadline));
    if (value) {
        p = put_str(p, ",\"value\":\"", 10);
        to_hex(value, vlen, p);
        p += 2 * vlen;
        *p++ = '"';
    }
    if (max) {
        p = put_str(p, ",\"max\":", 7);
        p = put_num(p, (json_int_t)max);
    }
    p = put_str(p, "}\n", 2);
    return (size_t)(p - st->line);
}

static json_t *horizon_record(uint64_t horizon, struct now n)
{
    return json_pack("{s:I, s:I}", "horizon_wall_us",
                     (json_int_t)wall_of(horizon, n), "horizon_mono_us",
                     (json_int_t)horizon);
}

/* ---- writing the journal ---- */

struct rewrite_ctx {
    struct state *st;
    struct sfile_writer *w;
    struct now now;
    size_t holds;
};

static int write_record(struct state *st, struct sfile_writer *w, json_t *rec)
{
    size_t n = encode(st, rec);
    return n ? sfile_write(w, st->line, n) : -1;
}

static int write_hold(const struct lock_view *v, void *arg)
{
    struct rewrite_ctx *ctx = arg;
    uint64_t deadline =
        v->ttl_left_us ? ctx->now.mono + v->ttl_left_us : UINT64_MAX;
    ctx->holds++;
    size_t n = hold_line(ctx->st, v->key, v->keylen, v->token, deadline,
                         ctx->now, v->value, v->vlen, 0);
    return n ? sfile_write(ctx->w, ctx->st->line, n) : -1;
}

static int write_slot_hold(const struct pool_slot_view *v, void *arg)
{
    struct rewrite_ctx *ctx = arg;
    uint64_t deadline =
        v->ttl_left_us ? ctx->now.mono + v->ttl_left_us : UINT64_MAX;
    ctx->holds++;
    size_t n = hold_line(ctx->st, v->key, v->keylen, v->token, deadline,
                         ctx->now, NULL, 0, v->max);
    return n ? sfile_write(ctx->w, ctx->st->line, n) : -1;
}

/* Writes the whole journal afresh (header, ceiling, horizon, every durable
 * lock and slot) and appends to it from now on.  0, or -1 (logged; the old
 * journal stays in force). */
static int rewrite_journal(struct state *st)
{
    struct sfile_writer w;
    struct rewrite_ctx ctx = { st, &w, now_both(), 0 };
    if (sfile_create(&w, st->path) != 0)
        return -1;
    int rc = write_record(st, &w, json_pack("{s:i, s:s, s:s}",
                                            "cachifyd_state", STATE_FORMAT,
                                            "status", "running", "boot_id",
                                            st->boot_id));
    if (rc == 0)
        rc = write_record(st, &w, json_pack("{s:I}", "ceiling",
                                            (json_int_t)st->ceiling));
    /* A horizon already passed is written as "now": the record always
     * names a time, so an end of 0 ("never") cannot appear by accident. */
    if (rc == 0)
        rc = write_record(st, &w, horizon_record(st->horizon > ctx.now.mono
                                                     ? st->horizon
                                                     : ctx.now.mono,
                                                 ctx.now));
    if (rc == 0)
        rc = locktable_foreach_durable(st->srv->locks, write_hold, &ctx);
    if (rc == 0)
        rc = locktable_foreach_durable_slot(st->srv->locks, write_slot_hold,
                                            &ctx);
    if (rc != 0) {
        log_msg(LOG_ERROR, "state file %s: cannot write the journal: %s",
                st->path, w.failed ? strerror(w.failed) : "out of memory");
        sfile_abort(&w);
        return -1;
    }
    int fd = sfile_commit(&w, 1);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return -1;
    }
    if (st->fd >= 0)
        close(st->fd);
    st->fd = fd;
    st->size = sb.st_size;
    st->must_replace = 0;
    st->uncommitted = 0; /* the new file holds those leases, synced */
    st->appended = 0;
    st->written = ctx.holds;
    st->rewrite_after = 2 * ctx.holds > REWRITE_MIN_RECORDS
                            ? 2 * ctx.holds : REWRITE_MIN_RECORDS;
    return 0;
}

static void on_rewrite(evutil_socket_t fd, short what, void *arg)
{
    struct state *st = arg;
    uint64_t now = clock_mono_us(NULL);
    (void)fd;
    (void)what;
    if (now < st->retry_at || st->appended < st->rewrite_after)
        return;
    if (rewrite_journal(st) != 0)
        st->retry_at = now + WRITE_RETRY_US; /* the next append asks again */
}

/* A failed write: logged (at most a few lines a second), counted, and no
 * other attempt for WRITE_RETRY_US. */
static void write_failed(struct state *st, int rc, int err, uint64_t now)
{
    st->must_replace |= rc == -2;
    log_limited(&st->fail_log, LOG_ERROR, "state file %s: cannot append to "
                "the journal: %s", st->path,
                err ? strerror(err) : "out of memory");
    st->srv->stats.journal_failures++;
    st->retry_at = now + WRITE_RETRY_US;
}

/* Counts appended records; a rewrite is due after enough of them.  A
 * rewrite walks the lock table: never from inside the engine's call that
 * is appending, so it is run from the loop afterwards. */
static void count_appended(struct state *st, size_t records)
{
    st->appended += records;
    if (st->appended >= st->rewrite_after)
        event_active(st->rewrite, EV_TIMEOUT, 1);
}

/* Writes the gathered free records in one write, without fdatasync: a free
 * record only keeps a released lock from coming back after a crash, so
 * losing the last few costs a late grant, never a second one.  Dropped
 * when the journal is to be replaced (the rewrite lists only the durable
 * leases, which these no longer are) or writes are failing. */
static void flush_frees(struct state *st)
{
    size_t len = st->frees_len, records = st->frees_count;
    st->frees_len = st->frees_count = 0;
    uint64_t now = clock_mono_us(NULL);
    if (len == 0 || st->fd < 0 || st->must_replace || now < st->retry_at)
        return;
    int rc = sfile_append(st->fd, &st->size, st->frees, len, 0);
    if (rc != 0) {
        write_failed(st, rc, errno, now);
        return;
    }
    count_appended(st, records);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_frees(arg);
}

/* Before an append: writes the gathered free records (in the order the
 * engine reported them) and replaces an untrusted journal.  0, or -1 when
 * nothing may be appended now (counted).  *now gets the monotonic time. */
static int append_begin(struct state *st, uint64_t *now)
{
    flush_frees(st);
    *now = clock_mono_us(NULL);
    if (*now < st->retry_at) {
        st->srv->stats.journal_failures++;
        return -1;
    }
    if (st->must_replace && rewrite_journal(st) != 0) {
        st->srv->stats.journal_failures++;
        st->retry_at = *now + WRITE_RETRY_US;
        return -1;
    }
    return 0;
}

/* Appends the n-byte line in st->line (n 0: it could not be made, out of
 * memory).  sync: fdatasync before returning.  0, or -1 when it is not on
 * disk (logged, at most a few lines a second). */
static int append_line(struct state *st, size_t n, int sync, uint64_t now)
{
    int rc = n ? sfile_append(st->fd, &st->size, st->line, n, sync) : -1;
    if (rc != 0) {
        write_failed(st, rc, n ? errno : 0, now);
        return -1;
    }
    if (sync) {
        st->srv->stats.journal_syncs++;
        st->uncommitted = 0; /* that sync covered them too */
    }
    count_appended(st, 1);
    return 0;
}

/* Appends one record (stolen), as append_line does. */
static int append(struct state *st, json_t *rec, int sync)
{
    uint64_t now;
    if (append_begin(st, &now) != 0) {
        json_decref(rec);
        return -1;
    }
    return append_line(st, encode(st, rec), sync, now);
}

/* ---- the engine's hooks (struct lock_journal, token ceiling) ---- */

static uint64_t hook_raise_horizon(void *arg, uint64_t deadline)
{
    struct state *st = arg;
    uint64_t horizon = deadline + st->slack_us;
    if (horizon < deadline || horizon == UINT64_MAX)
        horizon = UINT64_MAX - 1;
    if (append(st, horizon_record(horizon, now_both()), 1) != 0)
        return 0;
    st->horizon = horizon;
    return horizon;
}

static int hook_hold(void *arg, const char *key, size_t keylen,
                     uint64_t token, uint64_t deadline, const char *value,
                     size_t vlen)
{
    struct state *st = arg;
    /* Written now, so a full disk refuses this grant; made durable by
     * state_commit with the others of this callback (group commit). */
    uint64_t now;
    if (append_begin(st, &now) != 0 ||
        append_line(st, hold_line(st, key, keylen, token, deadline,
                                  now_both(), value, vlen, 0), 0, now) != 0)
        return -1;
    st->uncommitted++;
    return 0;
}

/* A long pool slot's lease, written and committed as hook_hold's. */
static int hook_slot_hold(void *arg, const char *key, size_t keylen,
                          uint32_t max, uint64_t token, uint64_t deadline)
{
    struct state *st = arg;
    uint64_t now;
    if (append_begin(st, &now) != 0 ||
        append_line(st, hold_line(st, key, keylen, token, deadline,
                                  now_both(), NULL, 0, max), 0, now) != 0)
        return -1;
    st->uncommitted++;
    return 0;
}

/* Room for n more bytes of free records; 0, or -1 when out of memory. */
static int frees_room(struct state *st, size_t n)
{
    return n > SIZE_MAX - st->frees_len
               ? -1
               : buf_room(&st->frees, &st->frees_cap, st->frees_len + n, 4096);
}

void state_commit(struct server *srv)
{
    struct state *st = srv->state;
    if (!st || st->uncommitted == 0)
        return;
    if (fdatasync(st->fd) != 0) {
        log_msg(LOG_ERROR, "state file %s: fdatasync failed: %s; stopping "
                "now, before any reply promises a lease the file may not "
                "hold (the next start recovers as after a crash)", st->path,
                strerror(errno));
        _exit(1);
    }
    st->uncommitted = 0;
    srv->stats.journal_syncs++;
}

unsigned state_uncommitted(const struct server *srv)
{
    return srv->state ? srv->state->uncommitted : 0;
}

/* Gathered, then written FREES_DELAY_US later (flush_frees): a burst of
 * RELEASEs of long leases costs one write, not one each.  Formatted here,
 * like hold_line, not through jansson: this runs once per RELEASE of a
 * long lease.  Every failure here means
 * the lock comes back after a crash: late, never twice. */
static void hook_freed(void *arg, const char *key, size_t keylen,
                       uint64_t token)
{
    struct state *st = arg;
    if (keylen > (SIZE_MAX - FREE_RECORD_FIXED) / 2 ||
        frees_room(st, 2 * keylen + FREE_RECORD_FIXED) != 0)
        return;
    if (st->frees_len == 0) {
        struct timeval tv = { 0, FREES_DELAY_US };
        event_add(st->flush, &tv);
    }
    char *p = put_str(st->frees + st->frees_len, "{\"free\":\"", 9);
    to_hex(key, keylen, p);
    p = put_str(p + 2 * keylen, "\",\"token\":", 10);
    p = put_num(p, (json_int_t)token);
    p = put_str(p, "}\n", 2);
    st->frees_len = (size_t)(p - st->frees);
    st->frees_count++;
    if (st->frees_len >= FREES_FLUSH_BYTES)
        flush_frees(st);
}

static uint64_t reserve_from(uint64_t token)
{
    uint64_t wall = clock_wall_us(NULL);
    return (token > wall ? token : wall) + TOKEN_RESERVE_US;
}

static uint64_t hook_raise_ceiling(void *arg, uint64_t token)
{
    struct state *st = arg;
    uint64_t ceiling = reserve_from(token);
    if (append(st, json_pack("{s:I}", "ceiling", (json_int_t)ceiling), 1)
        != 0) {
        log_limited(&st->fail_log, LOG_ERROR, "token ceiling not written: "
                    "tokens issued now may not stay above older ones after "
                    "a crash with the wall clock stepped back");
        return 0;
    }
    st->ceiling = ceiling;
    return ceiling;
}

/* ---- life cycle ---- */

static struct state *state_new(struct server *srv)
{
    struct state *st = cfy_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->srv = srv;
    st->path = srv->config->state_file;
    st->fd = -1;
    st->rewrite_after = REWRITE_MIN_RECORDS;
    uint64_t long_lease = (uint64_t)srv->config->long_lease_ms * 1000;
    /* A quarter of the longest lease it covers: the horizon is written
     * about four times per long_lease under steady traffic, and a crash
     * waits at most a quarter longer than the leases need. */
    st->slack_us = long_lease / 4 > 1000 ? long_lease / 4 : 1000;
    read_boot_id(st->boot_id, sizeof(st->boot_id));
    st->rewrite = event_new(srv->base, -1, 0, on_rewrite, st);
    st->flush = event_new(srv->base, -1, 0, on_flush, st);
    if (!st->rewrite || !st->flush) {
        if (st->rewrite)
            event_free(st->rewrite);
        if (st->flush)
            event_free(st->flush);
        cfy_free(st);
        return NULL;
    }
    return st;
}

void state_free(struct server *srv)
{
    struct state *st = srv->state;
    if (!st)
        return;
    if (st->fd >= 0)
        close(st->fd);
    event_free(st->rewrite);
    event_free(st->flush);
    cfy_free(st->frees);
    cfy_free(st->line);
    cfy_free(st);
    srv->state = NULL;
}

int state_start(struct server *srv)
{
    const struct cachify_config *cfg = srv->config;
    if (cfg->state_file[0] == '\0')
        return 0;
    struct state *st = srv->state = state_new(srv);
    if (!st) {
        log_msg(LOG_ERROR, "out of memory");
        return -1;
    }
    struct lock_journal j = {
        hook_raise_horizon, hook_hold, hook_freed,
        (uint64_t)cfg->long_lease_ms * 1000, WRITE_RETRY_US, st,
    };
    /* Before the load: restored locks and slots are sorted by
     * long_lease_us. */
    locktable_set_journal(srv->locks, &j, 0);
    locktable_set_slot_journal(srv->locks, hook_slot_hold);
    struct load ld = { .st = st, .path = st->path, .now = now_both() };
    if (state_load(st, &ld) != 0)
        return -1;
    if (ld.lineno == 0)
        log_msg(LOG_INFO, "state file %s not found: first start", st->path);
    else
        log_msg(LOG_INFO, "state file %s: %s stop, %zu locks restored",
                st->path, ld.crashed ? "unclean" : "clean", ld.restored);
    if (ld.crashed) {
        uint64_t floor = ld.now.mono + (uint64_t)cfg->recovery_delay_ms * 1000;
        if (floor > ld.horizon)
            ld.horizon = floor;
        if (ld.horizon > ld.now.mono) {
            locktable_block_grants_until(srv->locks, ld.horizon);
            log_msg(LOG_WARNING, "state file %s says the last stop was not "
                    "clean: leases granted before it may still be in use, "
                    "so no other key is granted for %llu ms", st->path,
                    (unsigned long long)((ld.horizon - ld.now.mono + 999) /
                                         1000));
        } else {
            log_msg(LOG_WARNING, "state file %s says the last stop was not "
                    "clean; every lease granted before it has run out",
                    st->path);
        }
    }
    st->horizon = ld.horizon > ld.plain_until ? ld.horizon : ld.plain_until;
    st->ceiling = reserve_from(locktable_last_token(srv->locks));
    if (rewrite_journal(st) != 0)
        return -1;
    locktable_set_journal(srv->locks, &j, st->horizon);
    locktable_set_token_ceiling(srv->locks, st->ceiling, hook_raise_ceiling,
                                st);
    return 0;
}

struct clean_ctx {
    struct state *st;
    struct sfile_writer *w;
    size_t count;
};

static int write_lock(const struct lock_view *v, void *arg)
{
    struct clean_ctx *ctx = arg;
    /* Round up: a lock with 0.4 ms left must not come back as "forever". */
    json_int_t ttl_ms = (json_int_t)((v->ttl_left_us + 999) / 1000);
    json_t *rec = json_pack("{s:o, s:I, s:I}", "lock",
                            hex_string(v->key, v->keylen), "token",
                            (json_int_t)v->token, "ttl_ms", ttl_ms);
    ctx->count++;
    return write_record(ctx->st, ctx->w, with_value(rec, v->value, v->vlen));
}

static int write_slot(const struct pool_slot_view *v, void *arg)
{
    struct clean_ctx *ctx = arg;
    /* Rounded up as a lock's: 0 is "no expiry". */
    json_int_t ttl_ms = (json_int_t)((v->ttl_left_us + 999) / 1000);
    json_t *rec = json_pack("{s:o, s:I, s:I, s:I}", "slot",
                            hex_string(v->key, v->keylen), "max",
                            (json_int_t)v->max, "token",
                            (json_int_t)v->token, "ttl_ms", ttl_ms);
    ctx->count++;
    return write_record(ctx->st, ctx->w, rec);
}

int state_save_clean(struct server *srv)
{
    struct state *st = srv->state;
    struct sfile_writer w;
    struct clean_ctx ctx = { st, &w, 0 };
    if (!st)
        return 0;
    flush_frees(st); /* the journal stays in force if this save fails */
    if (sfile_create(&w, st->path) != 0)
        goto failed;
    int rc = write_record(st, &w, json_pack(
        "{s:i, s:s, s:I}", "cachifyd_state", STATE_FORMAT, "status", "clean",
        "last_token", (json_int_t)locktable_last_token(srv->locks)));
    if (rc == 0)
        rc = locktable_foreach_held(srv->locks, write_lock, &ctx);
    if (rc == 0)
        rc = locktable_foreach_slot(srv->locks, write_slot, &ctx);
    if (rc == 0)
        rc = write_record(st, &w, json_pack("{s:I}", "end",
                                            (json_int_t)ctx.count));
    if (rc != 0) {
        log_msg(LOG_ERROR, "state file %s: cannot write: %s", st->path,
                w.failed ? strerror(w.failed) : "out of memory");
        sfile_abort(&w);
        goto failed;
    }
    if (sfile_commit(&w, 0) != 0)
        goto failed;
    log_msg(LOG_INFO, "state file %s written: clean stop, %zu locks",
            st->path, ctx.count);
    return 0;
failed:
    /* The journal is still in place and whole: the next start recovers
     * from it as from a crash, so no lock is granted twice. */
    log_msg(LOG_ERROR, "state file %s: clean stop not recorded; the next "
            "start will treat this stop as a crash", st->path);
    return -1;
}
