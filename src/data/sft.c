/* Fine-tuning examples: JSON lines rendered with a chat template into rows of tokens with the trained
 * ones marked; see anvil/sft.h. */
#include "anvil/sft.h"

#include "anvil/jinja.h"
#include "anvil/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, N_ROLES };
static const char *const ROLES[N_ROLES] = {"system", "user", "assistant"};

/* The text around each turn. */
struct anv_chat_template {
    const char *name;
    const char *begin;         /* once, before the first turn; NULL: the end-of-text token, which every prompt
                                  anvil feeds a model starts with (anv_generate_prompt) */
    const char *open[N_ROLES]; /* before a turn's content */
    const char *close;         /* after a turn's content (trained after the assistant's); NULL: the
                                  end-of-text token after assistant turns, nothing after the others */
    const char *after;         /* after close, not trained */
    int trim;                  /* contents lose their leading and trailing whitespace */
    const char *jinja;         /* the same in Hugging Face's Jinja form */
    struct chat_file *file;    /* a template from a file: rendered by its Jinja alone; NULL for the built-in ones */
};

/* A template file (jinja.h): bos_token and eos_token are the end-of-text token's text, as anvil's exports
 * declare it; the stop marker is what follows a reply up to its first whitespace (or end-of-text). */
typedef struct chat_file {
    anv_chat_template_t t;
    anv_jinja_t *compiled;
    char *path, *text, *eot, *stop;
} chat_file_t;

static const anv_chat_template_t TEMPLATES[] = {
    {"chatml",
     NULL,
     {"<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n"},
     "<|im_end|>",
     "\n",
     0,
     "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
     "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
     NULL},
    {"llama3",
     "<|begin_of_text|>",
     {"<|start_header_id|>system<|end_header_id|>\n\n", "<|start_header_id|>user<|end_header_id|>\n\n",
      "<|start_header_id|>assistant<|end_header_id|>\n\n"},
     "<|eot_id|>",
     "",
     1,
     "{{ '<|begin_of_text|>' }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
     "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt "
     "%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
     NULL},
    {"plain",
     NULL,
     {"", "", ""},
     NULL,
     "",
     0,
     "{{ bos_token }}{% for message in messages %}{{ message['content'] }}{% if message['role'] == 'assistant' %}"
     "{{ eos_token }}"
     "{% endif %}{% endfor %}",
     NULL},
};

const anv_chat_template_t *anv_chat_template_builtin(const char *name) {
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof TEMPLATES[0]; i++)
        if (!strcmp(name, TEMPLATES[i].name)) return &TEMPLATES[i];
    anv_error("chat template \"%s\": not one of chatml, llama3, plain", name);
    return NULL;
}

static char *copy_text(const char *s, size_t n) {
    char *c = anv_alloc(n + 1, "chat template");
    if (c) memcpy(c, s, n), c[n] = 0;
    return c;
}

/* A rendering of the file template's Jinja into out (appended). */
static int render_jinja(const chat_file_t *f, const anv_jinja_message_t *m, size_t n, int generation_prompt,
                        anv_buf_t *out) {
    anv_jinja_chat_t chat = {m, n, generation_prompt, f->eot, f->eot};
    return anv_jinja_render(f->compiled, &chat, out);
}

/* What ends a reply: the text after a reply's content up to its first whitespace, found by rendering a
 * one-exchange conversation without and with the reply. */
