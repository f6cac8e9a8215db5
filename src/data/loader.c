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
    anv_sft_rows_t rows; /* fine-tuning examples instead of shards (rows.path set) */
    int64_t *row_first;  /* packed fine-tuning rows: (n_seq + 1) the first example of each row; else NULL */
    uint64_t row_tokens; /* fine-tuning: the examples' positions in rows (anv_loader_fill) */
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

/* The positions fine-tuning example g takes in a row: one per token of its last T+1 but the last. */
static uint64_t example_len(const anv_loader_t *l, int64_t g) {
    uint64_t n = l->rows.offsets[g + 1] - l->rows.offsets[g], T = (uint64_t)l->cfg.T;
    return (n < T + 1 ? n : T + 1) - 1;
}

/* Counts the examples' positions and, when packing, fills rows greedily in file order: row k holds the
 * examples row_first[k] .. row_first[k + 1] - 1. */
static int plan_rows(anv_loader_t *l) {
    int64_t n = (int64_t)l->rows.n, rows = 0;
    uint64_t T = (uint64_t)l->cfg.T, used = 0;
    for (int64_t g = 0; g < n; g++) l->row_tokens += example_len(l, g);
    if (!l->cfg.pack) return 0;
    if (!(l->row_first = anv_alloc((size_t)(n + 1) * sizeof *l->row_first, "packed rows"))) return -1;
    for (int64_t g = 0; g < n; g++) {
        uint64_t len = example_len(l, g);
        if (g == 0 || used + len > T) l->row_first[rows++] = g, used = 0;
        used += len;
    }
    l->row_first[rows] = n;
    l->n_seq = rows;
    return 0;
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
    if (rc == 0 && cfg->pack && !fine_tuning)
        rc = anv_error("%s: packing applies to fine-tuning examples (%s), not to token shards", cfg->dir, rows);
    if (rc == 0 && fine_tuning) rc = anv_sft_rows_open(rows, cfg->vocab_size, &l->rows);
    if (rc == 0 && fine_tuning) rc = plan_rows(l);
    if (rc == 0) {
        l->n_seq = l->row_first ? l->n_seq : fine_tuning ? (int64_t)l->rows.n : l->first_seq[n];
        if (fine_tuning) l->n_tokens = l->rows.tokens;
        l->global = (int64_t)cfg->world * cfg->B;
        l->n_batches = l->n_seq / l->global;
        if (l->n_batches == 0 && fine_tuning)
            rc = anv_error("%s: %llu examples in %lld rows, fewer than one batch of %lld rows", rows,
                           (unsigned long long)l->rows.n, (long long)l->n_seq, (long long)l->global);
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
    anv_free(l->row_first);
    anv_free(l->perm);
    anv_free(l->dir);
    anv_free(l);
}

/* Writes the positions of fine-tuning example g from column c of a row: its last T+1 tokens at most, the
 * targets that are not trained -1, every start c; returns the column after it. */
static uint64_t copy_example(const anv_loader_t *l, int64_t g, uint64_t c, int32_t *inputs, int32_t *targets,
                             int32_t *starts) {
    const anv_sft_rows_t *r = &l->rows;
    uint64_t len = example_len(l, g), off = r->offsets[g + 1] - (len + 1);
    for (uint64_t i = 0; i < len; i++, c++) {
        inputs[c] = (int32_t)r->ids[off + i];
        targets[c] = r->trained[off + i + 1] ? (int32_t)r->ids[off + i + 1] : -1;
        if (starts) starts[c] = (int32_t)(c - i);
    }
    return c;
}

/* Fine-tuning row g: example g alone, or packed row g's examples side by side with their starts (NULL:
 * not wanted, or not packed); padded with token 0 and target -1 (padding after one example is causal
 * attention's future, never seen; in a packed row each padding token is a sequence of its own). */
static void copy_row(const anv_loader_t *l, int64_t g, int32_t *inputs, int32_t *targets, int32_t *starts) {
    uint64_t c = 0, T = (uint64_t)l->cfg.T;
    if (l->row_first)
        for (int64_t e = l->row_first[g]; e < l->row_first[g + 1]; e++)
            c = copy_example(l, e, c, inputs, targets, starts);
    else
        c = copy_example(l, g, 0, inputs, targets, NULL);
    for (; c < T; c++) {
        inputs[c] = 0;
        targets[c] = -1;
        if (starts) starts[c] = (int32_t)c;
    }
}

/* Copies sequence g (global index): T inputs, the T targets shifted by one and (unless NULL) T starts. */
static void copy_sequence(const anv_loader_t *l, int64_t g, int32_t *inputs, int32_t *targets, int32_t *starts) {
    if (starts && !l->row_first) /* one sequence per row */
        for (int i = 0; i < l->cfg.T; i++) starts[i] = 0;
    if (l->rows.path) {
        copy_row(l, g, inputs, targets, l->row_first ? starts : NULL);
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

void anv_loader_next(anv_loader_t *l, int32_t *inputs, int32_t *targets, int32_t *starts) {
    if (l->pos.index + l->global > l->n_seq) {
        anv_rng_t next = l->rng;
        start_epoch(l, l->pos.epoch + 1, &next);
    }
    int64_t first = l->pos.index + (int64_t)l->cfg.rank * l->cfg.B;
    for (int b = 0; b < l->cfg.B; b++) {
        int64_t k = first + b;
        int64_t g = l->perm ? (int64_t)l->perm[k] : k;
        size_t at = (size_t)b * l->cfg.T;
        copy_sequence(l, g, inputs + at, targets + at, starts ? starts + at : NULL);
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

double anv_loader_fill(const anv_loader_t *l) { return (double)l->row_tokens / ((double)l->n_seq * l->cfg.T); }

const char *anv_loader_shard_path(const anv_loader_t *l, int i) { return l->shards[i].path; }
