/* The communicator and the MPI backend's entry points (comm_mpi.c, built when CMake finds MPI).
 * comm.c checks sizes, picks the backend and does the single-process cases. */
#ifndef ANVIL_COMM_INTERNAL_H
#define ANVIL_COMM_INTERNAL_H

#include "anvil/comm.h"

struct anv_comm {
    int rank, size;
    int mpi;        /* 1: MPI backend */
    double timeout; /* seconds a collective may wait */
    double seconds; /* time spent in collectives */
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

#endif