static int find_stop(chat_file_t *f) {
    anv_jinja_message_t m[2] = {{"user", "Hi", 2}, {"assistant", "Hello", 5}};
    anv_buf_t prompt = {0}, whole = {0};
    int rc = render_jinja(f, m, 1, 1, &prompt) || render_jinja(f, m, 2, 0, &whole) ? -1 : 0;
    if (rc == 0 && (whole.len < prompt.len + 5 || memcmp(whole.data, prompt.data, prompt.len) ||
                    memcmp(whole.data + prompt.len, "Hello", 5)))
        rc = anv_error("%s: a reply does not follow its generation prompt (rendering user \"Hi\" then assistant "
                       "\"Hello\"), so the replies cannot be found in a conversation",
                       f->path);
    if (rc == 0) {
        const char *a = whole.data + prompt.len + 5, *b = a, *end = whole.data + whole.len;
        while (a < end && strchr(" \t\r\n", *a)) a++;
        for (b = a; b < end && !strchr(" \t\r\n", *b); b++) {
        }
        f->stop = b > a ? copy_text(a, (size_t)(b - a)) : copy_text(f->eot, strlen(f->eot));
        rc = f->stop ? 0 : -1;
    }
    anv_buf_free(&prompt);
    anv_buf_free(&whole);
    return rc;
}

int anv_chat_template_open(const char *name, const anv_tokenizer_t *tok, const anv_chat_template_t **out) {
    *out = NULL;
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof TEMPLATES[0]; i++)
        if (!strcmp(name, TEMPLATES[i].name)) return *out = &TEMPLATES[i], 0;
    if (!anv_path_exists(name))
        return anv_error("chat template \"%s\": not one of chatml, llama3, plain, nor a template file", name);
    chat_file_t *f = anv_calloc(sizeof *f, "chat template");
    if (!f) return -1;
    size_t len, eot_len = 0;
    int64_t eot = anv_tokenizer_eot(tok);
    const char *eot_text = eot >= 0 ? anv_tokenizer_token_bytes(tok, (uint32_t)eot, &eot_len) : "";
    int rc = (f->path = copy_text(name, strlen(name))) && (f->eot = copy_text(eot_text, eot_len)) ? 0 : -1;
    if (rc == 0) rc = anv_read_file(name, &f->text, &len);
    if (rc == 0) rc = anv_jinja_parse(f->text, len, name, &f->compiled);
    if (rc == 0) rc = find_stop(f);
    f->t = (anv_chat_template_t){.name = f->path, .jinja = f->text, .file = f};
    if (rc != 0) {
        anv_chat_template_free(&f->t);
        return -1;
    }
    *out = &f->t;
    return 0;
}

void anv_chat_template_free(const anv_chat_template_t *t) {
    if (!t || !t->file) return;
    chat_file_t *f = t->file;
    anv_jinja_free(f->compiled);
    anv_free(f->path);
    anv_free(f->text);
    anv_free(f->eot);
    anv_free(f->stop);
    anv_free(f);
}

const char *anv_chat_template_name(const anv_chat_template_t *t) { return t->name; }
const char *anv_chat_template_jinja(const anv_chat_template_t *t) { return t->jinja; }

const char *anv_chat_template_stop(const anv_chat_template_t *t, const anv_tokenizer_t *tok, size_t *len) {
    if (t->file) {
        *len = strlen(t->file->stop);
        return t->file->stop;
    }
    if (t->close) {
        *len = strlen(t->close);
        return t->close;
    }
    return anv_tokenizer_token_bytes(tok, (uint32_t)anv_tokenizer_eot(tok), len);
}

/* A run's template file, beside its rows (anv_sft_prepare). */
#define RUN_TEMPLATE_FILE "chat_template.jinja"

int anv_chat_template_of_run(const char *run_dir, const anv_tokenizer_t *tok, const anv_chat_template_t **out) {
    char path[4200], file[4200];
    *out = NULL;
    if (anv_path_join(path, sizeof path, run_dir, "sft/meta.json") != 0) return -1;
    if (!anv_path_exists(path)) return 0;
    anv_json_doc_t *doc;
    const char *name;
    if (anv_json_parse_file(path, &doc) != 0) return -1;
    int rc = anv_json_get_string(anv_json_root(doc), "chat_template", path, &name);
    if (rc == 0 && !strcmp(name, RUN_TEMPLATE_FILE)) {
        rc = anv_path_join(file, sizeof file, run_dir, "sft/" RUN_TEMPLATE_FILE);
        if (rc == 0) rc = anv_chat_template_open(file, tok, out);
    } else if (rc == 0 && !(*out = anv_chat_template_builtin(name))) {
        rc = anv_error_prefix("%s", path);
    }
    anv_json_free(doc);
    return rc;
}

