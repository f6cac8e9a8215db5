/* The communicator in one process (shards, collectives as copies), the choice of backend for every
 * world size, device and build, and the ZeRO-1 pieces of the optimizer: AdamW over shards and clipping
 * from a summed norm give bitwise the full-block results. The MPI backend is tested end to end by
 * tests/e2e_mpi.sh; the NCCL backend needs GPUs (see scripts/gpu-check). */
#include "anvil/comm.h"
#include "anvil/kernels.h"
#include "anvil/optim.h"
#include "dist/comm_internal.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>

static void test_single(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_SIZE");
    unsetenv("MV2_COMM_WORLD_SIZE");
    anv_comm_t *c;
    CHECK(anv_comm_init(&c) == 0, "%s", anv_last_error());
    if (!c) return;
    CHECK(anv_comm_rank(c) == 0 && anv_comm_size(c) == 1, "rank %d size %d", anv_comm_rank(c), anv_comm_size(c));
    CHECK(strcmp(anv_comm_backend(c), "single") == 0, "backend %s", anv_comm_backend(c));
    float a[5] = {1, -2, 3.5f, 4, 5}, want[5], b[5] = {0}, full[5] = {0};
    memcpy(want, a, sizeof a);
    double d[2] = {0.25, 7};
    int ok = anv_comm_allreduce(c, a, 5, ANV_REDUCE_AVG) == 0 && anv_comm_allreduce_f64(c, d, 2, ANV_REDUCE_SUM) == 0 &&
             anv_comm_reduce_scatter(c, a, b, 5, ANV_REDUCE_SUM) == 0 && anv_comm_allgather(c, b, 5) == 0 &&
             anv_comm_gather(c, b, full, 5, 0) == 0 && anv_comm_broadcast(c, d, sizeof d, 0) == 0 &&
             anv_comm_barrier(c) == 0;
    CHECK(ok, "%s", anv_last_error());
    CHECK(memcmp(a, want, sizeof a) == 0 && memcmp(b, want, sizeof a) == 0 && memcmp(full, want, sizeof a) == 0 &&
              d[0] == 0.25 && d[1] == 7,
          "one process: collectives must leave the values as they are");
    CHECK(anv_comm_reduce_scatter(c, a, b, 5, ANV_REDUCE_MAX) != 0, "reduce-scatter with max must be refused");
    size_t lo, hi;
    anv_comm_shard(c, 10, 0, &lo, &hi);
    CHECK(lo == 0 && hi == 10, "one rank owns all: [%zu, %zu)", lo, hi);
    printf("  single process: all-reduce, reduce-scatter, all-gather, gather, broadcast keep the values\n");
    anv_comm_free(c);

    setenv("ANVIL_COMM_TIMEOUT", "soon", 1);
    CHECK(anv_comm_init(&c) != 0 && strstr(anv_last_error(), "ANVIL_COMM_TIMEOUT"), "a bad timeout must be refused");
    printf("  ANVIL_COMM_TIMEOUT=soon: %s\n", anv_last_error());
    unsetenv("ANVIL_COMM_TIMEOUT");
}

/* Which backend a job of `world` ranks on `device` gets in a build with or without MPI and NCCL. */
static void test_choose(void) {
    static const char *const names[] = {"single", "mpi", "nccl"};
    const struct {
        long world;
        const char *device;
        int mpi;
        const char *no_nccl; /* NULL: the NCCL backend is there */
        int want;            /* the backend, or -1: refused */
        const char *error;   /* then the error names this */
    } cases[] = {
        {1, "cuda", 0, "no module", ANV_COMM_SINGLE, NULL}, /* one process needs neither MPI nor NCCL */
        {1, NULL, 1, NULL, ANV_COMM_SINGLE, NULL},
        {2, NULL, 1, NULL, ANV_COMM_MPI, NULL}, /* no device given: the CPU */
        {2, "cpu", 1, NULL, ANV_COMM_MPI, NULL},
        {4, "cuda", 1, NULL, ANV_COMM_NCCL, NULL},
        /* GPUs without NCCL: refused with the reason, not MPI with every rank on one GPU */
        {2, "cuda", 1, "libanvil_cuda.so lacks the symbol anv_nccl_backend", -1, "need NCCL: libanvil_cuda.so lacks"},
        {2, "cpu", 0, NULL, -1, "without MPI"},
        {2, "cuda", 0, NULL, -1, "without MPI"}, /* NCCL is bootstrapped by MPI */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        anv_comm_kind_t kind = ANV_COMM_MPI;
        anv_error("none");
        int rc = anv_comm_choose(cases[i].world, "OMPI_COMM_WORLD_SIZE", cases[i].device, cases[i].mpi,
                                 cases[i].no_nccl, &kind);
        const char *device = cases[i].device ? cases[i].device : "(unset)";
        if (cases[i].want < 0) {
            CHECK(rc != 0 && strstr(anv_last_error(), cases[i].error), "%ld ranks on %s, mpi %d nccl %d: %s",
                  cases[i].world, device, cases[i].mpi, !cases[i].no_nccl, rc ? anv_last_error() : "accepted");
            printf("  %ld ranks on %-7s mpi %d nccl %d: refused: %s\n", cases[i].world, device, cases[i].mpi,
                   !cases[i].no_nccl, anv_last_error());
        } else {
            CHECK(rc == 0 && (int)kind == cases[i].want, "%ld ranks on %s, mpi %d nccl %d: got %s, want %s",
                  cases[i].world, device, cases[i].mpi, !cases[i].no_nccl, rc ? anv_last_error() : names[kind],
                  names[cases[i].want]);
            printf("  %ld ranks on %-7s mpi %d nccl %d: %s\n", cases[i].world, device, cases[i].mpi, !cases[i].no_nccl,
                   rc ? "refused" : names[kind]);
        }
    }
    /* one process on the cuda device starts without a GPU: nothing to communicate */
    anv_comm_t *c;
    CHECK(anv_comm_init_device(&c, "cuda") == 0 && strcmp(anv_comm_backend(c), "single") == 0, "%s",
          c ? anv_comm_backend(c) : anv_last_error());
    anv_comm_free(c);
}

