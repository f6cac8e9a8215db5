/* Task files into examples: HellaSwag (JSONL or llama.cpp's text format), generic multiple choice and
 * LAMBADA. See anvil/eval.h for the formats. */
#include "anvil/eval.h"
#include "anvil/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *const task_names[] = {"hellaswag", "mc", "lambada", "text"};

int anv_task_parse(const char *name, anv_task_t *out) {
    for (int i = 0; i < (int)(sizeof task_names / sizeof task_names[0]); i++)
        if (strcmp(name, task_names[i]) == 0) {
            *out = (anv_task_t)i;
            return 0;
        }
    return anv_error("--task %s: unknown task (hellaswag, mc, lambada, text)", name);
}

const char *anv_task_name(anv_task_t task) { return task_names[task]; }

/* The whole file, gzip or plain, NUL-terminated. */
static int read_all(const char *path, anv_buf_t *b) {
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) return anv_error("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib failed");
    char chunk[1 << 16];
    int n, rc = 0;
    while (rc == 0 && (n = gzread(gz, chunk, sizeof chunk)) > 0) rc = anv_buf_append(b, chunk, (size_t)n);
    int code = Z_OK;
    const char *msg = gzerror(gz, &code);
    if (rc == 0 && code != Z_OK && code != Z_STREAM_END)
        rc = anv_error("%s: %s (truncated or corrupt .gz?)", path, msg);
    gzclose(gz);
    if (rc == 0) rc = anv_buf_append(b, "", 1);
    if (rc == 0) b->len--;
    return rc;
}

typedef struct {
    const char *path;
    anv_examples_t *out;
    size_t cap;
    char where[4200]; /* "path:line" of the example being read */
} reader_t;

static void example_free(anv_example_t *ex) {
    for (int j = 0; ex->continuations && j < ex->n_continuations; j++) anv_free(ex->continuations[j]);
    anv_free(ex->continuations);
    anv_free(ex->context);
}

/* Appends an example whose strings are taken over (freed here on failure). */
static int add_example(reader_t *r, anv_example_t *ex) {
    if (r->out->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        anv_example_t *p = anv_realloc(r->out->items, cap * sizeof *p, "examples");
        if (!p) {
            example_free(ex);
            return -1;
        }
        r->out->items = p;
        r->cap = cap;
    }
    r->out->items[r->out->n++] = *ex;
    return 0;
}

static char *copy(const char *s, size_t n) {
    char *p = anv_alloc(n + 1, "example text");
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* " " + s: the continuation a choice is scored as. */
static char *continuation(const char *s, size_t n) {
    char *p = anv_alloc(n + 2, "example text");
    if (p) {
        p[0] = ' ';
        memcpy(p + 1, s, n);
        p[n + 1] = 0;
    }
    return p;
}

/* lm-evaluation-harness's HellaSwag preprocessing: strip, " [title]" -> ". ", drop "[...]" spans, then
 * each "  " -> " " (one left-to-right pass, as Python's str.replace). In place; returns the length. */
static size_t hellaswag_preprocess(char *s) {
    size_t n = strlen(s), a = 0;
    while (a < n && isspace((unsigned char)s[a])) a++;
    while (n > a && isspace((unsigned char)s[n - 1])) n--;
    size_t w = 0;
    for (size_t i = a; i < n;) { /* " [title]" -> ". " (never longer) */
        if (n - i >= 8 && memcmp(s + i, " [title]", 8) == 0) {
            s[w++] = '.', s[w++] = ' ', i += 8;
        } else {
            s[w++] = s[i++];
        }
    }
    n = w, w = 0;
    for (size_t i = 0; i < n;) { /* "\[.*?\]": a '[' up to the first ']' on the same line */
        const char *close = s[i] == '[' ? memchr(s + i, ']', n - i) : NULL;
        const char *nl = close ? memchr(s + i, '\n', (size_t)(close - (s + i))) : NULL;
        if (close && !nl)
            i = (size_t)(close - s) + 1;
        else
            s[w++] = s[i++];
    }
    n = w, w = 0;
    for (size_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == ' ' && s[i + 1] == ' ')
            s[w++] = ' ', i += 2;
        else
            s[w++] = s[i++];
    }
    s[w] = 0;
    return w;
}

static const anv_json_t *get_typed(reader_t *r, const anv_json_t *obj, const char *key, anv_json_type_t type) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v)
        anv_error("%s: no \"%s\" field", r->where, key);
    else if (v->type != type)
        anv_error("%s: \"%s\" is %s, not %s", r->where, key, anv_json_type_name(v->type), anv_json_type_name(type));
    return v && v->type == type ? v : NULL;
}