void anv_sft_example_free(anv_sft_example_t *e) {
    anv_free(e->ids);
    anv_free(e->trained);
    memset(e, 0, sizeof *e);
}

/* ---- rendering ---- */

typedef struct {
    const anv_sft_opts_t *o;
    anv_sft_example_t *out;
    anv_tokens_t piece;
    int all_trained;
} render_t;

static int push(render_t *r, const uint32_t *ids, size_t n, int trained) {
    anv_sft_example_t *e = r->out;
    if (n == 0) return 0;
    size_t cap = e->cap;
    if (anv_grow(&e->ids, &cap, e->len + n, sizeof *e->ids, "fine-tuning example") != 0) return -1;
    cap = e->cap;
    if (anv_grow(&e->trained, &cap, e->len + n, sizeof *e->trained, "fine-tuning example") != 0) return -1;
    e->cap = cap;
    memcpy(e->ids + e->len, ids, n * sizeof *ids);
    memset(e->trained + e->len, trained || r->all_trained, n);
    e->len += n;
    return 0;
}

/* Template text: its marker strings become special tokens when the tokenizer has them. */
static int push_markup(render_t *r, const char *text, int trained) {
    if (!text || !*text) return 0;
    r->piece.len = 0;
    if (anv_tokenizer_encode_special(r->o->tok, text, strlen(text), &r->piece) != 0) return -1;
    return push(r, r->piece.ids, r->piece.len, trained);
}

/* A template file's rendered text: its marker strings become special tokens. */
static int push_text(render_t *r, const char *text, size_t len, int trained) {
    r->piece.len = 0;
    if (len && anv_tokenizer_encode_special(r->o->tok, text, len, &r->piece) != 0) return -1;
    return push(r, r->piece.ids, r->piece.len, trained);
}

/* A turn's content: always ordinary text. */
static int push_content(render_t *r, const char *text, size_t len, int trained) {
    if (r->o->chat->trim) {
        while (len && strchr(" \t\r\n", *text)) text++, len--;
        while (len && strchr(" \t\r\n", text[len - 1])) len--;
    }
    r->piece.len = 0;
    if (anv_tokenizer_encode(r->o->tok, text, len, &r->piece) != 0) return -1;
    return push(r, r->piece.ids, r->piece.len, trained);
}

static int push_turn(render_t *r, int role, const char *text, size_t len) {
    const anv_chat_template_t *t = r->o->chat;
    int assistant = role == ROLE_ASSISTANT;
    if (push_markup(r, t->open[role], 0) != 0 || push_content(r, text, len, assistant) != 0) return -1;
    if (t->close) {
        if (push_markup(r, t->close, assistant) != 0) return -1;
    } else if (assistant) {
        uint32_t eot = (uint32_t)anv_tokenizer_eot(r->o->tok);
        if (push(r, &eot, 1, 1) != 0) return -1;
    }
    return push_markup(r, t->after, 0);
}

static int push_begin(render_t *r) {
    if (r->o->chat->begin) return push_markup(r, r->o->chat->begin, 0);
    int64_t eot = anv_tokenizer_eot(r->o->tok);
    uint32_t id = (uint32_t)eot;
    return eot < 0 ? 0 : push(r, &id, 1, 0);
}

/* A conversation with a template file. Its renderings of a conversation's beginnings (up to each reply's
 * generation prompt, and through the reply) must be beginnings of the whole one: the reply between them is
 * trained, without the whitespace that ends it; everything else is not. */
