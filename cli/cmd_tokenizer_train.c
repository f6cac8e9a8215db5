/* anvil tokenizer train: byte-level BPE training on text files (see anvil/bpe_train.h). */
#include "cli.h"

#include "anvil/bpe_train.h"
#include "anvil/prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_pattern(const char *name, int *pattern) {
    if (!strcmp(name, "gpt2"))
        *pattern = ANV_PRETOK_GPT2;
    else if (!strcmp(name, "cl100k"))
        *pattern = ANV_PRETOK_CL100K;
    else
        return anv_error("--pattern must be gpt2 or cl100k, got '%s'", name);
    return 0;
}

int cmd_tokenizer_train(int argc, char **argv) {
    string_list_t inputs = {0}, specials = {0};
    long long vocab = 0, min_freq = 2;
    const char *out = NULL, *pattern_name = "gpt2", *field = "text";
    int threads = 0, split_blank = 0, skip_bad = 0;
    opt_t opts[] = {
        {"--input", OPT_STRINGS, &inputs,
         "text, JSONL or Parquet files or folders (.gz/.zst too), read in the order given"},
        {"--vocab-size", OPT_LONG, &vocab, "vocabulary size: 256 bytes + merges + special tokens (required)"},
        {"--out", OPT_STRING, &out, "tokenizer.json to write (required)"},
        {"--pattern", OPT_STRING, &pattern_name, "pre-tokenizer: gpt2 (default) or cl100k"},
        {"--special", OPT_STRINGS, &specials, "extra special tokens, after <|endoftext|> (always the first)"},
        {"--threads", OPT_INT, &threads, "threads for counting words (default: all cores)"},
        {"--min-frequency", OPT_LONG, &min_freq, "merge only pairs seen at least this often (default 2)"},
        {"--text-field", OPT_STRING, &field,
         "JSON field or Parquet column holding the text (default text; a.b inside structs)"},
        {"--split-blank-lines", OPT_INT, &split_blank, "split text files into documents at N blank lines"},
        {"--skip-bad", OPT_FLAG, &skip_bad,
         "skip malformed JSON lines, and the rest of files that cannot be read, instead of failing"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    const char *usage =
        "anvil tokenizer train --input PATH... --vocab-size N --out tokenizer.json [--pattern gpt2|cl100k]\n"
        "       [--special TOKEN]... [--threads N] [--min-frequency N]\n"
        "Each step merges the most frequent pair; ties go to the pair whose left token's bytes are\n"
        "lexicographically smallest, then the right token's, so the result is the same for any thread count.";
    const opt_range_t ranges[] = {
        {"--threads", 0, cli_max_threads()},
        {"--min-frequency", 1, 1e15},
        {"--split-blank-lines", 0, 1 << 20},
    };
    int rc = cli_parse_bounded(argc, argv, opts, n_opts, ranges, (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) {
        free(inputs.items);
        free(specials.items);
        return rc < 0 ? cli_fail() : 0;
    }
    int pattern = 0;
    anv_bpe_words_t *words = NULL;
    anv_tokenizer_t *tok = NULL;
    rc = 1;
    if (!inputs.count || !vocab || !out)
        anv_error("tokenizer train needs --input, --vocab-size and --out (see --help)");
    else if (vocab < 0 || min_freq < 1)
        anv_error("--vocab-size and --min-frequency must be positive");
    else if (cli_parse_pattern(pattern_name, &pattern) == 0 &&
             anv_bpe_check_vocab_size((size_t)vocab, specials.items, (size_t)specials.count) == 0) {
        anv_threads_set(threads);
        cli_progress_t prog;
        cli_progress_init(&prog);
        anv_corpus_opts_t co = {.inputs = inputs.items,
                                .n_inputs = (size_t)inputs.count,
                                .text_field = field,
                                .split_blank_lines = split_blank,
                                .skip_bad = skip_bad};
        anv_doc_filter_t filter = {0};
        anv_prepare_stats_t st;
        anv_bpe_train_opts_t to = {
            .min_frequency = (uint64_t)min_freq, .progress = cli_progress, .progress_ctx = &prog};
        if (anv_count_words(&co, &filter, NULL, 0, (anv_pretok_t)pattern, cli_progress, &prog, &words, &st) == 0) {
            double t_count = anv_now() - prog.start;
            if (anv_bpe_train_tokenizer(words, (anv_pretok_t)pattern, (size_t)vocab, specials.items,
                                        (size_t)specials.count, &to, &tok) == 0 &&
                anv_tokenizer_save(tok, out) == 0) {
                cli_progress_end(&prog);
                fprintf(stderr,
                        "trained %zu merges on %.1f MB (%llu documents, %llu words, %zu distinct) with %d threads "
                        "in %.2f s (counting %.2f s) -> %s\n",
                        anv_tokenizer_n_merges(tok), st.corpus.input_bytes / 1e6, (unsigned long long)st.documents_read,
                        (unsigned long long)anv_bpe_words_total(words), anv_bpe_words_distinct(words),
                        anv_threads_count(), anv_now() - prog.start, t_count, out);
                rc = 0;
            }
        }
        cli_progress_end(&prog);
    }
    anv_bpe_words_free(words);
    anv_tokenizer_free(tok);
    free(inputs.items);
    free(specials.items);
    return rc ? cli_fail() : 0;
}
