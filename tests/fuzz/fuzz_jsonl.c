/* libFuzzer target: the corpus reader on any bytes, as a .jsonl file (strict and --skip-bad) and as
 * a text file (whole and split at blank lines). Invariants: a text file read whole is exactly the
 * input with normalised line endings, unless it starts like gzip or zstd (tests/fuzz/fuzz_zstd.c
 * covers those); split documents never hold more bytes than that; with skip_bad, a JSON-lines file
 * never fails. */
#include "anvil/corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char jsonl_path[64], txt_path[64];

static void remove_files(void) {
    unlink(jsonl_path);
    unlink(txt_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(jsonl_path, sizeof jsonl_path, "/tmp/anvil_fuzz_%d.jsonl", (int)getpid());
    snprintf(txt_path, sizeof txt_path, "/tmp/anvil_fuzz_%d.txt", (int)getpid());
    atexit(remove_files);
    anv_log_set_level((anv_log_level_t)(ANV_LOG_WARN + 1)); /* silence: skip_bad warns on every input */
    return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

/* Reads all documents; returns the reader's final status and the total document bytes. */
static int read_all(const char *path, int split, int skip_bad, size_t *bytes, size_t *docs) {
    const char *inputs[] = {path};
    anv_corpus_opts_t o = {.inputs = inputs, .n_inputs = 1, .split_blank_lines = split, .skip_bad = skip_bad};
    anv_corpus_t *c;
    if (anv_corpus_open(&o, &c) != 0) abort();
    anv_doc_t d;
    int r;
    *bytes = *docs = 0;
    while ((r = anv_corpus_next(c, &d)) == 1) {
        if (d.len == 0 && split) abort(); /* text documents are never empty */
        *bytes += d.len;
        (*docs)++;
    }
    anv_corpus_close(c);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t bytes, docs;
    write_file(jsonl_path, data, size);
    read_all(jsonl_path, 0, 0, &bytes, &docs);
    if (read_all(jsonl_path, 0, 1, &bytes, &docs) != 0) abort();

    if ((size >= 2 && data[0] == 0x1f && data[1] == 0x8b) || (size >= 4 && !memcmp(data, "\x28\xb5\x2f\xfd", 4)))
        return 0;
    write_file(txt_path, data, size);
    char *norm = malloc(size + 1);
    memcpy(norm, data, size);
    size_t n = anv_text_normalize_newlines(norm, size, NULL);
    if (read_all(txt_path, 0, 0, &bytes, &docs) != 0 || bytes != n || docs != (n > 0)) abort();
    for (int split = 1; split <= 2; split++)
        if (read_all(txt_path, split, 0, &bytes, &docs) != 0 || bytes > n) abort();
    free(norm);
    anv_error_clear();
    return 0;
}