static int render_file_turns(render_t *r, const anv_jinja_message_t *m, size_t n, const char *where) {
    const chat_file_t *f = r->o->chat->file;
    anv_buf_t whole = {0}, part = {0};
    size_t done = 0;
    int rc = render_jinja(f, m, n, 0, &whole);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(m[i].role, "assistant")) continue;
        part.len = 0;
        rc = render_jinja(f, m, i, 1, &part);
        size_t open = part.len;
        if (rc == 0) rc = render_jinja(f, m, i + 1, 0, &part);
        if (rc != 0) break;
        size_t end = part.len - open;
        if (rc == 0 && (open < done || end < open || end > whole.len || memcmp(part.data, whole.data, open) ||
                        memcmp(part.data + open, whole.data, end)))
            rc = anv_error("%s: %s renders the conversation up to message %zu otherwise than within the whole one, so "
                           "its reply cannot be marked",
                           where, f->path, i + 1);
        size_t trail = end;
        while (rc == 0 && trail > open && strchr(" \t\r\n", whole.data[trail - 1])) trail--;
        if (rc == 0) rc = push_text(r, whole.data + done, open - done, 0);
        if (rc == 0) rc = push_text(r, whole.data + open, trail - open, 1);
        if (rc == 0) rc = push_text(r, whole.data + trail, end - trail, 0);
        done = end;
    }
    if (rc == 0)
        rc = push_text(r, whole.data + done, whole.len - done, 0);
    else if (!strstr(anv_last_error(), where))
        anv_error_prefix("%s", where);
    anv_buf_free(&whole);
    anv_buf_free(&part);
    return rc;
}

/* Roles by name, or an error naming the message. */
static int role_of(const char *role, size_t i, const char *where, int *k) {
    for (*k = 0; *k < N_ROLES; ++*k)
        if (!strcmp(role, ROLES[*k])) return 0;
    return anv_error("%s%smessage %zu: unknown role \"%s\" (system, user or assistant)", where, *where ? ": " : "",
                     i + 1, role);
}

int anv_chat_render_prompt(const anv_chat_template_t *t, const anv_tokenizer_t *tok, const char *const *roles,
                           const char *const *texts, const size_t *lens, size_t n, anv_tokens_t *out) {
    anv_sft_opts_t o = {tok, t, 0, 0};
    anv_sft_example_t e = {0};
    render_t r = {.o = &o, .out = &e};
    anv_jinja_message_t *m = t->file ? anv_calloc(sizeof *m * (n ? n : 1), "chat messages") : NULL;
    int rc = t->file ? (m ? 0 : -1) : push_begin(&r);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int k;
        rc = role_of(roles[i], i, "", &k);
        if (rc == 0 && m)
            m[i] = (anv_jinja_message_t){ROLES[k], texts[i], lens[i]};
        else if (rc == 0)
            rc = push_turn(&r, k, texts[i], lens[i]);
    }
    if (rc == 0 && m) {
        anv_buf_t text = {0};
        rc = render_jinja(t->file, m, n, 1, &text);
        if (rc == 0) rc = push_text(&r, text.data, text.len, 0);
        anv_buf_free(&text);
    } else if (rc == 0) {
        rc = push_markup(&r, t->open[ROLE_ASSISTANT], 0);
    }
    anv_free(m);
    for (size_t i = 0; i < e.len && rc == 0; i++) rc = anv_tokens_push(out, e.ids[i]);
    anv_sft_example_free(&e);
    anv_tokens_free(&r.piece);
    return rc;
}

static int string_field(const anv_json_t *obj, const char *key, const char *where, const char *what,
                        const anv_json_t **out) {
    const anv_json_t *v = anv_json_get(obj, key);
    if (!v) return anv_error("%s: %s has no \"%s\"", where, what, key);
    if (v->type != ANV_JSON_STRING)
        return anv_error("%s: %s: \"%s\" is %s, not a string", where, what, key, anv_json_type_name(v->type));
    *out = v;
    return 0;
}

/* The turns of an example, checked, then rendered: by the built-in template's pieces, or by the file's
 * Jinja. */
