/* daemon/log.h - leveled log lines on stderr, or to syslog(3).
 *
 * Owns: the log levels, the current level, the destination and the line
 * format: on stderr "YYYY-MM-DD HH:MM:SS.mmm [level] message", to syslog
 * the message alone at the matching priority (syslog adds time and pid).  Does not own: what is worth
 * logging, or the level names the config file accepts (config.c, which
 * also names the levels in log lines).  Lines below the level are dropped
 * before formatting.
 */
#ifndef CACHIFY_DAEMON_LOG_H
#define CACHIFY_DAEMON_LOG_H

#include <stdint.h>

/* Lowest first; config.c indexes its level names by these values. */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR };

/* Sets the lowest level that is written (LOG_INFO until called). */
void log_set_level(enum log_level level);

/* From now on, lines go to syslog (facility LOG_DAEMON) under ident,
 * which must stay valid until log_close (openlog keeps the pointer). */
void log_open_syslog(const char *ident);

/* Back to stderr; closes syslog if it was open. */
void log_close(void);

/* 1 when lines of `level` are written: skip costly formatting otherwise. */
int log_enabled(enum log_level level);

/* Writes one line at `level` (printf format, no trailing newline needed). */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A budget for one kind of line that clients can trigger at will (a
 * failed AUTH, a refused connection): at most LOG_LIMIT_PER_SECOND such
 * lines a second, then one line saying how many were left out, so a
 * client cannot make the loop block writing to a slow stderr.  Zero-
 * initialise one per call site. */
#define LOG_LIMIT_PER_SECOND 10

struct log_limit {
    uint64_t window_start_us; /* monotonic start of the current second */
    unsigned logged;          /* lines written in it */
    unsigned long suppressed; /* lines left out in it */
};

/* log_msg, within l's budget. */
void log_limited(struct log_limit *l, enum log_level level, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));

#endif
