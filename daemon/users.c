/* daemon/users.c - `user` lines, the user list and its checks (see
 * users.h).
 *
 * A line is checked word by word when the config is read, so a mistake is
 * named with its file and line; the password files are read when the list
 * is built (at start and at each SIGHUP), so a password can change without
 * touching the config.  Lookups are linear over at most USERS_MAX users
 * and USER_PREFIXES_MAX prefixes: a bounded cost per request, and no
 * table to keep in step.
 */
#include "daemon/users.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* The next blank-separated word of *p: its start and length; 0 at the
 * end. */
static size_t next_word(const char **p, const char **word)
{
    const char *s = *p;
    while (is_blank(*s))
        s++;
    *word = s;
    while (*s != '\0' && !is_blank(*s))
        s++;
    *p = s;
    return (size_t)(s - *word);
}

static int word_is(const char *w, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(w, lit, len) == 0;
}

static int name_ok(const char *w, size_t len)
{
    if (len == 0 || len > USER_NAME_MAX || word_is(w, len, "default"))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = w[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
              ch == '.'))
            return 0;
    }
    return 1;
}

/* The parts of one line, pointing into it. */
struct parsed {
    const char *name, *path;
    size_t name_len, path_len;
    const char *prefix[USER_PREFIXES_MAX];
    size_t prefix_len[USER_PREFIXES_MAX];
    size_t nprefixes;
    int readonly, force;
};

static int parse(const char *value, struct parsed *u, char *why,
                 size_t whylen)
{
    const char *p = value, *w;
    size_t len;
    memset(u, 0, sizeof(*u));
    len = next_word(&p, &w);
    if (!name_ok(w, len))
        return fail(why, whylen, "the first word must be a user name (1 to "
                    "%d letters, digits, '_', '-', '.'; not \"default\")",
                    USER_NAME_MAX);
    u->name = w;
    u->name_len = len;
    len = next_word(&p, &w);
    if (!word_is(w, len, "password-file"))
        return fail(why, whylen, "expected password-file PATH after the "
                    "user name");
    len = next_word(&p, &w);
    if (len == 0)
        return fail(why, whylen, "password-file needs a path");
    u->path = w;
    u->path_len = len;
    int in_keys = 0, keys_seen = 0;
    while ((len = next_word(&p, &w)) != 0) {
        if (word_is(w, len, "readonly")) {
            u->readonly = 1;
            in_keys = 0;
        } else if (word_is(w, len, "force")) {
            u->force = 1;
            in_keys = 0;
        } else if (word_is(w, len, "keys")) {
            if (keys_seen)
                return fail(why, whylen, "keys given twice");
            in_keys = keys_seen = 1;
        } else if (in_keys) {
            if (u->nprefixes == USER_PREFIXES_MAX)
                return fail(why, whylen, "more than %d key prefixes",
                            USER_PREFIXES_MAX);
            if (len > USER_PREFIX_MAX)
                return fail(why, whylen, "a key prefix longer than %d bytes",
                            USER_PREFIX_MAX);
            u->prefix[u->nprefixes] = w;
            u->prefix_len[u->nprefixes++] = len;
        } else {
            return fail(why, whylen, "unexpected word '%.*s' (expected keys, "
                        "readonly or force)", (int)(len > 40 ? 40 : len), w);
        }
    }
    if (u->nprefixes == 0)
        return fail(why, whylen, "expected keys PREFIX [PREFIX ...] (`keys *` "
                    "for every key)");
    return 0;
}

