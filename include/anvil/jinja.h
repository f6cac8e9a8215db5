/* The Jinja subset that chat templates use (Hugging Face's tokenizer_config.json "chat_template", GGUF's
 * tokenizer.chat_template), rendered as transformers renders them: trim_blocks and lstrip_blocks on, the
 * template's final newline dropped.
 *
 * Supported: text; {{ expr }}; {# comments #}; whitespace control ({%- -%} {{- -}}); {% if %} {% elif %}
 * {% else %} {% endif %}; {% for x in expr %} {% endfor %} with loop.index, index0, first, last, length,
 * revindex, revindex0; {% set name = expr %} (inside a loop, for that iteration). Expressions: string,
 * integer, true/false/none literals (either case) and [lists]; names; a.b, a['b'], a[i], a[i:j]; + - * // %
 * ~; == != < <= > >=; in, not in; and, or, not; `x if c else y`; tests `is [not] defined | undefined |
 * none | string | number | true | false`; filters trim, length, count, upper, lower, string, first, last;
 * string methods strip(), lstrip(), rstrip(), upper(), lower(), startswith(s), endswith(s); and
 * raise_exception(message). Anything else is refused when the template is parsed, naming the line. */
#ifndef ANVIL_JINJA_H
#define ANVIL_JINJA_H

#include "anvil/base.h"

typedef struct anv_jinja anv_jinja_t;

/* Compiles a template; `source` starts its errors ("template.jinja:3: ..."). */
int anv_jinja_parse(const char *text, size_t len, const char *source, anv_jinja_t **out);
void anv_jinja_free(anv_jinja_t *t);

/* What a chat template sees: messages (a list of {role, content}), add_generation_prompt, bos_token and
 * eos_token. */
typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
} anv_jinja_message_t;

typedef struct {
    const anv_jinja_message_t *messages;
    size_t n_messages;
    int add_generation_prompt;
    const char *bos_token, *eos_token;
} anv_jinja_chat_t;

/* Appends the rendering to out. Errors name the template's line: raise_exception's message, an
 * undefined name used as a value, an operation on the wrong types. */
int anv_jinja_render(const anv_jinja_t *t, const anv_jinja_chat_t *vars, anv_buf_t *out);

#endif
