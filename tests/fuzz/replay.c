/* tests/fuzz/replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over
 * files, without libFuzzer, so a plain gcc build (and `make check-suites`)
 * replays the committed corpus and every crash found so far.
 *
 * Usage: replay_NAME FILE_OR_DIR...  Directories are read one level deep,
 * in name order so a failure is reproducible.  Exit status 0 when every
 * input ran; a failed check in the target aborts with the file named on
 * stderr just before.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs are small; libFuzzer's own default cap is 4 KiB. */
#define REPLAY_MAX_INPUT (16u << 20)

/* The input being run, named by the crash handler. */
static const char *current;

static void on_crash(int sig)
{
    /* Only async-signal-safe calls here. */
    static const char msg[] = "replay: crashed on input ";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    r = write(2, current, strlen(current));
    r = write(2, "\n", 1);
    (void)r;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT, f) : 0;
    fclose(f);
    if (!buf)
        return -1;
    current = path;
    /* A copy of exactly n bytes, so ASan sees reads past the input. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    int failed = 0, count = 0;
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[i]) != 0;
            count++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            if (names[j]->d_name[0] != '.') {
                snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
                failed |= run_file(path) != 0;
                count++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %d inputs%s\n", count, failed ? ", some unreadable" : "");
    return failed;
}