static int render_turns(render_t *r, const anv_jinja_message_t *m, size_t n, const char *where) {
    if (r->o->chat->file) return render_file_turns(r, m, n, where);
    int rc = push_begin(r);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int k;
        role_of(m[i].role, i, where, &k);
        rc = push_turn(r, k, m[i].content, m[i].content_len);
    }
    return rc;
}

static int render_messages(render_t *r, const anv_json_t *msgs, const char *where) {
    if (msgs->type != ANV_JSON_ARRAY)
        return anv_error("%s: \"messages\" is %s, not an array", where, anv_json_type_name(msgs->type));
    int assistants = 0, rc = 0;
    anv_jinja_message_t *turns = anv_calloc(sizeof *turns * (msgs->len ? msgs->len : 1), "fine-tuning example");
    if (!turns) return -1;
    for (size_t i = 0; i < msgs->len && rc == 0; i++) {
        const anv_json_t *m = &msgs->items[i], *role = NULL, *content = NULL;
        char what[64];
        int k = 0;
        snprintf(what, sizeof what, "message %zu", i + 1);
        if (m->type != ANV_JSON_OBJECT)
            rc = anv_error("%s: %s is not an object", where, what);
        else if (string_field(m, "role", where, what, &role) != 0 ||
                 string_field(m, "content", where, what, &content) != 0 || role_of(role->str, i, where, &k) != 0)
            rc = -1;
        else if (k == ROLE_ASSISTANT && content->len == 0)
            rc = anv_error("%s: %s: an empty assistant turn (nothing to learn)", where, what);
        else
            turns[i] = (anv_jinja_message_t){ROLES[k], content->str, content->len};
        assistants += rc == 0 && k == ROLE_ASSISTANT;
    }
    if (rc == 0 && !assistants)
        rc = anv_error("%s: a conversation without an assistant turn (nothing to learn)", where);
    if (rc == 0) rc = render_turns(r, turns, msgs->len, where);
    anv_free(turns);
    return rc;
}

int anv_sft_render(const anv_sft_opts_t *o, const char *json, size_t len, const char *where, anv_sft_example_t *out) {
    out->len = 0;
    anv_json_doc_t *doc;
    if (anv_json_parse(json, len, where, &doc) != 0) return -1;
    const anv_json_t *root = anv_json_root(doc), *msgs, *prompt = NULL, *completion = NULL;
    render_t r = {.o = o, .out = out, .all_trained = o->train_on_prompt};
    int rc = 0;
    if (root->type != ANV_JSON_OBJECT) {
        rc = anv_error("%s: %s, not an object", where, anv_json_type_name(root->type));
    } else if ((msgs = anv_json_get(root, "messages"))) {
        rc = render_messages(&r, msgs, where);
    } else if (!anv_json_get(root, "prompt") && !anv_json_get(root, "completion")) {
        rc = anv_error("%s: neither \"messages\" nor \"prompt\" and \"completion\"", where);
    } else if (string_field(root, "prompt", where, "the example", &prompt) != 0 ||
               string_field(root, "completion", where, "the example", &completion) != 0) {
        rc = -1;
    } else if (completion->len == 0) {
        rc = anv_error("%s: an empty completion (nothing to learn)", where);
    } else {
        anv_jinja_message_t turns[2] = {{"user", prompt->str, prompt->len},
                                        {"assistant", completion->str, completion->len}};
        rc = render_turns(&r, turns, 2, where);
    }
    anv_json_free(doc);
    anv_tokens_free(&r.piece);
    return rc;
}

/* ---- rows files ---- */

static const char ROWS_MAGIC[8] = {'A', 'N', 'V', 'S', 'F', 'T', '0', '1'};

/* A rows file being written: ids and flags go to temporary files until the offsets are known. */
typedef struct {
    FILE *ids, *trained;
    uint64_t *offsets; /* n + 1 */
    size_t n, cap;
    anv_sft_stats_t *st;
    const anv_tokenizer_t *tok;
    anv_buf_t text;
} rows_writer_t;

