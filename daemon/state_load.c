/* daemon/state_load.c - reading the state file back at start-up (see
 * state_int.h).
 *
 * Owns: parsing a clean stop's file and a running daemon's journal line by
 * line (state.c's header paragraph gives the records), checking every
 * field, and putting the locks and pool slots back into the lock table
 * with the horizon a crash leaves.  Every error names the file and the
 * line and stops the start: a state file that cannot be trusted is never
 * half-loaded.  Does not own: writing the file (state.c).
 */
#include "daemon/state_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "engine/lock_pool.h"
#include "engine/locktable.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/state_file.h"

/* Largest token or ceiling a file may carry: 2^62 leaves room for as many
 * tokens again (a token is about the wall clock in microseconds, 1.8e15
 * today), and keeps every token a positive RESP integer. */
#define TOKEN_LIMIT (1ULL << 62)

/* Largest TTL a record may carry, in ms: the protocol's own bound
 * (daemon/cmd_lock.c, about 35 years), so ms * 1000 cannot overflow. */
#define TTL_LIMIT_MS (1ULL << 40)

/* Longest line read back: a record with a key of the largest max_key_len
 * the config accepts (65536) and a value of max_value_len, both as hex,
 * plus the JSON around them.  Longer keys than the configured max_key_len
 * are still read, to be named in the error. */
