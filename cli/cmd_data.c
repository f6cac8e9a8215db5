/* anvil data prepare: raw text -> cleaned, deduplicated documents -> tokenizer -> token shards. */
#include "cli.h"

#include "anvil/prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_prepare(int argc, char **argv, int full_argc, char **full_argv) {
    string_list_t inputs = {0}, specials = {0}, filter_params = {0};
    const char *tok_path = NULL, *out = NULL, *field = "text", *pattern_name = "gpt2", *rejected = NULL;
    const char *langs_arg = NULL, *blocklist_path = NULL;
    double lang_share = 0.65;
    int pii = 0, pii_phones = 0;
    long long vocab = 0, tokenizer_sample = 0, min_chars = 0, seed = 1337, shard_tokens = 100000000, min_freq = 2;
    double val_fraction = 0.005, near_threshold = 0.8;
    int gopher_quality = 0, gopher_repetition = 0, c4 = 0, fineweb = 0;
    string_list_t dedup_what = {0};
    int dedup = 0, dedup_lines = 0, near_dedup = 0, split_blank = 0, skip_bad = 0, threads = 0;
    anv_comm_t *comm = NULL;
    opt_t opts[] = {
        {"--input", OPT_STRINGS, &inputs,
         "text, JSONL or Parquet files or folders (.gz/.zst too); folders: *.txt *.md *.jsonl *.parquet"},
        {"--tokenizer", OPT_STRING, &tok_path, "tokenizer.json, tiktoken file or GPT-2 folder to encode with"},
        {"--vocab-size", OPT_LONG, &vocab, "or train a BPE tokenizer of this size on the input first"},
        {"--tokenizer-sample", OPT_LONG, &tokenizer_sample,
         "with --vocab-size: train on about this many bytes of text, picked all over the input (default: all)"},
        {"--out", OPT_STRING, &out, "output folder (required)"},
        {"--val-fraction", OPT_DOUBLE, &val_fraction, "share of documents for validation (default 0.005, >= 1 doc)"},
        {"--dedup", OPT_WORDS, &dedup_what,
         "[docs] [lines|paragraphs]: drop exact duplicate documents (the default), remove lines or paragraphs an "
         "earlier document had"},
        {"--near-dedup", OPT_FLAG, &near_dedup,
         "drop near-duplicates: MinHash LSH over word 5-grams (112 hashes, 14 bands of 8), first of each cluster kept"},
        {"--near-threshold", OPT_DOUBLE, &near_threshold,
         "with --near-dedup: estimated Jaccard similarity that makes a near-duplicate (default 0.8)"},
        {"--min-chars", OPT_LONG, &min_chars, "drop documents shorter than N characters"},
        {"--lang", OPT_STRING, &langs_arg,
         "keep documents in these languages only (en,fr,...: CLD2's ISO 639-1 codes)"},
        {"--lang-share", OPT_DOUBLE, &lang_share, "with --lang: the least share of a document in its language (0.65)"},
        {"--blocklist", OPT_STRING, &blocklist_path,
         "drop documents with a word or phrase of this file (one per line; whole words, any case)"},
        {"--pii", OPT_FLAG, &pii, "replace e-mail addresses and public IP addresses (private ranges stay)"},
        {"--pii-phones", OPT_FLAG, &pii_phones, "with --pii: replace phone numbers too"},
        {"--c4", OPT_FLAG, &c4, "C4's line and document rules (anvil data filters: every rule and threshold)"},
        {"--gopher-quality", OPT_FLAG, &gopher_quality, "Gopher's quality rules"},
        {"--gopher-repetition", OPT_FLAG, &gopher_repetition, "Gopher's repetition rules"},
        {"--fineweb", OPT_FLAG, &fineweb, "FineWeb's quality rules"},
        {"--filter-param", OPT_STRINGS, &filter_params, "FILTER.PARAM=VALUE...: a threshold other than the default"},
        {"--rejected", OPT_STRING, &rejected,
         "write one JSON line per dropped document (source, line, reason, value, kept_source, kept_line)"},
        {"--text-field", OPT_STRING, &field,
         "JSON field or Parquet column holding the text (default text; a.b inside structs)"},
        {"--split-blank-lines", OPT_INT, &split_blank,
         "split .txt files into documents at runs of >= N blank lines (default: a file is a document)"},
        {"--seed", OPT_LONG, &seed, "seed of the train/val split (default 1337)"},
        {"--shard-tokens", OPT_LONG, &shard_tokens, "tokens per shard (default 100M)"},
        {"--skip-bad", OPT_FLAG, &skip_bad,
         "skip (and count) malformed JSON lines, and the rest of files that cannot be read, instead of failing"},
        {"--threads", OPT_INT, &threads, "threads (default: all cores)"},
        {"--pattern", OPT_STRING, &pattern_name, "with --vocab-size: pre-tokenizer gpt2 (default) or cl100k"},
        {"--special", OPT_STRINGS, &specials, "with --vocab-size: extra special tokens after <|endoftext|>"},
        {"--min-frequency", OPT_LONG, &min_freq, "with --vocab-size: merge only pairs seen this often (default 2)"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    const char *usage =
        "anvil data prepare --input PATH... (--tokenizer FILE | --vocab-size N) --out DIR [options]\n"
        "Writes DIR/tokenizer.json, DIR/train_NNNNNN.bin, DIR/val_NNNNNN.bin (llm.c shards: <|endoftext|>\n"
        "before each document) and DIR/meta.json. With --vocab-size, training breaks ties between equally\n"
        "frequent pairs as `anvil tokenizer train --help` describes (deterministic for any thread count).";
    const opt_range_t ranges[] = {
        {"--val-fraction", 0, 0.9},        {"--near-threshold", 0.01, 1}, {"--lang-share", 0, 1},
        {"--tokenizer-sample", 0, 1e18},   {"--min-chars", 0, 1e15},      {"--split-blank-lines", 0, 1 << 20},
        {"--seed", 0, 9007199254740992.0}, {"--shard-tokens", 1, 1e15},   {"--threads", 0, cli_max_threads()},
        {"--min-frequency", 1, 1e15},
    };
    int rc = cli_parse_bounded(argc, argv, opts, n_opts, ranges, (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) {
        free(inputs.items);
        free(specials.items);
        free(filter_params.items);
        free(dedup_what.items);
        return rc < 0 ? cli_fail() : 0;
    }
    for (int i = 0; i < dedup_what.count && rc == 0; i++) {
        const char *w = dedup_what.items[i];
        if (!strcmp(w, "docs"))
            dedup = 1;
        else if (!strcmp(w, "lines") || !strcmp(w, "paragraphs"))
            dedup_lines = w[0] == 'l' ? 1 : 2;
        else
            rc = anv_error("--dedup %s: expected docs, lines or paragraphs", w);
    }
    if (dedup_what.given && dedup_what.count == 0) dedup = 1;
    anv_filter_set_t quality = {0};
    const int chosen[] = {c4, gopher_quality, gopher_repetition, fineweb};
    const char *const chosen_names[] = {"c4", "gopher_quality", "gopher_repetition", "fineweb"};
    for (int i = 0; i < 4 && rc == 0; i++)
        if (chosen[i]) rc = anv_filter_set_add(&quality, chosen_names[i]);
    for (int i = 0; i < filter_params.count && rc == 0; i++)
        rc = anv_filter_set_param(&quality, filter_params.items[i]);
    /* --lang en,fr: the codes, checked against CLD2's */
    char *lang_copy = langs_arg ? strdup(langs_arg) : NULL;
    const char *langs[64];
    size_t n_langs = 0;
    for (char *save = NULL, *t = lang_copy ? strtok_r(lang_copy, ",", &save) : NULL; t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        if (n_langs == 64)
            rc = anv_error("--lang: at most 64 languages");
        else if (!anv_language_known(t))
            rc = anv_error("--lang: \"%s\" is not a language code CLD2 knows (en, fr, de, zh, ...)", t);
        else
            langs[n_langs++] = t;
    }
    if (rc == 0 && langs_arg && n_langs == 0) rc = anv_error("--lang: no language codes in \"%s\"", langs_arg);
    if (rc == 0 && pii_phones && !pii) rc = anv_error("--pii-phones goes with --pii");
    anv_blocklist_t *blocklist = NULL;
    if (rc == 0 && blocklist_path && anv_blocklist_load(blocklist_path, &blocklist) != 0) rc = -1;
    int pattern = 0, bad_filters = rc;
    rc = 1;
    if (bad_filters)
        ;
    else if (!inputs.count || !out)
        anv_error("data prepare needs --input and --out (see --help)");
    else if (!tok_path == !vocab)
        anv_error("data prepare needs exactly one of --tokenizer FILE and --vocab-size N");
    else if (vocab < 0 || min_chars < 0 || shard_tokens <= 0 || min_freq < 1)
        anv_error("--vocab-size, --min-chars, --shard-tokens and --min-frequency must be positive");
    else if (cli_parse_pattern(pattern_name, &pattern) == 0 && anv_comm_init(&comm) == 0) {
        anv_threads_set(threads);
        int rank = anv_comm_rank(comm);
        cli_progress_t prog;
        cli_progress_init(&prog);
        anv_prepare_opts_t o = {
            .corpus = {.inputs = inputs.items,
                       .n_inputs = (size_t)inputs.count,
                       .text_field = field,
                       .split_blank_lines = split_blank,
                       .skip_bad = skip_bad},
            .filter = {.min_chars = (size_t)min_chars,
                       .langs = langs,
                       .n_langs = n_langs,
                       .lang_share = lang_share,
                       .blocklist = blocklist,
                       .quality = &quality,
                       .pii = pii + pii_phones,
                       .dedup = dedup,
                       .dedup_lines = dedup_lines,
                       .near_dedup = near_dedup,
                       .near_threshold = near_threshold},
            .out_dir = out,
            .rejected_path = rejected,
            .tokenizer_path = tok_path,
            .vocab_size = (size_t)vocab,
            .tokenizer_sample = (uint64_t)tokenizer_sample,
            .pattern = (anv_pretok_t)pattern,
            .specials = specials.items,
            .n_specials = (size_t)specials.count,
            .min_frequency = (uint64_t)min_freq,
            .val_fraction = val_fraction,
            .seed = (uint64_t)seed,
            .shard_tokens = (uint64_t)shard_tokens,
            .argv = (const char *const *)full_argv,
            .argc = full_argc,
            .progress = rank == 0 ? cli_progress : NULL,
            .progress_ctx = &prog,
            .comm = comm,
        };
        anv_prepare_stats_t st;
        if (anv_comm_size(comm) > 1 && rank == 0)
            fprintf(stderr, "data prepare over %d ranks: each reads its part of the files\n", anv_comm_size(comm));
        int ok = anv_prepare(&o, &st) == 0;
        if (ok && rank > 0) {
            rc = 0;
        } else if (!ok && anv_comm_size(comm) > 1) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", anv_last_error());
            anv_error("rank %d of %d: %s", rank, anv_comm_size(comm), msg);
        } else if (ok) {
            cli_progress_end(&prog);
            double secs = anv_now() - prog.start;
            fprintf(stderr, "prepared %.1f MB from %llu files in %.2f s (%.1f MB/s, %d threads)\n",
                    st.corpus.input_bytes / 1e6, (unsigned long long)st.corpus.files, secs,
                    st.corpus.input_bytes / 1e6 / (secs > 0 ? secs : 1), anv_threads_count());
            fprintf(stderr,
                    "  read:    %llu documents; skipped: %llu empty files, %llu files of other types, %llu bad lines, "
                    "%llu unreadable files (or their rest), %llu null values\n"
                    "  dropped: %llu empty or short, %llu duplicates, %llu near-duplicates\n",
                    (unsigned long long)st.documents_read, (unsigned long long)st.corpus.empty_files,
                    (unsigned long long)st.corpus.other_files, (unsigned long long)st.corpus.skipped_bad,
                    (unsigned long long)st.corpus.skipped_files, (unsigned long long)st.corpus.null_values,
                    (unsigned long long)st.dropped_short, (unsigned long long)st.dropped_duplicates,
                    (unsigned long long)st.dropped_near_duplicates);
            if (dedup_lines)
                fprintf(stderr, "  %s seen in an earlier document removed: %llu\n",
                        dedup_lines == 1 ? "lines" : "paragraphs", (unsigned long long)st.duplicate_lines);
            if (st.dropped_filters) fprintf(stderr, "  filters: %llu dropped:", (unsigned long long)st.dropped_filters);
            for (int i = 0; i < st.n_dropped_by; i++)
                fprintf(stderr, "%s %s %llu", i ? "," : "", st.dropped_by[i].reason,
                        (unsigned long long)st.dropped_by[i].n);
            if (st.dropped_filters) fputc('\n', stderr);
            if (pii)
                fprintf(stderr,
                        "  personal data replaced: %llu e-mail addresses, %llu IP addresses, %llu phone numbers\n",
                        (unsigned long long)st.pii.emails, (unsigned long long)st.pii.ips,
                        (unsigned long long)st.pii.phones);
            fprintf(stderr,
                    "  train:   %llu documents, %llu bytes, %llu tokens, %llu shards\n"
                    "  val:     %llu documents, %llu bytes, %llu tokens, %llu shards\n-> %s\n",
                    (unsigned long long)st.train.documents, (unsigned long long)st.train.bytes,
                    (unsigned long long)st.train.tokens, (unsigned long long)st.train.shards,
                    (unsigned long long)st.val.documents, (unsigned long long)st.val.bytes,
                    (unsigned long long)st.val.tokens, (unsigned long long)st.val.shards, out);
            if (st.single_document_split)
                fprintf(stderr, "  the input is one document: val is its last %llu bytes, cut at a line break\n",
                        (unsigned long long)st.val.bytes);
            rc = 0;
        }
        cli_progress_end(&prog);
    }
    anv_comm_free(comm);
    free(inputs.items);
    free(specials.items);
    free(filter_params.items);
    free(dedup_what.items);
    free(lang_copy);
    anv_blocklist_free(blocklist);
    return rc ? cli_fail() : 0;
}

/* anvil data filters: every quality filter, its rules and their defaults. */
static int cmd_filters(void) {
    printf("Quality filters of anvil data prepare (--NAME to use one, --filter-param NAME.PARAM=VALUE to change a\n"
           "threshold; 1/0 switch a rule on/off). Dropped documents name their rule in --rejected.\n");
    for (int i = 0; anv_filter_at(i); i++) {
        const anv_filter_def_t *d = anv_filter_at(i);
        printf("\n%s: %s\n", d->name, d->summary);
        for (int p = 0; d->params[p].name; p++)
            printf("  %-24s %-8g %s\n", d->params[p].name, d->params[p].value, d->params[p].help);
    }
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "filters")) return cmd_filters();
    if (argc >= 2 && !strcmp(argv[1], "prepare")) {
        /* meta.json records the command as typed: "anvil" + argv from "data" on */
        char **full = malloc(((size_t)argc + 1) * sizeof *full);
        if (!full) return 1;
        full[0] = "anvil";
        memcpy(full + 1, argv, (size_t)argc * sizeof *full);
        int rc = cmd_prepare(argc - 1, argv + 1, argc + 1, full);
        free(full);
        return rc;
    }
    fprintf(stderr, "usage: anvil data prepare --input PATH... (--tokenizer FILE | --vocab-size N) --out DIR\n"
                    "       (anvil data prepare --help for all options)\n"
                    "       anvil data filters: the quality filters, their rules and thresholds\n");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return argc < 2 ? 2 : 0;
    fprintf(stderr, "anvil: unknown data subcommand '%s'\n", argv[1]);
    return 2;
}
