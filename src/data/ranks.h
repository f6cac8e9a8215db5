/* The ranks of a data job (anvil data prepare under mpirun): each rank reads its part of the input
 * files, and what a rank learned reaches the others rank by rank, over the communicator's broadcasts.
 * comm NULL is one process. Every rank calls these in the same order. */
#ifndef ANVIL_DATA_RANKS_H
#define ANVIL_DATA_RANKS_H

#include "anvil/comm.h"

#include <stdio.h>

int ranks_size(const anv_comm_t *c);
int ranks_rank(const anv_comm_t *c);

/* Every rank passes its own result (0 or -1); all return -1 when any rank failed. A rank that did not
 * fail itself gets an error naming the rank that did (whose own message is on its output). */
int ranks_agree(anv_comm_t *c, int rc);

/* Called with the bytes of rank `from`, in pieces of whole records. */
typedef int (*ranks_take_fn)(void *ctx, int from, const void *data, size_t n);

/* Rank by rank, in rank order, each rank's n bytes (in memory at mem, or when mem is NULL read from
 * the start of file f) reach take on every rank, the rank that sent them included, in pieces of at
 * most 64 MiB of whole records of record_size bytes. Every rank takes part in every piece even after
 * its take failed; the result is agreed (ranks_agree). */
int ranks_share(anv_comm_t *c, const void *mem, FILE *f, uint64_t n, size_t record_size, ranks_take_fn take, void *ctx);

#endif
