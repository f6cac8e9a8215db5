/* The Jinja subset of chat templates (jinja.h): a lexer and recursive-descent parser into a small tree,
 * and a tree-walking renderer over the chat's variables. */
#include "anvil/jinja.h"

#include <stdlib.h>
#include <string.h>

/* ---- the tree ---- */

typedef enum {
    E_STR,
    E_INT,
    E_BOOL,
    E_NONE,
    E_LIST,
    E_NAME,
    E_ATTR,
    E_INDEX,
    E_SLICE,
    E_CALL,
    E_FILTER,
    E_TEST,
    E_NOT,
    E_NEG,
    E_BINARY,
    E_AND,
    E_OR,
    E_TERNARY
} expr_kind_t;

typedef enum {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_FLOORDIV,
    OP_MOD,
    OP_CONCAT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOT_IN
} binop_t;

typedef struct expr expr_t;
struct expr {
    expr_kind_t kind;
    int line;
    binop_t op;
    const char *s; /* E_STR: the string; E_NAME, E_ATTR, E_FILTER, E_TEST: the name */
    size_t n;      /* its length */
    long long i;   /* E_INT, E_BOOL; E_TEST: 1 for `is not` */
    expr_t *a, *b, *c;
    expr_t **args; /* E_LIST items, E_CALL and E_FILTER arguments */
    int nargs;
};

typedef enum { S_TEXT, S_OUTPUT, S_IF, S_FOR, S_SET } stmt_kind_t;

typedef struct stmt stmt_t;
struct stmt {
    stmt_kind_t kind;
    int line;
    const char *text; /* S_TEXT */
    size_t len;
    const char *name; /* S_FOR, S_SET: the variable */
    size_t name_len;
    expr_t *e;             /* S_OUTPUT, S_SET: the value; S_IF: the condition; S_FOR: the sequence */
    stmt_t *body, *orelse; /* S_IF, S_FOR */
    stmt_t *next;
};

/* Allocations of a template (or of one rendering), freed together. */
typedef struct chunk {
    struct chunk *next;
    max_align_t data[];
} chunk_t;

static void *arena_alloc(chunk_t **arena, size_t n) {
    chunk_t *c = calloc(1, sizeof *c + n);
    if (!c) {
        anv_error("out of memory in a chat template");
        return NULL;
    }
    c->next = *arena;
    *arena = c;
    return c->data;
}

