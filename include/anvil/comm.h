/* Collective communication for distributed training: one process, or the ranks of an MPI job.
 *
 * anv_comm_init() decides at run time. When the environment says this process is one of several
 * (mpirun sets OMPI_COMM_WORLD_SIZE, MPICH/Hydra and srun set PMI_SIZE, MVAPICH MV2_COMM_WORLD_SIZE),
 * the ranks talk over MPI, and a build without MPI fails saying so; otherwise the single-process
 * backend, whose collectives are no-ops or copies. Ranks whose kernels run on the cuda device use the
 * NCCL backend instead (builds with NCCL; a build without it fails saying so): MPI starts the job and
 * bootstraps NCCL, each rank takes the GPU of its local rank modulo the visible GPUs, and buffers in
 * GPU memory (anv_device_alloc) travel GPU to GPU; host buffers, and every f64 all-reduce, go over MPI.
 *
 * Every rank must call the collectives in the same order with the same sizes. A collective of the MPI
 * and NCCL backends waits at most ANVIL_COMM_TIMEOUT seconds (default 600): a peer that died or hangs
 * makes the others fail with an error instead of waiting forever (mpirun itself also ends the job when
 * a rank dies). Reductions of floats over MPI sum in rank order 0, 1, ...; NCCL sums in the order of its
 * ring or tree. With two ranks the sum is order independent, so every rank holds bitwise the same
 * result. Every collective returns when its result is in place (NCCL backend: kernels issued before it
 * have finished first, see anv_device_sync). */
#ifndef ANVIL_COMM_H
#define ANVIL_COMM_H

#include "anvil/base.h"

typedef struct anv_comm anv_comm_t;

typedef enum { ANV_REDUCE_SUM, ANV_REDUCE_AVG, ANV_REDUCE_MAX } anv_reduce_t;

int anv_comm_init(anv_comm_t **out); /* anv_comm_init_device(out, NULL) */
/* device: where this process's kernels run, "cpu" or "cuda"; NULL: the environment variable
 * ANVIL_DEVICE (unset: cpu). With "cuda" and several ranks this selects the rank's GPU, so call it
 * before anv_device_set("cuda") and before the first kernel. */
int anv_comm_init_device(anv_comm_t **out, const char *device);
void anv_comm_free(anv_comm_t *c); /* finalizes MPI; NULL is fine */
/* Ends every rank of the job with this exit code (MPI); for one process it only returns. */
void anv_comm_abort(anv_comm_t *c, int code);

int anv_comm_rank(const anv_comm_t *c);
int anv_comm_size(const anv_comm_t *c);
const char *anv_comm_backend(const anv_comm_t *c); /* "single", "mpi" or "nccl" */
/* Seconds this rank has spent inside collectives (waiting included) since anv_comm_init. */
double anv_comm_seconds(const anv_comm_t *c);

/* The shard of rank r when n elements are split over the ranks: [lo, hi), lo = n * r / size. */
void anv_comm_shard(const anv_comm_t *c, size_t n, int r, size_t *lo, size_t *hi);

/* In place over n values of buf on every rank. AVG is SUM times 1/size. */
int anv_comm_allreduce(anv_comm_t *c, float *buf, size_t n, anv_reduce_t op);
int anv_comm_allreduce_f64(anv_comm_t *c, double *buf, size_t n, anv_reduce_t op);
/* send: n floats on every rank; shard (hi - lo floats of this rank's anv_comm_shard) receives the
 * reduction of that part. send and shard must not overlap. */
int anv_comm_reduce_scatter(anv_comm_t *c, const float *send, float *shard, size_t n, anv_reduce_t op);
/* In place: buf (n floats) holds this rank's shard at [lo, hi); afterwards every rank holds all n. */
int anv_comm_allgather(anv_comm_t *c, float *buf, size_t n);
/* To root: on root, full (n floats) receives every rank's shard; every rank sends shard (its hi - lo
 * floats). On root, shard may point into full at its own [lo, hi). */
int anv_comm_gather(anv_comm_t *c, const float *shard, float *full, size_t n, int root);
/* From root: full (n floats, read on root only) is split and each rank's shard receives its part. */
int anv_comm_scatter(anv_comm_t *c, const float *full, float *shard, size_t n, int root);
int anv_comm_broadcast(anv_comm_t *c, void *buf, size_t bytes, int root);
int anv_comm_barrier(anv_comm_t *c);

#endif
