/* anvil data (placeholder until its module lands; replaced by the real command). */
#include "cli.h"

#include "anvil/base.h"

int cmd_data(int argc, char **argv) {
    (void)argc;
    (void)argv;
    anv_error("'data' is not built yet");
    return cli_fail();
}
