/* Corpus readers: file listing, a normalising decompressed byte stream, and the four document
 * shapes (whole text file, text split at blank lines, JSON lines, Parquet rows). See anvil/corpus.h. */
#include "anvil/corpus.h"

#include "anvil/json.h"
#include "anvil/parquet.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_CHUNK (1u << 20)
#define BAD_LINES_SHOWN 5

struct anv_corpus {
    anv_corpus_opts_t o;
    char **files;
    uint64_t *sizes;
    size_t n_files, cap_files, next_file, end_file; /* this part reads files [next_file, end_file) */
    /* the open file: a byte stream, or a Parquet reader */
    anv_stream_t *in;
    anv_parquet_t *pq;
    const char *path;
    int open, jsonl;
    uint64_t line_no, file_bytes;
    char *rbuf; /* normalised bytes rbuf[rpos..rlen) not consumed yet */
    size_t rpos, rlen, rcap, chunk;
    int pending_cr, eof;
    uint64_t done_bytes; /* sizes of the files already finished */
    anv_buf_t doc, line, blanks;
    anv_json_doc_t *json;
    anv_corpus_stats_t stats;
};

size_t anv_text_normalize_newlines(char *s, size_t n, int *pending_cr) {
    int cr = pending_cr ? *pending_cr : 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\n' && cr) { /* second half of \r\n: already emitted */
            cr = 0;
            continue;
        }
        cr = ch == '\r';
        s[o++] = cr ? '\n' : ch;
    }
    if (pending_cr) *pending_cr = cr;
    return o;
}

size_t anv_utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* ---- listing ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The name's length without a compression suffix. */
static size_t stem_len(const char *name) {
    return strlen(name) - (ends_with(name, ".gz") ? 3 : ends_with(name, ".zst") ? 4 : 0);
}

static int is_jsonl(const char *path) {
    size_t n = stem_len(path);
    return n >= 6 && !strncmp(path + n - 6, ".jsonl", 6);
}

static int is_parquet(const char *path) { return ends_with(path, ".parquet"); }

static int wanted_in_folder(const char *name) {
    static const char *const ext[] = {".txt", ".text", ".md", ".jsonl"};
    if (is_parquet(name)) return 1;
    size_t n = stem_len(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n >= k && !strncmp(name + n - k, ext[i], k)) return 1;
    }
    return 0;
}

static int add_file(anv_corpus_t *c, const char *path, uint64_t size) {
    size_t cap = c->cap_files;
    if (anv_grow(&c->files, &cap, c->n_files + 1, sizeof *c->files, "file list") != 0) return -1;
    cap = c->cap_files;
    if (anv_grow(&c->sizes, &cap, c->n_files + 1, sizeof *c->sizes, "file list") != 0) return -1;
    c->cap_files = cap;
    if (!(c->files[c->n_files] = anv_strdup(path))) return -1;
    c->sizes[c->n_files++] = size;
    c->stats.corpus_bytes += size;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_path(anv_corpus_t *c, const char *path, int in_folder, int depth) {
    struct stat st;
    if (stat(path, &st) != 0) return anv_error("%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (in_folder && !wanted_in_folder(name)) {
            c->stats.other_files++;
            return 0;
        }
        return add_file(c, path, (uint64_t)st.st_size);
    }
    if (depth > 64) return anv_error("%s: folders nested more than 64 deep", path);
    DIR *d = opendir(path);
    if (!d) return anv_error("%s: cannot open folder: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* hidden, "." and ".." */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = anv_realloc(names, cap * sizeof *nn, "folder listing");
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = anv_strdup(e->d_name)))
            rc = -1;
        else
            n++;
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char child[4096];
        if (rc == 0 && anv_path_join(child, sizeof child, path, names[i]) == 0)
            rc = add_path(c, child, 1, depth + 1);
        else if (rc == 0)
            rc = -1;
        anv_free(names[i]);
    }
    anv_free(names);
    return rc;
}

/* The files of this reader's part: a file belongs to the part its middle byte falls in, so parts
 * are consecutive files and each part's first file follows the previous part's last. */