static int rows_begin(rows_writer_t *w, anv_sft_stats_t *st, const anv_tokenizer_t *tok) {
    memset(w, 0, sizeof *w);
    memset(st, 0, sizeof *st);
    w->st = st;
    w->tok = tok;
    w->ids = tmpfile();
    w->trained = tmpfile();
    if (!w->ids || !w->trained) return anv_error("cannot create a temporary file: %s", strerror(errno));
    if (anv_grow(&w->offsets, &w->cap, 1, sizeof *w->offsets, "fine-tuning rows") != 0) return -1;
    w->offsets[0] = 0;
    return 0;
}

static void rows_free(rows_writer_t *w) {
    if (w->ids) fclose(w->ids);
    if (w->trained) fclose(w->trained);
    anv_free(w->offsets);
    anv_buf_free(&w->text);
    memset(w, 0, sizeof *w);
}

static int rows_add(rows_writer_t *w, const anv_sft_example_t *e) {
    if (anv_grow(&w->offsets, &w->cap, w->n + 2, sizeof *w->offsets, "fine-tuning rows") != 0) return -1;
    if (fwrite(e->ids, sizeof *e->ids, e->len, w->ids) != e->len || fwrite(e->trained, 1, e->len, w->trained) != e->len)
        return anv_error("writing a temporary file: %s", strerror(errno));
    w->offsets[w->n + 1] = w->offsets[w->n] + e->len;
    w->n++;
    anv_sft_stats_t *st = w->st;
    st->examples++;
    st->tokens += e->len;
    if (e->len > st->longest) st->longest = e->len;
    for (size_t i = 1; i < e->len; i++) {
        if (!e->trained[i]) continue;
        st->trained_tokens++;
        w->text.len = 0;
        if (anv_tokenizer_decode(w->tok, &e->ids[i], 1, &w->text) != 0) return -1;
        st->trained_bytes += w->text.len;
    }
    return 0;
}

static int copy_back(FILE *from, anv_atomic_file_t *to) {
    char buf[1 << 16];
    size_t n;
    if (fseek(from, 0, SEEK_SET) != 0) return anv_error("rewinding a temporary file: %s", strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, from)) > 0)
        if (anv_atomic_write(to, buf, n) != 0) return -1;
    return ferror(from) ? anv_error("reading a temporary file: %s", strerror(errno)) : 0;
}

static int rows_finish(rows_writer_t *w, const char *path) {
    anv_atomic_file_t f;
    uint64_t head[2] = {w->n, w->offsets[w->n]};
    if (anv_atomic_open(&f, path) != 0) return -1;
    int rc = anv_atomic_write(&f, ROWS_MAGIC, sizeof ROWS_MAGIC);
    if (rc == 0) rc = anv_atomic_write(&f, head, sizeof head);
    if (rc == 0) rc = anv_atomic_write(&f, w->offsets, (w->n + 1) * sizeof *w->offsets);
    if (rc == 0) rc = copy_back(w->ids, &f);
    if (rc == 0) rc = copy_back(w->trained, &f);
    if (rc == 0) return anv_atomic_commit(&f);
    anv_atomic_abort(&f);
    return -1;
}

