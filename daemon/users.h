/* daemon/users.h - named users and the keys each may touch (config `user`
 * lines), in the spirit of Redis ACLs but small.
 *
 * Owns: the syntax of one `user` line, the user list built from the
 * config (passwords read from their files), finding a user by name, and
 * the questions the dispatcher asks: may this user touch this key, change
 * keys, force a release.  Does not own: which arguments of a command are
 * keys or whether it forces (commands.c's table), AUTH (cmd_server.c).
 *
 *   user NAME password-file PATH keys PREFIX [PREFIX ...] [readonly] [force]
 *
 * NAME: 1 to USER_NAME_MAX bytes of letters, digits, '_', '-', '.', not
 * "default" (that user is requirepass's).  PATH: a file whose first line is
 * the password.  PREFIX: the user may take, release, extend and see keys
 * that start with one of them; `*` alone means every key.  readonly: the
 * user may only look (IS_LOCKED, PTTL, GET, EXISTS, ...).  force: the user
 * may also end or change a lock without its token (RELEASE without one,
 * DEL, a plain SET, EXPIRE, ...), under its prefixes.
 */
#ifndef CACHIFY_DAEMON_USERS_H
#define CACHIFY_DAEMON_USERS_H

#include <stddef.h>

/* Bounds, so a user check is a small constant amount of work per key. */
#define USERS_MAX 64
#define USER_NAME_MAX 64
#define USER_PREFIXES_MAX 32
#define USER_PREFIX_MAX 256
#define USER_PASSWORD_MAX 512

struct user {
    char *name;
    char *password;
    char **prefixes;   /* nprefixes of them; "*" alone matches every key */
    size_t nprefixes;
    int readonly;
    int force;
};

struct user_list {
    struct user *v;
    size_t n;
};

/* Checks one `user` value (the line after the word `user`); on success
 * *out gets a normalised copy (single spaces, malloc'd) and 0 is returned,
 * else -1 with why set.  The password file is read later (users_build). */
int users_check_line(const char *value, char **out, char *why, size_t whylen);

/* The list for config text: normalised lines joined by '\n' ("" for none).
 * Reads each password file.  NULL with why set on error (a file missing or
 * empty, a name given twice, too many users, out of memory). */
struct user_list *users_build(const char *text, char *why, size_t whylen);

void users_free(struct user_list *l);

/* The user called name (len bytes), or NULL. */
const struct user *users_find(const struct user_list *l, const char *name,
                              size_t len);

/* 1 when u may touch key (keylen bytes): it starts with one of u's
 * prefixes. */
int user_may_access(const struct user *u, const char *key, size_t keylen);

/* Compares a given password with a secret in time that depends only on
 * the secret's length.  1 when equal. */
int password_matches(const char *given, size_t len, const char *secret);

#endif