/* ZeRO-1 on one machine, by hand: 3 shards of the parameter block, each updated by its own AdamW
 * state from its slice of the gradients and clipped with the norm summed over the shards, must give
 * bitwise the parameters, moments and norm of the full-block update. */
static void test_adamw_shards(void) {
    anv_config_t cfg = anv_config_gpt2(2, 2, 16, 70, 8);
    anv_model_t *full = NULL, *sharded = NULL;
    CHECK(anv_model_create(&cfg, &full) == 0 && anv_model_create(&cfg, &sharded) == 0, "%s", anv_last_error());
    size_t n = anv_model_n_params(full);
    anv_model_init(full, 5);
    anv_model_init(sharded, 5);
    anv_rng_t rng;
    anv_rng_seed(&rng, 3);
    float *g = anv_model_grads(full);
    for (size_t i = 0; i < n; i++) g[i] = (float)(anv_rng_uniform(&rng) - 0.5) * 0.3f;
    float *gs = malloc(n * sizeof(float));
    memcpy(gs, g, n * sizeof(float));
    anv_adamw_config_t oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    anv_adamw_t opt, part[3];
    CHECK(anv_adamw_init(&opt, n) == 0, "%s", anv_last_error());
    size_t cut[4] = {0, n / 3 + 7, 2 * n / 3 - 5, n}; /* boundaries inside tensors */
    for (int r = 0; r < 3; r++) CHECK(anv_adamw_init_shard(&part[r], cut[r], cut[r + 1]) == 0, "%s", anv_last_error());
    float norm_full = 0, norm_sharded = 0;
    for (int step = 0; step < 3; step++) {
        float lr = 0.01f * (float)(step + 1), max_norm = 0.5f;
        norm_full = anv_clip_grad_norm(g, n, max_norm);
        anv_adamw_step(&opt, full, &oc, lr);
        double sumsq = 0;
        for (int r = 0; r < 3; r++) sumsq += anv_sumsq(gs + cut[r], cut[r + 1] - cut[r]);
        for (int r = 0; r < 3; r++) {
            norm_sharded = anv_clip_grads_by(gs + cut[r], cut[r + 1] - cut[r], sumsq, max_norm);
            anv_adamw_step_shard(&part[r], sharded, gs + cut[r], &oc, lr);
        }
        for (size_t i = 0; i < n; i++) g[i] = gs[i] = (float)(anv_rng_uniform(&rng) - 0.5) * 0.3f;
    }
    int params = memcmp(anv_model_params(full), anv_model_params(sharded), n * sizeof(float)) != 0, moments = 0;
    for (int r = 0; r < 3; r++)
        moments += memcmp(opt.m + cut[r], part[r].m, part[r].n * sizeof(float)) != 0 ||
                   memcmp(opt.v + cut[r], part[r].v, part[r].n * sizeof(float)) != 0;
    printf("  AdamW over 3 shards vs the whole block, 3 clipped steps: parameters %s, moments %s, norm %.9g vs %.9g "
           "(relative error %.2e)\n",
           params ? "differ" : "bitwise equal", moments ? "differ" : "bitwise equal", (double)norm_sharded,
           (double)norm_full, fabs((double)norm_sharded - norm_full) / norm_full);
    CHECK(!params && !moments, "sharded AdamW differs from the full update");
    /* the sums of squares of the shards add in another order: equal to a few ulps of a double */
    CHECK(fabsf(norm_sharded - norm_full) <= 1e-6f * norm_full, "norm %g vs %g", (double)norm_sharded,
          (double)norm_full);
    for (int r = 0; r < 3; r++) anv_adamw_free(&part[r]);
    anv_adamw_free(&opt);
    free(gs);
    anv_model_free(full);
    anv_model_free(sharded);
}

int main(void) {
    test_single();
    test_choose();
    test_adamw_shards();
    return check_done("test_comm");
}