static void arena_free(chunk_t *c) {
    while (c) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

struct anv_jinja {
    chunk_t *arena;
    stmt_t *body;
    char *source; /* for errors */
};

/* ---- the lexer: text, and tokens inside tags ---- */

typedef enum { T_END, T_NAME, T_INT, T_STR, T_OP, T_TAG_END } tok_kind_t;

typedef struct {
    const char *src, *end, *p; /* the template, and the position */
    const char *source;
    int line;
    chunk_t **arena;
    /* the current token inside a tag */
    tok_kind_t kind;
    const char *s;
    size_t n;
    long long i;
    const char *close; /* "}}" or "%}" of the tag being read */
    int strip_next;    /* the tag ended with "-": strip the whitespace that follows */
    int trim_newline;  /* a block tag ended: drop one newline that follows (trim_blocks) */
    int failed;
    int depth; /* of nested expressions and blocks, bounded so that no input exhausts the stack */
} lexer_t;

enum { MAX_DEPTH = 100 };

static int lex_error(lexer_t *L, const char *what) {
    if (!L->failed) anv_error("%s:%d: %s", L->source, L->line, what);
    L->failed = 1;
    return -1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void advance(lexer_t *L, size_t n) {
    for (size_t k = 0; k < n && L->p < L->end; k++) L->line += *L->p++ == '\n';
}

/* The next token inside a tag; T_TAG_END at its closing "}}" / "%}" (with "-" noted). */
static int next_token(lexer_t *L) {
    while (L->p < L->end && is_space(*L->p)) advance(L, 1);
    if (L->p >= L->end) return lex_error(L, "a tag is not closed");
    const char *p = L->p;
    size_t left = (size_t)(L->end - p);
    if (left >= 3 && p[0] == '-' && p[1] == L->close[0] && p[2] == '}') {
        L->kind = T_TAG_END;
        L->strip_next = 1;
        advance(L, 3);
        return 0;
    }
    if (left >= 2 && p[0] == L->close[0] && p[1] == '}') {
        L->kind = T_TAG_END;
        L->strip_next = 0;
        advance(L, 2);
        return 0;
    }
    if (is_name_char(*p) && !(*p >= '0' && *p <= '9')) {
        const char *q = p;
        while (q < L->end && is_name_char(*q)) q++;
        L->kind = T_NAME, L->s = p, L->n = (size_t)(q - p);
        advance(L, L->n);
        return 0;
    }
    if (*p >= '0' && *p <= '9') {
        long long v = 0;
        const char *q = p;
        for (; q < L->end && *q >= '0' && *q <= '9'; q++) {
            if (v > (1LL << 53)) return lex_error(L, "an integer is too large");
            v = v * 10 + (*q - '0');
        }
        if (q < L->end && *q == '.') return lex_error(L, "floating-point numbers are not supported");
        L->kind = T_INT, L->i = v;
        advance(L, (size_t)(q - p));
        return 0;
    }
    if (*p == '\'' || *p == '"') {
        char quote = *p;
        const char *q = p + 1;
        size_t n = 0;
        for (; q < L->end && *q != quote; q++, n++)
            if (*q == '\\' && q + 1 < L->end) q++;
        if (q >= L->end) return lex_error(L, "a string is not closed");
        char *s = arena_alloc(L->arena, n + 1);
        if (!s) return -1;
        size_t k = 0;
        for (const char *r = p + 1; r < q; r++) {
            char c = *r;
            if (c == '\\') {
                c = *++r;
                c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            }
            s[k++] = c;
        }
        L->kind = T_STR, L->s = s, L->n = k;
        advance(L, (size_t)(q - p) + 1);
        return 0;
    }
    static const char *const ops[] = {"==", "!=", "<=", ">=", "//", "<", ">", "+", "-", "*", "%",
                                      "~",  "=",  "(",  ")",  "[",  "]", ",", ".", ":", "|"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t n = strlen(ops[k]);
        if (left >= n && !memcmp(p, ops[k], n)) {
            L->kind = T_OP, L->s = ops[k], L->n = n;
            advance(L, n);
            return 0;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "unexpected character '%c'", *p);
    return lex_error(L, what);
}

static int tok_is(const lexer_t *L, tok_kind_t k, const char *s) {
    return L->kind == k && (!s || (L->n == strlen(s) && !memcmp(L->s, s, L->n)));
}
static int is_op(const lexer_t *L, const char *s) { return tok_is(L, T_OP, s); }
static int is_word(const lexer_t *L, const char *s) { return tok_is(L, T_NAME, s); }

static int expect_op(lexer_t *L, const char *s) {
    if (!is_op(L, s)) {
        char what[64];
        snprintf(what, sizeof what, "expected '%s'", s);
        return lex_error(L, what);
    }
    return next_token(L);
}

/* ---- expressions ---- */

static expr_t *new_expr(lexer_t *L, expr_kind_t kind) {
    expr_t *e = arena_alloc(L->arena, sizeof *e);
    if (e) e->kind = kind, e->line = L->line;
    return e;
}

static expr_t *parse_expr(lexer_t *L);

/* "(" already read: arguments up to ")". */
static int parse_args(lexer_t *L, expr_t *e, const char *close) {
    expr_t *items[16];
    int n = 0;
    while (!is_op(L, close)) {
        if (n == 16) return lex_error(L, "too many arguments");
        if (!(items[n++] = parse_expr(L))) return -1;
        if (!is_op(L, ",")) break;
        if (next_token(L)) return -1;
    }
    if (expect_op(L, close)) return -1;
    e->args = arena_alloc(L->arena, sizeof *e->args * (size_t)(n ? n : 1));
    if (!e->args) return -1;
    memcpy(e->args, items, sizeof *items * (size_t)n);
    e->nargs = n;
    return 0;
}

static expr_t *parse_primary(lexer_t *L) {
    expr_t *e;
    if (L->kind == T_STR || L->kind == T_INT) {
        if (!(e = new_expr(L, L->kind == T_STR ? E_STR : E_INT))) return NULL;
        e->s = L->s, e->n = L->n, e->i = L->i;
        return next_token(L) ? NULL : e;
    }
    if (L->kind == T_NAME) {
        if (is_word(L, "true") || is_word(L, "True") || is_word(L, "false") || is_word(L, "False")) {
            if (!(e = new_expr(L, E_BOOL))) return NULL;
            e->i = L->s[0] == 't' || L->s[0] == 'T';
        } else if (is_word(L, "none") || is_word(L, "None")) {
            if (!(e = new_expr(L, E_NONE))) return NULL;
        } else {
            if (!(e = new_expr(L, E_NAME))) return NULL;
            e->s = L->s, e->n = L->n;
        }
        return next_token(L) ? NULL : e;
    }
    if (is_op(L, "(")) {
        if (next_token(L) || !(e = parse_expr(L)) || expect_op(L, ")")) return NULL;
        return e;
    }
    if (is_op(L, "[")) {
        if (!(e = new_expr(L, E_LIST)) || next_token(L) || parse_args(L, e, "]")) return NULL;
        return e;
    }
    lex_error(L, "expected a value");
    return NULL;
}

/* A name after "." or "|" or "is". */
static int take_name(lexer_t *L, expr_t *e) {
    if (L->kind != T_NAME) return lex_error(L, "expected a name");
    e->s = L->s, e->n = L->n;
    return next_token(L);
}

static expr_t *parse_postfix(lexer_t *L) {
    expr_t *e = parse_primary(L);
    while (e) {
        expr_t *x;
        if (is_op(L, ".")) {
            if (!(x = new_expr(L, E_ATTR)) || next_token(L) || take_name(L, x)) return NULL;
            x->a = e;
        } else if (is_op(L, "[")) {
            if (next_token(L)) return NULL;
            expr_t *lo = NULL, *hi = NULL;
            if (!is_op(L, ":") && !(lo = parse_expr(L))) return NULL;
            if (is_op(L, ":")) {
                if (!(x = new_expr(L, E_SLICE)) || next_token(L)) return NULL;
                if (!is_op(L, "]") && !(hi = parse_expr(L))) return NULL;
                x->b = lo, x->c = hi;
            } else {
                if (!(x = new_expr(L, E_INDEX))) return NULL;
                x->b = lo;
            }
            if (expect_op(L, "]")) return NULL;
            x->a = e;
        } else if (is_op(L, "(")) {
            if (!(x = new_expr(L, E_CALL)) || next_token(L) || parse_args(L, x, ")")) return NULL;
            x->a = e;
        } else if (is_op(L, "|")) {
            if (!(x = new_expr(L, E_FILTER)) || next_token(L) || take_name(L, x)) return NULL;
            if (is_op(L, "(") && (next_token(L) || parse_args(L, x, ")"))) return NULL;
            x->a = e;
        } else {
            break;
        }
        e = x;
    }
    return e;
}

static expr_t *parse_unary(lexer_t *L) {
    if (!is_op(L, "-")) return parse_postfix(L);
    if (++L->depth > MAX_DEPTH) return lex_error(L, "expressions are nested too deeply"), NULL;
    expr_t *e = new_expr(L, E_NEG);
    if (!e || next_token(L) || !(e->a = parse_unary(L))) return NULL;
    L->depth--;
    return e;
}

static expr_t *binary(lexer_t *L, binop_t op, expr_t *a, expr_t *b) {
    expr_t *e = a && b ? new_expr(L, E_BINARY) : NULL;
    if (e) e->op = op, e->a = a, e->b = b;
    return e;
}

static expr_t *parse_mul(lexer_t *L) {
    expr_t *e = parse_unary(L);
    while (e && (is_op(L, "*") || is_op(L, "//") || is_op(L, "%"))) {
        binop_t op = is_op(L, "*") ? OP_MUL : is_op(L, "//") ? OP_FLOORDIV : OP_MOD;
        e = next_token(L) ? NULL : binary(L, op, e, parse_unary(L));
    }
    return e;
}

static expr_t *parse_add(lexer_t *L) {
    expr_t *e = parse_mul(L);
    while (e && (is_op(L, "+") || is_op(L, "-"))) {
        binop_t op = is_op(L, "+") ? OP_ADD : OP_SUB;
        e = next_token(L) ? NULL : binary(L, op, e, parse_mul(L));
    }
    return e;
}

static expr_t *parse_concat(lexer_t *L) {
    expr_t *e = parse_add(L);
    while (e && is_op(L, "~")) e = next_token(L) ? NULL : binary(L, OP_CONCAT, e, parse_add(L));
    return e;
}

static expr_t *parse_compare(lexer_t *L) {
    expr_t *e = parse_concat(L);
    while (e) {
        static const struct {
            const char *op;
            binop_t b;
        } cmp[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"<", OP_LT}, {">", OP_GT}};
        int found = -1;
        for (int k = 0; k < 6 && found < 0; k++)
            if (is_op(L, cmp[k].op)) found = k;
        if (found >= 0) {
            e = next_token(L) ? NULL : binary(L, cmp[found].b, e, parse_concat(L));
        } else if (is_word(L, "in")) {
            e = next_token(L) ? NULL : binary(L, OP_IN, e, parse_concat(L));
        } else if (is_word(L, "not")) { /* "not in" */
            if (next_token(L)) return NULL;
            if (!is_word(L, "in")) return lex_error(L, "expected 'in' after 'not'"), NULL;
            e = next_token(L) ? NULL : binary(L, OP_NOT_IN, e, parse_concat(L));
        } else if (is_word(L, "is")) {
            expr_t *t = new_expr(L, E_TEST);
            if (!t || next_token(L)) return NULL;
            if (is_word(L, "not") && (t->i = 1) && next_token(L)) return NULL;
            if (take_name(L, t)) return NULL;
            t->a = e;
            e = t;
        } else {
            break;
        }
    }
    return e;
}

static expr_t *parse_not(lexer_t *L) {
    if (!is_word(L, "not")) return parse_compare(L);
    if (++L->depth > MAX_DEPTH) return lex_error(L, "expressions are nested too deeply"), NULL;
    expr_t *e = new_expr(L, E_NOT);
    if (!e || next_token(L) || !(e->a = parse_not(L))) return NULL;
    L->depth--;
    return e;
}

static expr_t *parse_logic(lexer_t *L, int or) {
    expr_t *e = or ? parse_logic(L, 0) : parse_not(L);
    while (e && is_word(L, or ? "or" : "and")) {
        expr_t *x = new_expr(L, or ? E_OR : E_AND);
        if (!x || next_token(L) || !(x->b = or ? parse_logic(L, 0) : parse_not(L))) return NULL;
        x->a = e;
        e = x;
    }
    return e;
}

static expr_t *parse_ternary(lexer_t *L);

static expr_t *parse_expr(lexer_t *L) {
    if (++L->depth > MAX_DEPTH) return lex_error(L, "expressions are nested too deeply"), NULL;
    expr_t *e = parse_ternary(L);
    L->depth--;
    return e;
}

static expr_t *parse_ternary(lexer_t *L) {
    expr_t *e = parse_logic(L, 1);
    if (!e || !is_word(L, "if")) return e;
    expr_t *t = new_expr(L, E_TERNARY);
    if (!t || next_token(L) || !(t->a = parse_logic(L, 1))) return NULL;
    t->b = e;
    if (is_word(L, "else") && (next_token(L) || !(t->c = parse_expr(L)))) return NULL;
    return t;
}

/* ---- statements ---- */

/* Text up to the next tag: whitespace control of the tags on both sides, trim_blocks and lstrip_blocks. */
static int read_text(lexer_t *L, stmt_t ***tail) {
    const char *start = L->p, *q = start;
    while (q + 1 < L->end && !(q[0] == '{' && (q[1] == '{' || q[1] == '%' || q[1] == '#'))) q++;
    const char *stop = q + 1 < L->end ? q : L->end;
    const char *a = start, *b = stop;
    if (L->strip_next)
        while (a < b && is_space(*a)) a++;
    else if (L->trim_newline && a < b && *a == '\n')
        a++;
    else if (L->trim_newline && b - a >= 2 && a[0] == '\r' && a[1] == '\n')
        a += 2;
    if (stop < L->end) {
        if (stop + 2 < L->end && stop[2] == '-') {
            while (b > a && is_space(b[-1])) b--;
        } else if (stop[1] != '{') { /* lstrip_blocks: a block or comment tag alone at a line's start */
            const char *c = b;
            while (c > a && (c[-1] == ' ' || c[-1] == '\t')) c--;
            if (c == start ? start == L->src || start[-1] == '\n' : c[-1] == '\n') b = c;
        }
    } else if (b > a && b[-1] == '\n') { /* the template's final newline */
        b--;
    }
    int line = L->line;
    advance(L, (size_t)(stop - start));
    L->strip_next = L->trim_newline = 0;
    if (b <= a) return 0;
    stmt_t *s = arena_alloc(L->arena, sizeof *s);
    if (!s) return -1;
    s->kind = S_TEXT, s->line = line, s->text = a, s->len = (size_t)(b - a);
    **tail = s;
    *tail = &s->next;
    return 0;
}

/* Reads statements until a {% %} tag opens with one of the `ends` keywords (left in *ended; the token
 * after the keyword is current); ends NULL: until the end of the template. */
static int parse_body(lexer_t *L, stmt_t **body, const char *const *ends, const char **ended);

/* The "%}" that closes a block's opening tag: its body starts after it (trim_blocks). */
static int end_block_tag(lexer_t *L) {
    if (!tok_is(L, T_TAG_END, NULL)) return lex_error(L, "expected '%}'");
    L->trim_newline = 1;
    return 0;
}

/* After "{%" and its name: the rest of an if, for or set statement, up to the "%}" of its last tag,
 * which is left current. */
static int parse_statement_in(lexer_t *L, stmt_t *s);

static int parse_statement(lexer_t *L, stmt_t *s) {
    if (++L->depth > MAX_DEPTH) return lex_error(L, "blocks are nested too deeply");
    int rc = parse_statement_in(L, s);
    L->depth--;
    return rc;
}

static int parse_statement_in(lexer_t *L, stmt_t *s) {
    static const char *const if_ends[] = {"elif", "else", "endif", NULL}, *const for_ends[] = {"endfor", NULL},
                             *const else_ends[] = {"endif", NULL};
    const char *ended;
    if (s->kind == S_SET || s->kind == S_FOR) {
        if (L->kind != T_NAME) return lex_error(L, "expected a variable name");
        s->name = L->s, s->name_len = L->n;
        if (next_token(L)) return -1;
        if (s->kind == S_SET) return expect_op(L, "=") || !(s->e = parse_expr(L)) ? -1 : 0;
        if (!is_word(L, "in")) return lex_error(L, "expected 'in' (one loop variable)");
        if (next_token(L) || !(s->e = parse_expr(L)) || end_block_tag(L)) return -1;
        return parse_body(L, &s->body, for_ends, &ended);
    }
    if (!(s->e = parse_expr(L)) || end_block_tag(L) || parse_body(L, &s->body, if_ends, &ended)) return -1;
    if (!strcmp(ended, "elif")) {
        stmt_t *e = arena_alloc(L->arena, sizeof *e);
        if (!e) return -1;
        e->kind = S_IF, e->line = L->line;
        s->orelse = e;
        return parse_statement(L, e);
    }
    if (!strcmp(ended, "else") && (end_block_tag(L) || parse_body(L, &s->orelse, else_ends, &ended))) return -1;
    return 0;
}

static int parse_body(lexer_t *L, stmt_t **body, const char *const *ends, const char **ended) {
    stmt_t **tail = body;
    for (;;) {
        if (read_text(L, &tail)) return -1;
        if (L->p >= L->end) {
            if (!ends) return 0;
            char what[64];
            snprintf(what, sizeof what, "the template ends inside a block (no {%% %s %%})", ends[0]);
            return lex_error(L, what);
        }
        int line = L->line;
        char open = L->p[1];
        advance(L, L->p + 2 < L->end && L->p[2] == '-' ? 3 : 2);
        if (open == '#') { /* a comment, to its "#}" */
            const char *q = L->p;
            while (q + 1 < L->end && !(q[0] == '#' && q[1] == '}')) q++;
            if (q + 1 >= L->end) return lex_error(L, "a comment is not closed");
            L->strip_next = q > L->p && q[-1] == '-';
            L->trim_newline = !L->strip_next;
            advance(L, (size_t)(q + 2 - L->p));
            continue;
        }
        L->close = open == '{' ? "}" : "%";
        if (next_token(L)) return -1;
        stmt_t *s = arena_alloc(L->arena, sizeof *s);
        if (!s) return -1;
        s->line = line;
        if (open == '{') {
            s->kind = S_OUTPUT;
            if (!(s->e = parse_expr(L))) return -1;
            if (!tok_is(L, T_TAG_END, NULL)) return lex_error(L, "expected '}}'");
        } else {
            if (L->kind != T_NAME) return lex_error(L, "expected a statement name");
            for (int k = 0; ends && ends[k]; k++)
                if (is_word(L, ends[k])) {
                    *ended = ends[k];
                    return next_token(L);
                }
            if (is_word(L, "if"))
                s->kind = S_IF;
            else if (is_word(L, "for"))
                s->kind = S_FOR;
            else if (is_word(L, "set"))
                s->kind = S_SET;
            else {
                char what[96];
                snprintf(what, sizeof what, "'%.*s' is not supported (if, for, set)", (int)L->n, L->s);
                return lex_error(L, what);
            }
            if (next_token(L) || parse_statement(L, s)) return -1;
            if (!tok_is(L, T_TAG_END, NULL)) return lex_error(L, "expected '%}'");
            L->trim_newline = 1;
        }
        *tail = s;
        tail = &s->next;
    }
}

int anv_jinja_parse(const char *text, size_t len, const char *source, anv_jinja_t **out) {
    *out = NULL;
    anv_jinja_t *t = calloc(1, sizeof *t);
    if (!t || !(t->source = strdup(source))) {
        free(t);
        return anv_error("out of memory for a chat template");
    }
    char *copy = arena_alloc(&t->arena, len + 1);
    if (!copy) {
        anv_jinja_free(t);
        return -1;
    }
    memcpy(copy, text, len);
    lexer_t L = {.src = copy, .end = copy + len, .p = copy, .source = t->source, .line = 1, .arena = &t->arena};
    if (parse_body(&L, &t->body, NULL, NULL) != 0) {
        anv_jinja_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void anv_jinja_free(anv_jinja_t *t) {
    if (!t) return;
    arena_free(t->arena);
    free(t->source);
    free(t);
}

/* ---- values and rendering ---- */

typedef enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_STR, V_LIST, V_MESSAGE, V_LOOP } vtype_t;

typedef struct value value_t;
struct value {
    vtype_t t;
    long long i;   /* BOOL, INT; MESSAGE: its index; LOOP: index0 */
    long long len; /* LOOP: length */
    const char *s; /* STR */
    size_t n;      /* STR: length; LIST: items */
    const value_t *items;
};

typedef struct {
    const char *name;
    size_t len;
    value_t v;
} var_t;

typedef struct {
    const anv_jinja_t *t;
    const anv_jinja_chat_t *chat;
    chunk_t *arena;
    var_t vars[64];
    int nvars;
    anv_buf_t *out;
} render_t;

static int fail(render_t *R, int line, const char *fmt, const char *arg) {
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    return anv_error("%s:%d: %s", R->t->source, line, what);
}

static const char *type_name(vtype_t t) {
    static const char *const names[] = {"undefined", "none",   "a boolean", "an integer",
                                        "a string",  "a list", "a message", "a loop"};
    return names[t];
}

static value_t str_value(const char *s, size_t n) { return (value_t){.t = V_STR, .s = s, .n = n}; }
static value_t int_value(vtype_t t, long long i) { return (value_t){.t = t, .i = i}; }

static int truthy(const value_t *v) {
    switch (v->t) {
    case V_BOOL:
    case V_INT:
        return v->i != 0;
    case V_STR:
    case V_LIST:
        return v->n != 0;
    case V_MESSAGE:
    case V_LOOP:
        return 1;
    default:
        return 0;
    }
}

/* v as the text {{ }} writes. */
static int to_text(render_t *R, int line, const value_t *v, value_t *out) {
    char buf[32];
    switch (v->t) {
    case V_UNDEF:
        *out = str_value("", 0);
        return 0;
    case V_NONE:
        *out = str_value("None", 4);
        return 0;
    case V_BOOL:
        *out = v->i ? str_value("True", 4) : str_value("False", 5);
        return 0;
    case V_INT: {
        int n = snprintf(buf, sizeof buf, "%lld", v->i);
        char *s = arena_alloc(&R->arena, (size_t)n + 1);
        if (!s) return -1;
        memcpy(s, buf, (size_t)n);
        *out = str_value(s, (size_t)n);
        return 0;
    }
    case V_STR:
        *out = *v;
        return 0;
    default:
        return fail(R, line, "cannot write %s as text", type_name(v->t));
    }
}

static int concat(render_t *R, const value_t *a, const value_t *b, value_t *out) {
    char *s = arena_alloc(&R->arena, a->n + b->n + 1);
    if (!s) return -1;
    memcpy(s, a->s, a->n);
    memcpy(s + a->n, b->s, b->n);
    *out = str_value(s, a->n + b->n);
    return 0;
}

static int equal(const value_t *a, const value_t *b) {
    int an = a->t == V_INT || a->t == V_BOOL, bn = b->t == V_INT || b->t == V_BOOL;
    if (an && bn) return a->i == b->i;
    if (a->t != b->t) return 0;
    if (a->t == V_STR) return a->n == b->n && !memcmp(a->s, b->s, a->n);
    if (a->t == V_MESSAGE) return a->i == b->i;
    return a->t == V_NONE || a->t == V_UNDEF;
}

static int eval(render_t *R, const expr_t *e, value_t *v);

static const var_t *lookup(const render_t *R, const char *name, size_t len) {
    for (int k = R->nvars - 1; k >= 0; k--)
        if (R->vars[k].len == len && !memcmp(R->vars[k].name, name, len)) return &R->vars[k];
    return NULL;
}

static int set_var(render_t *R, int line, const char *name, size_t len, const value_t *v, int from) {
    for (int k = R->nvars - 1; k >= from; k--)
        if (R->vars[k].len == len && !memcmp(R->vars[k].name, name, len)) {
            R->vars[k].v = *v;
            return 0;
        }
    if (R->nvars == (int)(sizeof R->vars / sizeof R->vars[0])) return fail(R, line, "too many variables%s", "");
    R->vars[R->nvars++] = (var_t){name, len, *v};
    return 0;
}

static int name_is(const expr_t *e, const char *s) { return e->n == strlen(s) && !memcmp(e->s, s, e->n); }

/* a.name or a['name'] */
static int member(render_t *R, int line, const value_t *a, const char *name, size_t n, value_t *v) {
#define IS(s) (n == strlen(s) && !memcmp(name, s, n))
    *v = (value_t){.t = V_UNDEF};
    if (a->t == V_MESSAGE) {
        const anv_jinja_message_t *m = &R->chat->messages[a->i];
        if (IS("role")) *v = str_value(m->role, strlen(m->role));
        if (IS("content")) *v = str_value(m->content, m->content_len);
        return 0;
    }
    if (a->t == V_LOOP) {
        long long i = a->i, len = a->len;
        if (IS("index")) *v = int_value(V_INT, i + 1);
        if (IS("index0")) *v = int_value(V_INT, i);
        if (IS("revindex")) *v = int_value(V_INT, len - i);
        if (IS("revindex0")) *v = int_value(V_INT, len - i - 1);
        if (IS("first")) *v = int_value(V_BOOL, i == 0);
        if (IS("last")) *v = int_value(V_BOOL, i == len - 1);
        if (IS("length")) *v = int_value(V_INT, len);
        return 0;
    }
    if (a->t == V_UNDEF) return fail(R, line, "an undefined value has no '%s'", name);
    return 0;
#undef IS
}

/* A list or string index (negative from the end), clamped into [0, n] for slices. */
static long long position(long long i, size_t n, int clamp) {
    if (i < 0) i += (long long)n;
    if (clamp) i = i < 0 ? 0 : i > (long long)n ? (long long)n : i;
    return i;
}

static int string_method(render_t *R, const expr_t *e, const value_t *s, value_t *v) {
    const expr_t *m = e->a;
    char mname[32];
    snprintf(mname, sizeof mname, "%.*s", (int)m->n, m->s);
    if (s->t != V_STR) return fail(R, e->line, "'%s' needs a string", mname);
    value_t arg = {0};
    if (e->nargs > 1 || (e->nargs == 1 && (eval(R, e->args[0], &arg) || arg.t != V_STR)))
        return fail(R, e->line, "bad arguments to '%s'", mname);
    const char *a = s->s, *b = s->s + s->n;
    if (name_is(m, "strip") || name_is(m, "lstrip") || name_is(m, "rstrip")) {
        if (!name_is(m, "rstrip"))
            while (a < b && is_space(*a)) a++;
        if (!name_is(m, "lstrip"))
            while (b > a && is_space(b[-1])) b--;
        *v = str_value(a, (size_t)(b - a));
    } else if (name_is(m, "upper") || name_is(m, "lower")) {
        char *c = arena_alloc(&R->arena, s->n + 1);
        if (!c) return -1;
        for (size_t k = 0; k < s->n; k++) {
            char ch = s->s[k];
            c[k] =
                name_is(m, "upper") ? (ch >= 'a' && ch <= 'z' ? ch - 32 : ch) : (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        *v = str_value(c, s->n);
    } else if ((name_is(m, "startswith") || name_is(m, "endswith")) && e->nargs == 1) {
        int fits = arg.n <= s->n;
        const char *at = name_is(m, "startswith") ? s->s : s->s + s->n - (fits ? arg.n : 0);
        *v = int_value(V_BOOL, fits && !memcmp(at, arg.s, arg.n));
    } else {
        return fail(R, e->line, "the string method '%s' is not supported", mname);
    }
    return 0;
}

static int call(render_t *R, const expr_t *e, value_t *v) {
    if (e->a->kind == E_NAME && name_is(e->a, "raise_exception")) {
        value_t msg = {0}, text;
        if (e->nargs != 1 || eval(R, e->args[0], &msg) || to_text(R, e->line, &msg, &text)) return -1;
        return anv_error("%s:%d: the template raised: %.*s", R->t->source, e->line, (int)text.n, text.s);
    }
    if (e->a->kind != E_ATTR) return fail(R, e->line, "only raise_exception() and string methods can be called%s", "");
    value_t s;
    if (eval(R, e->a->a, &s)) return -1;
    return string_method(R, e, &s, v);
}

static int filter(render_t *R, const expr_t *e, value_t *v) {
    value_t a;
    if (eval(R, e->a, &a)) return -1;
    if (name_is(e, "trim")) {
        expr_t m = {.s = "strip", .n = 5};
        expr_t c = {.kind = E_CALL, .line = e->line, .a = &m};
        return string_method(R, &c, &a, v);
    }
    if (name_is(e, "upper") || name_is(e, "lower")) {
        expr_t m = {.s = e->s, .n = e->n};
        expr_t c = {.kind = E_CALL, .line = e->line, .a = &m};
        return string_method(R, &c, &a, v);
    }
    if (name_is(e, "length") || name_is(e, "count")) {
        if (a.t != V_STR && a.t != V_LIST) return fail(R, e->line, "length of %s", type_name(a.t));
        *v = int_value(V_INT, (long long)a.n);
        return 0;
    }
    if (name_is(e, "string")) return to_text(R, e->line, &a, v);
    if (name_is(e, "first") || name_is(e, "last")) {
        if (a.t != V_LIST) return fail(R, e->line, "first or last of %s", type_name(a.t));
        *v = a.n ? a.items[name_is(e, "first") ? 0 : a.n - 1] : (value_t){.t = V_UNDEF};
        return 0;
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)e->n, e->s);
    return fail(R, e->line, "the filter '%s' is not supported", name);
}

static int test(render_t *R, const expr_t *e, value_t *v) {
    value_t a;
    if (eval(R, e->a, &a)) return -1;
    int r;
    if (name_is(e, "defined"))
        r = a.t != V_UNDEF;
    else if (name_is(e, "undefined"))
        r = a.t == V_UNDEF;
    else if (name_is(e, "none"))
        r = a.t == V_NONE;
    else if (name_is(e, "string"))
        r = a.t == V_STR;
    else if (name_is(e, "number"))
        r = a.t == V_INT;
    else if (name_is(e, "true") || name_is(e, "false"))
        r = a.t == V_BOOL && a.i == name_is(e, "true");
    else {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)e->n, e->s);
        return fail(R, e->line, "the test '%s' is not supported", name);
    }
    *v = int_value(V_BOOL, r != (int)e->i);
    return 0;
}

static int binary_op(render_t *R, const expr_t *e, value_t *v) {
    value_t a, b;
    if (eval(R, e->a, &a) || eval(R, e->b, &b)) return -1;
    int ints = (a.t == V_INT || a.t == V_BOOL) && (b.t == V_INT || b.t == V_BOOL);
    switch (e->op) {
    case OP_CONCAT: {
        value_t x, y;
        return to_text(R, e->line, &a, &x) || to_text(R, e->line, &b, &y) ? -1 : concat(R, &x, &y, v);
    }
    case OP_ADD:
        if (a.t == V_STR && b.t == V_STR) return concat(R, &a, &b, v);
        if (ints) return *v = int_value(V_INT, a.i + b.i), 0;
        break;
    case OP_SUB:
    case OP_MUL:
        if (ints) return *v = int_value(V_INT, e->op == OP_SUB ? a.i - b.i : a.i * b.i), 0;
        break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (ints && b.i == 0) return fail(R, e->line, "division by zero%s", "");
        if (ints) {
            long long q = a.i / b.i, r = a.i % b.i;
            if (r != 0 && (r < 0) != (b.i < 0)) q--, r += b.i; /* Python's: toward minus infinity */
            return *v = int_value(V_INT, e->op == OP_MOD ? r : q), 0;
        }
        break;
    case OP_EQ:
    case OP_NE:
        return *v = int_value(V_BOOL, equal(&a, &b) == (e->op == OP_EQ)), 0;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int c;
        if (ints)
            c = a.i < b.i ? -1 : a.i > b.i;
        else if (a.t == V_STR && b.t == V_STR) {
            size_t n = a.n < b.n ? a.n : b.n;
            c = memcmp(a.s, b.s, n);
            if (c == 0) c = a.n < b.n ? -1 : a.n > b.n;
        } else
            break;
        int r = e->op == OP_LT ? c < 0 : e->op == OP_LE ? c <= 0 : e->op == OP_GT ? c > 0 : c >= 0;
        return *v = int_value(V_BOOL, r), 0;
    }
    case OP_IN:
    case OP_NOT_IN: {
        int found = 0;
        if (b.t == V_STR && a.t == V_STR) {
            for (size_t k = 0; !found && k + a.n <= b.n; k++) found = !memcmp(b.s + k, a.s, a.n);
        } else if (b.t == V_LIST) {
            for (size_t k = 0; !found && k < b.n; k++) found = equal(&a, &b.items[k]);
        } else if (b.t == V_MESSAGE && a.t == V_STR) {
            found = (a.n == 4 && !memcmp(a.s, "role", 4)) || (a.n == 7 && !memcmp(a.s, "content", 7));
        } else {
            break;
        }
        return *v = int_value(V_BOOL, found == (e->op == OP_IN)), 0;
    }
    }
    char what[96];
    snprintf(what, sizeof what, "an operation on %s and %s", type_name(a.t), type_name(b.t));
    return fail(R, e->line, "%s", what);
}

static int eval(render_t *R, const expr_t *e, value_t *v) {
    switch (e->kind) {
    case E_STR:
        *v = str_value(e->s, e->n);
        return 0;
    case E_INT:
    case E_BOOL:
        *v = int_value(e->kind == E_INT ? V_INT : V_BOOL, e->i);
        return 0;
    case E_NONE:
        *v = (value_t){.t = V_NONE};
        return 0;
    case E_LIST: {
        value_t *items = arena_alloc(&R->arena, sizeof *items * (size_t)(e->nargs ? e->nargs : 1));
        if (!items) return -1;
        for (int k = 0; k < e->nargs; k++)
            if (eval(R, e->args[k], &items[k])) return -1;
        *v = (value_t){.t = V_LIST, .items = items, .n = (size_t)e->nargs};
        return 0;
    }
    case E_NAME: {
        const var_t *x = lookup(R, e->s, e->n);
        *v = x ? x->v : (value_t){.t = V_UNDEF};
        return 0;
    }
    case E_ATTR: {
        value_t a;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)e->n, e->s);
        return eval(R, e->a, &a) ? -1 : member(R, e->line, &a, name, strlen(name), v);
    }
    case E_INDEX: {
        value_t a, i;
        if (eval(R, e->a, &a) || eval(R, e->b, &i)) return -1;
        if (i.t == V_STR) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)i.n, i.s);
            return member(R, e->line, &a, name, strlen(name), v);
        }
        if (i.t != V_INT || (a.t != V_LIST && a.t != V_STR)) return fail(R, e->line, "cannot index %s", type_name(a.t));
        long long k = position(i.i, a.n, 0);
        if (k < 0 || k >= (long long)a.n) return fail(R, e->line, "index out of range%s", "");
        *v = a.t == V_LIST ? a.items[k] : str_value(a.s + k, 1);
        return 0;
    }
    case E_SLICE: {
        value_t a, lo = int_value(V_INT, 0), hi;
        if (eval(R, e->a, &a) || (e->b && eval(R, e->b, &lo))) return -1;
        hi = int_value(V_INT, (long long)a.n);
        if (e->c && eval(R, e->c, &hi)) return -1;
        if ((a.t != V_LIST && a.t != V_STR) || lo.t != V_INT || hi.t != V_INT)
            return fail(R, e->line, "cannot slice %s", type_name(a.t));
        long long x = position(lo.i, a.n, 1), y = position(hi.i, a.n, 1);
        if (y < x) y = x;
        *v = a;
        v->n = (size_t)(y - x);
        if (a.t == V_LIST)
            v->items = a.items + x;
        else
            v->s = a.s + x;
        return 0;
    }
    case E_CALL:
        return call(R, e, v);
    case E_FILTER:
        return filter(R, e, v);
    case E_TEST:
        return test(R, e, v);
    case E_NOT:
        if (eval(R, e->a, v)) return -1;
        *v = int_value(V_BOOL, !truthy(v));
        return 0;
    case E_NEG:
        if (eval(R, e->a, v)) return -1;
        if (v->t != V_INT) return fail(R, e->line, "cannot negate %s", type_name(v->t));
        v->i = -v->i;
        return 0;
    case E_BINARY:
        return binary_op(R, e, v);
    case E_AND:
    case E_OR: /* Python's: the operand that decides */
        if (eval(R, e->a, v)) return -1;
        if (truthy(v) == (e->kind == E_OR)) return 0;
        return eval(R, e->b, v);
    case E_TERNARY: {
        value_t c;
        if (eval(R, e->a, &c)) return -1;
        if (truthy(&c)) return eval(R, e->b, v);
        if (e->c) return eval(R, e->c, v);
        *v = (value_t){.t = V_UNDEF};
        return 0;
    }
    }
    return fail(R, e->line, "bad expression%s", "");
}

