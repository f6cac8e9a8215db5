/* Loader: sequential windows, rank slices, shuffling, exact resume, vocabulary and shard errors. */
#include "anvil/loader.h"
#include "anvil/shard.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

/* A shard whose token i is (base + i) % mod. */
static void write_shard(const char *name, size_t n, uint32_t base, uint32_t mod, size_t vocab) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint32_t *t = malloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++) t[i] = (uint32_t)((base + i) % mod);
    anv_shard_writer_t w;
    int ok = anv_shard_writer_open(&w, path, vocab) == 0 && anv_shard_writer_append(&w, t, n) == 0 &&
             anv_shard_writer_close(&w) == 0;
    CHECK(ok, "write %s: %s", path, anv_last_error());
    free(t);
}

static anv_loader_t *open_loader(const char *split, int B, int T, int rank, int world, int shuffle, size_t vocab) {
    anv_loader_config_t c = {dir, split, B, T, rank, world, shuffle, 7, vocab, 0};
    anv_loader_t *l = NULL;
    if (anv_loader_open(&c, &l) != 0) return NULL;
    return l;
}

static void test_sequential(void) {
    /* Two shards: 101 tokens (12 sequences of 8+1) and 50 tokens (6 sequences). */
    write_shard("train_000.bin", 101, 0, 1000, 1000);
    write_shard("train_001.bin", 50, 500, 1000, 1000);
    write_shard("val_000.bin", 40, 0, 1000, 1000);
    anv_loader_t *l = open_loader("train", 2, 8, 0, 1, 0, 1000);
    CHECK(l != NULL, "open: %s", anv_last_error());
    if (!l) return;
    CHECK(anv_loader_num_shards(l) == 2 && anv_loader_num_tokens(l) == 151, "2 shards, 151 tokens");
    CHECK(anv_loader_batches_per_epoch(l) == 9, "18 sequences / 2 rows = 9 batches, got %lld",
          (long long)anv_loader_batches_per_epoch(l));
    int32_t in[16], tg[16];
    int ok = 1;
    for (int k = 0; k < 9; k++) {
        anv_loader_next(l, in, tg, NULL);
        for (int b = 0; b < 2; b++) {
            int seq = 2 * k + b; /* sequences 0..11 in shard 0, 12..17 in shard 1 */
            int32_t start = seq < 12 ? seq * 8 : 500 + (seq - 12) * 8;
            for (int t = 0; t < 8; t++) ok &= in[b * 8 + t] == start + t && tg[b * 8 + t] == start + t + 1;
        }
    }
    CHECK(ok, "sequential windows are consecutive (T+1)-token slices of the shards in order");
    anv_loader_next(l, in, tg, NULL);
    CHECK(anv_loader_position(l).epoch == 1 && in[0] == 0, "wraps to epoch 1 at the start");
    anv_loader_close(l);
    printf("loader: sequential 9 batches of 2x8 over 2 shards checked token by token\n");
}

