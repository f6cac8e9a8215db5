/* The NCCL backend: the ranks of an MPI job whose kernels run on the cuda device. MPI starts the job,
 * groups the ranks by machine (each takes the GPU of its local rank modulo the visible GPUs) and carries
 * NCCL's id from rank 0; then buffers in GPU memory (CUDA managed or device memory, as anv_device_alloc
 * gives) move GPU to GPU through NCCL. Host buffers (small structs, checkpoint copies) and f64
 * all-reduces take the MPI backend. Every collective first waits for the kernels issued so far (they
 * write its buffers), runs on this backend's own stream and returns when its result is in place, so
 * its contract is the MPI backend's. The communicator is non-blocking: its collectives are polled under
 * the ANVIL_COMM_TIMEOUT deadline, and one that fails or waits too long aborts the communicator.
 * Built into the CUDA backend's module (libanvil_cuda.so) when CMake finds MPI and NCCL; comm.c finds
 * it there as the table anv_nccl_backend, and this file calls back into the executable (anv_mpi_*,
 * anv_device_sync, anv_scale_into, anv_error), which exports them. */
#include "comm_internal.h"

#include "anvil/kernels.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <time.h>

struct anv_nccl {
    ncclComm_t comm; /* NULL once aborted */
    cudaStream_t stream;
    int device; /* this rank's GPU */
};

/* Aborts the communicator (it cannot be trusted after a failure or a timeout); returns -1. */
static int give_up(struct anv_nccl *nc) {
    if (nc->comm) ncclCommAbort(nc->comm);
    nc->comm = NULL;
    return -1;
}

static int nccl_fail(struct anv_nccl *nc, ncclResult_t rc, const char *what) {
    const char *detail = nc->comm ? ncclGetLastError(nc->comm) : "";
    anv_error("NCCL %s failed: %s%s%s", what, ncclGetErrorString(rc), *detail ? ": " : "", detail);
    return give_up(nc);
}

/* Waits for the NCCL call that returned rc and for the work it queued on the stream, polling like the
 * MPI backend (a short spin, then naps of 20 us) until c->timeout seconds after t0. */
static int finish(anv_comm_t *c, ncclResult_t rc, const char *what, double t0) {
    struct anv_nccl *nc = c->nccl_state;
    if (rc != ncclSuccess && rc != ncclInProgress) return nccl_fail(nc, rc, what);
    for (long polls = 0;; polls++) {
        ncclResult_t state;
        rc = ncclCommGetAsyncError(nc->comm, &state);
        if (rc != ncclSuccess || (state != ncclSuccess && state != ncclInProgress))
            return nccl_fail(nc, rc != ncclSuccess ? rc : state, what);
        if (state == ncclSuccess) {
            cudaError_t e = cudaStreamQuery(nc->stream);
            if (e == cudaSuccess) break;
            if (e != cudaErrorNotReady) {
                anv_error("NCCL %s: CUDA error %s", what, cudaGetErrorString(e));
                return give_up(nc);
            }
        }
        if (polls < 2000) continue;
        if (anv_now() > t0 + c->timeout) {
            anv_error("NCCL %s: no answer from the other ranks in %.0f s (one of them died or hangs; "
                      "ANVIL_COMM_TIMEOUT sets the limit)",
                      what, c->timeout);
            return give_up(nc);
        }
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
    c->seconds += anv_now() - t0;
    return 0;
}

/* 1 when the GPU addresses p directly: CUDA managed or device memory. */
static int gpu_memory(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError(); /* clears the error of a pointer CUDA does not know */
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* Starts a collective over this rank's buffers a and b (NULL: none): waits for the kernels issued so
 * far, and agrees with the other ranks whether every rank's buffers are GPU memory (*gpu = 1: NCCL
 * moves them) or not (*gpu = 0: the MPI backend does, on host memory; managed memory is host memory
 * too after the wait). The ranks must agree, or some would wait in NCCL and others in MPI. The wait for
 * the kernels is compute, not time in collectives (anv_comm_seconds); the agreement is counted. */
static int prepare(anv_comm_t *c, const void *a, const void *b, int *gpu) {
    struct anv_nccl *nc = c->nccl_state;
    *gpu = 0;
    if (!nc->comm) return anv_error("NCCL: the communicator was aborted after an earlier failure");
    anv_device_sync();
    int mine = (!a || gpu_memory(a)) && (!b || gpu_memory(b)), dev = -1;
    if (mine && (cudaGetDevice(&dev) != cudaSuccess || dev != nc->device))
        return anv_error("NCCL: rank %d's kernels run on GPU %d but its communicator on GPU %d (start the "
                         "communicator, anv_comm_init, before the cuda device)",
                         c->rank, dev, nc->device);
    double host = !mine;
    if (anv_mpi_allreduce(c, &host, 1, 1, ANV_REDUCE_MAX) != 0) return -1;
    *gpu = host == 0;
    return 0;
}

/* Ends a group of NCCL calls whose first failure (if any) is rc. */
static ncclResult_t group_end(ncclResult_t rc) {
    ncclResult_t end = ncclGroupEnd();
    return rc != ncclSuccess ? rc : end;
}

static ncclResult_t copy_async(struct anv_nccl *nc, float *dst, const float *src, size_t n) {
    if (dst == src || n == 0) return ncclSuccess;
    return cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDefault, nc->stream) == cudaSuccess
               ? ncclSuccess
               : ncclUnhandledCudaError;
}

