/* libFuzzer target: the Parquet reader on any bytes, seeded with small files that DuckDB and arrow-rs
 * wrote (every codec, page version and string encoding). Invariants: it never crashes, never reads
 * out of bounds, and every value it hands out lies on a row of the file. */
#include "anvil/parquet.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) abort();
    anv_parquet_t *p;
    if (anv_parquet_open(f, size, "fuzz.parquet", "text", &p) == 0) {
        const char *value;
        size_t len, total = 0;
        uint64_t row, last_row = 0;
        int r;
        while ((r = anv_parquet_next(p, &value, &len, &row)) == 1) {
            if (row <= last_row) abort(); /* rows only go forward */
            last_row = row;
            for (size_t i = 0; i < len; i++) total += (unsigned char)value[i]; /* touch every byte */
        }
        anv_parquet_close(p);
        (void)total;
    }
    anv_error_clear();
    return 0;
}