static void test_ranks_and_shuffle(void) {
    /* world 2 x B 2 must equal world 1 x B 4, split by rank. */
    for (int shuffle = 0; shuffle <= 1; shuffle++) {
        anv_loader_t *one = open_loader("train", 4, 8, 0, 1, shuffle, 1000);
        anv_loader_t *r0 = open_loader("train", 2, 8, 0, 2, shuffle, 1000);
        anv_loader_t *r1 = open_loader("train", 2, 8, 1, 2, shuffle, 1000);
        CHECK(one && r0 && r1, "open: %s", anv_last_error());
        if (!one || !r0 || !r1) return;
        int same = 1;
        int32_t a[32], at[32], b[32], bt[32];
        for (int k = 0; k < 11; k++) { /* crosses two epoch boundaries */
            anv_loader_next(one, a, at, NULL);
            anv_loader_next(r0, b, bt, NULL);
            anv_loader_next(r1, b + 16, bt + 16, NULL);
            same &= !memcmp(a, b, sizeof a) && !memcmp(at, bt, sizeof at);
        }
        CHECK(same, "shuffle=%d: rank slices of world 2 concatenate to the world-1 batch", shuffle);
        anv_loader_close(one);
        anv_loader_close(r0);
        anv_loader_close(r1);
    }
    /* Shuffle: each epoch is a permutation of all 18 sequences, different across epochs. */
    anv_loader_t *l = open_loader("train", 1, 8, 0, 1, 1, 1000);
    int32_t in[8], tg[8];
    int seen[2][18] = {{0}}, order[2][18], perm_ok = 1;
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 18; k++) {
            anv_loader_next(l, in, tg, NULL);
            int seq = in[0] < 500 ? in[0] / 8 : 12 + (in[0] - 500) / 8;
            perm_ok &= seq >= 0 && seq < 18 && !seen[e][seq];
            if (seq >= 0 && seq < 18) seen[e][seq] = 1;
            order[e][k] = seq;
        }
    CHECK(perm_ok, "each shuffled epoch visits every sequence exactly once");
    CHECK(memcmp(order[0], order[1], sizeof order[0]) != 0, "epochs use different orders");
    int identity = 1;
    for (int k = 0; k < 18; k++) identity &= order[0][k] == k;
    CHECK(!identity, "shuffled order differs from file order");
    anv_loader_close(l);
}

static void test_resume(void) {
    anv_loader_t *a = open_loader("train", 2, 8, 0, 1, 1, 1000), *b = open_loader("train", 2, 8, 0, 1, 1, 1000);
    int32_t x[16], xt[16], y[16], yt[16];
    for (int k = 0; k < 13; k++) anv_loader_next(a, x, xt, NULL); /* mid epoch 1 */
    anv_loader_pos_t pos = anv_loader_position(a);
    CHECK(anv_loader_seek(b, &pos) == 0, "seek: %s", anv_last_error());
    int same = 1;
    for (int k = 0; k < 20; k++) {
        anv_loader_next(a, x, xt, NULL);
        anv_loader_next(b, y, yt, NULL);
        same &= !memcmp(x, y, sizeof x) && !memcmp(xt, yt, sizeof xt);
    }
    CHECK(same, "a loader seeked to a saved position continues identically (20 batches)");
    anv_loader_pos_t bad = pos;
    bad.index = 3;
    CHECK(anv_loader_seek(b, &bad) != 0 && strstr(anv_last_error(), dir), "misaligned position rejected: %s",
          anv_last_error());
    anv_loader_close(a);
    anv_loader_close(b);
}

static void test_errors(void) {
    anv_loader_t *l = open_loader("train", 2, 8, 0, 1, 0, 520);
    CHECK(!l && strstr(anv_last_error(), "train_001.bin") && strstr(anv_last_error(), "549") &&
              strstr(anv_last_error(), "vocabulary"),
          "token >= vocab names the shard: %s", anv_last_error());
    l = open_loader("val", 8, 8, 0, 1, 0, 1000);
    CHECK(!l && strstr(anv_last_error(), "fewer than one batch"), "too little data: %s", anv_last_error());
    l = open_loader("test", 1, 8, 0, 1, 0, 1000);
    CHECK(!l && strstr(anv_last_error(), "no test shards"), "no shards: %s", anv_last_error());
    anv_loader_config_t c = {"/nonexistent/anvil", "train", 1, 8, 0, 1, 0, 0, 10, 0};
    CHECK(anv_loader_open(&c, &l) != 0 && strstr(anv_last_error(), "/nonexistent/anvil"), "missing dir: %s",
          anv_last_error());
    /* A foreign file among the shards. */
    char path[512];
    snprintf(path, sizeof path, "%s/train_002.bin", dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 2000; i++) fputc(i, f);
    fclose(f);
    l = open_loader("train", 1, 8, 0, 1, 0, 1000);
    CHECK(!l && strstr(anv_last_error(), "train_002.bin") && strstr(anv_last_error(), "magic"), "foreign shard: %s",
          anv_last_error());
    unlink(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/anvil_test_loader_%d", (int)getpid());
    anv_mkdir_p(dir);
    test_sequential();
    test_ranks_and_shuffle();
    test_resume();
    test_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_done("test_loader");
}
