/* The communicator and the entry points of the MPI backend (comm_mpi.c, built when CMake finds MPI) and
 * of the NCCL backend (comm_nccl.c, built into the CUDA backend's module when CMake finds MPI and NCCL).
 * comm.c checks sizes, picks the backend and does the single-process cases. */
#ifndef ANVIL_COMM_INTERNAL_H
#define ANVIL_COMM_INTERNAL_H

#include "anvil/comm.h"

typedef enum { ANV_COMM_SINGLE, ANV_COMM_MPI, ANV_COMM_NCCL } anv_comm_kind_t;
typedef struct anv_nccl_backend anv_nccl_backend_t;

/* The backend of a job of `world` processes (as the launcher variable `var` announced it) whose kernels
 * run on `device` (NULL or anything but "cuda": the CPU), in a build with MPI (have_mpi) and the NCCL
 * backend (no_nccl NULL; else why it is missing). One process: single; several: MPI on the CPU, NCCL
 * on cuda. -1 with an error naming what the build lacks. */
int anv_comm_choose(long world, const char *var, const char *device, int have_mpi, const char *no_nccl,
                    anv_comm_kind_t *out);

struct anv_comm {
    int rank, size;
    int mpi;                        /* 1: MPI is up (the MPI and the NCCL backends) */
    const anv_nccl_backend_t *nccl; /* the NCCL backend; NULL for the others */
    struct anv_nccl *nccl_state;    /* its communicator */
    double timeout;                 /* seconds a collective may wait */
    double seconds;                 /* time spent in collectives */
};

#ifdef ANVIL_HAVE_MPI
int anv_mpi_init(anv_comm_t *c);
void anv_mpi_finalize(anv_comm_t *c);
void anv_mpi_abort(anv_comm_t *c, int code);
int anv_mpi_allreduce(anv_comm_t *c, void *buf, size_t n, int f64, anv_reduce_t op);
int anv_mpi_reduce_scatter(anv_comm_t *c, const float *send, float *shard, size_t n, anv_reduce_t op);
int anv_mpi_allgather(anv_comm_t *c, float *buf, size_t n);
int anv_mpi_gather(anv_comm_t *c, const float *shard, float *full, size_t n, int root);
int anv_mpi_scatter(anv_comm_t *c, const float *full, float *shard, size_t n, int root);
int anv_mpi_broadcast(anv_comm_t *c, void *buf, size_t bytes, int root);
int anv_mpi_barrier(anv_comm_t *c);
#endif

/* The NCCL backend (comm_nccl.c) is built into the CUDA backend's module with NCCL (libanvil_cuda.so,
 * kernels/cuda_module.h) and found at run time as its symbol ANV_NCCL_BACKEND. After anv_mpi_init,
 * init picks this rank's GPU and starts the NCCL communicator (sets c->nccl_state). Each collective
 * takes NCCL when every rank's buffers are GPU memory, else the MPI backend's function above. */
#define ANV_NCCL_BACKEND "anv_nccl_backend"
struct anv_nccl_backend {
    int (*init)(anv_comm_t *c);
    void (*free)(anv_comm_t *c);
    int (*allreduce)(anv_comm_t *c, void *buf, size_t n, int f64, anv_reduce_t op);
    int (*reduce_scatter)(anv_comm_t *c, const float *send, float *shard, size_t n, anv_reduce_t op);
    int (*allgather)(anv_comm_t *c, float *buf, size_t n);
    int (*gather)(anv_comm_t *c, const float *shard, float *full, size_t n, int root);
    int (*scatter)(anv_comm_t *c, const float *full, float *shard, size_t n, int root);
    int (*broadcast)(anv_comm_t *c, void *buf, size_t bytes, int root);
    int (*barrier)(anv_comm_t *c);
};

#endif
