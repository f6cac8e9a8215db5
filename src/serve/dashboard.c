/* `anvil dashboard` (see anvil/dashboard.h): the runs under a folder as JSON, read fresh on every
 * request, and the page that draws them. */
#include "anvil/dashboard.h"
#include "anvil/json.h"

#ifdef ANVIL_HAVE_MICROHTTPD

#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_DEPTH 3
#define MAX_RUNS 4096

typedef struct {
    char *names[MAX_RUNS];
    int n;
} run_list_t;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Directories holding config.json under root/rel, up to MAX_DEPTH levels, hidden ones skipped. */
static void find_runs(const char *root, const char *rel, int depth, run_list_t *l) {
    char dir[4200], path[4400];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (*rel && anv_path_exists(path)) {
        if (l->n < MAX_RUNS && (l->names[l->n] = anv_strdup(rel))) l->n++;
        return;
    }
    DIR *d = depth < MAX_DEPTH ? opendir(dir) : NULL;
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(path, sizeof path, "%s/%s", root, sub);
        if (anv_is_dir(path)) find_runs(root, sub, depth + 1, l);
    }
    closedir(d);
}

static void runs_list(const char *root, run_list_t *l) {
    l->n = 0;
    find_runs(root, "", 0, l);
    qsort(l->names, (size_t)l->n, sizeof *l->names, by_name);
}

static void runs_free(run_list_t *l) {
    for (int i = 0; i < l->n; i++) anv_free(l->names[i]);
    l->n = 0;
}

/* A JSON file's text when it parses, else null. */
static int json_file(anv_buf_t *b, const char *path) {
    char *text;
    size_t len;
    anv_json_doc_t *doc;
    int ok = anv_path_exists(path) && anv_read_file(path, &text, &len) == 0;
    if (ok && anv_json_parse(text, len, path, &doc) == 0) {
        anv_json_free(doc);
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
        int rc = anv_buf_append(b, text, len);
        anv_free(text);
        return rc;
    }
    if (ok) anv_free(text);
    anv_error_clear();
    return anv_buf_puts(b, "null");
}

static int api_runs(const char *root, anv_buf_t *b) {
    run_list_t *l = anv_calloc(sizeof *l, "run list");
    if (!l) return -1;
    runs_list(root, l);
    int rc = anv_buf_puts(b, "{\"runs\": [");
    for (int i = 0; i < l->n && rc == 0; i++) {
        char path[4400], dir[4300];
        snprintf(dir, sizeof dir, "%s/%s", root, l->names[i]);
        rc |= anv_buf_puts(b, i ? ",\n{\"name\": " : "\n{\"name\": ") |
              anv_buf_json_string(b, l->names[i], strlen(l->names[i])) | anv_buf_puts(b, ", \"config\": ");
        snprintf(path, sizeof path, "%s/config.json", dir);
        rc |= json_file(b, path) | anv_buf_puts(b, ", \"state\": ");
        snprintf(path, sizeof path, "%s/state.json", dir);
        rc |= json_file(b, path) | anv_buf_puts(b, ", \"eval\": [");
        snprintf(path, sizeof path, "%s/eval", dir);
        DIR *d = opendir(path);
        int k = 0;
        for (struct dirent *e; d && (e = readdir(d));) {
            size_t n = strlen(e->d_name);
            if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
            char file[4700];
            snprintf(file, sizeof file, "%s/%s", path, e->d_name);
            rc |= anv_buf_puts(b, k++ ? ", " : "") | json_file(b, file);
        }
        if (d) closedir(d);
        rc |= anv_buf_puts(b, "]}");
    }
    rc |= anv_buf_puts(b, "\n]}\n");
    runs_free(l);
    anv_free(l);
    return rc;
}

