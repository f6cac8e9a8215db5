/* Backend choice from the environment and the device, size checks, and the single-process collectives. */
#include "comm_internal.h"

#include "anvil/kernels.h"
#include "kernels/cuda_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* World size announced by a launcher (mpirun, mpiexec, srun), 1 when none; *var names the variable. */
static long launcher_world_size(const char **var) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            *var = vars[i];
            return strtol(v, NULL, 10);
        }
    }
    *var = NULL;
    return 1;
}

#ifdef ANVIL_HAVE_MPI
enum { HAVE_MPI = 1 };
#else
enum { HAVE_MPI = 0 };
#endif

int anv_comm_choose(long world, const char *var, const char *device, int have_mpi, const char *no_nccl,
                    anv_comm_kind_t *out) {
    *out = ANV_COMM_SINGLE;
    if (world <= 1) return 0;
    if (!have_mpi)
        return anv_error("started as one of %ld processes (%s=%ld) but this anvil was built without MPI: install "
                         "an MPI library (Debian: libopenmpi-dev) and rebuild, or run one process",
                         world, var, world);
    int cuda = device && strcmp(device, "cuda") == 0;
    if (cuda && no_nccl)
        return anv_error("%ld ranks on the cuda device need NCCL: %s (anvil's CUDA module has it when built where "
                         "the CUDA toolkit has nccl.h and libnccl); or train on the cpu device",
                         world, no_nccl);
    *out = cuda ? ANV_COMM_NCCL : ANV_COMM_MPI;
    return 0;
}

int anv_comm_init(anv_comm_t **out) { return anv_comm_init_device(out, NULL); }

