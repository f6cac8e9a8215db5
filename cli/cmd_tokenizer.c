/* anvil tokenizer encode|decode|convert (and train, cli/cmd_tokenizer_train.c). */
#include "cli.h"

#include "anvil/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads all of a file ("-" or NULL: stdin) into a buffer. */
static int read_all(const char *path, anv_buf_t *out) {
    if (path && strcmp(path, "-") != 0) {
        char *data;
        size_t len;
        if (anv_read_file(path, &data, &len) != 0) return -1;
        int rc = anv_buf_append(out, data, len);
        anv_free(data);
        return rc;
    }
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (anv_buf_append(out, chunk, n) != 0) return -1;
    if (ferror(stdin)) return anv_error("stdin: read failed: %s", strerror(errno));
    return anv_buf_append(out, "", 0);
}

static int print_ids(const anv_tokens_t *ids, int json) {
    if (json) fputc('[', stdout);
    for (size_t i = 0; i < ids->len; i++) printf("%s%u", i ? (json ? "," : " ") : "", ids->ids[i]);
    if (json) fputc(']', stdout);
    if (fputc('\n', stdout) == EOF) return anv_error("stdout: write failed: %s", strerror(errno));
    return 0;
}

static int cmd_encode(int argc, char **argv) {
    const char *tok_path = NULL, *format = "ids";
    string_list_t inputs = {0};
    int special = 0;
    opt_t opts[] = {
        {"--tokenizer", OPT_STRING, &tok_path, "tokenizer.json, tiktoken file or GPT-2 directory (required)"},
        {"--input", OPT_STRINGS, &inputs, "files to encode, one output line each (default: stdin)"},
        {"--format", OPT_STRING, &format, "ids (space-separated, default) or json"},
        {"--special", OPT_FLAG, &special, "turn special-token strings such as <|endoftext|> into their ids"},
    };
    const char *usage = "anvil tokenizer encode --tokenizer FILE [--input FILE...] [--format ids|json] [--special]";
    int rc = cli_parse(argc, argv, opts, 4, usage, NULL);
    if (rc != 0) {
        free(inputs.items);
        return rc < 0 ? cli_fail() : 0;
    }
    anv_tokenizer_t *t = NULL;
    anv_buf_t text = {0};
    anv_tokens_t ids = {0};
    int json = !strcmp(format, "json");
    rc = 1;
    if (!tok_path)
        anv_error("encode needs --tokenizer FILE");
    else if (!json && strcmp(format, "ids") != 0)
        anv_error("--format must be ids or json, got '%s'", format);
    else if (anv_tokenizer_load(tok_path, &t) == 0) {
        int n = inputs.count ? inputs.count : 1;
        rc = 0;
        for (int i = 0; i < n && rc == 0; i++) {
            text.len = 0;
            ids.len = 0;
            const char *in = inputs.count ? inputs.items[i] : NULL;
            int (*enc)(const anv_tokenizer_t *, const char *, size_t, anv_tokens_t *) =
                special ? anv_tokenizer_encode_special : anv_tokenizer_encode;
            if (read_all(in, &text) != 0 || enc(t, text.data, text.len, &ids) != 0 || print_ids(&ids, json) != 0)
                rc = 1;
        }
        if (rc == 0 && fflush(stdout) != 0) {
            anv_error("stdout: write failed: %s", strerror(errno));
            rc = 1;
        }
    }
    anv_tokenizer_free(t);
    anv_buf_free(&text);
    anv_tokens_free(&ids);
    free(inputs.items);
    return rc ? cli_fail() : 0;
}

