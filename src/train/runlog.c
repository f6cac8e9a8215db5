/* log.jsonl: one JSON object per line, flushed per line; truncated back to a checkpoint on resume. */
#include "anvil/json.h"
#include "anvil/trainer.h"

#include <errno.h>
#include <string.h>

/* Keeps the complete lines whose "step" is <= keep_step (a torn last line never parses). */
static int truncate_log(const char *path, long long keep_step) {
    char *text;
    size_t len;
    if (anv_read_file(path, &text, &len) != 0) return -1;
    anv_buf_t out = {0};
    int rc = anv_buf_puts(&out, "");
    for (size_t at = 0; rc == 0 && at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        if (!nl) break;
        size_t n = (size_t)(nl - (text + at));
        anv_json_doc_t *doc;
        if (anv_json_parse(text + at, n, path, &doc) == 0) {
            const anv_json_t *step = anv_json_get(anv_json_root(doc), "step");
            if (step && step->type == ANV_JSON_NUMBER && step->number <= (double)keep_step)
                rc = anv_buf_append(&out, text + at, n + 1);
            anv_json_free(doc);
        }
        at += n + 1;
    }
    if (rc == 0) rc = anv_write_file_atomic(path, out.data, out.len);
    anv_buf_free(&out);
    anv_free(text);
    return rc;
}

int anv_runlog_open(anv_runlog_t *log, const char *run_dir, long long keep_step) {
    log->f = NULL;
    if (anv_path_join(log->path, sizeof log->path, run_dir, "log.jsonl") != 0) return -1;
    int rc = keep_step > 0 && anv_path_exists(log->path) ? truncate_log(log->path, keep_step)
                                                         : anv_write_file_atomic(log->path, "", 0);
    if (rc != 0) return -1;
    log->f = fopen(log->path, "ab");
    if (!log->f) return anv_error("%s: cannot open for appending: %s", log->path, strerror(errno));
    return 0;
}

static int flush_line(anv_runlog_t *log, int printed);

int anv_runlog_sample(anv_runlog_t *log, long long step, long long tokens, const char *prompt, const char *text,
                      size_t len) {
    anv_buf_t b = {0};
    int rc = anv_buf_printf(&b, "{\"step\":%lld,\"tokens\":%lld,\"prompt\":", step, tokens) |
             anv_buf_json_string(&b, prompt, strlen(prompt)) | anv_buf_puts(&b, ",\"sample\":") |
             anv_buf_json_string(&b, text, len) | anv_buf_puts(&b, "}\n");
    int n = rc == 0 && fwrite(b.data, 1, b.len, log->f) == b.len ? (int)b.len : -1;
    anv_buf_free(&b);
    return flush_line(log, n);
}

static int flush_line(anv_runlog_t *log, int printed) {
    if (printed < 0 || fflush(log->f) != 0) return anv_error("%s: write failed: %s", log->path, strerror(errno));
    return 0;
}

int anv_runlog_step(anv_runlog_t *log, const anv_step_report_t *r) {
    int n = fprintf(log->f,
                    "{\"step\":%lld,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens\":%lld,"
                    "\"tokens_per_s\":%.1f,\"step_s\":%.4f,\"mfu\":%.4f,\"mfu_best\":%.4f}\n",
                    r->step, (double)r->loss, (double)r->lr, (double)r->grad_norm, r->tokens, r->tokens_per_s,
                    r->step_s, r->mfu, r->mfu_best);
    return flush_line(log, n);
}

int anv_runlog_eval(anv_runlog_t *log, const anv_eval_report_t *r) {
    int n = fprintf(log->f, "{\"step\":%lld,\"tokens\":%lld,\"val_loss\":%.9g,\"val_bpb\":%.9g}\n", r->step, r->tokens,
                    r->val_loss, r->val_bpb);
    return flush_line(log, n);
}

int anv_runlog_evals(const char *run_dir, anv_eval_report_t *last, anv_eval_report_t *best, double *train_loss) {
    char path[4200];
    char *text;
    size_t len;
    if (anv_path_join(path, sizeof path, run_dir, "log.jsonl") != 0 || anv_read_file(path, &text, &len) != 0) return -1;
    int found = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        anv_json_doc_t *doc;
        if (n && anv_json_parse(text + at, n, path, &doc) == 0) {
            const anv_json_t *root = anv_json_root(doc), *step = anv_json_get(root, "step"),
                             *tokens = anv_json_get(root, "tokens"), *loss = anv_json_get(root, "val_loss"),
                             *bpb = anv_json_get(root, "val_bpb");
            if (step && tokens && loss && bpb && step->type == ANV_JSON_NUMBER && tokens->type == ANV_JSON_NUMBER &&
                loss->type == ANV_JSON_NUMBER && bpb->type == ANV_JSON_NUMBER) {
                *last =
                    (anv_eval_report_t){(long long)step->number, (long long)tokens->number, loss->number, bpb->number};
                if (best && (!found || last->val_loss < best->val_loss)) *best = *last;
                found = 1;
            }
            const anv_json_t *train = anv_json_get(root, "loss");
            if (train_loss && train && train->type == ANV_JSON_NUMBER) *train_loss = train->number;
            anv_json_free(doc);
        }
        at += n + 1;
    }
    anv_free(text);
    return found;
}

void anv_runlog_close(anv_runlog_t *log) {
    if (log->f) fclose(log->f);
    log->f = NULL;
}
