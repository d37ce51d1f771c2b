/* daemon/state_file.h - opening, reading and replacing the state file as if
 * someone hostile shared its directory.
 *
 * Owns: the file-system side of the state file: opening an existing one
 * (a regular file only: no symbolic link, FIFO or device, and open() never
 * blocks), reading it one bounded line at a time, writing a replacement to
 * FILE.tmp (created with O_EXCL|O_NOFOLLOW after a stale one is removed,
 * so a planted link is never followed), making it durable (fsync, rename,
 * directory fsync), and appending whole records to it afterwards (write +
 * fdatasync; a failed append is cut back so the file never keeps half a
 * record).  Does not own: what the lines mean (state.c).
 *
 * Functions that fail log why, naming the path, and leave errno set.
 */
#ifndef CACHIFY_DAEMON_STATE_FILE_H
#define CACHIFY_DAEMON_STATE_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Opens path for reading.  Returns 0 with *out set, 1 when there is no such
 * file, or -1 (logged) when it cannot be opened or is not a regular file. */
int sfile_open_read(const char *path, FILE **out);

enum sfile_line {
    SFILE_LINE,     /* a whole line, without its '\n' */
    SFILE_EOF,      /* no more lines */
    SFILE_TORN,     /* the last line has no '\n': a write cut short */
    SFILE_TOO_LONG, /* a line does not fit in cap - 1 bytes */
    SFILE_ERROR,    /* a read error (errno) */
};

/* Reads the next line of f into buf (cap bytes, NUL-terminated, *len set
 * without the terminator).  Memory stays at cap whatever the file holds. */
enum sfile_line sfile_read_line(FILE *f, char *buf, size_t cap, size_t *len);

/* A replacement being written; buffered, so records cost no system call
 * each. */
struct sfile_writer {
    const char *path; /* borrowed from the caller */
    char *tmp_path;   /* path + ".tmp" */
    int fd;
    char *buf;
    size_t len, cap;
    int failed;       /* a write failed: commit refuses */
};

/* Starts path's replacement in path.tmp.  Returns 0, or -1 (logged). */
int sfile_create(struct sfile_writer *w, const char *path);

/* Adds len bytes.  Returns 0, or -1 (the commit will then fail). */
int sfile_write(struct sfile_writer *w, const void *data, size_t len);

/* Flushes, fsyncs, renames over path and fsyncs the directory.  Returns the
 * descriptor (now path's, positioned at its end, for sfile_append) when
 * keep_fd is set, else 0; -1 (logged, path.tmp removed, path untouched) on
 * failure.  The writer is finished either way. */
int sfile_commit(struct sfile_writer *w, int keep_fd);

/* Drops an unfinished replacement (path.tmp removed). */
void sfile_abort(struct sfile_writer *w);

/* Appends len bytes at *size on fd, then fdatasyncs when sync is set.
 * On success *size grows by len and 0 is returned.  When the write fails
 * the file is cut back to *size and -1 returned.  -2 means the file can
 * no longer be trusted (the cut failed, or fdatasync did: the kernel may
 * have dropped earlier unsynced pages): replace it before relying on it. */
int sfile_append(int fd, off_t *size, const void *data, size_t len, int sync);

#endif
