/* libFuzzer target: the decompressing reader (zstd, gzip, plain, by magic bytes) on any bytes, seeded
 * with zstd files of one and two frames and gzip files of one and two members. Invariants: it never
 * crashes and always ends; bytes without a magic come back unchanged, in reads of any size. */
#include "anvil/corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) abort();
    anv_stream_t *s;
    if (anv_stream_open(f, "fuzz.zst", 4096, &s) != 0) abort();
    static char buf[1 << 16];
    size_t got = 0, piece = 1 + data[0] % 97;
    int plain =
        !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b) && !(size >= 4 && !memcmp(data, "\x28\xb5\x2f\xfd", 4));
    long n;
    while ((n = anv_stream_read(s, buf, piece)) > 0) {
        if (plain && (got + (size_t)n > size || memcmp(buf, data + got, (size_t)n))) abort();
        got += (size_t)n;
        if (got > ((size_t)64 << 20)) break; /* a zstd bomb: enough */
    }
    if (plain && (n != 0 || got != size)) abort();
    anv_stream_close(s);
    anv_error_clear();
    return 0;
}
