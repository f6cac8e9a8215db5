/* Agreement and rank-ordered sharing for the ranks of a data job; see ranks.h. */
#include "ranks.h"

#include <errno.h>
#include <string.h>

#define SHARE_PIECE ((size_t)64 << 20)

int ranks_size(const anv_comm_t *c) { return c ? anv_comm_size(c) : 1; }
int ranks_rank(const anv_comm_t *c) { return c ? anv_comm_rank(c) : 0; }

/* Each rank's value at its own index, summed: every rank learns all of them. */
static int gather_values(anv_comm_t *c, double mine, double **out) {
    int size = ranks_size(c);
    double *v = anv_calloc((size_t)size * sizeof *v, "rank values");
    if (!v) return -1;
    v[ranks_rank(c)] = mine;
    if (c && anv_comm_allreduce_f64(c, v, (size_t)size, ANV_REDUCE_SUM) != 0) {
        anv_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

int ranks_agree(anv_comm_t *c, int rc) {
    if (ranks_size(c) == 1) return rc;
    double *failed;
    if (gather_values(c, rc != 0, &failed) != 0) return -1;
    int first = -1;
    for (int r = 0; r < ranks_size(c) && first < 0; r++)
        if (failed[r] != 0) first = r;
    anv_free(failed);
    if (rc != 0) return -1;
    if (first >= 0) return anv_error("rank %d of the job failed (its message says why)", first);
    return 0;
}

int ranks_share(anv_comm_t *c, const void *mem, FILE *f, uint64_t n, size_t record_size, ranks_take_fn take,
                void *ctx) {
    int me = ranks_rank(c), size = ranks_size(c);
    if (size == 1 && mem) return take(ctx, 0, mem, (size_t)n);
    size_t piece = SHARE_PIECE / record_size * record_size;
    char *buf = anv_alloc(piece, "shared bytes");
    double *sizes = NULL;
    if (ranks_agree(c, buf ? 0 : -1) != 0 || gather_values(c, (double)n, &sizes) != 0) {
        anv_free(buf);
        return -1;
    }
    int rc = 0;
    if (f && fseek(f, 0, SEEK_SET) != 0) rc = anv_error("rewinding a temporary file: %s", strerror(errno));
    for (int from = 0; from < size; from++) {
        uint64_t total = (uint64_t)sizes[from];
        for (uint64_t off = 0; off < total; off += piece) {
            size_t len = total - off < piece ? (size_t)(total - off) : piece;
            char *data = from == me && mem ? (char *)mem + off : buf;
            if (from == me && !mem && rc == 0 && fread(buf, 1, len, f) != len)
                rc = anv_error("reading back a temporary file: %s", ferror(f) ? strerror(errno) : "it is shorter");
            if (size > 1 && anv_comm_broadcast(c, data, len, from) != 0) {
                /* the communicator failed: it has ended the job, or it fails on every rank */
                anv_free(buf);
                anv_free(sizes);
                return -1;
            }
            if (rc == 0 && take(ctx, from, data, len) != 0) rc = -1;
        }
    }
    anv_free(buf);
    anv_free(sizes);
    return ranks_agree(c, rc);
}