static void select_part(anv_corpus_t *c) {
    c->end_file = c->n_files;
    if (c->o.parts > 1) {
        uint64_t at = 0, total = c->stats.corpus_bytes ? c->stats.corpus_bytes : 1;
        size_t first = c->n_files, end = c->n_files;
        for (size_t i = 0; i < c->n_files; i++) {
            double middle = ((double)at + (double)c->sizes[i] / 2) / (double)total;
            int part = (int)(middle * c->o.parts);
            if (part >= c->o.parts) part = c->o.parts - 1;
            if (part == c->o.part && first == c->n_files) first = i;
            if (part > c->o.part) {
                end = i;
                break;
            }
            at += c->sizes[i];
        }
        c->next_file = first < end ? first : end;
        c->end_file = end;
        if (c->o.part != 0) c->stats.other_files = 0;
    }
    for (size_t i = c->next_file; i < c->end_file; i++) c->stats.total_bytes += c->sizes[i];
}

int anv_corpus_open(const anv_corpus_opts_t *opts, anv_corpus_t **out) {
    *out = NULL;
    if (opts->n_inputs == 0) return anv_error("no input files given");
    if (opts->split_blank_lines < 0) return anv_error("split at %d blank lines: must be >= 0", opts->split_blank_lines);
    anv_corpus_t *c = anv_calloc(sizeof *c, "corpus reader");
    if (!c) return -1;
    c->o = *opts;
    if (!c->o.text_field) c->o.text_field = "text";
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < opts->n_inputs; i++) rc = add_path(c, opts->inputs[i], 0, 0);
    if (rc == 0 && opts->parts > 0 && (opts->part < 0 || opts->part >= opts->parts))
        rc = anv_error("corpus part %d of %d: no such part", opts->part, opts->parts);
    if (rc != 0) {
        anv_corpus_close(c);
        return -1;
    }
    select_part(c);
    *out = c;
    return 0;
}

static void close_file(anv_corpus_t *c) {
    if (!c->open) return;
    c->done_bytes += c->sizes[c->next_file - 1];
    if (c->pq) c->stats.null_values += anv_parquet_nulls(c->pq);
    anv_stream_close(c->in);
    anv_parquet_close(c->pq);
    c->in = NULL;
    c->pq = NULL;
    c->open = 0;
    c->stats.input_bytes = c->done_bytes;
    if (c->file_bytes == 0) c->stats.empty_files++;
}

void anv_corpus_close(anv_corpus_t *c) {
    if (!c) return;
    anv_stream_close(c->in);
    anv_parquet_close(c->pq);
    for (size_t i = 0; i < c->n_files; i++) anv_free(c->files[i]);
    anv_free(c->files);
    anv_free(c->sizes);
    anv_free(c->rbuf);
    anv_buf_free(&c->doc);
    anv_buf_free(&c->line);
    anv_buf_free(&c->blanks);
    anv_json_free(c->json);
    anv_free(c);
}

const anv_corpus_stats_t *anv_corpus_stats(const anv_corpus_t *c) { return &c->stats; }

const char *anv_corpus_file(const anv_corpus_t *c, uint64_t index) {
    return index < c->n_files ? c->files[index] : NULL;
}

/* ---- the byte stream of the open file ---- */

static int open_next(anv_corpus_t *c) {
    c->path = c->files[c->next_file++];
    errno = 0;
    FILE *f = fopen(c->path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        int e = errno;
        if (f) fclose(f);
        return anv_error("%s: cannot open: %s", c->path, strerror(e));
    }
    c->line_no = c->file_bytes = 0;
    c->stats.files++;
    if (is_parquet(c->path)) {
        c->file_bytes = (uint64_t)st.st_size;
        if (st.st_size == 0) { /* counted as empty, like an empty text file */
            fclose(f);
            c->open = 1;
            return 0;
        }
        if (anv_parquet_open(f, (uint64_t)st.st_size, c->path, c->o.text_field, &c->pq) != 0) return -1;
        c->open = 1;
        return 0;
    }
    /* reads of up to 1 MiB, smaller for small files (a folder of many small files stays cheap) */
    size_t size = (size_t)st.st_size;
    c->chunk = size < 4096 ? 4096 : size < READ_CHUNK ? size : READ_CHUNK;
    if (c->chunk > c->rcap) {
        char *b = anv_realloc(c->rbuf, c->chunk, "read buffer");
        if (!b) return -1;
        c->rbuf = b;
        c->rcap = c->chunk;
    }
    if (anv_stream_open(f, c->path, c->chunk, &c->in) != 0) return -1;
    c->open = 1;
    c->jsonl = is_jsonl(c->path);
    c->rpos = c->rlen = 0;
    c->pending_cr = c->eof = 0;
    return 0;
}

