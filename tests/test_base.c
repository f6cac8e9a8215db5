/* Base module: JSON reader, buffers, atomic files, rng, shards. */
#include "anvil/base.h"
#include "anvil/json.h"
#include "anvil/shard.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_json(void) {
    const char *text = "{\"a\": [1, -2.5e3, true, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"n\": {}}";
    anv_json_doc_t *doc;
    CHECK(anv_json_parse(text, strlen(text), "t.json", &doc) == 0, "%s", anv_last_error());
    const anv_json_t *root = anv_json_root(doc);
    const anv_json_t *a = anv_json_get(root, "a");
    CHECK(a && a->type == ANV_JSON_ARRAY && a->len == 4, "array");
    CHECK(a && a->items[1].number == -2500.0, "number %g", a ? a->items[1].number : 0);
    const char *s;
    CHECK(anv_json_get_string(root, "s", "t.json", &s) == 0 && !strcmp(s, "x\xc3\xa9\xf0\x9f\x98\x80\n"),
          "unicode escapes decode to UTF-8");
    long long v;
    CHECK(anv_json_get_int(root, "missing", "t.json", &v) != 0 && strstr(anv_last_error(), "t.json"),
          "missing key names the file: %s", anv_last_error());
    anv_json_free(doc);

    const char *bad[] = {"{", "[1,]", "{\"a\" 1}", "\"abc", "01", "tru", "[1] x", "\"\\x\"", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(anv_json_parse(bad[i], strlen(bad[i]), "bad.json", &doc) != 0, "accepted '%s'", bad[i]);
        CHECK(strstr(anv_last_error(), "bad.json") != NULL, "error names file: %s", anv_last_error());
    }
    char deep[2000];
    memset(deep, '[', sizeof deep);
    CHECK(anv_json_parse(deep, sizeof deep, "deep.json", &doc) != 0, "deep nesting rejected");
}

static void test_buf(void) {
    anv_buf_t b = {0};
    anv_buf_json_string(&b, "a\"\\\n\x01\xff", 6);
    CHECK(!strcmp(b.data, "\"a\\\"\\\\\\n\\u0001\xEF\xBF\xBD\""), "escaped: %s", b.data);
    anv_buf_free(&b);
}

static void test_rng(void) {
    anv_rng_t r1, r2;
    anv_rng_seed(&r1, 42);
    anv_rng_seed(&r2, 42);
    double sum = 0, sum2 = 0;
    int same = 1;
    for (int i = 0; i < 100000; i++) {
        double x = anv_rng_normal(&r1);
        same &= x == anv_rng_normal(&r2);
        sum += x;
        sum2 += x * x;
    }
    double mean = sum / 100000, var = sum2 / 100000 - mean * mean;
    printf("rng: normal mean %.4f var %.4f (100k draws)\n", mean, var);
    CHECK(same, "same seed, same stream");
    CHECK(fabs(mean) < 0.02 && fabs(var - 1) < 0.02, "normal moments");
}

static void test_atomic_and_shards(void) {
    char dir[] = "/tmp/anvil_test_base_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    CHECK(anv_write_file_atomic(path, "old", 3) == 0, "%s", anv_last_error());
    setenv("ANVIL_WRITE_LIMIT", "2", 1);
    CHECK(anv_write_file_atomic(path, "newer", 5) != 0, "write limit hit");
    CHECK(strstr(anv_last_error(), "No space") != NULL, "disk-full message: %s", anv_last_error());
    unsetenv("ANVIL_WRITE_LIMIT");
    char *data;
    size_t len;
    CHECK(anv_read_file(path, &data, &len) == 0 && len == 3 && !memcmp(data, "old", 3), "old file survives");
    anv_free(data);

    snprintf(path, sizeof path, "%s/s.bin", dir);
    anv_shard_writer_t w;
    uint32_t toks[3000];
    for (int i = 0; i < 3000; i++) toks[i] = (uint32_t)(i * 7 % 50257);
    CHECK(anv_shard_writer_open(&w, path, 50257) == 0, "%s", anv_last_error());
    CHECK(anv_shard_writer_append(&w, toks, 3000) == 0, "%s", anv_last_error());
    CHECK(anv_shard_writer_close(&w) == 0, "%s", anv_last_error());
    anv_shard_t s;
    CHECK(anv_shard_open(path, &s) == 0, "%s", anv_last_error());
    int same = s.count == 3000 && s.version == 1;
    for (int i = 0; same && i < 3000; i++) same = anv_shard_token(&s, (size_t)i) == toks[i];
    CHECK(same, "shard round trip (version %d, %zu tokens)", s.version, s.count);
    anv_shard_close(&s);
    CHECK(truncate(path, 1024 + 100) == 0, "truncate");
    CHECK(anv_shard_open(path, &s) != 0 && strstr(anv_last_error(), "truncated"), "truncated: %s", anv_last_error());
    CHECK(anv_write_file_atomic(path, "hello world, this is not a shard", 32) == 0, "write");
    CHECK(anv_shard_open(path, &s) != 0 && strstr(anv_last_error(), "s.bin"), "foreign: %s", anv_last_error());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_alloc_limit(void) {
    setenv("ANVIL_ALLOC_LIMIT", "1000", 1);
    void *p = anv_alloc(5000, "test tensor");
    CHECK(p == NULL && strstr(anv_last_error(), "test tensor needs 5000 bytes"), "%s", anv_last_error());
    unsetenv("ANVIL_ALLOC_LIMIT");
}

static void test_secret_equal(void) {
    CHECK(anv_secret_equal("k3y", "k3y") && anv_secret_equal("", ""), "equal keys");
    CHECK(!anv_secret_equal("k3", "k3y") && !anv_secret_equal("k3yy", "k3y") && !anv_secret_equal("", "k3y") &&
              !anv_secret_equal("k3y", "") && !anv_secret_equal("k3z", "k3y"),
          "a prefix, a longer key, an empty one and one byte off are refused");
}

int main(void) {
    test_secret_equal();
    test_json();
    test_buf();
    test_rng();
    test_atomic_and_shards();
    test_alloc_limit();
    return check_done("test_base");
}
