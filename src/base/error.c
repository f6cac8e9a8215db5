/* Per-thread error message (see base.h for the convention). */
#include "anvil/base.h"

#include <string.h>

static _Thread_local char error_message[1024];

int anv_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int anv_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof error_message - 3) n = sizeof error_message - 3;
    memcpy(error_message, prefix, n);
    memcpy(error_message + n, ": ", 2);
    size_t room = sizeof error_message - n - 3;
    size_t m = strnlen(old, room);
    memcpy(error_message + n + 2, old, m);
    error_message[n + 2 + m] = 0;
    return -1;
}

const char *anv_last_error(void) { return error_message[0] ? error_message : "unknown error"; }

void anv_error_clear(void) { error_message[0] = 0; }
