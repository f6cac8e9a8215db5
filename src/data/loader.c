/* Batch loader: memory-mapped shards cut into (T+1)-token sequences, visited in file order or in a
 * per-epoch permutation, sliced per rank. See loader.h for the stream it promises. */
#include "anvil/loader.h"

#include "anvil/sft.h"
#include "anvil/shard.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct anv_loader {
    anv_loader_config_t cfg;
    char *dir;
    int n_shards;
    anv_shard_t *shards;
    int64_t *first_seq; /* (n_shards + 1) global index of each shard's first sequence; last = n_seq */
    int64_t n_seq;      /* sequences in all shards */
    int64_t global;     /* sequences per global batch: world * B */
    int64_t n_batches;  /* global batches per epoch */
    uint32_t *perm;     /* (n_seq) this epoch's order when shuffling, else NULL */
    anv_loader_pos_t pos;
    anv_rng_t rng; /* state after drawing this epoch's permutation */
    size_t n_tokens;
    anv_sft_rows_t rows; /* fine-tuning examples, one per sequence, instead of shards (rows.path set) */
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of <dir>/<split>_*.bin. */
static int list_shards(const char *dir, const char *split, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return anv_error("%s: cannot open data directory: %s", dir, strerror(errno));
    size_t plen = strlen(split);
    char **list = NULL;
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < plen + 5 || strncmp(e->d_name, split, plen) != 0 || e->d_name[plen] != '_' ||
            strcmp(e->d_name + len - 4, ".bin") != 0)
            continue;
        char **grown = anv_realloc(list, (size_t)(n + 1) * sizeof *list, "shard list");
        char *name = grown ? anv_strdup(e->d_name) : NULL;
        if (grown) list = grown;
        if (!name) {
            rc = -1;
            break;
        }
        list[n++] = name;
    }
    closedir(d);
    if (rc == 0 && n == 0) rc = anv_error("%s: no %s shards (%s_*.bin)", dir, split, split);
    if (rc != 0) {
        for (int i = 0; i < n; i++) anv_free(list[i]);
        anv_free(list);
        return -1;
    }
    qsort(list, (size_t)n, sizeof *list, cmp_str);
    *names = list;
    *count = n;
    return 0;
}

/* Every token id must index the model's vocabulary. */
static int check_vocab(const anv_shard_t *s, size_t vocab_size) {
    uint32_t max = 0;
    if (s->version == 1) {
        const uint16_t *t = s->tokens;
        for (size_t i = 0; i < s->count; i++) max = t[i] > max ? t[i] : max;
    } else {
        const uint32_t *t = s->tokens;
        for (size_t i = 0; i < s->count; i++) max = t[i] > max ? t[i] : max;
    }
    if (max < vocab_size) return 0;
    size_t at = 0;
    while (anv_shard_token(s, at) != max) at++;
    return anv_error("%s: token id %u at token %zu is outside the model's vocabulary of %zu (was the shard "
                     "made with another tokenizer?)",
                     s->path, max, at, vocab_size);
}

