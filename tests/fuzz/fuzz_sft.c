/* libFuzzer target: fine-tuning examples. The bytes as one JSONL line rendered with each chat template
 * (with and without training on the prompt, with a small token budget that forces cutting), and as a
 * rows file opened and read through the batch loader. */
#include "anvil/loader.h"
#include "anvil/sft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static anv_tokenizer_t *tok;

static void cleanup(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/train.sft", dir);
    unlink(path);
    rmdir(dir);
    anv_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        const char *specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
        snprintf(dir, sizeof dir, "/tmp/anvil_fuzz_sft_%d", (int)getpid());
        anv_mkdir_p(dir);
        if (anv_tokenizer_create(ANV_PRETOK_GPT2, NULL, 0, specials, 3, &tok) != 0) abort();
        atexit(cleanup);
    }
    static const char *const chats[] = {"chatml", "llama3", "plain"};
    for (int i = 0; i < 6; i++) {
        anv_sft_opts_t o = {tok, anv_chat_template_builtin(chats[i % 3]), i < 3 ? 1000 : 7, i & 1};
        anv_sft_example_t e = {0};
        if (anv_sft_render(&o, (const char *)data, size, "fuzz:1", &e) == 0 && e.len == 0) abort();
        anv_sft_example_free(&e);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/train.sft", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    for (int pack = 0; pack < 2; pack++) { /* one example per row, and packed rows */
        anv_loader_config_t c = {dir, "train", 1, 1 + (size ? data[size - 1] % 9 : 0), 0, 1, 1, 1, 259, pack};
        anv_loader_t *l;
        if (anv_loader_open(&c, &l) != 0) return 0;
        int32_t in[16], tg[16], st[16];
        for (int i = 0; i < 3; i++) {
            anv_loader_next(l, in, tg, st);
            for (int t = 0; t < c.T; t++) /* what the model accepts (kernel_list.h) */
                if (st[t] != t && (t == 0 || st[t] != st[t - 1])) abort();
        }
        anv_loader_close(l);
    }
    return 0;
}
