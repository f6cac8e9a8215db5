/* libFuzzer target: the evaluation task readers (HellaSwag JSONL and text format, multiple choice,
 * LAMBADA) on any bytes. Invariants: a file either fails with an error or gives examples that each
 * have a context, at least one continuation starting with its space, and an answer among them; with
 * malformed examples skipped, only a file left without any fails. */
#include "anvil/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void remove_file(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(path, sizeof path, "/tmp/anvil_fuzz_tasks_%d", (int)getpid());
    atexit(remove_file);
    anv_log_set_level((anv_log_level_t)(ANV_LOG_WARN + 1)); /* silence: skipping warns */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    const anv_task_t tasks[] = {ANV_TASK_HELLASWAG, ANV_TASK_MC, ANV_TASK_LAMBADA};
    for (int t = 0; t < 3; t++) {
        anv_examples_t ex;
        if (anv_examples_load(tasks[t], path, 0, 0, &ex) != 0) {
            if (!anv_last_error()[0] || ex.n != 0 || ex.items) abort();
            anv_error_clear();
            /* skipping malformed examples fails only on a file with none left */
            if (anv_examples_load(tasks[t], path, 0, 1, &ex) != 0) {
                if (!strstr(anv_last_error(), "no examples")) abort();
                anv_error_clear();
                continue;
            }
        }
        if (ex.n == 0) abort();
        for (size_t i = 0; i < ex.n; i++) {
            const anv_example_t *e = &ex.items[i];
            if (!e->context || e->n_continuations < 1 || e->answer < 0 || e->answer >= e->n_continuations) abort();
            for (int c = 0; c < e->n_continuations; c++)
                if (!e->continuations[c] || e->continuations[c][0] != ' ') abort();
        }
        anv_examples_free(&ex);
    }
    return 0;
}