/* Refills rbuf when consumed; returns the bytes available (0 at the end of the file) or -1. */
static long fill(anv_corpus_t *c) {
    while (c->rpos == c->rlen && !c->eof) {
        long n = anv_stream_read(c->in, c->rbuf, c->chunk);
        if (n < 0) return -1;
        if (n == 0) {
            c->eof = 1;
            break;
        }
        c->file_bytes += (uint64_t)n;
        c->rpos = 0;
        c->rlen = anv_text_normalize_newlines(c->rbuf, (size_t)n, &c->pending_cr);
        c->stats.input_bytes = c->done_bytes + anv_stream_consumed(c->in);
    }
    return (long)(c->rlen - c->rpos);
}

/* Next line into c->line without its \n; *had_nl says whether it ended in one. 1 / 0 at end / -1. */
static int read_line(anv_corpus_t *c, int *had_nl) {
    c->line.len = 0;
    if (c->line.data) c->line.data[0] = 0;
    for (;;) {
        long avail = fill(c);
        if (avail < 0) return -1;
        if (avail == 0) {
            *had_nl = 0;
            if (c->line.len) c->line_no++;
            return c->line.len > 0;
        }
        const char *p = c->rbuf + c->rpos, *nl = memchr(p, '\n', (size_t)avail);
        size_t take = nl ? (size_t)(nl - p) : (size_t)avail;
        if (anv_buf_append(&c->line, p, take) != 0) return -1;
        c->rpos += take + (nl != NULL);
        if (nl) {
            *had_nl = 1;
            c->line_no++;
            return 1;
        }
    }
}

/* ---- documents ---- */

static int whole_file(anv_corpus_t *c) {
    c->doc.len = 0;
    for (;;) {
        long avail = fill(c);
        if (avail < 0) return -1;
        if (avail == 0) return 0;
        if (anv_buf_append(&c->doc, c->rbuf + c->rpos, (size_t)avail) != 0) return -1;
        c->rpos += (size_t)avail;
    }
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\f' && s[i] != '\v') return 0;
    return 1;
}

/* Lines up to a run of split_blank_lines blank lines (or the end of the file) into c->doc. */
static int split_doc(anv_corpus_t *c, uint64_t *start) {
    c->doc.len = 0;
    c->blanks.len = 0;
    int blank_run = 0, had_nl, r;
    while ((r = read_line(c, &had_nl)) == 1) {
        if (is_blank(c->line.data, c->line.len)) {
            if (c->doc.len == 0) continue; /* blank lines before a document */
            if (++blank_run >= c->o.split_blank_lines) return 0;
            if (anv_buf_append(&c->blanks, c->line.data, c->line.len) != 0 || anv_buf_append(&c->blanks, "\n", 1) != 0)
                return -1;
            continue;
        }
        if (c->doc.len == 0) *start = c->line_no;
        if (anv_buf_append(&c->doc, c->blanks.data, c->blanks.len) != 0 ||
            anv_buf_append(&c->doc, c->line.data, c->line.len) != 0 ||
            (had_nl && anv_buf_append(&c->doc, "\n", 1) != 0))
            return -1;
        c->blanks.len = 0;
        blank_run = 0;
    }
    return r;
}

