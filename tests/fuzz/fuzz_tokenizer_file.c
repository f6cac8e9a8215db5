/* libFuzzer target: tokenizer file readers (tokenizer.json, tiktoken ranks, GPT-2 vocab.bpe next to
 * a fixed encoder.json) must load or reject any bytes without crashing; what loads must encode and
 * decode losslessly and survive save -> load with the same identity. Input starting with "#version"
 * is a vocab.bpe; anything else goes through anv_tokenizer_load's detection. */
#include "anvil/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], file[96], gpt2_dir[96], vocab_bpe[128], saved[96];

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void cleanup(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/anvil_fuzz_tok_%d", (int)getpid());
    snprintf(file, sizeof file, "%s/input", dir);
    snprintf(gpt2_dir, sizeof gpt2_dir, "%s/gpt2", dir);
    snprintf(vocab_bpe, sizeof vocab_bpe, "%s/vocab.bpe", gpt2_dir);
    snprintf(saved, sizeof saved, "%s/saved.json", dir);
    if (anv_mkdir_p(gpt2_dir) != 0) abort();
    atexit(cleanup);
    /* encoder.json: the 256 byte tokens (GPT-2's byte-level strings) plus a few merged ones. */
    anv_tokenizer_t *t;
    const uint32_t merges[4][2] = {{'a', 'b'}, {256, 'c'}, {' ', 'a'}, {'t', 'h'}};
    const char *eot = "<|endoftext|>";
    if (anv_tokenizer_create(ANV_PRETOK_GPT2, merges, 4, &eot, 1, &t) != 0 || anv_tokenizer_save(t, saved) != 0)
        abort();
    anv_tokenizer_free(t);
    char *json;
    size_t len;
    if (anv_read_file(saved, &json, &len) != 0) abort();
    const char *v = strstr(json, "\"vocab\": {"), *e = strstr(json, "\n    },");
    if (!v || !e) abort();
    char path[160];
    snprintf(path, sizeof path, "%s/encoder.json", gpt2_dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(v + 9, 1, (size_t)(e - v - 9), f);
    fputs("\n}\n", f);
    fclose(f);
    anv_free(json);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int bpe = size >= 8 && !memcmp(data, "#version", 8);
    write_file(bpe ? vocab_bpe : file, data, size);
    anv_tokenizer_t *t = NULL;
    if (anv_tokenizer_load(bpe ? gpt2_dir : file, &t) != 0) {
        if (!strstr(anv_last_error(), dir)) abort(); /* every error names the file */
        return 0;
    }
    static const char text[] = "Hello world, it's 12345 \xff\xfe caf\xc3\xa9 <|endoftext|>  \n";
    anv_tokens_t ids = {0};
    anv_buf_t back = {0};
    if (anv_tokenizer_encode_special(t, text, sizeof text - 1, &ids) != 0 ||
        anv_tokenizer_decode(t, ids.ids, ids.len, &back) != 0 || back.len != sizeof text - 1 ||
        memcmp(back.data, text, back.len) != 0)
        abort();
    anv_tokenizer_t *u = NULL;
    if (anv_tokenizer_save(t, saved) != 0 || anv_tokenizer_load(saved, &u) != 0 ||
        anv_tokenizer_hash(u) != anv_tokenizer_hash(t))
        abort();
    anv_tokenizer_free(u);
    anv_tokenizer_free(t);
    anv_tokens_free(&ids);
    anv_buf_free(&back);
    return 0;
}
