/* daemon/state.c - the state file (see state.h for the life cycle).
 *
 * Format (version 1):
 *   {"format": 1, "status": "clean"|"running", "last_token": N,
 *    "token_ceiling": N, "locks": [{"key_hex": "...", "token": N,
 *    "ttl_ms": N}, ...]}
 * Keys are hex because they are arbitrary bytes and JSON strings must be
 * UTF-8.  ttl_ms is what was left at the stop (0 = no expiry); it restarts
 * counting at load, so a lock is never given back shorter than its holder
 * was promised, only up to the downtime longer.
 */
#include "daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/alloc.h"
#include "daemon/clock.h"
#include "daemon/log.h"
#include "daemon/server.h"

#define STATE_FORMAT 1

/* How far ahead of the last token the "running" file reserves: an hour of
 * microseconds, so the ceiling is rewritten about once an hour. */
#define TOKEN_RESERVE_US (3600ULL * 1000000ULL)

static const char hexdigits[] = "0123456789abcdef";

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

/* Writes text to path atomically and durably.  Returns 0 or -1 (errno). */
static int write_durably(const char *path, const char *text)
{
    size_t plen = strlen(path);
    char *tmp = cfy_malloc(plen + 5), *dircopy = cfy_strdup(path);
    int rc = -1, fd = -1;
    if (!tmp || !dircopy)
        goto out;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        off += (size_t)n;
    }
    /* Close whatever fsync said, or the descriptor leaks. */
    int synced = fsync(fd) == 0;
    int closed = close(fd) == 0;
    fd = -1;
    if (!synced || !closed || rename(tmp, path) != 0)
        goto out;
    /* The rename itself must survive a power cut. */
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        goto out;
    synced = fsync(dfd) == 0;
    close(dfd);
    rc = synced ? 0 : -1;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        int saved = errno;
        unlink(tmp); /* gone already when the rename happened */
        errno = saved;
    }
    cfy_free(tmp);
    cfy_free(dircopy);
    return rc;
}

struct save_ctx {
    json_t *locks;
};

static int add_lock(const char *key, size_t keylen, uint64_t token,
                    uint64_t ttl_left_us, void *arg)
{
    struct save_ctx *ctx = arg;
    char *hex = cfy_malloc(keylen * 2 + 1);
    if (!hex)
        return -1;
    for (size_t i = 0; i < keylen; i++) {
        hex[2 * i] = hexdigits[(unsigned char)key[i] >> 4];
        hex[2 * i + 1] = hexdigits[(unsigned char)key[i] & 15];
    }
    hex[keylen * 2] = '\0';
    /* Round up: a lock with 0.4 ms left must not come back as "forever". */
    json_int_t ttl_ms = ttl_left_us ? (json_int_t)((ttl_left_us + 999) / 1000)
                                    : 0;
    json_t *item = json_pack("{s:s, s:I, s:I}", "key_hex", hex, "token",
                             (json_int_t)token, "ttl_ms", ttl_ms);
    cfy_free(hex);
    if (!item || json_array_append_new(ctx->locks, item) != 0)
        return -1;
    return 0;
}