/* Fisher-Yates shuffle of 0..n-1 drawn from rng. */
static void draw_permutation(uint32_t *perm, int64_t n, anv_rng_t *rng) {
    for (int64_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(((anv_rng_u64(rng) >> 32) * (uint64_t)(i + 1)) >> 32);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Starts the epoch whose permutation is drawn from `state`. */
static void start_epoch(anv_loader_t *l, int64_t epoch, const anv_rng_t *state) {
    l->pos.epoch = epoch;
    l->pos.index = 0;
    l->pos.rng = *state;
    l->rng = *state;
    if (l->perm) draw_permutation(l->perm, l->n_seq, &l->rng);
}

int anv_loader_open(const anv_loader_config_t *cfg, anv_loader_t **out) {
    *out = NULL;
    if (cfg->B <= 0 || cfg->T <= 0 || cfg->world <= 0 || cfg->rank < 0 || cfg->rank >= cfg->world)
        return anv_error("%s: bad loader shape B=%d T=%d rank %d of %d", cfg->dir, cfg->B, cfg->T, cfg->rank,
                         cfg->world);
    if (!anv_is_dir(cfg->dir)) {
        if (!anv_path_exists(cfg->dir)) return anv_error("%s: data directory does not exist", cfg->dir);
        return anv_error("%s: not a directory", cfg->dir);
    }
    char **names = NULL, rows[4096];
    int n = 0;
    if (snprintf(rows, sizeof rows, "%s/%s.sft", cfg->dir, cfg->split) >= (int)sizeof rows)
        return anv_error("%s: path too long", cfg->dir);
    int fine_tuning = anv_path_exists(rows);
    if (!fine_tuning && list_shards(cfg->dir, cfg->split, &names, &n) != 0) return -1;
    anv_loader_t *l = anv_calloc(sizeof *l, "loader");
    int rc = l ? 0 : -1;
    if (rc == 0) {
        l->cfg = *cfg;
        l->dir = anv_strdup(cfg->dir);
        l->shards = anv_calloc((size_t)n * sizeof *l->shards, "shards");
        l->first_seq = anv_calloc((size_t)(n + 1) * sizeof *l->first_seq, "shard index");
        rc = l->dir && l->shards && l->first_seq ? 0 : -1;
    }
    char path[4096];
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = anv_path_join(path, sizeof path, cfg->dir, names[i]);
        if (rc == 0) rc = anv_shard_open(path, &l->shards[i]);
        if (rc == 0) {
            l->n_shards = i + 1;
            rc = check_vocab(&l->shards[i], cfg->vocab_size);
        }
        if (rc == 0) {
            l->n_tokens += l->shards[i].count;
            l->first_seq[i + 1] = l->first_seq[i] + (int64_t)((l->shards[i].count - 1) / (size_t)cfg->T);
        }
    }
    for (int i = 0; i < n; i++) anv_free(names[i]);
    anv_free(names);
    if (rc == 0 && fine_tuning) rc = anv_sft_rows_open(rows, cfg->vocab_size, &l->rows);
    if (rc == 0) {
        l->n_seq = fine_tuning ? (int64_t)l->rows.n : l->first_seq[n];
        if (fine_tuning) l->n_tokens = l->rows.tokens;
        l->global = (int64_t)cfg->world * cfg->B;
        l->n_batches = l->n_seq / l->global;
        if (l->n_batches == 0 && fine_tuning)
            rc = anv_error("%s: %lld examples, fewer than one batch of %lld rows", rows, (long long)l->n_seq,
                           (long long)l->global);
        else if (l->n_batches == 0)
            rc = anv_error("%s: the %s shards hold %zu tokens, fewer than one batch of %lld rows of %d+1 tokens",
                           cfg->dir, cfg->split, l->n_tokens, (long long)l->global, cfg->T);
    }
    if (rc == 0 && cfg->shuffle) {
        if (l->n_seq > (int64_t)UINT32_MAX)
            rc = anv_error("%s: %lld sequences are too many to shuffle", cfg->dir, (long long)l->n_seq);
        else
            rc = (l->perm = anv_alloc((size_t)l->n_seq * sizeof *l->perm, "shuffle order")) ? 0 : -1;
    }
    if (rc != 0) {
        anv_loader_close(l);
        return -1;
    }
    anv_rng_t seeded;
    anv_rng_seed(&seeded, cfg->seed);
    start_epoch(l, 0, &seeded);
    *out = l;
    return 0;
}

void anv_loader_close(anv_loader_t *l) {
    if (!l) return;
    for (int i = 0; i < l->n_shards; i++) anv_shard_close(&l->shards[i]);
    anv_sft_rows_close(&l->rows);
    anv_free(l->shards);
    anv_free(l->first_seq);
    anv_free(l->perm);
    anv_free(l->dir);
    anv_free(l);
}

/* Fine-tuning example g as one row: its last T+1 tokens at most, the targets that are not trained -1,
 * padded with token 0 and target -1 (causal attention: the padding is never seen by the example). */
static void copy_row(const anv_loader_t *l, int64_t g, int32_t *inputs, int32_t *targets) {
    const anv_sft_rows_t *r = &l->rows;
    uint64_t off = r->offsets[g], n = r->offsets[g + 1] - off, T = (uint64_t)l->cfg.T;
    if (n > T + 1) off += n - (T + 1), n = T + 1;
    for (uint64_t i = 0; i < T; i++) {
        int real = i + 1 < n;
        inputs[i] = real ? (int32_t)r->ids[off + i] : 0;
        targets[i] = real && r->trained[off + i + 1] ? (int32_t)r->ids[off + i + 1] : -1;
    }
}

/* Copies sequence g (global index): T inputs and the T targets shifted by one. */
static void copy_sequence(const anv_loader_t *l, int64_t g, int32_t *inputs, int32_t *targets) {
    if (l->rows.path) {
        copy_row(l, g, inputs, targets);
        return;
    }
    int lo = 0, hi = l->n_shards - 1; /* the shard with first_seq[s] <= g < first_seq[s + 1] */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (l->first_seq[mid] <= g)
            lo = mid;
        else
            hi = mid - 1;
    }
    const anv_shard_t *s = &l->shards[lo];
    size_t start = (size_t)(g - l->first_seq[lo]) * (size_t)l->cfg.T;
    int T = l->cfg.T;
    if (s->version == 1) {
        const uint16_t *t = (const uint16_t *)s->tokens + start;
        for (int i = 0; i < T; i++) inputs[i] = t[i], targets[i] = t[i + 1];
    } else {
        const uint32_t *t = (const uint32_t *)s->tokens + start;
        for (int i = 0; i < T; i++) inputs[i] = (int32_t)t[i], targets[i] = (int32_t)t[i + 1];
    }
}