int anv_sft_rows_open(const char *path, size_t vocab_size, anv_sft_rows_t *r) {
    memset(r, 0, sizeof *r);
    if (anv_mmap_open(path, &r->map) != 0) return -1;
    const char *p = r->map.data;
    size_t size = r->map.size;
    uint64_t head[2];
    if (size < sizeof ROWS_MAGIC + sizeof head || memcmp(p, ROWS_MAGIC, sizeof ROWS_MAGIC) != 0) {
        anv_sft_rows_close(r);
        return anv_error("%s: not a fine-tuning rows file (no ANVSFT01 header)", path);
    }
    memcpy(head, p + sizeof ROWS_MAGIC, sizeof head);
    r->n = head[0];
    r->tokens = head[1];
    size_t at = sizeof ROWS_MAGIC + sizeof head;
    if (r->n > size / 8 || r->tokens > size / 5 || at + (r->n + 1) * 8 + r->tokens * 5 != size) {
        anv_sft_rows_close(r);
        return anv_error("%s: %llu examples of %llu tokens do not fit its %zu bytes", path, (unsigned long long)head[0],
                         (unsigned long long)head[1], size);
    }
    r->offsets = (const uint64_t *)(p + at);
    r->ids = (const uint32_t *)(p + at + (r->n + 1) * 8);
    r->trained = (const uint8_t *)(r->ids + r->tokens);
    int bad = r->offsets[0] != 0 || r->offsets[r->n] != r->tokens;
    for (uint64_t i = 0; i < r->n && !bad; i++) bad = r->offsets[i + 1] <= r->offsets[i];
    if (bad) {
        anv_sft_rows_close(r);
        return anv_error("%s: the example offsets are out of order", path);
    }
    for (uint64_t i = 0; i < r->tokens; i++)
        if (r->ids[i] >= vocab_size) {
            uint32_t id = r->ids[i];
            anv_sft_rows_close(r);
            return anv_error("%s: token %llu is id %u, outside the vocabulary of %zu", path, (unsigned long long)i, id,
                             vocab_size);
        }
    if (!(r->path = anv_strdup(path))) {
        anv_sft_rows_close(r);
        return -1;
    }
    return 0;
}

void anv_sft_rows_close(anv_sft_rows_t *r) {
    anv_mmap_close(&r->map);
    anv_free(r->path);
    memset(r, 0, sizeof *r);
}

/* ---- a data directory ---- */

/* Cuts an example to its last max_tokens; 0 when nothing is left to learn (the first token is never a
 * target). */
static int fit(const anv_sft_opts_t *o, anv_sft_example_t *e, anv_sft_stats_t *st) {
    if (e->len > o->max_tokens) {
        size_t cut = e->len - o->max_tokens;
        memmove(e->ids, e->ids + cut, o->max_tokens * sizeof *e->ids);
        memmove(e->trained, e->trained + cut, o->max_tokens);
        e->len = o->max_tokens;
        st->truncated++;
    }
    for (size_t i = 1; i < e->len; i++)
        if (e->trained[i]) return 1;
    st->dropped++;
    return 0;
}

static int goes_to_val(uint64_t seed, uint64_t line, double fraction) {
    uint64_t key[2] = {seed, line};
    uint64_t h = anv_hash64(key, sizeof key, 0x736674);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0) < fraction;
}

typedef struct {
    rows_writer_t *train, *val;
    anv_sft_example_t held; /* the last train example, held back in case val stays empty */
    int has_held;
} split_t;

/* The examples of one JSONL file into `to`, or by hash into train and val. */
static int render_file(const anv_sft_opts_t *o, const char *path, rows_writer_t *to, split_t *split, double fraction,
                       uint64_t seed) {
    FILE *f = fopen(path, "rb");
    if (!f) return anv_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL, where[4200];
    size_t cap = 0;
    ssize_t n;
    uint64_t line_no = 0;
    anv_sft_example_t e = {0};
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        line_no++;
        size_t len = (size_t)n;
        while (len && strchr(" \t\r\n", line[len - 1])) len--;
        if (len == 0) continue;
        snprintf(where, sizeof where, "%s:%llu", path, (unsigned long long)line_no);
        anv_sft_stats_t *st = to ? to->st : split->train->st;
        if ((rc = anv_sft_render(o, line, len, where, &e)) != 0 || !fit(o, &e, st)) continue;
        if (to) {
            rc = rows_add(to, &e);
        } else if (goes_to_val(seed, line_no, fraction)) {
            rc = rows_add(split->val, &e);
        } else {
            if (split->has_held) rc = rows_add(split->train, &split->held);
            anv_sft_example_t t = split->held; /* swap: no copy */
            split->held = e;
            e = t;
            split->has_held = 1;
        }
    }
    if (rc == 0 && ferror(f)) rc = anv_error("%s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    anv_sft_example_free(&e);
    return rc;
}

