/* daemon/config_impl.h - what config.c and config_file.c share, and
 * nothing else includes: the key table's row type and the helpers both
 * use to find a key, store a value and word a message.
 *
 * Owns nothing itself: config.c owns the table and these helpers,
 * config_file.c reads `name value` files (and requirepass_file) with them.
 */
#ifndef CACHIFY_DAEMON_CONFIG_IMPL_H
#define CACHIFY_DAEMON_CONFIG_IMPL_H

#include <stddef.h>

#include "daemon/config.h"

/* A conf line may hold at most this many bytes (its newline not counted):
 * room for any path or bind list, a bounded stack buffer, and anything
 * longer is almost surely not a conf file at all. */
#define CONF_LINE_MAX 4096

/* The "why" part of a message: a quoted value plus a short sentence. */
#define WHY_MAX 512

enum key_type {
    KEY_STRING, /* char *, always owned and non-NULL after config_defaults */
    KEY_INT,    /* int or long long (picked by the field's size), in [min,max] */
    KEY_ENUM,   /* an int-sized enum: an index into choices[] */
    KEY_BOOL,   /* int: "yes" is 1, "no" is 0 (nothing else, as in redis.conf) */
};

struct key {
    const char *name;
    enum key_type type;
    size_t offset;  /* of the field in struct cachify_config */
    size_t size;    /* of that field, to store an int or a long long */
    long long min;  /* KEY_INT: smallest value accepted */
    long long max;  /* KEY_INT: largest; KEY_STRING: longest in bytes, 0 = any */
    long long def;  /* KEY_INT default, KEY_ENUM default index */
    const char *def_str;        /* KEY_STRING default */
    const char *const *choices; /* KEY_ENUM names, NULL-terminated */
    /* KEY_STRING: validates and stores a normalised copy in *out (malloc);
     * NULL means any text is fine and is stored as given. */
    int (*convert)(const char *value, char **out, char *why, size_t whylen);
    const char *unit; /* shown after integer defaults; "" for none */
    const char *help; /* one line, for config_usage() */
    int append;       /* KEY_STRING: each line adds one, '\n' between */
};

/* The key named by the len bytes at name (not NUL-terminated for
 * --name=value; a '-' stands for a '_'), or NULL. */
const struct key *config_find_key(const char *name, size_t len);

/* Parses value for key k and stores it in c; on error leaves c unchanged
 * and writes the reason (without where or key) to why[whylen]. */
int config_set_value(struct cachify_config *c, const struct key *k,
                     const char *value, char *why, size_t whylen);

/* snprintf into buf[len], a no-op when buf is NULL or len 0. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void config_say(char *buf, size_t len, const char *fmt, ...);

/* 1 for the blanks that separate a conf line's words. */
int config_is_blank(char ch);

/* config_file.c: reads requirepass_file's first line into requirepass
 * (config_check calls it once).  0, or -1 with err. */
int config_read_password(struct cachify_config *c, char *err, size_t errlen);

#endif
