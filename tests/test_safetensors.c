/* safetensors: F32 round trip, half-precision reads, and rejection of every malformed layout. */
#include "anvil/safetensors.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

static void test_roundtrip(void) {
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504}, b[3] = {7, 8, 9};
    anv_st_write_t t[2] = {{"transformer.wte.weight", 2, {2, 3}, a}, {"ln.bias", 1, {3}, b}};
    const char *meta[] = {"format", "pt", "note", "quote\" ok"};
    CHECK(anv_safetensors_write_f32(path, t, 2, meta, 2) == 0, "write: %s", anv_last_error());
    anv_safetensors_t *st;
    CHECK(anv_safetensors_open(path, &st) == 0, "open: %s", anv_last_error());
    if (!st) return;
    CHECK(anv_safetensors_count(st) == 2, "2 tensors");
    float got[6];
    int64_t shape[2] = {2, 3};
    CHECK(anv_safetensors_read_f32(st, "transformer.wte.weight", 2, shape, got) == 0 && !memcmp(got, a, sizeof a),
          "wte round trip bitwise");
    CHECK(anv_safetensors_read_f32(st, "ln.bias", 1, shape + 1, got) == 0 && !memcmp(got, b, sizeof b),
          "bias round trip bitwise");
    const char *m = anv_safetensors_metadata(st, "note");
    CHECK(m && !strcmp(m, "quote\" ok"), "metadata round trip");
    int64_t wrong[2] = {3, 2};
    CHECK(anv_safetensors_read_f32(st, "transformer.wte.weight", 2, wrong, got) != 0 &&
              strstr(anv_last_error(), "shape [2, 3], expected [3, 2]"),
          "shape mismatch: %s", anv_last_error());
    CHECK(anv_safetensors_read_f32(st, "missing", 1, shape, got) != 0 && strstr(anv_last_error(), path),
          "missing tensor names file: %s", anv_last_error());
    anv_safetensors_close(st);
    printf("safetensors: F32 round trip of 2 tensors + metadata bitwise equal\n");
}

/* Builds a file image from a header string and data bytes. */
static size_t image(unsigned char *buf, const char *header, size_t data_bytes) {
    size_t n = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, 0, data_bytes);
    return 8 + n + data_bytes;
}

static void test_halves(void) {
    unsigned char buf[512];
    size_t n = image(buf,
                     "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[6,10]}}",
                     10);
    size_t d = n - 10;
    uint16_t h[3] = {0x3C00, 0xC000, 0x0001}, bf[2] = {0x3F80, 0xC0A0}; /* 1, -2, 2^-24; 1, -5 */
    memcpy(buf + d, h, 6);
    memcpy(buf + d + 6, bf, 4);
    anv_safetensors_t *st;
    CHECK(anv_safetensors_parse(buf, n, "mem", &st) == 0, "parse: %s", anv_last_error());
    if (!st) return;
    float x[3];
    int64_t s3 = 3, s2 = 2;
    CHECK(anv_safetensors_read_f32(st, "h", 1, &s3, x) == 0 && x[0] == 1 && x[1] == -2 && x[2] == ldexpf(1, -24),
          "F16 -> F32: %g %g %g", x[0], x[1], x[2]);
    CHECK(anv_safetensors_read_f32(st, "b", 1, &s2, x) == 0 && x[0] == 1 && x[1] == -5, "BF16 -> F32: %g %g", x[0],
          x[1]);
    anv_safetensors_close(st);
}

static void test_malformed(void) {
    static const struct {
        const char *header;
        size_t data;
        const char *expect;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "shape holds"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unsupported dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "twice"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "not a string"},
        {"[1,2]", 0, "not a JSON object"},
        {"{\"a\":", 0, "mem"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         "too large"},
    };
    unsigned char buf[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = image(buf, cases[i].header, cases[i].data);
        anv_safetensors_t *st;
        int rc = anv_safetensors_parse(buf, n, "mem", &st);
        CHECK(rc != 0 && strstr(anv_last_error(), "mem") && strstr(anv_last_error(), cases[i].expect),
              "case %zu accepted or wrong message: %s", i, anv_last_error());
        if (rc == 0) anv_safetensors_close(st);
    }
    /* Header length beyond the file, and a file shorter than 8 bytes. */
    size_t n = image(buf, "{}", 0);
    buf[0] = 200;
    anv_safetensors_t *st;
    CHECK(anv_safetensors_parse(buf, n, "mem", &st) != 0 && strstr(anv_last_error(), "exceeds the file size"),
          "header length vs size: %s", anv_last_error());
    CHECK(anv_safetensors_parse(buf, 5, "mem", &st) != 0 && strstr(anv_last_error(), "5 bytes"), "short: %s",
          anv_last_error());
    /* A truncated file on disk names the path. */
    float a[64] = {0};
    anv_st_write_t t = {"w", 1, {64}, a};
    anv_safetensors_write_f32(path, &t, 1, NULL, 0);
    CHECK(truncate(path, 100) == 0, "truncate");
    CHECK(anv_safetensors_open(path, &st) != 0 && strstr(anv_last_error(), path), "truncated file: %s",
          anv_last_error());
    printf("safetensors: %zu malformed headers + truncation rejected with messages naming the file\n",
           sizeof cases / sizeof cases[0]);
}

static void test_disk_full(void) {
    float a[256];
    for (int i = 0; i < 256; i++) a[i] = (float)i;
    anv_st_write_t t = {"w", 1, {256}, a};
    CHECK(anv_safetensors_write_f32(path, &t, 1, NULL, 0) == 0, "write");
    setenv("ANVIL_WRITE_LIMIT", "500", 1);
    a[0] = 42;
    CHECK(anv_safetensors_write_f32(path, &t, 1, NULL, 0) != 0 && strstr(anv_last_error(), "No space"),
          "disk full fails: %s", anv_last_error());
    unsetenv("ANVIL_WRITE_LIMIT");
    anv_safetensors_t *st;
    float got[256];
    int64_t s = 256;
    CHECK(anv_safetensors_open(path, &st) == 0 && anv_safetensors_read_f32(st, "w", 1, &s, got) == 0 && got[0] == 0 &&
              got[255] == 255,
          "old file intact after a failed write");
    anv_safetensors_close(st);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/anvil_test_st_%d.safetensors", (int)getpid());
    test_roundtrip();
    test_halves();
    test_malformed();
    test_disk_full();
    unlink(path);
    return check_done("test_safetensors");
}