int anv_comm_init_device(anv_comm_t **out, const char *device) {
    *out = NULL;
    anv_comm_t *c = anv_calloc(sizeof *c, "communicator");
    if (!c) return -1;
    c->size = 1;
    c->timeout = 600;
    const char *t = getenv("ANVIL_COMM_TIMEOUT");
    if (t && *t) {
        char *end;
        c->timeout = strtod(t, &end);
        if (*end || !(c->timeout > 0)) {
            anv_free(c);
            return anv_error("ANVIL_COMM_TIMEOUT='%s': expected a positive number of seconds", t);
        }
    }
    const char *var;
    long world = launcher_world_size(&var);
    if (!device) device = getenv("ANVIL_DEVICE");
    /* in the CUDA backend's module, where it was built with NCCL; why not, when it is not there */
    const anv_nccl_backend_t *nccl = NULL;
    char no_nccl[512] = "not looked up";
    if (HAVE_MPI && world > 1 && device && strcmp(device, "cuda") == 0) {
        nccl = anv_cuda_module_symbol(ANV_NCCL_BACKEND);
        snprintf(no_nccl, sizeof no_nccl, "%s", nccl ? "" : anv_last_error());
    }
    anv_comm_kind_t kind;
    if (anv_comm_choose(world, var, device, HAVE_MPI, nccl ? NULL : no_nccl, &kind) != 0) {
        anv_free(c);
        return -1;
    }
#ifdef ANVIL_HAVE_MPI
    if (kind != ANV_COMM_SINGLE) {
        if (anv_mpi_init(c) != 0) {
            anv_free(c);
            return -1;
        }
        c->mpi = 1;
        if (c->size != world) {
            anv_mpi_abort(c, 1);
            anv_free(c);
            return anv_error("%s=%ld but MPI reports %d processes", var, world, c->size);
        }
    }
#endif
    /* on failure MPI stays up: the process exits with the error and mpirun ends the job */
    if (kind == ANV_COMM_NCCL && (c->nccl = nccl)->init(c) != 0) {
        anv_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void anv_comm_free(anv_comm_t *c) {
    if (!c) return;
    if (c->nccl) c->nccl->free(c);
#ifdef ANVIL_HAVE_MPI
    if (c->mpi) anv_mpi_finalize(c);
#endif
    anv_free(c);
}

void anv_comm_abort(anv_comm_t *c, int code) {
#ifdef ANVIL_HAVE_MPI
    if (c && c->mpi) anv_mpi_abort(c, code);
#else
    (void)c;
    (void)code;
#endif
}

int anv_comm_rank(const anv_comm_t *c) { return c->rank; }
int anv_comm_size(const anv_comm_t *c) { return c->size; }
const char *anv_comm_backend(const anv_comm_t *c) { return c->nccl ? "nccl" : c->mpi ? "mpi" : "single"; }
double anv_comm_seconds(const anv_comm_t *c) { return c->seconds; }

void anv_comm_shard(const anv_comm_t *c, size_t n, int r, size_t *lo, size_t *hi) {
    /* n * r overflows only beyond 2^64 / size elements */
    *lo = n * (size_t)r / (size_t)c->size;
    *hi = n * (size_t)(r + 1) / (size_t)c->size;
}

/* The NCCL or the MPI backend when the job has several ranks; otherwise the one-process result. */
#define NCCL_OR(call)                                                                                                  \
    if (c->nccl) return c->nccl->call
#ifdef ANVIL_HAVE_MPI
#define MPI_OR(call)                                                                                                   \
    if (c->mpi) return call
#else
#define MPI_OR(call) (void)c
#endif

int anv_comm_allreduce(anv_comm_t *c, float *buf, size_t n, anv_reduce_t op) {
    NCCL_OR(allreduce(c, buf, n, 0, op));
    MPI_OR(anv_mpi_allreduce(c, buf, n, 0, op));
    (void)buf, (void)n, (void)op;
    return 0;
}

int anv_comm_allreduce_f64(anv_comm_t *c, double *buf, size_t n, anv_reduce_t op) {
    NCCL_OR(allreduce(c, buf, n, 1, op));
    MPI_OR(anv_mpi_allreduce(c, buf, n, 1, op));
    (void)buf, (void)n, (void)op;
    return 0;
}

int anv_comm_reduce_scatter(anv_comm_t *c, const float *send, float *shard, size_t n, anv_reduce_t op) {
    if (op == ANV_REDUCE_MAX) return anv_error("reduce-scatter supports sum and average only");
    NCCL_OR(reduce_scatter(c, send, shard, n, op));
    MPI_OR(anv_mpi_reduce_scatter(c, send, shard, n, op));
    anv_device_sync(); /* the copies below read what kernels wrote */
    memcpy(shard, send, n * sizeof(float));
    return 0;
}

int anv_comm_allgather(anv_comm_t *c, float *buf, size_t n) {
    NCCL_OR(allgather(c, buf, n));
    MPI_OR(anv_mpi_allgather(c, buf, n));
    (void)buf, (void)n;
    return 0;
}

int anv_comm_gather(anv_comm_t *c, const float *shard, float *full, size_t n, int root) {
    NCCL_OR(gather(c, shard, full, n, root));
    MPI_OR(anv_mpi_gather(c, shard, full, n, root));
    (void)root;
    anv_device_sync();
    if (full != shard) memmove(full, shard, n * sizeof(float));
    return 0;
}

int anv_comm_scatter(anv_comm_t *c, const float *full, float *shard, size_t n, int root) {
    NCCL_OR(scatter(c, full, shard, n, root));
    MPI_OR(anv_mpi_scatter(c, full, shard, n, root));
    (void)root;
    anv_device_sync();
    if (full != shard) memmove(shard, full, n * sizeof(float));
    return 0;
}

int anv_comm_broadcast(anv_comm_t *c, void *buf, size_t bytes, int root) {
    NCCL_OR(broadcast(c, buf, bytes, root));
    MPI_OR(anv_mpi_broadcast(c, buf, bytes, root));
    (void)buf, (void)bytes, (void)root;
    return 0;
}

int anv_comm_barrier(anv_comm_t *c) {
    NCCL_OR(barrier(c));
    MPI_OR(anv_mpi_barrier(c));
    return 0;
}