/* doc's text, or a copy with line endings normalised when it holds a \r. */
static int set_text(anv_corpus_t *c, anv_doc_t *doc, const char *text, size_t len) {
    doc->text = text;
    doc->len = len;
    if (!memchr(text, '\r', len)) return 0;
    c->doc.len = 0;
    if (anv_buf_append(&c->doc, text, len) != 0) return -1;
    c->doc.len = anv_text_normalize_newlines(c->doc.data, c->doc.len, NULL);
    doc->text = c->doc.data;
    doc->len = c->doc.len;
    return 0;
}

/* Parses the JSON line in c->line. 1: doc set; 0: bad line skipped; -1: error. */
static int json_doc(anv_corpus_t *c, anv_doc_t *doc) {
    char where[4200];
    snprintf(where, sizeof where, "%s:%llu", c->path, (unsigned long long)c->line_no);
    anv_json_free(c->json);
    c->json = NULL;
    int bad = 0;
    if (anv_json_parse(c->line.data, c->line.len, where, &c->json) != 0) {
        bad = 1;
    } else {
        const anv_json_t *root = anv_json_root(c->json);
        const anv_json_t *v = anv_json_get(root, c->o.text_field);
        if (root->type != ANV_JSON_OBJECT)
            bad = anv_error("%s: expected a JSON object per line, got %s", where, anv_json_type_name(root->type));
        else if (!v)
            bad = anv_error("%s: no \"%s\" field (choose the field with --text-field)", where, c->o.text_field);
        else if (v->type != ANV_JSON_STRING)
            bad =
                anv_error("%s: field \"%s\" is %s, not a string", where, c->o.text_field, anv_json_type_name(v->type));
        if (!bad) return set_text(c, doc, v->str, v->len) == 0 ? 1 : -1;
    }
    if (!c->o.skip_bad) return -1;
    if (c->stats.skipped_bad++ < BAD_LINES_SHOWN) anv_log(ANV_LOG_WARN, "skipping %s", anv_last_error());
    anv_error_clear();
    return 0;
}

/* The open file's next document: 1 doc set, 0 none yet (a skipped line, or the file ended and is
 * closed), -1 error. */
static int file_next(anv_corpus_t *c, anv_doc_t *doc) {
    doc->path = c->path;
    doc->file = c->next_file - 1;
    if (!c->pq && !c->in) { /* an empty Parquet file */
        close_file(c);
        return 0;
    }
    if (c->pq) {
        const char *text;
        size_t len;
        int r = anv_parquet_next(c->pq, &text, &len, &doc->line);
        c->stats.input_bytes = c->done_bytes + anv_parquet_offset(c->pq);
        if (r == 0) close_file(c);
        if (r != 1) return r;
        return set_text(c, doc, text, len) == 0 ? 1 : -1;
    }
    if (c->jsonl) {
        int had_nl, r = read_line(c, &had_nl);
        if (r <= 0) {
            if (r == 0) close_file(c);
            return r;
        }
        if (is_blank(c->line.data, c->line.len)) return 0;
        doc->line = c->line_no;
        return json_doc(c, doc);
    }
    uint64_t start = 1;
    if ((c->o.split_blank_lines > 0 ? split_doc(c, &start) : whole_file(c)) != 0) return -1;
    if (c->o.split_blank_lines == 0 || c->doc.len == 0) close_file(c);
    if (c->doc.len == 0) return 0;
    doc->text = c->doc.data;
    doc->len = c->doc.len;
    doc->line = start;
    return 1;
}

int anv_corpus_next(anv_corpus_t *c, anv_doc_t *doc) {
    for (;;) {
        int r;
        if (c->open) {
            r = file_next(c, doc);
            if (r == 1) return 1;
        } else {
            if (c->next_file == c->end_file) return 0;
            r = open_next(c);
        }
        if (r < 0) {
            if (!c->o.skip_bad) return -1;
            if (c->stats.skipped_files++ < BAD_LINES_SHOWN)
                anv_log(ANV_LOG_WARN, "skipping the rest of the file: %s", anv_last_error());
            anv_error_clear();
            close_file(c);
        }
    }
}
