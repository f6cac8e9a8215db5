/* anvil: build your own language model, from raw text to a usable model. */
#include "cli.h"

#include "anvil/base.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"data", cmd_data, "prepare raw text into token shards (data prepare)"},
    {"tokenizer", cmd_tokenizer, "train, encode and decode with a byte-level BPE tokenizer"},
    {"train", cmd_train, "train a GPT-2 or Llama-family model on token shards"},
    {"eval", cmd_eval, "validation loss, perplexity and bits per byte of a run"},
    {"sample", cmd_sample, "generate text from a trained run"},
    {"export", cmd_export, "export a run to GGUF (llama.cpp) or a Hugging Face directory"},
    {"import", cmd_import, "import a Hugging Face GPT-2 or Llama directory as a run"},
    {"logits", cmd_logits, "next-token logits of a prompt as JSON (for checking other runtimes)"},
    {"serve", cmd_serve, "serve a run over an OpenAI-compatible HTTP API"},
    {"bench", cmd_bench, "time training steps: tokens/s, % of the measured peak, memory vs budget"},
    {"plan", cmd_plan, "the compute-optimal model for a budget of FLOPs, hours or tokens"},
    {"dashboard", cmd_dashboard, "a local web page of runs: curves, evaluations, samples, live"},
    {"scale", cmd_scale, "fit a scaling law to measured runs (scale fit)"},
};

static void usage(void) {
    fprintf(stderr, "usage: anvil <command> [options]   (anvil <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "anvil: unknown command '%s'\n", argv[1]);
    usage();
    return 2;
}
