/* libFuzzer target: token shards through the batch loader (open, validate, read, seek) on arbitrary
 * bytes written as a data directory's train and val shard. */
#include "anvil/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static const char *names[2] = {"train_000000.bin", "val_000000.bin"};

static void remove_dir(void) {
    char path[128];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/anvil_fuzz_shard_%d", (int)getpid());
        anv_mkdir_p(dir);
        atexit(remove_dir);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "wb");
        if (!f) return 0;
        fwrite(data, 1, size, f);
        fclose(f);
    }
    /* The first byte picks the shape and the vocabulary bound. */
    int B = 1 + (size ? data[0] % 3 : 0), T = 1 + (size ? (data[0] >> 2) % 8 : 0);
    size_t vocab = size && (data[0] & 0x80) ? 300 : 70000;
    anv_loader_config_t c = {dir, "train", B, T, 0, 1, size && (data[0] & 0x40), 1, vocab, 0};
    anv_loader_t *l;
    if (anv_loader_open(&c, &l) != 0) return 0;
    int32_t in[3 * 8], tg[3 * 8];
    for (int k = 0; k < 5; k++) {
        anv_loader_next(l, in, tg, NULL);
        for (int j = 0; j < B * T; j++)
            if (in[j] < 0 || (size_t)in[j] >= vocab || tg[j] < 0 || (size_t)tg[j] >= vocab) __builtin_trap();
    }
    anv_loader_pos_t pos = anv_loader_position(l);
    if (anv_loader_seek(l, &pos) != 0) __builtin_trap();
    anv_loader_close(l);
    return 0;
}