void anv_loader_next(anv_loader_t *l, int32_t *inputs, int32_t *targets) {
    if (l->pos.index + l->global > l->n_seq) {
        anv_rng_t next = l->rng;
        start_epoch(l, l->pos.epoch + 1, &next);
    }
    int64_t first = l->pos.index + (int64_t)l->cfg.rank * l->cfg.B;
    for (int b = 0; b < l->cfg.B; b++) {
        int64_t k = first + b;
        int64_t g = l->perm ? (int64_t)l->perm[k] : k;
        copy_sequence(l, g, inputs + (size_t)b * l->cfg.T, targets + (size_t)b * l->cfg.T);
    }
    l->pos.index += l->global;
}

anv_loader_pos_t anv_loader_position(const anv_loader_t *l) { return l->pos; }

int anv_loader_seek(anv_loader_t *l, const anv_loader_pos_t *pos) {
    if (pos->epoch < 0 || pos->index < 0 || pos->index > l->n_batches * l->global || pos->index % l->global)
        return anv_error("%s: saved loader position (epoch %lld, sequence %lld) does not fit these shards "
                         "(%lld sequences, %lld per global batch)",
                         l->dir, (long long)pos->epoch, (long long)pos->index, (long long)l->n_seq,
                         (long long)l->global);
    start_epoch(l, pos->epoch, &pos->rng);
    l->pos.index = pos->index;
    return 0;
}

void anv_loader_rewind(anv_loader_t *l) {
    anv_rng_t seeded;
    anv_rng_seed(&seeded, l->cfg.seed);
    start_epoch(l, 0, &seeded);
}

size_t anv_loader_num_tokens(const anv_loader_t *l) { return l->n_tokens; }
int64_t anv_loader_batches_per_epoch(const anv_loader_t *l) { return l->n_batches; }
int anv_loader_num_shards(const anv_loader_t *l) { return l->n_shards; }

int anv_loader_masked(const anv_loader_t *l) { return l->rows.path != NULL; }

const char *anv_loader_shard_path(const anv_loader_t *l, int i) { return l->shards[i].path; }