static int nccl_init(anv_comm_t *c) {
    double t0 = anv_now();
    MPI_Comm node;
    int local = 0, gpus = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return anv_error("NCCL: MPI could not group the ranks by machine");
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    cudaError_t e = cudaGetDeviceCount(&gpus);
    if (e != cudaSuccess || gpus < 1)
        return anv_error("NCCL: rank %d sees no CUDA device (%s)", c->rank,
                         e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
    struct anv_nccl *nc = anv_calloc(sizeof *nc, "NCCL communicator");
    if (!nc) return -1;
    nc->device = local % gpus;
    if ((e = cudaSetDevice(nc->device)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&nc->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        anv_free(nc);
        return anv_error("NCCL: rank %d cannot use GPU %d: %s", c->rank, local % gpus, cudaGetErrorString(e));
    }
    c->nccl_state = nc;
    struct {
        int ok;
        ncclUniqueId id;
    } hello = {0};
    if (c->rank == 0) hello.ok = ncclGetUniqueId(&hello.id) == ncclSuccess;
    int rc = anv_mpi_broadcast(c, &hello, sizeof hello, 0);
    if (rc == 0 && !hello.ok) rc = anv_error("NCCL: rank 0 could not make the communicator's id (ncclGetUniqueId)");
    if (rc == 0) {
        ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
        cfg.blocking = 0;
        rc = finish(c, ncclCommInitRankConfig(&nc->comm, c->size, hello.id, c->rank, &cfg), "init", t0);
    }
    if (rc != 0) {
        cudaStreamDestroy(nc->stream);
        anv_free(nc);
        c->nccl_state = NULL;
        return -1;
    }
    c->seconds = 0;
    anv_log(ANV_LOG_INFO, "NCCL %d.%d: rank %d on GPU %d (local rank %d, %d GPUs visible)", NCCL_MAJOR, NCCL_MINOR,
            c->rank, nc->device, local, gpus);
    return 0;
}

static void nccl_free(anv_comm_t *c) {
    struct anv_nccl *nc = c->nccl_state;
    if (nc->comm && finish(c, ncclCommFinalize(nc->comm), "finalize", anv_now()) == 0) ncclCommDestroy(nc->comm);
    cudaStreamDestroy(nc->stream);
    anv_free(nc);
    c->nccl_state = NULL;
}

static int nccl_allreduce(anv_comm_t *c, void *buf, size_t n, int f64, anv_reduce_t op) {
    int gpu = 0;
    if (f64)
        anv_device_sync();
    else if (prepare(c, buf, NULL, &gpu) != 0)
        return -1;
    if (!gpu) return anv_mpi_allreduce(c, buf, n, f64, op);
    double t0 = anv_now();
    struct anv_nccl *nc = c->nccl_state;
    ncclRedOp_t nop = op == ANV_REDUCE_MAX ? ncclMax : ncclSum;
    if (finish(c, ncclAllReduce(buf, buf, n, ncclFloat, nop, nc->comm, nc->stream), "all-reduce", t0) != 0) return -1;
    /* AVG is SUM times 1/size, as on MPI (ncclAvg would scale before summing) */
    if (op == ANV_REDUCE_AVG) anv_scale_into(buf, buf, 1.0f / (float)c->size, n);
    return 0;
}

/* Equal shards (size divides n) take NCCL's reduce-scatter; otherwise one reduce per shard to its
 * owner, grouped so that they run together. */
static int nccl_reduce_scatter(anv_comm_t *c, const float *send, float *shard, size_t n, anv_reduce_t op) {
    int gpu;
    if (prepare(c, send, shard, &gpu) != 0) return -1;
    if (!gpu) return anv_mpi_reduce_scatter(c, send, shard, n, op);
    double t0 = anv_now();
    struct anv_nccl *nc = c->nccl_state;
    size_t lo, hi;
    ncclResult_t rc;
    if (n % (size_t)c->size == 0) {
        rc = ncclReduceScatter(send, shard, n / (size_t)c->size, ncclFloat, ncclSum, nc->comm, nc->stream);
    } else {
        rc = ncclGroupStart();
        for (int r = 0; r < c->size && rc == ncclSuccess; r++) {
            anv_comm_shard(c, n, r, &lo, &hi);
            rc = ncclReduce(send + lo, r == c->rank ? shard : NULL, hi - lo, ncclFloat, ncclSum, r, nc->comm,
                            nc->stream);
        }
        rc = group_end(rc);
    }
    if (finish(c, rc, "reduce-scatter", t0) != 0) return -1;
    anv_comm_shard(c, n, c->rank, &lo, &hi);
    if (op == ANV_REDUCE_AVG) anv_scale_into(shard, shard, 1.0f / (float)c->size, hi - lo);
    return 0;
}

/* In place: NCCL's all-gather for equal shards, else each rank broadcasts its shard. */
static int nccl_allgather(anv_comm_t *c, float *buf, size_t n) {
    int gpu;
    if (prepare(c, buf, NULL, &gpu) != 0) return -1;
    if (!gpu) return anv_mpi_allgather(c, buf, n);
    double t0 = anv_now();
    struct anv_nccl *nc = c->nccl_state;
    size_t lo, hi;
    ncclResult_t rc;
    if (n % (size_t)c->size == 0) {
        anv_comm_shard(c, n, c->rank, &lo, &hi);
        rc = ncclAllGather(buf + lo, buf, hi - lo, ncclFloat, nc->comm, nc->stream);
    } else {
        rc = ncclGroupStart();
        for (int r = 0; r < c->size && rc == ncclSuccess; r++) {
            anv_comm_shard(c, n, r, &lo, &hi);
            rc = ncclBroadcast(buf + lo, buf + lo, hi - lo, ncclFloat, r, nc->comm, nc->stream);
        }
        rc = group_end(rc);
    }
    return finish(c, rc, "all-gather", t0);
}

/* Point to point: every other rank sends its shard to root, which copies its own. */
static int nccl_gather(anv_comm_t *c, const float *shard, float *full, size_t n, int root) {
    int gpu;
    if (prepare(c, shard, c->rank == root ? full : NULL, &gpu) != 0) return -1;
    if (!gpu) return anv_mpi_gather(c, shard, full, n, root);
    double t0 = anv_now();
    struct anv_nccl *nc = c->nccl_state;
    size_t lo, hi;
    ncclResult_t rc = ncclGroupStart();
    for (int r = 0; r < c->size && rc == ncclSuccess; r++) {
        anv_comm_shard(c, n, r, &lo, &hi);
        if (c->rank == root && r == root)
            rc = copy_async(nc, full + lo, shard, hi - lo);
        else if (c->rank == root)
            rc = ncclRecv(full + lo, hi - lo, ncclFloat, r, nc->comm, nc->stream);
        else if (r == c->rank)
            rc = ncclSend(shard, hi - lo, ncclFloat, root, nc->comm, nc->stream);
    }
    return finish(c, group_end(rc), "gather", t0);
}

/* Point to point: root sends every other rank its part of full and copies its own. */
static int nccl_scatter(anv_comm_t *c, const float *full, float *shard, size_t n, int root) {
    int gpu;
    if (prepare(c, shard, c->rank == root ? full : NULL, &gpu) != 0) return -1;
    if (!gpu) return anv_mpi_scatter(c, full, shard, n, root);
    double t0 = anv_now();
    struct anv_nccl *nc = c->nccl_state;
    size_t lo, hi;
    ncclResult_t rc = ncclGroupStart();
    for (int r = 0; r < c->size && rc == ncclSuccess; r++) {
        anv_comm_shard(c, n, r, &lo, &hi);
        if (c->rank == root && r == root)
            rc = copy_async(nc, shard, full + lo, hi - lo);
        else if (c->rank == root)
            rc = ncclSend(full + lo, hi - lo, ncclFloat, r, nc->comm, nc->stream);
        else if (r == c->rank)
            rc = ncclRecv(shard, hi - lo, ncclFloat, root, nc->comm, nc->stream);
    }
    return finish(c, group_end(rc), "scatter", t0);
}

static int nccl_broadcast(anv_comm_t *c, void *buf, size_t bytes, int root) {
    int gpu;
    if (prepare(c, buf, NULL, &gpu) != 0) return -1;
    if (!gpu) return anv_mpi_broadcast(c, buf, bytes, root);
    double t0 = anv_now();
    struct anv_nccl *nc = c->nccl_state;
    return finish(c, ncclBroadcast(buf, buf, bytes, ncclUint8, root, nc->comm, nc->stream), "broadcast", t0);
}

/* Every rank has reached this point and its kernels have finished. */
static int nccl_barrier(anv_comm_t *c) {
    anv_device_sync();
    return anv_mpi_barrier(c);
}

/* What comm.c looks up in the module (ANV_NCCL_BACKEND). */
__attribute__((visibility("default"))) const anv_nccl_backend_t anv_nccl_backend = {
    .init = nccl_init,
    .free = nccl_free,
    .allreduce = nccl_allreduce,
    .reduce_scatter = nccl_reduce_scatter,
    .allgather = nccl_allgather,
    .gather = nccl_gather,
    .scatter = nccl_scatter,
    .broadcast = nccl_broadcast,
    .barrier = nccl_barrier,
};
