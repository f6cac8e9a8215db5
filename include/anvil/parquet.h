/* Apache Parquet: the values of one string column, streamed row group by row group and page by page.
 *
 * Supported: BYTE_ARRAY columns that are not repeated (top level, or inside structs: name them with
 * dots, "meta.text"), null values skipped and counted; pages uncompressed, snappy, gzip or zstd; data
 * pages v1 and v2; PLAIN, dictionary (PLAIN_DICTIONARY, RLE_DICTIONARY), DELTA_LENGTH_BYTE_ARRAY and
 * DELTA_BYTE_ARRAY encodings. Errors name the file, the row group, the column and the byte offset.
 *
 * Memory: the footer, one dictionary and one page (compressed and decompressed) at a time. */
#ifndef ANVIL_PARQUET_H
#define ANVIL_PARQUET_H

#include "anvil/base.h"

typedef struct anv_parquet anv_parquet_t;

/* Reads the footer of the file f (size bytes) and finds the column; name is how errors name the file.
 * Takes ownership of f, also on failure. */
int anv_parquet_open(FILE *f, uint64_t size, const char *name, const char *column, anv_parquet_t **out);
/* 1: *value (*len bytes, valid until the next call) is the column's next non-null value, from the
 * 1-based *row of the file; 0: no more; -1: error. */
int anv_parquet_next(anv_parquet_t *p, const char **value, size_t *len, uint64_t *row);
uint64_t anv_parquet_offset(const anv_parquet_t *p); /* end of the last page read: progress */
uint64_t anv_parquet_nulls(const anv_parquet_t *p);  /* null values skipped so far */
void anv_parquet_close(anv_parquet_t *p);

#endif
