/* A file's bytes, decompressed: plain, gzip (zlib) or zstd, recognised by their magic bytes. See
 * anvil/corpus.h. */
#include "anvil/corpus.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

enum { PLAIN, GZIP, ZSTD };

struct anv_stream {
    FILE *f;
    const char *name;
    int kind, at_eof, frame_open; /* frame_open: a gzip member or zstd frame is started, not ended */
    unsigned char *in;
    size_t in_cap, in_pos, in_len;
    uint64_t consumed; /* file bytes handed to the decoder (or returned, when plain) */
    z_stream z;
    ZSTD_DStream *zd;
};

static const unsigned char GZIP_MAGIC[2] = {0x1f, 0x8b}, ZSTD_MAGIC[4] = {0x28, 0xb5, 0x2f, 0xfd};

/* Refills the input buffer when empty: 1 bytes available, 0 end of file, -1 error. */
static int refill(anv_stream_t *s) {
    if (s->in_pos < s->in_len) return 1;
    if (s->at_eof) return 0;
    s->in_pos = 0;
    s->in_len = fread(s->in, 1, s->in_cap, s->f);
    if (s->in_len == 0) {
        if (ferror(s->f))
            return anv_error("%s: read error after %llu bytes: %s", s->name, (unsigned long long)s->consumed,
                             strerror(errno));
        s->at_eof = 1;
        return 0;
    }
    return 1;
}

int anv_stream_open(FILE *f, const char *name, size_t buffer, anv_stream_t **out) {
    *out = NULL;
    anv_stream_t *s = anv_calloc(sizeof *s, "decompressing reader");
    if (!s) {
        fclose(f);
        return -1;
    }
    s->f = f;
    s->name = name;
    s->in_cap = buffer < 4096 ? 4096 : buffer;
    if (!(s->in = anv_alloc(s->in_cap, "read buffer")) || refill(s) < 0) {
        anv_stream_close(s);
        return -1;
    }
    if (s->in_len >= 2 && !memcmp(s->in, GZIP_MAGIC, 2)) {
        s->kind = GZIP;
        if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
            anv_stream_close(s);
            return anv_error("%s: zlib could not start", name);
        }
    } else if (s->in_len >= 4 && !memcmp(s->in, ZSTD_MAGIC, 4)) {
        s->kind = ZSTD;
        if (!(s->zd = ZSTD_createDStream())) {
            anv_stream_close(s);
            return anv_error("out of memory: zstd decoder for %s", name);
        }
    }
    *out = s;
    return 0;
}

void anv_stream_close(anv_stream_t *s) {
    if (!s) return;
    if (s->kind == GZIP) inflateEnd(&s->z);
    ZSTD_freeDStream(s->zd);
    if (s->f) fclose(s->f);
    anv_free(s->in);
    anv_free(s);
}

uint64_t anv_stream_consumed(const anv_stream_t *s) { return s->consumed; }

static long read_plain(anv_stream_t *s, unsigned char *buf, size_t n) {
    int r = refill(s);
    if (r <= 0) return r;
    size_t take = s->in_len - s->in_pos < n ? s->in_len - s->in_pos : n;
    memcpy(buf, s->in + s->in_pos, take);
    s->in_pos += take;
    s->consumed += take;
    return (long)take;
}

static long truncated(anv_stream_t *s, const char *format) {
    return anv_error("%s: truncated %s stream: the file ends inside a frame, after %llu bytes", s->name, format,
                     (unsigned long long)s->consumed);
}

/* A gzip member starts at the read position: 0 yes, -1 not gzip (data after the last member). */
static int member_starts(anv_stream_t *s) {
    if (s->in_len - s->in_pos == 1 && s->in[s->in_pos] == GZIP_MAGIC[0]) { /* magic split across reads */
        s->in[0] = GZIP_MAGIC[0];
        s->in_len = 1 + fread(s->in + 1, 1, s->in_cap - 1, s->f);
        s->in_pos = 0;
    }
    if (s->in_len - s->in_pos < 2 || memcmp(s->in + s->in_pos, GZIP_MAGIC, 2))
        return anv_error("%s: data that is not gzip after the end of the gzip stream, at byte %llu", s->name,
                         (unsigned long long)s->consumed);
    inflateReset(&s->z);
    s->frame_open = 1;
    return 0;
}

/* Both decoders: decode what the buffer holds; at the end of the file, flush what the decoder still
 * holds, and a frame left open is a truncated file. */
static long read_gzip(anv_stream_t *s, unsigned char *buf, size_t n) {
    for (;;) {
        int r = refill(s);
        if (r < 0) return -1;
        if (r == 0 && !s->frame_open) return 0;
        if (!s->frame_open && member_starts(s) != 0) return -1;
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        s->z.next_out = buf;
        s->z.avail_out = (uInt)n;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        size_t used = (size_t)(s->z.next_in - (s->in + s->in_pos)), produced = (size_t)(s->z.next_out - buf);
        s->in_pos += used;
        s->consumed += used;
        if (zr == Z_STREAM_END)
            s->frame_open = 0;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return anv_error("%s: corrupt gzip data near byte %llu: %s", s->name, (unsigned long long)s->consumed,
                             s->z.msg ? s->z.msg : "inflate failed");
        if (produced) return (long)produced;
        if (r == 0 && s->frame_open) return truncated(s, "gzip");
    }
}

static long read_zstd(anv_stream_t *s, unsigned char *buf, size_t n) {
    for (;;) {
        int r = refill(s);
        if (r < 0) return -1;
        if (r == 0 && !s->frame_open) return 0;
        /* at most 64 KiB of input at a time, so that an error can say where the data is bad */
        size_t window = s->in_len - s->in_pos < 65536 ? s->in_len - s->in_pos : 65536;
        ZSTD_inBuffer in = {s->in, s->in_pos + window, s->in_pos};
        ZSTD_outBuffer o = {buf, n, 0};
        size_t zr = ZSTD_decompressStream(s->zd, &o, &in);
        if (ZSTD_isError(zr))
            return anv_error("%s: corrupt zstd data between bytes %llu and %llu: %s", s->name,
                             (unsigned long long)s->consumed, (unsigned long long)(s->consumed + window),
                             ZSTD_getErrorName(zr));
        s->consumed += in.pos - s->in_pos;
        s->in_pos = in.pos;
        s->frame_open = zr != 0;
        if (o.pos) return (long)o.pos;
        if (r == 0 && s->frame_open) return truncated(s, "zstd");
    }
}

long anv_stream_read(anv_stream_t *s, void *buf, size_t n) {
    if (n == 0) return 0;
    if (n > (size_t)1 << 30) n = (size_t)1 << 30;
    switch (s->kind) {
    case GZIP:
        return read_gzip(s, buf, n);
    case ZSTD:
        return read_zstd(s, buf, n);
    default:
        return read_plain(s, buf, n);
    }
}
