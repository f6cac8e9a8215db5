/* libFuzzer target: the JSON files of a run directory that anvil reads back, state.json (checkpoint.h)
 * and a LoRA run's adapter_config.json (lora_run.h), must load or be refused with an error for any bytes,
 * never crash; what loads is in range. */
#include "anvil/checkpoint.h"
#include "anvil/lora_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], state[96], adapter[96];

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void cleanup(void) {
    unlink(state);
    unlink(adapter);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/anvil_fuzz_run_%d", (int)getpid());
    snprintf(state, sizeof state, "%s/state.json", dir);
    snprintf(adapter, sizeof adapter, "%s/adapter_config.json", dir);
    if (anv_mkdir_p(dir) != 0) abort();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    write_file(state, data, size);
    write_file(adapter, data, size);
    anv_train_state_t s;
    if (anv_state_load(state, &s) == 0 && (s.hp.B <= 0 || s.hp.T <= 0 || s.step < 0 || s.step > s.hp.steps)) abort();
    anv_lora_run_t r;
    if (anv_lora_run_read(dir, &r) == 0 && (r.lora.rank < 1 || strlen(r.base) >= sizeof r.base)) abort();
    return 0;
}
