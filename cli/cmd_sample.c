/* anvil sample (placeholder until its module lands; replaced by the real command). */
#include "cli.h"

#include "anvil/base.h"

int cmd_sample(int argc, char **argv) {
    (void)argc;
    (void)argv;
    anv_error("'sample' is not built yet");
    return cli_fail();
}
