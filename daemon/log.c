/* daemon/log.c - leveled log lines on stderr or syslog (see log.h). */
#include "daemon/log.h"

#include "daemon/config.h"
#include "engine/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "daemon/log_syslog.h"

static enum log_level current_level = LOG_INFO;
static int to_syslog;

void log_open_syslog(const char *ident)
{
    log_syslog_open(ident);
    to_syslog = 1;
}

void log_close(void)
{
    if (to_syslog)
        log_syslog_close();
    to_syslog = 0;
}

void log_set_level(enum log_level level)
{
    current_level = level;
}

int log_enabled(enum log_level level)
{
    return level >= current_level;
}

static void write_line(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(level, fmt, ap);
    va_end(ap);
}

void log_limited(struct log_limit *l, enum log_level level, const char *fmt,
                 ...)
{
    if (!log_enabled(level))
        return;
    uint64_t now = clock_mono_us(NULL);
    if (now - l->window_start_us >= 1000000) {
        if (l->suppressed)
            log_msg(level, "(%lu more lines like the next were left out in "
                    "one second)", l->suppressed);
        l->window_start_us = now;
        l->logged = 0;
        l->suppressed = 0;
    }
    if (l->logged >= LOG_LIMIT_PER_SECOND) {
        l->suppressed++;
        return;
    }
    l->logged++;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, fmt, ap);
    va_end(ap);
}

static void write_line(enum log_level level, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char msg[1024];
    if (to_syslog) {
        vsnprintf(msg, sizeof(msg), fmt, ap);
        log_syslog_line((int)level, msg);
        return;
    }
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);

    /* One fprintf per line keeps concurrent writers (tests reading the
     * log) from seeing half lines. */
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(stderr, "%s.%03ld [%s] %s\n", stamp, (long)(tv.tv_usec / 1000),
            config_log_level_name(level), msg);
    fflush(stderr);
}