/* The answer index: a number, or a string of digits (HellaSwag's "label"). */
static int get_answer(reader_t *r, const anv_json_t *obj, const char *key, int n, int *out) {
    const anv_json_t *v = anv_json_get(obj, key);
    double d = -1;
    if (v && v->type == ANV_JSON_NUMBER && anv_json_is_integer(v, 0, 1e9)) d = v->number;
    if (v && v->type == ANV_JSON_STRING && v->len > 0 && v->len < 10 && strspn(v->str, "0123456789") == v->len)
        d = atof(v->str);
    if (!v) return anv_error("%s: no \"%s\" field", r->where, key);
    if (d < 0 || d >= n)
        return anv_error("%s: \"%s\" must be an index of the %d choices (0 to %d)", r->where, key, n, n - 1);
    *out = (int)d;
    return 0;
}

/* The continuations of a JSON array of strings. */
static int get_choices(reader_t *r, const anv_json_t *obj, const char *key, int hellaswag, anv_example_t *ex) {
    const anv_json_t *a = get_typed(r, obj, key, ANV_JSON_ARRAY);
    if (!a) return -1;
    if (a->len < 2 || a->len > 1000)
        return anv_error("%s: \"%s\" holds %zu choices (2 to 1000 are scored)", r->where, key, a->len);
    if (!(ex->continuations = anv_calloc(a->len * sizeof(char *), "choices"))) return -1;
    ex->n_continuations = (int)a->len;
    for (size_t i = 0; i < a->len; i++) {
        const anv_json_t *c = &a->items[i];
        if (c->type != ANV_JSON_STRING)
            return anv_error("%s: \"%s\"[%zu] is %s, not a string", r->where, key, i, anv_json_type_name(c->type));
        char *s = copy(c->str, c->len);
        if (!s) return -1;
        size_t n = hellaswag ? hellaswag_preprocess(s) : c->len;
        ex->continuations[i] = continuation(s, n);
        anv_free(s);
        if (!ex->continuations[i]) return -1;
    }
    return 0;
}

/* HellaSwag's context: lm-evaluation-harness's when the fields for it are there, else "ctx" as is. */
static int hellaswag_context(reader_t *r, const anv_json_t *obj, anv_example_t *ex) {
    const anv_json_t *label = anv_json_get(obj, "activity_label"), *a = anv_json_get(obj, "ctx_a"),
                     *b = anv_json_get(obj, "ctx_b");
    if (!(label && a && b)) {
        const anv_json_t *ctx = get_typed(r, obj, "ctx", ANV_JSON_STRING);
        return ctx && (ex->context = copy(ctx->str, ctx->len)) ? 0 : -1;
    }
    if (!get_typed(r, obj, "activity_label", ANV_JSON_STRING) || !get_typed(r, obj, "ctx_a", ANV_JSON_STRING) ||
        !get_typed(r, obj, "ctx_b", ANV_JSON_STRING))
        return -1;
    anv_buf_t s = {0};
    size_t at = label->len + 2 + a->len + 1;
    int rc = anv_buf_append(&s, label->str, label->len) | anv_buf_puts(&s, ": ") | anv_buf_append(&s, a->str, a->len) |
             anv_buf_puts(&s, " ") | anv_buf_append(&s, b->str, b->len) | anv_buf_append(&s, "", 1);
    if (rc != 0) {
        anv_buf_free(&s);
        return -1;
    }
    for (size_t i = at; i < at + b->len; i++) /* Python's str.capitalize(): first upper, the rest lower */
        s.data[i] = (char)(i == at ? toupper((unsigned char)s.data[i]) : tolower((unsigned char)s.data[i]));
    hellaswag_preprocess(s.data);
    ex->context = s.data;
    return 0;
}

