/* anvil base: errors, allocation, files, random numbers, string buffers, logging, time.
 *
 * Error convention: a function that can fail returns int (0 = ok, -1 = error) and records one line
 * naming the file, offset and problem with anv_error(); the caller (ultimately cli/) prints
 * anv_last_error(). The library never exits and never prints except through anv_log(). */
#ifndef ANVIL_BASE_H
#define ANVIL_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ANV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ANV_PRINTF(a, b)
#endif

/* ---- errors ---- */
/* Records a message for this thread and returns -1, so `return anv_error(...)` reads naturally. */
int anv_error(const char *fmt, ...) ANV_PRINTF(1, 2);
/* Prefixes the current message: "prefix: old message". Returns -1. */
int anv_error_prefix(const char *fmt, ...) ANV_PRINTF(1, 2);
const char *anv_last_error(void);
void anv_error_clear(void);

/* ---- allocation ----
 * 64-byte aligned, fails with "out of memory: <what> needs N bytes (X MiB)".
 * The environment variable ANVIL_ALLOC_LIMIT (bytes) makes any single larger request fail, so that
 * tests can exercise allocation failure deterministically. */
void *anv_alloc(size_t bytes, const char *what);
void *anv_calloc(size_t bytes, const char *what);
void *anv_realloc(void *p, size_t bytes, const char *what); /* not aligned; p from anv_realloc/NULL */
/* An array (*(T **)pp, from anv_realloc or NULL) of *cap elements of elem bytes grown to hold at least
 * need: its capacity doubles. 0, or -1 when out of memory (the array is left as it was). */
int anv_grow(void *pp, size_t *cap, size_t need, size_t elem, const char *what);
void anv_free(void *p);
char *anv_strdup(const char *s);

/* ---- files ---- */
int anv_read_file(const char *path, char **data, size_t *len); /* data NUL-terminated, free with anv_free */
int anv_mkdir_p(const char *path);
int anv_path_exists(const char *path);
int anv_is_dir(const char *path);
/* 1 when dir exists and holds an entry besides . and .. (0: empty or absent; -1 with an error). */
int anv_dir_has_entries(const char *dir);
/* snprintf into buf, erroring when the result does not fit. */
int anv_path_join(char *buf, size_t size, const char *dir, const char *name);

/* Atomic file replacement: writes go to "<path>.tmp.<pid>", commit fflushes, fsyncs, renames over
 * path and fsyncs the directory. On any failure the temporary is removed and the old file is intact.
 * ANVIL_WRITE_LIMIT (bytes) makes writes fail with ENOSPC past that many bytes (tests: disk full). */
typedef struct {
    FILE *f;
    char *path;
    char *tmp;
    size_t written;
    int failed;
} anv_atomic_file_t;
int anv_atomic_open(anv_atomic_file_t *af, const char *path);
int anv_atomic_write(anv_atomic_file_t *af, const void *data, size_t n);
int anv_atomic_seek(anv_atomic_file_t *af, long offset); /* rewrite a header before commit */
int anv_atomic_commit(anv_atomic_file_t *af);
void anv_atomic_abort(anv_atomic_file_t *af);
/* Whole-buffer convenience wrapper around the above. */
int anv_write_file_atomic(const char *path, const void *data, size_t n);
/* A whole file's bytes to another path, atomically. */
int anv_copy_file_atomic(const char *from, const char *to);

/* Read-only memory map of a whole file (empty files map to NULL with size 0). */
typedef struct {
    void *data;
    size_t size;
} anv_mmap_t;
int anv_mmap_open(const char *path, anv_mmap_t *m);
void anv_mmap_close(anv_mmap_t *m);

/* ---- growable byte buffer ---- */
typedef struct {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len, cap;
} anv_buf_t;
int anv_buf_append(anv_buf_t *b, const void *data, size_t n);
int anv_buf_puts(anv_buf_t *b, const char *s);
int anv_buf_printf(anv_buf_t *b, const char *fmt, ...) ANV_PRINTF(2, 3);
/* Appends s as a JSON string literal with quotes; bytes that are not valid UTF-8 become U+FFFD. */
int anv_buf_json_string(anv_buf_t *b, const char *s, size_t n);
int anv_utf8_valid(const char *s, size_t n); /* 1 when s[0..n) is well-formed UTF-8 */
void anv_buf_free(anv_buf_t *b);

/* ---- random numbers: xoshiro256**, state is plain data so it can be checkpointed ---- */
typedef struct {
    uint64_t s[4];
} anv_rng_t;
void anv_rng_seed(anv_rng_t *r, uint64_t seed);
uint64_t anv_rng_u64(anv_rng_t *r);
double anv_rng_uniform(anv_rng_t *r); /* [0, 1) with 53 random bits */
double anv_rng_normal(anv_rng_t *r);  /* N(0, 1), Box-Muller, consumes exactly two u64 */

/* splitmix64's finaliser: every input bit reaches every output bit (hash table slots, hash families). */
uint64_t anv_mix64(uint64_t x);
/* 64-bit FNV-1a style hash with a strong finaliser (for dedup, caches, file identities). */
uint64_t anv_hash64(const void *data, size_t n, uint64_t seed);
/* 1 when given equals secret, in a time that does not depend on where they differ (API keys). */
int anv_secret_equal(const char *given, const char *secret);

/* ---- logging (stderr) ---- */
typedef enum { ANV_LOG_DEBUG, ANV_LOG_INFO, ANV_LOG_WARN } anv_log_level_t;
void anv_log(anv_log_level_t level, const char *fmt, ...) ANV_PRINTF(2, 3);
void anv_log_set_level(anv_log_level_t level);

/* ---- time and threads ---- */
double anv_now(void);        /* monotonic seconds */
void anv_threads_set(int n); /* <= 0: all cores */
int anv_threads_count(void);
int anv_thread_id(void); /* this thread's number inside an OpenMP parallel region, 0 outside */
/* body(ctx, i, thread) for every i < n on `threads` threads (<= 0: anv_threads_count()), handed out
 * one at a time. After a body fails no new one starts, and the first failure's error is returned. */
int anv_parallel_for(size_t n, int threads, int (*body)(void *ctx, size_t i, int thread), void *ctx);

/* dst (rows, cols) = src (cols, rows) transposed, in tiles that stay in cache. */
void anv_transpose(float *dst, const float *src, size_t rows, size_t cols);

/* Progress of a long-running phase: `done` of `total` units (total 0 when unknown). */
typedef void (*anv_progress_fn)(void *ctx, const char *phase, uint64_t done, uint64_t total);

#ifdef __cplusplus
}
#endif

#endif
