/* The MPI backend: nonblocking collectives completed under a deadline (see comm.h), so a dead or hung
 * rank ends the job with an error instead of a hang. Built only when CMake finds MPI. */
#include "comm_internal.h"

#include <mpi.h>
#include <string.h>
#include <time.h>

enum {
    BUCKET = 1 << 22, /* floats per all-reduce bucket (16 MB): buckets are in flight together */
    MAX_INFLIGHT = 16
};

static int mpi_fail(int code, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, msg, &len);
    return anv_error("MPI %s failed: %.*s", what, len, msg);
}

/* Completes n requests, polling: a short spin keeps latency low, then naps of 20 us spare the cores
 * that the other ranks of this machine are computing on. */
static int wait_all(anv_comm_t *c, MPI_Request *req, int n, const char *what, double t0) {
    double deadline = t0 + c->timeout;
    for (long polls = 0;; polls++) {
        int done = 0, rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
        if (done) break;
        if (polls < 2000) continue;
        double now = anv_now();
        if (now > deadline)
            return anv_error("MPI %s: no answer from the other ranks in %.0f s (one of them died or hangs; "
                             "ANVIL_COMM_TIMEOUT sets the limit)",
                             what, c->timeout);
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
    c->seconds += anv_now() - t0;
    return 0;
}

int anv_mpi_init(anv_comm_t *c) {
    int ready = 0, provided, rc;
    MPI_Initialized(&ready);
    if (!ready && (rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
        return mpi_fail(rc, "init");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return 0;
}

void anv_mpi_finalize(anv_comm_t *c) {
    (void)c;
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

void anv_mpi_abort(anv_comm_t *c, int code) {
    (void)c;
    MPI_Abort(MPI_COMM_WORLD, code);
}

int anv_mpi_allreduce(anv_comm_t *c, void *buf, size_t n, int f64, anv_reduce_t op) {
    double t0 = anv_now();
    MPI_Datatype type = f64 ? MPI_DOUBLE : MPI_FLOAT;
    MPI_Op mop = op == ANV_REDUCE_MAX ? MPI_MAX : MPI_SUM;
    size_t elem = f64 ? sizeof(double) : sizeof(float);
    MPI_Request req[MAX_INFLIGHT];
    for (size_t off = 0; off < n;) {
        int k = 0;
        for (; k < MAX_INFLIGHT && off < n; k++) {
            size_t len = n - off < BUCKET ? n - off : BUCKET;
            int rc =
                MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)len, type, mop, MPI_COMM_WORLD, &req[k]);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce");
            off += len;
        }
        if (wait_all(c, req, k, "all-reduce", t0) != 0) return -1;
        t0 = anv_now();
    }
    if (op == ANV_REDUCE_AVG) {
        if (f64)
            for (size_t i = 0; i < n; i++) ((double *)buf)[i] /= c->size;
        else
            for (size_t i = 0; i < n; i++) ((float *)buf)[i] *= 1.0f / (float)c->size;
    }
    return 0;
}

/* counts/displs of every rank's shard of n floats; every shard of n < 2^31 * size fits an int. */
static int shard_layout(anv_comm_t *c, size_t n, int **counts, int **displs) {
    *counts = anv_alloc(2 * (size_t)c->size * sizeof(int), "MPI shard layout");
    if (!*counts) return -1;
    *displs = *counts + c->size;
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        anv_comm_shard(c, n, r, &lo, &hi);
        if (hi - lo > 2147483647u || lo > 2147483647u) {
            anv_free(*counts);
            return anv_error("MPI shard of %zu floats is too large for one message", hi - lo);
        }
        (*counts)[r] = (int)(hi - lo);
        (*displs)[r] = (int)lo;
    }
    return 0;
}

/* Runs one collective built by the caller on its request and waits for it. */
#define RUN_SHARDED(what, call)                                                                                        \
    do {                                                                                                               \
        double t0 = anv_now();                                                                                         \
        int *counts, *displs;                                                                                          \
        if (shard_layout(c, n, &counts, &displs) != 0) return -1;                                                      \
        MPI_Request req;                                                                                               \
        int rc = (call);                                                                                               \
        int ok = rc == MPI_SUCCESS ? wait_all(c, &req, 1, what, t0) : mpi_fail(rc, what);                              \
        anv_free(counts);                                                                                              \
        return ok;                                                                                                     \
    } while (0)

static int reduce_scatter_sum(anv_comm_t *c, const float *send, float *shard, size_t n) {
    RUN_SHARDED("reduce-scatter", MPI_Ireduce_scatter(send, shard, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req));
}

int anv_mpi_reduce_scatter(anv_comm_t *c, const float *send, float *shard, size_t n, anv_reduce_t op) {
    if (reduce_scatter_sum(c, send, shard, n) != 0) return -1;
    if (op == ANV_REDUCE_AVG) {
        size_t lo, hi;
        anv_comm_shard(c, n, c->rank, &lo, &hi);
        for (size_t i = 0; i < hi - lo; i++) shard[i] *= 1.0f / (float)c->size;
    }
    return 0;
}

int anv_mpi_allgather(anv_comm_t *c, float *buf, size_t n) {
    RUN_SHARDED("all-gather", MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                                              MPI_COMM_WORLD, &req));
}

int anv_mpi_gather(anv_comm_t *c, const float *shard, float *full, size_t n, int root) {
    RUN_SHARDED("gather",
                MPI_Igatherv(c->rank == root && shard == full + displs[root] ? MPI_IN_PLACE : shard, counts[c->rank],
                             MPI_FLOAT, full, counts, displs, MPI_FLOAT, root, MPI_COMM_WORLD, &req));
}

int anv_mpi_scatter(anv_comm_t *c, const float *full, float *shard, size_t n, int root) {
    RUN_SHARDED("scatter", MPI_Iscatterv(full, counts, displs, MPI_FLOAT,
                                         c->rank == root && shard == full + displs[root] ? MPI_IN_PLACE : shard,
                                         counts[c->rank], MPI_FLOAT, root, MPI_COMM_WORLD, &req));
}

int anv_mpi_broadcast(anv_comm_t *c, void *buf, size_t bytes, int root) {
    double t0 = anv_now();
    for (size_t off = 0; off < bytes;) {
        size_t len = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off, (int)len, MPI_BYTE, root, MPI_COMM_WORLD, &req);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
        if (wait_all(c, &req, 1, "broadcast", t0) != 0) return -1;
        off += len;
        t0 = anv_now();
    }
    return 0;
}

int anv_mpi_barrier(anv_comm_t *c) {
    double t0 = anv_now();
    MPI_Request req;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    return rc == MPI_SUCCESS ? wait_all(c, &req, 1, "barrier", t0) : mpi_fail(rc, "barrier");
}
