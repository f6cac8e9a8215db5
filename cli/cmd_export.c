/* anvil export: a trained run as a GGUF file for llama.cpp or a Hugging Face directory. */
#include "cli.h"

#include "anvil/gguf.h"
#include "anvil/hf_export.h"
#include "anvil/trainer.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "anvil export --run RUN --format gguf|hf [--dtype f32|f16|q8_0] --out FILE|DIR [--force]\n"
    "       anvil export --run LORA_RUN --format gguf-lora --out FILE     (llama.cpp's adapter file)\n"
    "       anvil export --run LORA_RUN --merge --format gguf|hf --out FILE|DIR\n"
    "Refuses an --out that exists (a file) or is not empty (a directory) unless --force; never writes into\n"
    "the run itself.";

static int parse_dtype(const char *s, anv_ggml_type_t *t) {
    if (!strcmp(s, "f32"))
        *t = ANV_GGML_F32;
    else if (!strcmp(s, "f16"))
        *t = ANV_GGML_F16;
    else if (!strcmp(s, "q8_0"))
        *t = ANV_GGML_Q8_0;
    else
        return anv_error("--dtype: unknown type '%s' (expected f32, f16 or q8_0)", s);
    return 0;
}

/* The directory that holds path (path itself for a directory), resolved; "" when it does not exist. */
static void resolved_dir(const char *path, int is_dir, char *out) {
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", path);
    if (!realpath(is_dir ? copy : dirname(copy), out)) out[0] = 0;
}

/* An export only creates: it never replaces what it did not write (unless --force) and never writes
 * into the run, whose files a trainer may be replacing. */
static int check_out(const char *run, const char *out, int gguf, int force) {
    char run_real[PATH_MAX], out_real[PATH_MAX];
    resolved_dir(run, 1, run_real);
    resolved_dir(out, !gguf, out_real);
    if (*run_real && !strcmp(run_real, out_real))
        return anv_error("--out %s: %s the run directory %s; export elsewhere", out, gguf ? "is in" : "is", run);
    if (force) return 0;
    if (gguf && anv_path_exists(out)) return anv_error("--out %s: exists (pass --force to replace it)", out);
    int occupied = gguf ? 0 : anv_dir_has_entries(out);
    if (occupied < 0) return -1;
    if (occupied) return anv_error("--out %s: is not empty (pass --force to write into it)", out);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *run = NULL, *format = NULL, *dtype = "f32", *out = NULL, *name = NULL;
    int force = 0, merge = 0;
    const opt_t opts[] = {
        {"--run", OPT_STRING, &run, "run directory (config.json, model.safetensors, tokenizer.json)"},
        {"--format", OPT_STRING, &format,
         "gguf (llama.cpp), hf (Hugging Face directory) or gguf-lora (a LoRA run's adapters for llama.cpp)"},
        {"--merge", OPT_FLAG, &merge, "a LoRA run: fold the adapters into the base weights and export the result"},
        {"--dtype", OPT_STRING, &dtype, "gguf: f32 (default), f16 or q8_0 for the 2-D weights"},
        {"--out", OPT_STRING, &out, "output file (gguf) or directory (hf)"},
        {"--name", OPT_STRING, &name, "gguf: general.name (default: the run directory's name)"},
        {"--force", OPT_FLAG, &force, "replace what --out holds"},
    };
    int n_opts = sizeof opts / sizeof opts[0], seen[sizeof opts / sizeof opts[0]];
    int rc = cli_parse(argc, argv, opts, n_opts, usage, seen);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!run || !format || !out) {
        anv_error("export needs --run, --format and --out (see --help)");
        return cli_fail();
    }
    int lora = !strcmp(format, "gguf-lora"), gguf = lora || !strcmp(format, "gguf");
    anv_ggml_type_t type;
    if (!gguf && strcmp(format, "hf") != 0) {
        anv_error("--format: unknown format '%s' (expected gguf, hf or gguf-lora)", format);
        return cli_fail();
    }
    if (lora && merge) {
        anv_error("--merge exports a whole model: use it with --format gguf or hf");
        return cli_fail();
    }
    if (parse_dtype(dtype, &type) != 0) return cli_fail();
    if (!gguf && type != ANV_GGML_F32) {
        anv_error("--dtype %s: the hf format is written in f32", dtype);
        return cli_fail();
    }
    if (!anv_is_dir(run)) {
        anv_error("%s: run directory not found", run);
        return cli_fail();
    }
    if (check_out(run, out, gguf, force) != 0) return cli_fail();
    anv_model_t *m = NULL;
    anv_tokenizer_t *tok = NULL;
    char base[4200];
    double t0 = anv_now();
    snprintf(base, sizeof base, "%s", run);
    if (anv_run_load(run, &m, &tok) != 0) {
        rc = -1;
    } else if (!anv_model_lora(m) && (lora || merge)) {
        rc = anv_error("%s: not a LoRA run (it has no adapter_config.json): export it with --format gguf or hf", run);
    } else if (lora) {
        rc = anv_gguf_export_lora(m, name ? name : basename(base), type, out);
    } else if (anv_model_lora(m) && !merge) {
        rc = anv_error("%s: a LoRA run; export its adapters with --format gguf-lora (llama.cpp loads them with the "
                       "base's GGUF) or the merged model with --merge",
                       run);
    } else if (gguf) {
        const anv_chat_template_t *chat;
        anv_model_merge_lora(m);
        rc = anv_chat_template_of_run(run, tok, &chat);
        if (rc == 0) rc = anv_gguf_export(m, tok, name ? name : basename(base), type, out, chat);
        anv_chat_template_free(chat);
    } else {
        char card[4200];
        anv_model_merge_lora(m);
        rc = anv_hf_export(m, tok, out) == 0 && anv_path_join(card, sizeof card, out, "README.md") == 0 &&
                     anv_model_card_write(run, m, tok, card) == 0
                 ? 0
                 : -1;
    }
    anv_model_free(m);
    anv_tokenizer_free(tok);
    if (rc != 0) return cli_fail();
    fprintf(stderr, "exported %s%s as %s%s%s to %s in %.2f s\n", run, merge ? " (adapters merged)" : "", format,
            gguf ? " " : "", gguf ? dtype : "", out, anv_now() - t0);
    return 0;
}
