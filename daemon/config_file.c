/* daemon/config_file.c - the `name value` conf file reader and the
 * requirepass_file reader (see config.h for the format and the messages).
 *
 * Owns: reading a file a line at a time with its bounds (CONF_LINE_MAX, no
 * NUL bytes), double-quoted values, comments, and "FILE:LINE: key: why"
 * messages.  Does not own: what a key means or how its value parses (the
 * table in config.c, through config_impl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/config_impl.h"

enum line_status { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NUL, LINE_ERROR };

/* Reads one line without its '\n' into buf (CONF_LINE_MAX + 1 bytes).  A
 * byte at a time, so a NUL inside the line is noticed instead of silently
 * cutting it short as fgets would. */
static enum line_status read_line(FILE *f, char *buf)
{
    size_t len = 0;
    int ch, nul = 0;

    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (len >= CONF_LINE_MAX)
            return LINE_TOO_LONG;
        if (ch == '\0')
            nul = 1;
        buf[len++] = (char)ch;
    }
    if (ch == EOF && ferror(f))
        return LINE_ERROR;
    if (ch == EOF && len == 0)
        return LINE_EOF;
    buf[len] = '\0';
    return nul ? LINE_NUL : LINE_OK;
}

/* Decodes the double-quoted value starting at p (p[0] == '"') in place.
 * Only \" and \\ are escapes, so Windows-like paths and passwords cannot be
 * mangled by accident: any other backslash is an error to fix. */
static int unquote(char *p, char *why, size_t whylen)
{
    char *out = p;
    const char *q = p + 1;

    for (;;) {
        if (*q == '\0') {
            config_say(why, whylen, "unterminated quoted value");
            return -1;
        }
        if (*q == '"')
            break;
        if (*q == '\\') {
            if (q[1] != '"' && q[1] != '\\') {
                config_say(why, whylen, "bad escape in quoted value "
                           "(only \\\" and \\\\)");
                return -1;
            }
            q++;
        }
        *out++ = *q++;
    }
    *out = '\0';
    for (q++; config_is_blank(*q); q++)
        ;
    if (*q != '\0' && !(*q == '#' && config_is_blank(q[-1]))) {
        config_say(why, whylen, "text after the closing quote");
        return -1;
    }
    return 0;
}

/* One line of a conf file: blank, a comment, or `name value`. */
static int parse_line(struct cachify_config *c, char *line, const char *path,
                      unsigned long lineno, char *err, size_t errlen)
{
    char *p = line, *name, *q, why[WHY_MAX];
    const struct key *k;

    while (config_is_blank(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    name = p;
    while (*p != '\0' && !config_is_blank(*p))
        p++;
    k = config_find_key(name, (size_t)(p - name));
    if (k == NULL) {
        char q2[CONFIG_QUOTE_BUF];
        *p = '\0';
        config_say(err, errlen, "%s:%lu: %s: unknown key", path, lineno,
                   config_quote(q2, name, 1));
        return -1;
    }
    while (config_is_blank(*p))
        p++;
    if (*p == '"') {
        if (unquote(p, why, sizeof why) != 0) {
            config_say(err, errlen, "%s:%lu: %s: %s", path, lineno, k->name,
                       why);
            return -1;
        }
    } else {
        /* p follows a blank, so a '#' right there is a comment too. */
        for (q = p; *q != '\0'; q++) {
            if (*q == '#' && (q == p || config_is_blank(q[-1]))) {
                *q = '\0';
                break;
            }
        }
        while (q > p && config_is_blank(q[-1]))
            q--;
        *q = '\0';
        if (*p == '\0') {
            config_say(err, errlen, "%s:%lu: %s: missing value", path,
                       lineno, k->name);
            return -1;
        }
    }
    if (config_set_value(c, k, p, why, sizeof why) != 0) {
        config_say(err, errlen, "%s:%lu: %s: %s", path, lineno, k->name, why);
        return -1;
    }
    return 0;
}

int config_load_file(struct cachify_config *c, const char *path,
                     char *err, size_t errlen)
{
    char line[CONF_LINE_MAX + 1];
    unsigned long lineno = 0;
    enum line_status st;
    int rc = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        config_say(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (st = read_line(f, line)) != LINE_EOF) {
        lineno++;
        if (st == LINE_TOO_LONG) {
            config_say(err, errlen, "%s:%lu: line is longer than %d bytes", path,
                lineno, CONF_LINE_MAX);
            rc = -1;
        } else if (st == LINE_NUL) {
            config_say(err, errlen, "%s:%lu: line holds a NUL byte", path,
                       lineno);
            rc = -1;
        } else if (st == LINE_ERROR) {
            config_say(err, errlen, "%s: cannot read: %s", path,
                       strerror(errno));
            rc = -1;
        } else {
            rc = parse_line(c, line, path, lineno, err, errlen);
        }
    }
    fclose(f);
    return rc;
}

/* requirepass_file: the password is the file's first line without its line
 * end ("\n" or "\r\n"), so it never shows in `ps` the way --requirepass
 * does.  Read once (requirepass_loaded), whole lines only: a NUL, an empty
 * first line or one longer than requirepass allows is an error, and the
 * password itself never appears in a message. */
int config_read_password(struct cachify_config *c, char *err, size_t errlen)
{
    const char *path = c->requirepass_file;
    const struct key *k = config_find_key("requirepass", strlen("requirepass"));
    char line[CONF_LINE_MAX + 1], why[WHY_MAX], q[CONFIG_QUOTE_BUF];
    enum line_status st;
    size_t len;
    FILE *f = fopen(path, "r");

    /* The path came from a conf file: quoted, like every value echoed. */
    path = config_quote(q, path, 1);
    if (f == NULL) {
        config_say(err, errlen, "requirepass_file: %s: cannot open: %s", path,
            strerror(errno));
        return -1;
    }
    st = read_line(f, line);
    fclose(f);
    if (st == LINE_ERROR) {
        config_say(err, errlen, "requirepass_file: %s: cannot read", path);
        return -1;
    }
    if (st == LINE_NUL || st == LINE_TOO_LONG) {
        config_say(err, errlen, "requirepass_file: %s: first line %s", path,
            st == LINE_NUL ? "holds a NUL byte" : "is too long");
        return -1;
    }
    len = st == LINE_EOF ? 0 : strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0) {
        config_say(err, errlen, "requirepass_file: %s: empty password (the first "
            "line is empty)", path);
        return -1;
    }
    if (config_set_value(c, k, line, why, sizeof why) != 0) {
        config_say(err, errlen, "requirepass_file: %s: password %s", path, why);
        return -1;
    }
    /* The copy on the stack is not left behind for a core dump to show. */
    memset(line, 0, sizeof line);
    c->requirepass_loaded = 1;
    return 0;
}