static int write_meta(const anv_sft_opts_t *o, const char *dir, const anv_sft_stats_t *tr, const anv_sft_stats_t *va) {
    anv_buf_t b = {0};
    const anv_sft_stats_t *s[2] = {tr, va};
    const char *names[2] = {"train", "val"};
    int rc = anv_buf_puts(&b, "{\n");
    for (int i = 0; i < 2; i++)
        rc |= anv_buf_printf(&b,
                             "  \"%s\": {\"documents\": %llu, \"tokens\": %llu, \"bytes\": %llu, "
                             "\"all_tokens\": %llu, \"truncated\": %llu, \"dropped\": %llu},\n",
                             names[i], (unsigned long long)s[i]->examples, (unsigned long long)s[i]->trained_tokens,
                             (unsigned long long)s[i]->trained_bytes, (unsigned long long)s[i]->tokens,
                             (unsigned long long)s[i]->truncated, (unsigned long long)s[i]->dropped);
    rc |= anv_buf_printf(&b, "  \"chat_template\": \"%s\",\n  \"train_on_prompt\": %s,\n  \"max_tokens\": %zu\n}\n",
                         o->chat->file ? RUN_TEMPLATE_FILE : o->chat->name, o->train_on_prompt ? "true" : "false",
                         o->max_tokens);
    char path[4200];
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "meta.json");
    if (rc == 0) rc = anv_write_file_atomic(path, b.data, b.len);
    anv_buf_free(&b);
    return rc ? -1 : 0;
}

int anv_sft_prepare(const anv_sft_opts_t *o, const char *train_path, const char *val_path, double val_fraction,
                    uint64_t seed, const char *dir, anv_sft_stats_t *train, anv_sft_stats_t *val) {
    rows_writer_t tw, vw;
    split_t split = {&tw, &vw, {0}, 0};
    char path[4200];
    int rc = rows_begin(&tw, train, o->tok);
    if (rc == 0) rc = rows_begin(&vw, val, o->tok);
    if (rc == 0) rc = anv_mkdir_p(dir);
    if (rc == 0 && val_path) rc = render_file(o, train_path, &tw, NULL, 0, 0);
    if (rc == 0 && val_path) rc = render_file(o, val_path, &vw, NULL, 0, 0);
    if (rc == 0 && !val_path) rc = render_file(o, train_path, NULL, &split, val_fraction, seed);
    /* the last train example becomes the validation set when the hash picked none */
    if (rc == 0 && split.has_held) rc = rows_add(val->examples ? &tw : &vw, &split.held);
    if (rc == 0 && train->examples == 0)
        rc = anv_error("%s: no example left to train on (%llu dropped as too long)", train_path,
                       (unsigned long long)(train->dropped + val->dropped));
    if (rc == 0 && val->examples == 0)
        rc = anv_error("%s: no validation example (%llu dropped as too long)", val_path ? val_path : train_path,
                       (unsigned long long)val->dropped);
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "train.sft");
    if (rc == 0) rc = rows_finish(&tw, path);
    if (rc == 0) rc = anv_path_join(path, sizeof path, dir, "val.sft");
    if (rc == 0) rc = rows_finish(&vw, path);
    if (rc == 0) rc = write_meta(o, dir, train, val);
    if (rc == 0 && o->chat->file && (rc = anv_path_join(path, sizeof path, dir, RUN_TEMPLATE_FILE)) == 0)
        rc = anv_write_file_atomic(path, o->chat->jinja, strlen(o->chat->jinja));
    anv_sft_example_free(&split.held);
    rows_free(&tw);
    rows_free(&vw);
    return rc;
}
