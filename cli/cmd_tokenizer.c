/* anvil tokenizer (placeholder until its module lands; replaced by the real command). */
#include "cli.h"

#include "anvil/base.h"

int cmd_tokenizer(int argc, char **argv) {
    (void)argc;
    (void)argv;
    anv_error("'tokenizer' is not built yet");
    return cli_fail();
}
