/* Batch loader over token shards (DATA/train_*.bin or DATA/val_*.bin, llm.c layout, see shard.h).
 *
 * The shards are memory-mapped and cut into sequences: sequence k of a shard starts at token k*T and
 * spans T+1 tokens (inputs are its first T, targets its last T). Each epoch visits every sequence once,
 * in file order or (shuffle) in a random permutation drawn from the loader's rng. A global batch is
 * world*B consecutive sequences of that order; rank r takes sequences [r*B, r*B + B) of it, so ranks
 * read disjoint parts of every global batch and world processes see what one process with world*B
 * rows would see. Sequential order with one rank reproduces llm.c's contiguous B*T+1 windows.
 *
 * A fine-tuning directory (anvil/sft.h) holds <split>.sft instead of shards: then each example is one
 * sequence, a row of its last T+1 tokens at most, padded, with the targets it does not train on -1. With
 * pack, consecutive examples (file order) share a row instead, as many as fit: the examples are packed
 * into rows once, at opening, and the rows are the sequences that epochs visit; each token's starts entry
 * is the column where its example begins (kernel_list.h), so attention stays within examples; padding
 * tokens are sequences of one token each.
 *
 * The position is a small plain struct; seeking to a saved position continues the exact same stream. */
#ifndef ANVIL_LOADER_H
#define ANVIL_LOADER_H

#include "anvil/base.h"

typedef struct {
    const char *dir;   /* data directory */
    const char *split; /* "train" or "val": reads <dir>/<split>_*.bin in sorted name order */
    int B, T;          /* rows per rank, tokens per row */
    int rank, world;   /* this process's slice of each global batch (0, 1 for one process) */
    int shuffle;       /* 0: file order; 1: a new permutation of the sequences every epoch */
    uint64_t seed;     /* shuffle seed */
    size_t vocab_size; /* every token must be < vocab_size; checked once when opening */
    int pack;          /* fine-tuning examples: several per row */
} anv_loader_config_t;

typedef struct {
    int64_t epoch; /* completed passes over the data */
    int64_t index; /* next sequence of this epoch's order (start of the next global batch) */
    anv_rng_t rng; /* shuffle: the rng state that draws the current epoch's permutation */
} anv_loader_pos_t;

typedef struct anv_loader anv_loader_t;

/* Opens and validates every shard (header, size, token ids against vocab_size). Fails when the
 * directory or the shards are missing, or when the shards hold less than one global batch. */
int anv_loader_open(const anv_loader_config_t *cfg, anv_loader_t **out);
void anv_loader_close(anv_loader_t *l);

/* Writes this rank's next batch: inputs (B, T), targets (B, T) and, unless NULL, starts (B, T), each
 * token's sequence start in its row (0 but in packed rows). Never fails and never allocates; at the end
 * of an epoch it wraps to the next one (the tail of the last global batch is dropped). */
void anv_loader_next(anv_loader_t *l, int32_t *inputs, int32_t *targets, int32_t *starts);

anv_loader_pos_t anv_loader_position(const anv_loader_t *l);
/* Continues from a saved position; fails (naming the data directory) when the position cannot belong
 * to these shards with this configuration. */
int anv_loader_seek(anv_loader_t *l, const anv_loader_pos_t *pos);
/* Back to the first batch of epoch 0. */
void anv_loader_rewind(anv_loader_t *l);

size_t anv_loader_num_tokens(const anv_loader_t *l);         /* tokens in all shards */
int64_t anv_loader_batches_per_epoch(const anv_loader_t *l); /* global batches per epoch */
int anv_loader_num_shards(const anv_loader_t *l);
/* 1 for fine-tuning rows, whose targets are -1 where nothing is trained (padding, prompts). */
int anv_loader_masked(const anv_loader_t *l);
/* Fine-tuning: the examples' tokens in rows (truncated ones counted at their kept length) over the rows'
 * room, B*T per batch of an epoch; how full packing (or padding) keeps the rows. */
double anv_loader_fill(const anv_loader_t *l);
const char *anv_loader_shard_path(const anv_loader_t *l, int i);

#endif
