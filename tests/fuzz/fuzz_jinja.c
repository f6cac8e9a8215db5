/* libFuzzer target: any bytes as a chat template must compile or be refused, and what compiles must
 * render a fixed conversation, with and without the generation prompt, or fail with an error; never
 * crash, loop forever or leak. */
#include "anvil/jinja.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    anv_jinja_t *t;
    if (anv_jinja_parse((const char *)data, size, "fuzz.jinja", &t) != 0) return 0;
    static const anv_jinja_message_t m[] = {{"system", "Be brief.", 9}, {"user", "Hi?", 3}, {"assistant", "Hello.", 6}};
    for (int gen = 0; gen < 2; gen++) {
        anv_jinja_chat_t chat = {m, 3, gen, "<s>", "</s>"};
        anv_buf_t out = {0};
        anv_jinja_render(t, &chat, &out);
        anv_buf_free(&out);
    }
    anv_jinja_free(t);
    return 0;
}