/* Writes the file; with_locks adds every held lock.  Returns 0 or -1. */
static int write_state(struct server *srv, const char *status, int with_locks,
                       uint64_t ceiling)
{
    const char *path = srv->config->state_file;
    struct save_ctx ctx = { json_array() };
    json_t *doc = NULL;
    char *text = NULL;
    int rc = -1;
    if (!ctx.locks)
        goto out;
    if (with_locks &&
        locktable_foreach_held(srv->locks, add_lock, &ctx) != 0)
        goto out;
    doc = json_pack("{s:i, s:s, s:I, s:I, s:O}", "format", STATE_FORMAT,
                    "status", status,
                    "last_token", (json_int_t)locktable_last_token(srv->locks),
                    "token_ceiling", (json_int_t)ceiling, "locks", ctx.locks);
    text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
    if (!text)
        goto out;
    if (write_durably(path, text) != 0) {
        log_msg(LOG_ERROR, "cannot write state file %s: %s", path,
                strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && !text)
        log_msg(LOG_ERROR, "cannot write state file %s: out of memory", path);
    free(text);
    json_decref(doc);
    json_decref(ctx.locks);
    return rc;
}

static uint64_t reserve_from(uint64_t token)
{
    uint64_t wall = clock_wall_us(NULL);
    return (token > wall ? token : wall) + TOKEN_RESERVE_US;
}

/* After a failed ceiling write, how long grants go on without trying
 * again: a failing disk costs one synchronous write a second, not one per
 * grant on the event loop. */
#define CEILING_RETRY_US 1000000ULL

/* Engine callback: a token would pass the ceiling on disk. */
static uint64_t raise_ceiling(void *arg, uint64_t token)
{
    struct server *srv = arg;
    uint64_t now = clock_mono_us(NULL);
    if (now < srv->ceiling_retry_us)
        return 0;
    uint64_t ceiling = reserve_from(token);
    if (write_state(srv, "running", 0, ceiling) != 0) {
        srv->ceiling_retry_us = now + CEILING_RETRY_US;
        log_msg(LOG_ERROR, "token ceiling not written: tokens issued now "
                "may not stay above older ones after a crash with the "
                "wall clock stepped back; retrying every second");
        return 0;
    }
    log_msg(LOG_DEBUG, "token ceiling raised to %llu",
            (unsigned long long)ceiling);
    return ceiling;
}

static int restore_lock(struct server *srv, json_t *item, const char *path)
{
    const char *hex;
    json_int_t token, ttl_ms;
    if (json_unpack(item, "{s:s, s:I, s:I}", "key_hex", &hex, "token", &token,
                    "ttl_ms", &ttl_ms) != 0 || token <= 0 || ttl_ms < 0) {
        log_msg(LOG_ERROR, "state file %s: malformed lock entry", path);
        return -1;
    }
    size_t hexlen = strlen(hex), keylen = hexlen / 2;
    char *key = cfy_malloc(keylen + 1);
    if (!key)
        return -1;
    int bad = hexlen % 2 != 0 || keylen == 0;
    for (size_t i = 0; !bad && i < keylen; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        bad = hi < 0 || lo < 0;
        key[i] = (char)(hi * 16 + lo);
    }
    if (bad || locktable_restore(srv->locks, key, keylen, (uint64_t)token,
                                 (uint64_t)ttl_ms * 1000) != 0) {
        log_msg(LOG_ERROR, "state file %s: bad or duplicate lock key '%s'",
                path, hex);
        cfy_free(key);
        return -1;
    }
    cfy_free(key);
    return 0;
}

/* Reads an existing file.  *crashed is set when it says "running". */
static int load(struct server *srv, const char *path, int *crashed)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr), *locks = NULL;
    const char *status;
    json_int_t format, last_token, ceiling = 0;
    int rc = -1;
    if (!doc) {
        log_msg(LOG_ERROR, "state file %s: line %d: %s (remove the file to "
                "start without it)", path, jerr.line, jerr.text);
        return -1;
    }
    if (json_unpack(doc, "{s:I, s:s, s:I, s?I, s:o}", "format", &format,
                    "status", &status, "last_token", &last_token,
                    "token_ceiling", &ceiling, "locks", &locks) != 0 ||
        format != STATE_FORMAT || !json_is_array(locks) || last_token < 0 ||
        ceiling < 0 ||
        (strcmp(status, "clean") != 0 && strcmp(status, "running") != 0)) {
        log_msg(LOG_ERROR, "state file %s: not a cachifyd state file of "
                "format %d (remove the file to start without it)", path,
                STATE_FORMAT);
        goto out;
    }
    *crashed = strcmp(status, "running") == 0;
    locktable_raise_last_token(srv->locks, (uint64_t)last_token);
    locktable_raise_last_token(srv->locks, (uint64_t)ceiling);
    if (!*crashed) {
        size_t i;
        json_t *item;
        json_array_foreach(locks, i, item) {
            if (restore_lock(srv, item, path) != 0)
                goto out;
        }
        log_msg(LOG_INFO, "state file %s: restored %zu locks", path,
                json_array_size(locks));
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int state_start(struct server *srv)
{
    const struct cachify_config *cfg = srv->config;
    const char *path = cfg->state_file;
    int crashed = 0;
    if (path[0] == '\0')
        return 0;
    if (access(path, F_OK) == 0) {
        if (load(srv, path, &crashed) != 0)
            return -1;
    } else {
        log_msg(LOG_INFO, "state file %s not found: first start", path);
    }
    if (crashed && cfg->recovery_delay_ms > 0) {
        locktable_block_grants_until(
            srv->locks,
            clock_mono_us(NULL) + (uint64_t)cfg->recovery_delay_ms * 1000);
        log_msg(LOG_WARNING, "state file %s says the last stop was not clean: "
                "locks granted before it may still be in use, so no lock is "
                "granted for %lld ms (recovery_delay_ms)", path,
                cfg->recovery_delay_ms);
    } else if (crashed) {
        log_msg(LOG_WARNING, "state file %s says the last stop was not clean; "
                "recovery_delay_ms is 0, granting at once", path);
    }
    uint64_t ceiling = reserve_from(locktable_last_token(srv->locks));
    if (write_state(srv, "running", 0, ceiling) != 0)
        return -1;
    locktable_set_token_ceiling(srv->locks, ceiling, raise_ceiling, srv);
    return 0;
}

int state_save_clean(struct server *srv)
{
    if (srv->config->state_file[0] == '\0')
        return 0;
    if (write_state(srv, "clean", 1, 0) != 0)
        return -1;
    log_msg(LOG_INFO, "state file %s written: clean stop",
            srv->config->state_file);
    return 0;
}
