/* The one writer of a run directory (run_dir.h). */
#include "anvil/run_dir.h"

#include "anvil/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* "<anything>.tmp.<digits>": anv_atomic_open's temporary files. */
static int is_temporary(const char *name, long *pid) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    for (const char *next; (next = strstr(t + 1, ".tmp."));) t = next;
    const char *digits = t + 5;
    if (!*digits) return 0;
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    *pid = strtol(digits, NULL, 10);
    return 1;
}

/* A writer that is gone left its temporary file for good; a live one (an export into the run
 * directory, say) is still writing it. */
static int process_alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

static void remove_stale_temporaries(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return;
    const struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        char path[4200];
        struct stat sb;
        if (!is_temporary(e->d_name, &pid) || process_alive(pid)) continue;
        if (anv_path_join(path, sizeof path, run_dir, e->d_name) != 0 || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (unlink(path) == 0)
            anv_log(ANV_LOG_INFO, "%s: removed a temporary file (%.1f MB) that dead writer pid %ld left", path,
                    (double)sb.st_size / 1e6, pid);
    }
    closedir(d);
}

static int refuse_foreign(const char *run_dir, const char *lock_path) {
    char state[4200];
    if (anv_path_join(state, sizeof state, run_dir, "state.json") != 0) return -1;
    if (anv_path_exists(lock_path) || anv_path_exists(state)) return 0;
    int has = anv_dir_has_entries(run_dir);
    if (has < 0) return -1;
    if (has)
        return anv_error("%s: holds files but no anvil run; training would overwrite them (choose a new or empty "
                         "--out)",
                         run_dir);
    return 0;
}

int anv_run_lock(const char *run_dir, int fresh, anv_run_lock_t *lock) {
    char path[4200];
    lock->fd = -1;
    if (anv_path_join(path, sizeof path, run_dir, "trainer.lock") != 0) return -1;
    if (fresh && (refuse_foreign(run_dir, path) != 0 || anv_mkdir_p(run_dir) != 0)) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return anv_error("%s: cannot open the run's lock: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char holder[32] = {0};
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        close(fd);
        if (err != EWOULDBLOCK) return anv_error("%s: cannot lock the run: %s", path, strerror(err));
        long pid = n > 0 ? strtol(holder, NULL, 10) : 0;
        if (pid > 0)
            return anv_error("%s: another trainer (pid %ld) is writing this run; wait for it or stop it first", run_dir,
                             pid);
        return anv_error("%s: another trainer is writing this run; wait for it or stop it first", run_dir);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int err = errno;
        close(fd);
        return anv_error("%s: cannot write the lock holder's pid: %s", path, strerror(err));
    }
    lock->fd = fd;
    remove_stale_temporaries(run_dir);
    return 0;
}

void anv_run_unlock(anv_run_lock_t *lock) {
    if (lock->fd >= 0) close(lock->fd);
    lock->fd = -1;
}