/* Parses whitespace-separated ids (also '[', ']' and ',' as separators, so json output decodes). */
static int parse_ids(const anv_buf_t *text, anv_tokens_t *ids) {
    const char *s = text->data ? text->data : "";
    size_t i = 0, n = text->len;
    while (i < n) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '[' || c == ']') {
            i++;
            continue;
        }
        size_t start = i;
        unsigned long long v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && v <= UINT32_MAX) v = v * 10 + (unsigned)(s[i++] - '0');
        int sep = i == n || strchr(" \t\n\r,[]", s[i]);
        if (i == start || !sep || v > UINT32_MAX)
            return anv_error("stdin: byte %zu: expected a token id, got '%.20s'", start, s + start);
        if (anv_tokens_push(ids, (uint32_t)v) != 0) return -1;
    }
    return 0;
}

static int cmd_decode(int argc, char **argv) {
    const char *tok_path = NULL;
    opt_t opts[] = {
        {"--tokenizer", OPT_STRING, &tok_path, "tokenizer.json, tiktoken file or GPT-2 directory (required)"},
    };
    const char *usage = "anvil tokenizer decode --tokenizer FILE  (ids on stdin, bytes on stdout)";
    int rc = cli_parse(argc, argv, opts, 1, usage, NULL);
    if (rc != 0) return rc < 0 ? cli_fail() : 0;
    if (!tok_path) {
        anv_error("decode needs --tokenizer FILE");
        return cli_fail();
    }
    anv_tokenizer_t *t = NULL;
    anv_buf_t text = {0}, bytes = {0};
    anv_tokens_t ids = {0};
    rc = 1;
    if (anv_tokenizer_load(tok_path, &t) == 0 && read_all(NULL, &text) == 0 && parse_ids(&text, &ids) == 0 &&
        anv_tokenizer_decode(t, ids.ids, ids.len, &bytes) == 0) {
        if (fwrite(bytes.data, 1, bytes.len, stdout) != bytes.len || fflush(stdout) != 0)
            anv_error("stdout: write failed: %s", strerror(errno));
        else
            rc = 0;
    }
    anv_tokenizer_free(t);
    anv_buf_free(&text);
    anv_buf_free(&bytes);
    anv_tokens_free(&ids);
    return rc ? cli_fail() : 0;
}

static int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    opt_t opts[] = {
        {"--tokenizer", OPT_STRING, &in, "tokenizer.json, tiktoken file or GPT-2 directory (required)"},
        {"--output", OPT_STRING, &out, "Hugging Face tokenizer.json to write (required)"},
    };
    int rc = cli_parse(argc, argv, opts, 2, "anvil tokenizer convert --tokenizer FILE --output tokenizer.json", NULL);
    if (rc != 0) return rc < 0 ? cli_fail() : 0;
    if (!in || !out) {
        anv_error("convert needs --tokenizer FILE and --output FILE");
        return cli_fail();
    }
    anv_tokenizer_t *t;
    if (anv_tokenizer_load(in, &t) != 0) return cli_fail();
    rc = anv_tokenizer_save(t, out);
    if (rc == 0)
        fprintf(stderr, "wrote %s: %zu ids, %zu merges, %zu special tokens\n", out, anv_tokenizer_vocab_size(t),
                anv_tokenizer_n_merges(t), anv_tokenizer_n_specials(t));
    anv_tokenizer_free(t);
    return rc ? cli_fail() : 0;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} subcommands[] = {
    {"train", cmd_tokenizer_train, "learn a byte-level BPE vocabulary from text files"},
    {"encode", cmd_encode, "text (stdin or files) -> token ids"},
    {"decode", cmd_decode, "token ids (stdin) -> the exact bytes"},
    {"convert", cmd_convert, "any readable tokenizer -> Hugging Face tokenizer.json"},
};

int cmd_tokenizer(int argc, char **argv) {
    size_t n = sizeof subcommands / sizeof subcommands[0];
    if (argc >= 2)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "usage: anvil tokenizer <subcommand> [options]   (--help for its options)\n");
    for (size_t i = 0; i < n; i++) fprintf(stderr, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return argc < 2 ? 2 : 0;
    fprintf(stderr, "anvil: unknown tokenizer subcommand '%s'\n", argv[1]);
    return 2;
}
