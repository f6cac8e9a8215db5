/* libFuzzer target: for any bytes, decode(encode(x)) == x with both split patterns, with and
 * without special-token recognition, and ordinary encoding never yields a special id. */
#include "anvil/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static anv_tokenizer_t *tok[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* Merges over a small alphabet, then merges of those with each other: chains of real depth. */
    static const char alpha[] = "etaoin s'1\n\xc3\xa9";
    enum { A = sizeof alpha - 1, N = A * A + 64 };
    static uint32_t merges[N][2];
    size_t n = 0;
    for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) merges[n][0] = (unsigned char)alpha[i], merges[n][1] = (unsigned char)alpha[j], n++;
    for (int k = 0; k < 64; k++)
        merges[n][0] = 256 + (uint32_t)(k * 7 % (A * A)), merges[n][1] = 256 + (uint32_t)(k * 13 % (A * A)), n++;
    const char *specials[] = {"<|endoftext|>", "<|x|>"};
    for (int p = 0; p < 2; p++)
        if (anv_tokenizer_create(p ? ANV_PRETOK_CL100K : ANV_PRETOK_GPT2, merges, n, specials, 2, &tok[p]) != 0)
            abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    anv_tokens_t ids = {0};
    anv_buf_t back = {0};
    for (int p = 0; p < 2; p++)
        for (int special = 0; special < 2; special++) {
            ids.len = back.len = 0;
            int rc = special ? anv_tokenizer_encode_special(tok[p], (const char *)data, size, &ids)
                             : anv_tokenizer_encode(tok[p], (const char *)data, size, &ids);
            if (rc != 0 || anv_tokenizer_decode(tok[p], ids.ids, ids.len, &back) != 0) abort();
            if (back.len != size || (size && memcmp(back.data, data, size) != 0)) abort();
            for (size_t i = 0; i < ids.len && !special; i++)
                if (ids.ids[i] >= (uint32_t)anv_tokenizer_eot(tok[p])) abort();
        }
    anv_tokens_free(&ids);
    anv_buf_free(&back);
    return 0;
}