static int run(render_t *R, const stmt_t *s, int frame) {
    for (; s; s = s->next) {
        value_t v, text;
        switch (s->kind) {
        case S_TEXT:
            if (anv_buf_append(R->out, s->text, s->len)) return -1;
            break;
        case S_OUTPUT:
            if (eval(R, s->e, &v) || to_text(R, s->line, &v, &text) || anv_buf_append(R->out, text.s, text.n))
                return -1;
            break;
        case S_SET:
            if (eval(R, s->e, &v) || set_var(R, s->line, s->name, s->name_len, &v, frame)) return -1;
            break;
        case S_IF:
            if (eval(R, s->e, &v)) return -1;
            if (run(R, truthy(&v) ? s->body : s->orelse, frame)) return -1;
            break;
        case S_FOR: {
            value_t seq;
            if (eval(R, s->e, &seq)) return -1;
            if (seq.t != V_LIST && seq.t != V_UNDEF) return fail(R, s->line, "cannot loop over %s", type_name(seq.t));
            int saved = R->nvars;
            for (size_t k = 0; k < seq.n; k++) {
                R->nvars = saved; /* what the last iteration set is gone */
                value_t loop = {.t = V_LOOP, .i = (long long)k, .len = (long long)seq.n};
                if (set_var(R, s->line, "loop", 4, &loop, saved) ||
                    set_var(R, s->line, s->name, s->name_len, &seq.items[k], saved) || run(R, s->body, saved))
                    return -1;
            }
            R->nvars = saved;
            break;
        }
        }
    }
    return 0;
}

