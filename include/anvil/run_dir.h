/* Who may write a run directory. One trainer at a time holds RUN/trainer.lock (an flock, which the
 * kernel releases when the process dies, however it dies); everything else only reads a run. The lock
 * file also marks the directory as anvil's: a fresh run may start in a directory that is empty, new,
 * or holds a lock file but no checkpoint yet, never in one that holds someone else's files. */
#ifndef ANVIL_RUN_DIR_H
#define ANVIL_RUN_DIR_H

typedef struct {
    int fd; /* the locked trainer.lock; -1 when not held */
} anv_run_lock_t;

/* Creates run_dir if needed and takes its lock; a held lock is refused naming the holder's pid.
 * fresh: a new run, so a directory holding files but no run is refused. Then removes the temporary
 * files (<name>.tmp.<pid>) that writers killed mid-write left there. */
int anv_run_lock(const char *run_dir, int fresh, anv_run_lock_t *lock);
void anv_run_unlock(anv_run_lock_t *lock);

#endif
