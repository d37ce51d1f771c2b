/* daemon/state_file.c - the state file's file-system side (see
 * state_file.h).
 *
 * Why each flag: O_NOFOLLOW, because a link planted at FILE or FILE.tmp
 * would make us read or overwrite its target; O_EXCL on the temporary
 * file, for the same reason and because two daemons sharing one state file
 * must not write the same temporary file; O_NONBLOCK on the first open,
 * because opening a FIFO for reading blocks until a writer comes, which
 * would hang start-up before any signal handler is armed; fstat, because
 * only a regular file can be renamed over and fsynced meaningfully.
 */
#include "daemon/state_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "daemon/log.h"

/* Write buffer of a replacement: large writes, a bounded amount of memory
 * whatever the number of records. */
#define WRITE_BUFFER_BYTES (256u * 1024u)

int sfile_open_read(const char *path, FILE **out)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                            O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0) {
        log_msg(LOG_ERROR, "state file %s: cannot open: %s%s", path,
                strerror(errno),
                errno == ELOOP ? " (a symbolic link is not accepted)" : "");
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        log_msg(LOG_ERROR, "state file %s: not a regular file", path);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    /* Regular files never block; reads go through stdio from here. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *out = fdopen(fd, "r");
    if (!*out) {
        log_msg(LOG_ERROR, "state file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return 0;
}

enum sfile_line sfile_read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n + 1 >= cap) {
            /* Skip the rest so a caller that goes on stays in step. */
            while ((ch = getc(f)) != EOF && ch != '\n')
                ;
            buf[n] = '\0';
            *len = n;
            return SFILE_TOO_LONG;
        }
        buf[n++] = (char)ch;
    }
    buf[n] = '\0';
    *len = n;
    if (ch == '\n')
        return SFILE_LINE;
    if (ferror(f))
        return SFILE_ERROR;
    return n ? SFILE_TORN : SFILE_EOF;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int sfile_create(struct sfile_writer *w, const char *path)
{
    struct stat st;
    size_t plen = strlen(path);
    memset(w, 0, sizeof(*w));
    w->path = path;
    w->fd = -1;
    w->tmp_path = cfy_malloc(plen + 5);
    w->buf = cfy_malloc(WRITE_BUFFER_BYTES);
    if (!w->tmp_path || !w->buf) {
        log_msg(LOG_ERROR, "state file %s: out of memory", path);
        goto fail;
    }
    w->cap = WRITE_BUFFER_BYTES;
    memcpy(w->tmp_path, path, plen);
    memcpy(w->tmp_path + plen, ".tmp", 5);
    /* A stale temporary file (a crash mid-write) or anything planted in
     * its place is removed; unlink removes a link itself, never its
     * target.  A directory there is not ours to remove. */
    if (lstat(w->tmp_path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            log_msg(LOG_ERROR, "state file %s: %s is a directory", path,
                    w->tmp_path);
            goto fail;
        }
        if (unlink(w->tmp_path) != 0 && errno != ENOENT) {
            log_msg(LOG_ERROR, "state file %s: cannot remove stale %s: %s",
                    path, w->tmp_path, strerror(errno));
            goto fail;
        }
    }
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                  O_NOCTTY | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        log_msg(LOG_ERROR, "state file %s: cannot create %s: %s", path,
                w->tmp_path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    cfy_free(w->tmp_path);
    cfy_free(w->buf);
    w->tmp_path = w->buf = NULL;
    return -1;
}

static int flush_buffer(struct sfile_writer *w)
{
    if (w->failed)
        return -1;
    if (w->len && write_all(w->fd, w->buf, w->len) != 0) {
        w->failed = errno ? errno : EIO;
        return -1;
    }
    w->len = 0;
    return 0;
}

int sfile_write(struct sfile_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return -1;
    if (w->len + len > w->cap && flush_buffer(w) != 0)
        return -1;
    if (len > w->cap) { /* larger than the buffer: straight through */
        if (write_all(w->fd, data, len) != 0) {
            w->failed = errno ? errno : EIO;
            return -1;
        }
        return 0;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return 0;
}

static void writer_done(struct sfile_writer *w)
{
    cfy_free(w->tmp_path);
    cfy_free(w->buf);
    w->tmp_path = w->buf = NULL;
}

void sfile_abort(struct sfile_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    if (w->tmp_path)
        unlink(w->tmp_path);
    writer_done(w);
}

/* fsyncs the directory holding path, so a rename survives a power cut. */
static int sync_directory(const char *path)
{
    char *copy = cfy_strdup(path);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cfy_free(copy);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    int saved = errno;
    close(dfd);
    errno = saved;
    return rc;
}

int sfile_commit(struct sfile_writer *w, int keep_fd)
{
    const char *step = "write";
    if (flush_buffer(w) != 0) {
        errno = w->failed;
        goto fail;
    }
    step = "fsync";
    if (fsync(w->fd) != 0)
        goto fail;
    step = "rename";
    if (rename(w->tmp_path, w->path) != 0)
        goto fail;
    step = "directory fsync";
    if (sync_directory(w->path) != 0)
        goto fail_renamed;
    int fd = w->fd;
    w->fd = -1;
    writer_done(w);
    if (keep_fd)
        return fd;
    close(fd);
    return 0;
fail:
    log_msg(LOG_ERROR, "state file %s: %s of %s failed: %s", w->path, step,
            w->tmp_path, strerror(errno));
    sfile_abort(w);
    return -1;
fail_renamed:
    /* The new file is in place but its name may not survive a power cut:
     * report the failure, the caller keeps its old promises. */
    log_msg(LOG_ERROR, "state file %s: %s failed: %s", w->path, step,
            strerror(errno));
    close(w->fd);
    w->fd = -1;
    writer_done(w);
    return -1;
}

int sfile_append(int fd, off_t *size, const void *data, size_t len, int sync)
{
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, *size + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto fail;
        }
        done += (size_t)n;
    }
    if (sync && fdatasync(fd) != 0) {
        /* After a failed fdatasync Linux may have dropped the dirty pages
         * and will not report it again: nothing in this file can be
         * trusted to be on disk any more, so it must be replaced. */
        int saved = errno;
        int cut = ftruncate(fd, *size); /* -2 says replace it either way */
        (void)cut;
        errno = saved;
        return -2;
    }
    *size += (off_t)len;
    return 0;
fail:;
    int saved = errno;
    /* Half a record must not stay: the next append would follow it. */
    int cut = ftruncate(fd, *size) == 0;
    errno = saved;
    return cut ? -1 : -2;
}