int anv_jinja_render(const anv_jinja_t *t, const anv_jinja_chat_t *c, anv_buf_t *out) {
    render_t R = {.t = t, .chat = c, .out = out};
    value_t *msgs = arena_alloc(&R.arena, sizeof *msgs * (c->n_messages ? c->n_messages : 1));
    int rc = msgs ? 0 : -1;
    for (size_t k = 0; rc == 0 && k < c->n_messages; k++) msgs[k] = int_value(V_MESSAGE, (long long)k);
    value_t list = {.t = V_LIST, .items = msgs, .n = c->n_messages};
    value_t gen = int_value(V_BOOL, c->add_generation_prompt);
    value_t bos = str_value(c->bos_token ? c->bos_token : "", c->bos_token ? strlen(c->bos_token) : 0);
    value_t eos = str_value(c->eos_token ? c->eos_token : "", c->eos_token ? strlen(c->eos_token) : 0);
    if (rc == 0)
        rc = set_var(&R, 0, "messages", 8, &list, 0) || set_var(&R, 0, "add_generation_prompt", 21, &gen, 0) ||
                     set_var(&R, 0, "bos_token", 9, &bos, 0) || set_var(&R, 0, "eos_token", 9, &eos, 0)
                 ? -1
                 : run(&R, t->body, 0);
    arena_free(R.arena);
    return rc;
}