int users_check_line(const char *value, char **out, char *why, size_t whylen)
{
    struct parsed u;
    if (parse(value, &u, why, whylen) != 0)
        return -1;
    /* Normalised: one space between words, so equal lines compare equal
     * at a reload. */
    size_t cap = strlen(value) + 1;
    char *copy = cfy_malloc(cap);
    if (!copy)
        return fail(why, whylen, "out of memory");
    const char *p = value, *w;
    size_t len, n = 0;
    while ((len = next_word(&p, &w)) != 0) {
        if (n)
            copy[n++] = ' ';
        memcpy(copy + n, w, len);
        n += len;
    }
    copy[n] = '\0';
    *out = copy;
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = cfy_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* The first line of path, as the password. */
static char *read_password(const char *path, const char *user, char *why,
                           size_t whylen)
{
    char buf[USER_PASSWORD_MAX + 2];
    FILE *f = fopen(path, "re");
    if (!f) {
        fail(why, whylen, "user %s: cannot read password-file %s", user, path);
        return NULL;
    }
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    size_t len = line ? strcspn(buf, "\r\n") : 0;
    if (len == 0 || len > USER_PASSWORD_MAX) {
        fail(why, whylen, "user %s: password-file %s must start with a "
             "password of 1 to %d bytes", user, path, USER_PASSWORD_MAX);
        return NULL;
    }
    char *pw = dup_n(buf, len);
    memset(buf, 0, sizeof(buf));
    if (!pw)
        fail(why, whylen, "out of memory");
    return pw;
}

static int build_one(struct user *dst, const char *line, char *why,
                     size_t whylen)
{
    struct parsed u;
    if (parse(line, &u, why, whylen) != 0)
        return -1;
    dst->name = dup_n(u.name, u.name_len);
    char *path = dup_n(u.path, u.path_len);
    dst->prefixes = cfy_calloc(u.nprefixes, sizeof(char *));
    if (!dst->name || !path || !dst->prefixes) {
        cfy_free(path);
        return fail(why, whylen, "out of memory");
    }
    for (size_t i = 0; i < u.nprefixes; i++) {
        dst->prefixes[i] = dup_n(u.prefix[i], u.prefix_len[i]);
        if (!dst->prefixes[i]) {
            cfy_free(path);
            return fail(why, whylen, "out of memory");
        }
        dst->nprefixes = i + 1;
    }
    dst->readonly = u.readonly;
    dst->force = u.force;
    dst->password = read_password(path, dst->name, why, whylen);
    cfy_free(path);
    return dst->password ? 0 : -1;
}

struct user_list *users_build(const char *text, char *why, size_t whylen)
{
    struct user_list *l = cfy_calloc(1, sizeof(*l));
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    lines += text[0] != '\0';
    if (!l || (lines && !(l->v = cfy_calloc(lines, sizeof(*l->v))))) {
        cfy_free(l);
        fail(why, whylen, "out of memory");
        return NULL;
    }
    if (lines > USERS_MAX) {
        users_free(l);
        fail(why, whylen, "more than %d users", USERS_MAX);
        return NULL;
    }
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, "\n");
        char *line = dup_n(p, len);
        int rc = line ? build_one(&l->v[l->n], line, why, whylen)
                      : fail(why, whylen, "out of memory");
        cfy_free(line);
        l->n++; /* freed by users_free even when half built */
        if (rc != 0) {
            users_free(l);
            return NULL;
        }
        const char *name = l->v[l->n - 1].name;
        if (users_find(l, name, strlen(name)) != &l->v[l->n - 1]) {
            fail(why, whylen, "user %s is defined twice", name);
            users_free(l);
            return NULL;
        }
        p += len + (p[len] == '\n');
    }
    return l;
}

void users_free(struct user_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        struct user *u = &l->v[i];
        cfy_free(u->name);
        if (u->password) {
            memset(u->password, 0, strlen(u->password));
            cfy_free(u->password);
        }
        for (size_t j = 0; j < u->nprefixes; j++)
            cfy_free(u->prefixes[j]);
        cfy_free(u->prefixes);
    }
    cfy_free(l->v);
    cfy_free(l);
}

const struct user *users_find(const struct user_list *l, const char *name,
                              size_t len)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (l->v[i].name && strlen(l->v[i].name) == len &&
            memcmp(l->v[i].name, name, len) == 0)
            return &l->v[i];
    return NULL;
}

int user_may_access(const struct user *u, const char *key, size_t keylen)
{
    for (size_t i = 0; i < u->nprefixes; i++) {
        const char *pre = u->prefixes[i];
        size_t n = strlen(pre);
        if ((n == 1 && pre[0] == '*') ||
            (n <= keylen && memcmp(key, pre, n) == 0))
            return 1;
    }
    return 0;
}

int password_matches(const char *given, size_t len, const char *secret)
{
    size_t secret_len = strlen(secret);
    unsigned char diff = len != secret_len;
    for (size_t i = 0; i < secret_len; i++)
        diff |= (unsigned char)secret[i] ^
                (unsigned char)(i < len ? given[i] : 0);
    return diff == 0;
}