/* One JSON line into an example. */
static int json_example(reader_t *r, anv_task_t task, const char *line, size_t len, anv_example_t *ex) {
    anv_json_doc_t *doc;
    if (anv_json_parse(line, len, r->where, &doc) != 0) return -1;
    const anv_json_t *obj = anv_json_root(doc);
    int rc = -1;
    if (obj->type != ANV_JSON_OBJECT) {
        anv_error("%s: expected a JSON object per line, got %s", r->where, anv_json_type_name(obj->type));
    } else if (task == ANV_TASK_HELLASWAG) {
        rc = get_choices(r, obj, "endings", 1, ex) == 0 && hellaswag_context(r, obj, ex) == 0 &&
                     get_answer(r, obj, "label", ex->n_continuations, &ex->answer) == 0
                 ? 0
                 : -1;
    } else if (task == ANV_TASK_MC) {
        const anv_json_t *ctx = get_typed(r, obj, "context", ANV_JSON_STRING);
        rc = ctx && get_choices(r, obj, "choices", 0, ex) == 0 &&
                     get_answer(r, obj, "answer", ex->n_continuations, &ex->answer) == 0 &&
                     (ex->context = copy(ctx->str, ctx->len))
                 ? 0
                 : -1;
    } else { /* LAMBADA */
        const anv_json_t *text = get_typed(r, obj, "text", ANV_JSON_STRING);
        const char *space = NULL;
        for (size_t i = text ? text->len : 0; i-- > 0 && !space;)
            if (text->str[i] == ' ') space = text->str + i;
        if (text && (!space || space + 1 == text->str + text->len)) {
            anv_error("%s: \"text\" has no last word after a space", r->where);
        } else if (text && (ex->continuations = anv_calloc(sizeof(char *), "choices"))) {
            ex->n_continuations = 1;
            ex->continuations[0] = copy(space, (size_t)(text->str + text->len - space));
            ex->context = copy(text->str, (size_t)(space - text->str));
            rc = ex->continuations[0] && ex->context ? 0 : -1;
        }
    }
    anv_json_free(doc);
    return rc;
}

/* llama.cpp's HellaSwag text format: context, right ending's index, 4 endings; one per line. */
static int text_example(reader_t *r, char *const lines[6], const size_t lens[6], anv_example_t *ex) {
    char *end;
    long answer = strtol(lines[1], &end, 10);
    if (lens[1] == 0 || end != lines[1] + lens[1] || answer < 0 || answer > 3)
        return anv_error("%s: the second line of an example must be the right ending's index, 0 to 3", r->where);
    ex->answer = (int)answer;
    if (!(ex->context = copy(lines[0], lens[0])) || !(ex->continuations = anv_calloc(4 * sizeof(char *), "choices")))
        return -1;
    ex->n_continuations = 4;
    for (int i = 0; i < 4; i++)
        if (!(ex->continuations[i] = continuation(lines[2 + i], lens[2 + i]))) return -1;
    return 0;
}

/* A malformed example left out: counted, the first few shown. */
static int skip(anv_examples_t *out) {
    if (out->skipped++ < 5) anv_log(ANV_LOG_WARN, "skipping %s", anv_last_error());
    anv_error_clear();
    return 0;
}

int anv_examples_load(anv_task_t task, const char *path, size_t limit, int skip_bad, anv_examples_t *out) {
    memset(out, 0, sizeof *out);
    if (task == ANV_TASK_TEXT) return anv_error("text: a corpus, not examples");
    anv_buf_t b = {0};
    reader_t r = {path, out, 0, ""};
    if (read_all(path, &b) != 0) return -1;
    char *p = b.data, *end = b.data + b.len;
    while (p < end && isspace((unsigned char)*p)) p++;
    int text_format = task == ANV_TASK_HELLASWAG && p < end && *p != '{';
    char *lines[6];
    size_t lens[6];
    int have = 0, rc = 0;
    uint64_t line_no = 0, first = 0;
    for (char *s = b.data; rc == 0 && s < end && (!limit || out->n < limit);) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (len && s[len - 1] == '\r') len--;
        s[len] = 0;
        line_no++;
        char *line = s;
        s = nl ? nl + 1 : end;
        if (!text_format && strspn(line, " \t") == len) continue;
        if (have == 0) first = line_no;
        snprintf(r.where, sizeof r.where, "%s:%llu", path, (unsigned long long)first);
        anv_example_t ex = {.line = first};
        if (text_format) {
            lines[have] = line, lens[have] = len;
            if (++have < 6) continue;
            have = 0;
            rc = text_example(&r, lines, lens, &ex);
        } else {
            rc = json_example(&r, task, line, len, &ex);
        }
        if (rc == 0) {
            rc = add_example(&r, &ex);
        } else {
            example_free(&ex);
            rc = skip_bad ? skip(out) : -1;
        }
    }
    if (rc == 0 && have) {
        rc = anv_error("%s:%llu: the last example has %d of its 6 lines", path, (unsigned long long)first, have);
        if (skip_bad) rc = skip(out);
    }
    if (rc == 0 && out->n == 0) rc = anv_error("%s: no examples", path);
    anv_buf_free(&b);
    if (rc != 0) anv_examples_free(out);
    return rc;
}

void anv_examples_free(anv_examples_t *e) {
    for (size_t i = 0; i < e->n; i++) example_free(&e->items[i]);
    anv_free(e->items);
    memset(e, 0, sizeof *e);
}