static size_t read_line_max(const struct cachify_config *config)
{
    return 2u * (65536u + (size_t)config->max_value_len) + 512u;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* hex into key (hexlen / 2 bytes).  0, or -1 when it is not hex. */
static int from_hex(const char *hex, size_t hexlen, char *key)
{
    if (hexlen % 2 != 0)
        return -1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key[i] = (char)(hi * 16 + lo);
    }
    return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int bad(struct load *ld, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_msg(LOG_ERROR, "state file %s: line %lu: %s (fix the file or remove "
            "it; removing it forgets the locks it records)", ld->path,
            ld->lineno, why);
    return -1;
}

/* Decodes hex into ld->key and checks it as a key.  0, or -1 (logged). */
static int take_key(struct load *ld, const char *hex, size_t *keylen)
{
    size_t hexlen = strlen(hex);
    long long max = ld->st->srv->config->max_key_len;
    if (hexlen == 0 || from_hex(hex, hexlen, ld->key) != 0)
        return bad(ld, "key '%.40s' is not a non-empty hex string", hex);
    *keylen = hexlen / 2;
    if ((long long)*keylen > max)
        return bad(ld, "a key of %zu bytes is longer than max_key_len "
                   "(%lld): it could never be released; raise max_key_len "
                   "to start with this file", *keylen, max);
    return 0;
}

static int check_token(struct load *ld, const char *what, json_int_t token,
                       int zero_ok)
{
    if ((token == 0 && zero_ok) ||
        (token > 0 && (unsigned long long)token <= TOKEN_LIMIT))
        return 0;
    return bad(ld, "%s %lld is out of range (1..%llu): tokens would run "
               "out or turn negative", what, (long long)token, TOKEN_LIMIT);
}

/* Time left until a written end (wall, mono; both 0 = never): *forever or
 * *left_us.  0, or -1 (logged) when out of range. */
static int time_left(struct load *ld, json_int_t wall, json_int_t mono,
                     int *forever, uint64_t *left_us)
{
    *forever = wall == 0 && mono == 0;
    *left_us = 0;
    if (wall < 0 || mono < 0)
        return bad(ld, "negative time");
    if (*forever)
        return 0;
    uint64_t end = ld->same_boot && mono ? (uint64_t)mono : (uint64_t)wall;
    uint64_t now = ld->same_boot && mono ? ld->now.mono : ld->now.wall;
    *left_us = end > now ? end - now : 0;
    if (*left_us > TTL_LIMIT_MS * 1000)
        return bad(ld, "a time %llu ms ahead is beyond the largest TTL "
                   "(%llu ms); was the clock set back?",
                   (unsigned long long)(*left_us / 1000), TTL_LIMIT_MS);
    return 0;
}

/* Decodes a record's optional "value" (NULL: none) into ld->value.  0, or
 * -1 (logged) when it is not hex. */
static int take_value(struct load *ld, const char *hex, const char **value,
                      size_t *vlen)
{
    *value = NULL;
    *vlen = 0;
    if (!hex)
        return 0;
    size_t hexlen = strlen(hex);
    if (from_hex(hex, hexlen, ld->value) != 0)
        return bad(ld, "value '%.40s' is not a hex string", hex);
    *value = ld->value;
    *vlen = hexlen / 2;
    return 0;
}

/* A lease (a lock or a pool slot) of ttl_us was put back: counts it, and
 * notes how late a lease the horizon must cover ends (one longer than
 * long_lease_ms is written one by one into the new journal instead). */
static int restored(struct load *ld, uint64_t ttl_us)
{
    uint64_t long_lease = (uint64_t)ld->st->srv->config->long_lease_ms * 1000;
    if (ttl_us != 0 && ttl_us <= long_lease &&
        ld->now.mono + ttl_us > ld->plain_until)
        ld->plain_until = ld->now.mono + ttl_us;
    ld->restored++;
    return 0;
}

/* Puts a lock back. */
static int restore(struct load *ld, size_t keylen, uint64_t token,
                   uint64_t ttl_us, const char *value, size_t vlen)
{
    if (locktable_restore(ld->st->srv->locks, ld->key, keylen, token,
                          ttl_us, value, vlen) != 0)
        return bad(ld, "duplicate lock key, or a pool's key (or out of "
                   "memory)");
    return restored(ld, ttl_us);
}

/* Puts a pool slot back. */
static int restore_slot(struct load *ld, size_t keylen, uint32_t max,
                        uint64_t token, uint64_t ttl_us)
{
    if (locktable_pool_restore(ld->st->srv->locks, ld->key, keylen, max,
                               token, ttl_us) != 0)
        return bad(ld, "slot does not fit: its key is a lock, its pool has "
                   "another max, or its token is taken (or out of memory)");
    return restored(ld, ttl_us);
}

/* Before a journal's hold record for key (a slot of a pool of max when
 * max > 0, else a lock) with token: forgets what the key held that this
 * lease replaces, returning how many leases went.  The same token is an
 * extend.  Another holder of a lock, or a lock and a pool, or a pool of
 * another size, cannot have lived beside this lease: those leases had
 * ended (their free records were lost), so they are dropped.  Slots of the
 * same pool are kept: which of them ended cannot be told, so the pool may
 * come back with more slots than max, and admits nobody until they end. */
static size_t forget_replaced(struct load *ld, size_t keylen, uint32_t max,
                              uint64_t token)
{
    struct locktable *t = ld->st->srv->locks;
    size_t n = (size_t)locktable_forget(t, ld->key, keylen, 0);
    if (!max)
        return n + (size_t)locktable_pool_forget(t, ld->key, keylen, 0);
    uint32_t live_max = 0;
    n += (size_t)locktable_pool_forget(t, ld->key, keylen, token);
    if (locktable_pool_size(t, ld->key, keylen, &live_max) > 0 &&
        live_max != max)
        n += (size_t)locktable_pool_forget(t, ld->key, keylen, 0);
    return n;
}

static void raise_horizon_to(struct load *ld, uint64_t left_us)
{
    if (ld->now.mono + left_us > ld->horizon)
        ld->horizon = ld->now.mono + left_us;
}

/* One record of a journal ("running" file). */
static int replay_record(struct load *ld, json_t *rec)
{
    struct locktable *t = ld->st->srv->locks;
    const char *hex, *vhex = NULL, *value;
    json_int_t token, wall, mono;
    size_t keylen, vlen;
    int forever;
    uint64_t left;
    if (json_object_get(rec, "ceiling")) {
        if (json_unpack(rec, "{s:I!}", "ceiling", &token) != 0 ||
            check_token(ld, "ceiling", token, 0) != 0)
            return bad(ld, "malformed ceiling record");
        locktable_raise_last_token(t, (uint64_t)token);
        return 0;
    }
    if (json_object_get(rec, "horizon_mono_us")) {
        if (json_unpack(rec, "{s:I, s:I!}", "horizon_wall_us", &wall,
                        "horizon_mono_us", &mono) != 0)
            return bad(ld, "malformed horizon record");
        if (time_left(ld, wall, mono, &forever, &left) != 0)
            return -1;
        if (forever)
            return bad(ld, "a horizon that never ends");
        raise_horizon_to(ld, left);
        return 0;
    }
    if (json_object_get(rec, "hold")) {
        json_int_t max = 0;
        int slot = json_object_get(rec, "max") != NULL;
        if (json_unpack(rec, "{s:s, s:I, s:I, s:I, s?s, s?I!}", "hold", &hex,
                        "token", &token, "until_wall_us", &wall,
                        "until_mono_us", &mono, "value", &vhex, "max",
                        &max) != 0 || (slot && vhex))
            return bad(ld, "malformed hold record");
        if (slot && (max < 1 || max > LOCK_POOL_MAX_SIZE))
            return bad(ld, "max %lld is out of range (1..%u)",
                       (long long)max, LOCK_POOL_MAX_SIZE);
        if (take_key(ld, hex, &keylen) != 0 ||
            take_value(ld, vhex, &value, &vlen) != 0 ||
            check_token(ld, "token", token, 0) != 0 ||
            time_left(ld, wall, mono, &forever, &left) != 0)
            return -1;
        locktable_raise_last_token(t, (uint64_t)token);
        ld->restored -= forget_replaced(ld, keylen, (uint32_t)max,
                                        (uint64_t)token);
        if (!forever && left == 0)
            return 0; /* ran out while the daemon was down */
        if (slot)
            return restore_slot(ld, keylen, (uint32_t)max, (uint64_t)token,
                                forever ? 0 : left);
        return restore(ld, keylen, (uint64_t)token, forever ? 0 : left,
                       value, vlen);
    }
    if (json_object_get(rec, "free")) {
        if (json_unpack(rec, "{s:s, s:I!}", "free", &hex, "token", &token) != 0)
            return bad(ld, "malformed free record");
        if (take_key(ld, hex, &keylen) != 0 ||
            check_token(ld, "token", token, 0) != 0)
            return -1;
        /* Tokens are unique over locks and slots: the record ends one. */
        if (locktable_forget(t, ld->key, keylen, (uint64_t)token) ||
            locktable_pool_forget(t, ld->key, keylen, (uint64_t)token) > 0)
            ld->restored--;
        return 0;
    }
    return bad(ld, "unknown record");
}

/* One lock of a clean file. */
static int clean_record(struct load *ld, json_t *rec)
{
    const char *hex, *vhex = NULL, *value;
    json_int_t token, ttl_ms;
    size_t keylen, vlen;
    if (json_unpack(rec, "{s:s, s:I, s:I, s?s!}", "lock", &hex, "token",
                    &token, "ttl_ms", &ttl_ms, "value", &vhex) != 0)
        return bad(ld, "malformed lock record");
    if (take_key(ld, hex, &keylen) != 0 ||
        take_value(ld, vhex, &value, &vlen) != 0 ||
        check_token(ld, "token", token, 0) != 0)
        return -1;
    if (ttl_ms < 0 || (unsigned long long)ttl_ms > TTL_LIMIT_MS)
        return bad(ld, "ttl_ms %lld is out of range (0..%llu)",
                   (long long)ttl_ms, TTL_LIMIT_MS);
    return restore(ld, keylen, (uint64_t)token, (uint64_t)ttl_ms * 1000,
                   value, vlen);
}

/* One pool slot of a clean file (ttl_ms 0: no expiry). */
static int slot_record(struct load *ld, json_t *rec)
{
    const char *hex;
    json_int_t max, token, ttl_ms;
    size_t keylen;
    if (json_unpack(rec, "{s:s, s:I, s:I, s:I!}", "slot", &hex, "max", &max,
                    "token", &token, "ttl_ms", &ttl_ms) != 0)
        return bad(ld, "malformed slot record");
    if (take_key(ld, hex, &keylen) != 0 ||
        check_token(ld, "token", token, 0) != 0)
        return -1;
    if (max < 1 || max > LOCK_POOL_MAX_SIZE)
        return bad(ld, "max %lld is out of range (1..%u)", (long long)max,
                   LOCK_POOL_MAX_SIZE);
    if (ttl_ms < 0 || (unsigned long long)ttl_ms > TTL_LIMIT_MS)
        return bad(ld, "slot ttl_ms %lld is out of range (0..%llu)",
                   (long long)ttl_ms, TTL_LIMIT_MS);
    return restore_slot(ld, keylen, (uint32_t)max, (uint64_t)token,
                        (uint64_t)ttl_ms * 1000);
}

/* The first line: which kind of file this is. */
static int read_header(struct load *ld, json_t *rec)
{
    const char *status, *boot_id;
    json_int_t format, last_token;
    if (json_unpack(rec, "{s:I, s:s}", "cachifyd_state", &format, "status",
                    &status) != 0 || format != STATE_FORMAT)
        return bad(ld, "not a cachifyd state file of format %d",
                   STATE_FORMAT);
    if (strcmp(status, "clean") == 0) {
        if (json_unpack(rec, "{s:I, s:s, s:I!}", "cachifyd_state", &format,
                        "status", &status, "last_token", &last_token) != 0 ||
            check_token(ld, "last_token", last_token, 1) != 0)
            return bad(ld, "malformed header");
        locktable_raise_last_token(ld->st->srv->locks, (uint64_t)last_token);
        return 0;
    }
    if (strcmp(status, "running") == 0) {
        if (json_unpack(rec, "{s:I, s:s, s:s!}", "cachifyd_state", &format,
                        "status", &status, "boot_id", &boot_id) != 0)
            return bad(ld, "malformed header");
        ld->crashed = 1;
        ld->same_boot = boot_id[0] && strcmp(boot_id, ld->st->boot_id) == 0;
        return 0;
    }
    return bad(ld, "status '%.20s' is neither clean nor running", status);
}

/* Reads the file line by line.  0, or -1 (logged). */
static int load_lines(struct load *ld, FILE *f)
{
    json_int_t count = -1;
    size_t len;
    for (;;) {
        enum sfile_line r = sfile_read_line(f, ld->line, ld->line_max, &len);
        ld->lineno++;
        if (r == SFILE_EOF)
            break;
        if (r == SFILE_ERROR)
            return bad(ld, "read error: %s", strerror(errno));
        if (r == SFILE_TOO_LONG)
            return bad(ld, "longer than any record (%zu bytes; a value "
                       "longer than max_value_len?)", ld->line_max);
        if (r == SFILE_TORN && ld->crashed) {
            /* The crash cut this append short, so the grant it was for
             * was never answered. */
            log_msg(LOG_WARNING, "state file %s: line %lu: a record cut "
                    "short by the crash, ignored", ld->path, ld->lineno);
            break;
        }
        if (r == SFILE_TORN)
            return bad(ld, "the file ends in the middle of a line");
        if (count >= 0)
            return bad(ld, "a record after the end record");
        json_error_t jerr;
        json_t *rec = json_loadb(ld->line, len, 0, &jerr);
        int rc;
        if (!rec || !json_is_object(rec))
            rc = ld->lineno == 1 && strcmp(ld->line, "{") == 0
                     ? bad(ld, "a state file of format 1 (an older cachifyd)"
                           ": stop that version cleanly, or remove the file")
                     : bad(ld, "not a JSON object: %s",
                           rec ? "another JSON value" : jerr.text);
        else if (ld->lineno == 1)
            rc = read_header(ld, rec);
        else if (ld->crashed)
            rc = replay_record(ld, rec);
        else if (json_object_get(rec, "end"))
            rc = json_unpack(rec, "{s:I!}", "end", &count) != 0 || count < 0
                     ? bad(ld, "malformed end record") : 0;
        else if (json_object_get(rec, "slot"))
            rc = slot_record(ld, rec);
        else
            rc = clean_record(ld, rec);
        json_decref(rec);
        if (rc != 0)
            return -1;
    }
    if (ld->lineno == 1)
        return bad(ld, "empty file");
    if (!ld->crashed && count < 0)
        return bad(ld, "no end record: the file was cut short");
    if (!ld->crashed && (size_t)count != ld->restored)
        return bad(ld, "the end record counts %lld locks and slots, the "
                   "file has %zu",
                   (long long)count, ld->restored);
    return 0;
}

int state_load(struct state *st, struct load *ld)
{
    FILE *f;
    int rc = sfile_open_read(st->path, &f);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    ld->line_max = read_line_max(st->srv->config);
    ld->line = cfy_malloc(ld->line_max);
    ld->key = cfy_malloc(ld->line_max / 2);
    ld->value = cfy_malloc(ld->line_max / 2);
    if (!ld->line || !ld->key || !ld->value) {
        log_msg(LOG_ERROR, "state file %s: out of memory", st->path);
        rc = -1;
    } else {
        rc = load_lines(ld, f);
    }
    cfy_free(ld->line);
    cfy_free(ld->key);
    cfy_free(ld->value);
    fclose(f);
    return rc;
}