/* The whole lines of NAME/log.jsonl from byte `from` (only a listed run is read). */
static int api_log(const char *root, const char *name, long long from, anv_buf_t *b, int *status) {
    run_list_t *l = anv_calloc(sizeof *l, "run list");
    if (!l) return -1;
    runs_list(root, l);
    int known = 0;
    for (int i = 0; i < l->n; i++) known |= name && strcmp(l->names[i], name) == 0;
    runs_free(l);
    anv_free(l);
    if (!known) {
        *status = MHD_HTTP_NOT_FOUND;
        return anv_buf_puts(b, "{\"error\": \"no such run\"}\n");
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s/log.jsonl", root, name);
    /* only the bytes from `from` on are read: a long run's log is not read again at every poll */
    FILE *f = fopen(path, "rb");
    struct stat st;
    size_t size = f && fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : 0;
    int reset = from < 0 || (size_t)from > size;
    size_t start = reset ? 0 : (size_t)from, len = 0;
    char *text = size > start ? anv_alloc(size - start, "log") : NULL;
    if (text && fseek(f, (long)start, SEEK_SET) == 0) len = fread(text, 1, size - start, f);
    if (f) fclose(f);
    int rc = 0, k = 0;
    size_t at = 0;
    anv_buf_t lines = {0};
    while (rc == 0 && at < len) {
        char *nl = memchr(text + at, '\n', len - at);
        if (!nl) break; /* a line still being written */
        size_t n = (size_t)(nl - (text + at));
        anv_json_doc_t *doc;
        if (n && anv_json_parse(text + at, n, path, &doc) == 0) {
            anv_json_free(doc);
            rc = anv_buf_puts(&lines, k++ ? ",\n" : "\n") | anv_buf_append(&lines, text + at, n);
        }
        anv_error_clear();
        at += n + 1;
    }
    rc |= anv_buf_printf(b, "{\"next\": %zu, \"reset\": %s, \"lines\": [", start + at, reset ? "true" : "false");
    if (lines.len) rc |= anv_buf_append(b, lines.data, lines.len);
    rc |= anv_buf_puts(b, "]}\n");
    anv_buf_free(&lines);
    anv_free(text);
    return rc;
}

typedef struct {
    const anv_dashboard_opts_t *o;
} server_t;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const void *data,
                             size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static int authorized(const server_t *s, struct MHD_Connection *c) {
    const char *key = s->o->api_key;
    if (!key || !*key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
    return (h && strncmp(h, "Bearer ", 7) == 0 && anv_secret_equal(h + 7, key)) || (q && anv_secret_equal(q, key));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **state) {
    (void)version, (void)data, (void)size, (void)state;
    server_t *s = cls;
    static const char json[] = "application/json";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, json, "{\"error\": \"GET only\"}\n", 21);
    if (!authorized(s, c)) return reply(c, MHD_HTTP_UNAUTHORIZED, json, "{\"error\": \"api key required\"}\n", 30);
    if (strcmp(url, "/") == 0)
        return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", anv_dashboard_page, strlen(anv_dashboard_page));
    anv_buf_t b = {0};
    int status = MHD_HTTP_OK, rc;
    if (strcmp(url, "/api/runs") == 0) {
        rc = api_runs(s->o->runs_dir, &b);
    } else if (strcmp(url, "/api/log") == 0) {
        const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
        rc = api_log(s->o->runs_dir, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "run"),
                     from ? atoll(from) : 0, &b, &status);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        rc = anv_buf_puts(&b, "{\"error\": \"not found\"}\n");
    }
    enum MHD_Result r = rc == 0 ? reply(c, (unsigned)status, json, b.data, b.len)
                                : reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, json, "{\"error\": \"server\"}\n", 20);
    anv_buf_free(&b);
    return r;
}

int anv_dashboard(const anv_dashboard_opts_t *o) {
    if (!anv_is_dir(o->runs_dir)) return anv_error("%s: not a folder of runs", o->runs_dir);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1) return anv_error("--host %s: not an IPv4 address", o->host);
    server_t s = {o};
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
                                            &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!d) return anv_error("dashboard: cannot listen on %s:%d", o->host, o->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (o->on_ready) o->on_ready(info ? info->port : o->port, o->ctx);
    while (!*o->stop) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    return 0;
}

#else

int anv_dashboard(const anv_dashboard_opts_t *o) {
    (void)o;
    return anv_error("dashboard: anvil was built without an HTTP library (install libmicrohttpd-dev and rebuild)");
}

#endif
