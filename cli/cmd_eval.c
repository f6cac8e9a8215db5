/* anvil eval (placeholder until its module lands; replaced by the real command). */
#include "cli.h"

#include "anvil/base.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    anv_error("'eval' is not built yet");
    return cli_fail();
}
