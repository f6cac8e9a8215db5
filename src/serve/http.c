/* The HTTP side of `anvil serve` on libmicrohttpd, one thread per connection: routing, authentication,
 * body limits, JSON responses and server-sent event streams fed by the worker slots (pool.c).
 *
 * Connections are accepted here, not by MHD, so that the server decides who gets in: over the total
 * or per-address limit a client gets a 503 with Retry-After (sent, then the socket lingers briefly
 * so that the client reads it instead of a reset). Every request must arrive whole (headers and body)
 * within request_timeout_s of its start, however slowly its bytes trickle; a watchdog shuts the
 * sockets of those that do not. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "serve/serve_internal.h"

#ifdef ANVIL_HAVE_MICROHTTPD

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* An accepted connection, from its acceptance until MHD closes it. */
typedef struct {
    int used, fd;
    struct sockaddr_storage addr;
    double since;  /* start of the request being received: acceptance or the end of the previous one */
    int answering; /* the request arrived whole and is being answered: no deadline */
    int expired;   /* shut down by the watchdog */
} tracked_conn_t;

/* A refused connection whose 503 is on its way: kept open (reading and dropping) until the client
 * closes it or `until`. */
typedef struct {
    int fd;
    double until;
} lingering_t;

enum { MAX_LINGERING = 256 };

typedef struct {
    const anv_serve_opts_t *o;
    anv_srv_pool_t pool;
    anv_srv_limits_t lim;
    long long created;
    atomic_int in_flight; /* requests between their first byte and their completion */
    atomic_int draining;
    struct MHD_Daemon *daemon;
    int listen_fd;
    pthread_t acceptor;
    atomic_int stop_accepting;
    pthread_mutex_t conn_mu; /* guards conns */
    tracked_conn_t *conns;   /* o->max_connections of them */
    lingering_t lingering[MAX_LINGERING];
    int n_lingering; /* the acceptor's own */
} server_t;

enum { PHASE_START, PHASE_BODY, PHASE_END };

/* One request on a connection (MHD's per-request context). */
typedef struct {
    server_t *srv;
    struct MHD_Connection *conn;
    tracked_conn_t *tracked; /* NULL if MHD did not report the connection */
    int chat;
    anv_buf_t body;
    size_t received;
    int too_big;
    anv_srv_request_t req;
    int have_req;
    anv_srv_job_t job;
    int have_job; /* submitted to the pool */
    anv_srv_meta_t meta;
    double t0;
    /* streaming */
    int phase;
    anv_buf_t out, text; /* SSE bytes to send (from out_pos), text taken from the job */
    size_t out_pos;
} request_t;

int anv_serve_available(void) { return 1; }

/* ---- responses ---- */

static enum MHD_Result send_body(struct MHD_Connection *c, int status, const char *type, anv_buf_t *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body->len, body->data ? body->data : "", MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 405) MHD_add_response_header(r, "Allow", "GET, POST");
    if (status >= 500 || status == 413) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, anv_buf_t *body) {
    enum MHD_Result rc = send_body(c, status, "application/json", body);
    anv_buf_free(body);
    return rc;
}

static enum MHD_Result send_error(request_t *x, const anv_srv_error_t *err) {
    anv_buf_t b = {0};
    if (anv_srv_error_json(&b, err) != 0) {
        anv_buf_free(&b);
        return MHD_NO;
    }
    anv_log(ANV_LOG_INFO, "serve: %d %s", err->status, err->message);
    return send_json(x->conn, err->status, &b);
}

static enum MHD_Result fail(request_t *x, int status, const char *type, const char *code, const char *fmt, ...)
    ANV_PRINTF(5, 6);
static enum MHD_Result fail(request_t *x, int status, const char *type, const char *code, const char *fmt, ...) {
    anv_srv_error_t err;
    anv_srv_fail(&err, status, type, code, NULL, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return send_error(x, &err);
}

/* ---- waiting for the worker ---- */

/* The peer closed its side or the socket failed. */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {ci->connect_fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* With the pool's lock held: waits until the job is done or (want_text) has text, checking every
 * 100 ms whether the client went away, in which case the job is cancelled. -1 when the client left. */
static int wait_job(request_t *x, int want_text) {
    anv_srv_pool_t *p = &x->srv->pool;
    anv_srv_job_t *j = &x->job;
    int gone = 0;
    while (!j->done && !(want_text && j->text.len)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&j->cond, &p->mu, &ts);
        if (!gone && !j->done && client_gone(x->conn)) {
            anv_srv_error_t err;
            anv_srv_fail(&err, 499, "invalid_request_error", NULL, NULL, "the client closed the connection");
            anv_srv_pool_cancel_locked(p, j, &err);
            gone = 1;
        }
    }
    return gone ? -1 : 0;
}

static void log_done(request_t *x) {
    anv_log(ANV_LOG_INFO, "serve: %s %s: %d prompt + %d completion tokens, %s, %.3f s", x->meta.id,
            x->chat ? "chat" : "completion", x->job.res.prompt_tokens, x->job.res.completion_tokens,
            anv_srv_finish_name(x->job.res.finish), anv_now() - x->t0);
}

/* ---- streaming: server-sent events ---- */

/* Appends the next events to x->out: the opening chunk, then text as it comes, then the end. */
static int stream_fill(request_t *x) {
    const anv_srv_request_t *req = &x->req;
    if (x->phase == PHASE_START) {
        x->phase = PHASE_BODY;
        if (req->chat) return anv_srv_chunk_sse(&x->out, &x->meta, req, 1, "", 0, NULL);
        if (req->echo && req->prompt_text.len)
            return anv_srv_chunk_sse(&x->out, &x->meta, req, 0, req->prompt_text.data, req->prompt_text.len, NULL);
        return 0;
    }
    anv_srv_pool_t *p = &x->srv->pool;
    anv_srv_job_t *j = &x->job;
    pthread_mutex_lock(&p->mu);
    int gone = wait_job(x, 1);
    x->text.len = 0;
    int rc = anv_buf_append(&x->text, j->text.data, j->text.len);
    j->text.len = 0;
    int done = j->done;
    pthread_mutex_unlock(&p->mu);
    if (gone || rc != 0) return -1;
    if (x->text.len) rc |= anv_srv_chunk_sse(&x->out, &x->meta, req, 0, x->text.data, x->text.len, NULL);
    if (!done) return rc;
    if (j->failed) {
        rc |= anv_buf_puts(&x->out, "data: ");
        rc |= anv_srv_error_json(&x->out, &j->error);
        rc |= anv_buf_puts(&x->out, "\n\n");
    } else {
        rc |= anv_srv_chunk_sse(&x->out, &x->meta, req, 0, "", 0, anv_srv_finish_name(j->res.finish));
        if (req->include_usage) rc |= anv_srv_usage_sse(&x->out, &x->meta, req, &j->res);
        log_done(x);
    }
    rc |= anv_buf_puts(&x->out, "data: [DONE]\n\n");
    x->phase = PHASE_END;
    return rc;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    request_t *x = cls;
    while (x->out_pos == x->out.len) {
        x->out.len = x->out_pos = 0;
        if (x->phase == PHASE_END) return MHD_CONTENT_READER_END_OF_STREAM;
        if (stream_fill(x) != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = x->out.len - x->out_pos < max ? x->out.len - x->out_pos : max;
    memcpy(buf, x->out.data + x->out_pos, n);
    x->out_pos += n;
    return (ssize_t)n;
}

/* ---- the generation endpoints ---- */

static enum MHD_Result generate(request_t *x) {
    server_t *s = x->srv;
    anv_srv_error_t err;
    x->have_req = 1;
    if (anv_srv_parse(x->body.data ? x->body.data : "", x->body.len, x->chat, &s->lim, &x->req, &err) != 0)
        return send_error(x, &err);
    if (anv_srv_job_init(&x->job, &x->req) != 0) return fail(x, 500, "server_error", NULL, "%s", anv_last_error());
    anv_srv_meta_init(&x->meta, x->chat, s->o->model_name);
    anv_srv_pool_submit(&s->pool, &x->job);
    x->have_job = 1;
    if (x->req.stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, x, NULL);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        enum MHD_Result rc = MHD_queue_response(x->conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return rc;
    }
    anv_srv_pool_t *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    int gone = wait_job(x, 0);
    pthread_mutex_unlock(&p->mu);
    if (gone) return MHD_NO; /* nobody to answer */
    if (x->job.failed) return send_error(x, &x->job.error);
    anv_buf_t b = {0};
    if (anv_srv_response_json(&b, &x->meta, &x->req, x->job.text.data ? x->job.text.data : "", x->job.text.len,
                              &x->job.res, &x->job.logprobs, s->lim.tok) != 0) {
        anv_buf_free(&b);
        return fail(x, 500, "server_error", NULL, "%s", anv_last_error());
    }
    log_done(x);
    return send_json(x->conn, MHD_HTTP_OK, &b);
}

/* ---- routing ---- */

/* "Authorization: Bearer KEY", compared in constant time. */
static int authorized(server_t *s, struct MHD_Connection *c) {
    const char *key = s->o->api_key;
    if (!key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    return anv_secret_equal(h + 7, key);
}

/* First call of a request: everything decided from the request line and headers. Returns MHD_YES
 * with nothing queued when the body is to be read. */
static enum MHD_Result route(request_t *x, const char *url, const char *method) {
    server_t *s = x->srv;
    struct MHD_Connection *c = x->conn;
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (atomic_load(&s->draining)) return fail(x, 503, "server_error", NULL, "the server is shutting down");
    if (!authorized(s, c))
        return fail(x, 401, "invalid_request_error", "invalid_api_key",
                    "missing or incorrect API key: send 'Authorization: Bearer <key>'");
    anv_buf_t b = {0};
    if (!strcmp(url, "/health")) {
        if (!get) return fail(x, 405, "invalid_request_error", NULL, "/health takes GET");
        return anv_buf_puts(&b, "{\"status\":\"ok\"}") == 0 ? send_json(c, 200, &b) : MHD_NO;
    }
    if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11)) {
        if (!get) return fail(x, 405, "invalid_request_error", NULL, "/v1/models takes GET");
        int list = url[10] == 0;
        if (!list && strcmp(url + 11, s->o->model_name))
            return fail(x, 404, "invalid_request_error", "model_not_found", "The model '%s' does not exist", url + 11);
        return anv_srv_models_json(&b, s->o->model_name, s->created, list) == 0 ? send_json(c, 200, &b) : MHD_NO;
    }
    int chat = !strcmp(url, "/v1/chat/completions");
    if (!chat && strcmp(url, "/v1/completions"))
        return fail(x, 404, "invalid_request_error", "unknown_url", "Unknown request URL: %s", url);
    if (!post) return fail(x, 405, "invalid_request_error", NULL, "%s takes POST", url);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->o->max_body) x->too_big = 1;
    x->chat = chat;
    return MHD_YES;
}

/* The request has arrived whole: the deadline for receiving it no longer applies. */
static void request_received(request_t *x) {
    if (!x->tracked) return;
    pthread_mutex_lock(&x->srv->conn_mu);
    x->tracked->answering = 1;
    pthread_mutex_unlock(&x->srv->conn_mu);
}

static tracked_conn_t *tracked_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server_t *s = cls;
    request_t *x = *con_cls;
    if (!x) {
        if (!(x = anv_calloc(sizeof *x, "request"))) return MHD_NO;
        x->srv = s;
        x->conn = c;
        x->tracked = tracked_of(c);
        x->t0 = anv_now();
        *con_cls = x;
        atomic_fetch_add(&s->in_flight, 1);
        if (strcmp(method, "POST") != 0) request_received(x); /* no body to wait for */
        enum MHD_Result rc = route(x, url, method);
        if (rc != MHD_YES || !x->too_big) return rc;
        return fail(x, 413, "invalid_request_error", "request_too_large",
                    "the request body is larger than this server's limit of %zu bytes", s->o->max_body);
    }
    /* A response can be queued before the body (headers only) or after all of it: a body that grows
     * past the limit is read and dropped up to 8 times the limit, then the connection is closed. */
    if (*upload_size) {
        x->received += *upload_size;
        if (x->received > s->o->max_body) {
            x->too_big = 1;
            anv_buf_free(&x->body);
        } else if (anv_buf_append(&x->body, upload, *upload_size) != 0) {
            return MHD_NO;
        }
        *upload_size = 0;
        return x->received / 8 > s->o->max_body ? MHD_NO : MHD_YES;
    }
    request_received(x);
    if (x->too_big)
        return fail(x, 413, "invalid_request_error", "request_too_large",
                    "the request body is larger than this server's limit of %zu bytes", s->o->max_body);
    return generate(x);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    server_t *s = cls;
    request_t *x = *con_cls;
    if (!x) return;
    if (x->have_job) { /* the worker must be done with it before it is freed */
        pthread_mutex_lock(&s->pool.mu);
        if (!x->job.done) {
            anv_srv_error_t err;
            anv_srv_fail(&err, 499, "invalid_request_error", NULL, NULL, "the connection ended");
            anv_srv_pool_cancel_locked(&s->pool, &x->job, &err);
        }
        while (!x->job.done) pthread_cond_wait(&x->job.cond, &s->pool.mu);
        pthread_mutex_unlock(&s->pool.mu);
        if (x->job.failed)
            anv_log(ANV_LOG_INFO, "serve: %s cancelled after %d tokens: %s", x->meta.id, x->job.res.completion_tokens,
                    x->job.error.message);
        anv_srv_job_free(&x->job);
    }
    if (x->have_req) anv_srv_request_free(&x->req);
    anv_buf_free(&x->body);
    anv_buf_free(&x->out);
    anv_buf_free(&x->text);
    if (x->tracked) { /* a next request on this connection starts its own deadline */
        pthread_mutex_lock(&s->conn_mu);
        x->tracked->answering = 0;
        x->tracked->since = anv_now();
        pthread_mutex_unlock(&s->conn_mu);
    }
    anv_free(x);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* Links MHD's connection to the record the acceptor made for its socket, and frees the record when
 * MHD is done with the socket (MHD reports the close before it closes the descriptor). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    server_t *s = cls;
    pthread_mutex_lock(&s->conn_mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        for (int i = 0; ci && i < s->o->max_connections; i++)
            if (s->conns[i].used && s->conns[i].fd == ci->connect_fd) *socket_context = &s->conns[i];
    } else if (*socket_context) {
        ((tracked_conn_t *)*socket_context)->used = 0;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&s->conn_mu);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    anv_log(ANV_LOG_DEBUG, "serve: http: %s", line);
}

/* ---- accepting connections ---- */

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
    if (a->ss_family != b->ss_family) return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                   sizeof(struct in6_addr));
}

/* Records the new connection, or says why there is no room for it (NULL: there is). */
static const char *admit(server_t *s, int fd, const struct sockaddr_storage *addr) {
    int free_slot = -1, same = 0;
    pthread_mutex_lock(&s->conn_mu);
    for (int i = 0; i < s->o->max_connections; i++) {
        if (!s->conns[i].used) {
            if (free_slot < 0) free_slot = i;
        } else if (same_address(&s->conns[i].addr, addr)) {
            same++;
        }
    }
    const char *why = free_slot < 0                   ? "the server has no free connection"
                      : same >= s->o->max_per_address ? "too many connections from your address"
                                                      : NULL;
    if (!why) s->conns[free_slot] = (tracked_conn_t){1, fd, *addr, anv_now(), 0, 0};
    pthread_mutex_unlock(&s->conn_mu);
    return why;
}

static void forget(server_t *s, int fd) {
    pthread_mutex_lock(&s->conn_mu);
    for (int i = 0; i < s->o->max_connections; i++)
        if (s->conns[i].used && s->conns[i].fd == fd) s->conns[i].used = 0;
    pthread_mutex_unlock(&s->conn_mu);
}

/* Answers 503 on a connection MHD never sees, then lets it linger so the answer is read. */
static void refuse(server_t *s, int fd, const char *why) {
    anv_srv_error_t err;
    anv_buf_t body = {0}, msg = {0};
    anv_srv_fail(&err, 503, "server_error", NULL, NULL, "%s; retry in a moment", why);
    int rc = anv_srv_error_json(&body, &err);
    rc |= anv_buf_printf(&msg,
                         "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         body.len);
    rc |= anv_buf_append(&msg, body.data, body.len);
    if (rc == 0 && send(fd, msg.data, msg.len, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) shutdown(fd, SHUT_WR);
    anv_buf_free(&body);
    anv_buf_free(&msg);
    anv_log(ANV_LOG_DEBUG, "serve: 503 %s", why);
    if (s->n_lingering == MAX_LINGERING) {
        close(fd);
        return;
    }
    s->lingering[s->n_lingering++] = (lingering_t){fd, anv_now() + 1.0};
}

/* Reads and drops what refused clients still send; closes them when they close or their time is up. */
static void drain_lingering(server_t *s) {
    double now = anv_now();
    for (int i = 0; i < s->n_lingering;) {
        char scratch[4096];
        ssize_t n;
        while ((n = recv(s->lingering[i].fd, scratch, sizeof scratch, MSG_DONTWAIT)) > 0) {
        }
        int done = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || now > s->lingering[i].until;
        if (done) {
            close(s->lingering[i].fd);
            s->lingering[i] = s->lingering[--s->n_lingering];
        } else {
            i++;
        }
    }
}

/* Shuts the sockets of requests that have not arrived whole in time; MHD's connection thread then
 * sees the end of the stream and closes the connection. */
static void enforce_deadlines(server_t *s) {
    double now = anv_now(), limit = s->o->request_timeout_s;
    pthread_mutex_lock(&s->conn_mu);
    for (int i = 0; i < s->o->max_connections; i++) {
        tracked_conn_t *t = &s->conns[i];
        if (t->used && !t->answering && !t->expired && now - t->since > limit) {
            t->expired = 1;
            shutdown(t->fd, SHUT_RDWR);
            anv_log(ANV_LOG_DEBUG, "serve: closed a connection whose request took over %g s to arrive", limit);
        }
    }
    pthread_mutex_unlock(&s->conn_mu);
}

static void accept_ready(server_t *s) {
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC);
        if (fd < 0) { /* EAGAIN: no more for now; out of descriptors: retried after a pause */
            if (errno == EMFILE || errno == ENFILE) nanosleep(&(struct timespec){0, 50000000}, NULL);
            return;
        }
        const char *why = admit(s, fd, &addr);
        if (why) {
            refuse(s, fd, why);
        } else if (MHD_add_connection(s->daemon, fd, (struct sockaddr *)&addr, len) != MHD_YES) {
            forget(s, fd); /* MHD closed the socket */
        }
    }
}

static void *acceptor_main(void *arg) {
    server_t *s = arg;
    while (!atomic_load(&s->stop_accepting)) {
        struct pollfd p[1 + MAX_LINGERING];
        p[0] = (struct pollfd){s->listen_fd, POLLIN, 0};
        for (int i = 0; i < s->n_lingering; i++) p[1 + i] = (struct pollfd){s->lingering[i].fd, POLLIN, 0};
        if (poll(p, (nfds_t)(1 + s->n_lingering), 100) > 0 && (p[0].revents & POLLIN)) accept_ready(s);
        drain_lingering(s);
        enforce_deadlines(s);
    }
    for (int i = 0; i < s->n_lingering; i++) close(s->lingering[i].fd);
    s->n_lingering = 0;
    return NULL;
}

/* ---- the server ---- */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int open_listener(server_t *s, int *ipv6) {
    const anv_serve_opts_t *o = s->o;
    struct sockaddr_storage addr;
    socklen_t len;
    const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    memset(&addr, 0, sizeof addr);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)o->port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)o->port);
        len = sizeof *v6;
    } else {
        return anv_error("serve: --host '%s' is not an IPv4 or IPv6 address", o->host);
    }
    *ipv6 = addr.ss_family == AF_INET6;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), on = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 256) != 0) {
        if (fd >= 0) close(fd);
        return anv_error("serve: cannot listen on %s port %d (address in use or not available here)", o->host, o->port);
    }
    s->listen_fd = fd;
    return 0;
}

static int bound_port(int fd) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return -1;
    return ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)&addr)->sin_port);
}

static int start_daemon(server_t *s) {
    const anv_serve_opts_t *o = s->o;
    int ipv6 = 0;
    if (open_listener(s, &ipv6) != 0) return -1;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | (ipv6 ? MHD_USE_IPv6 : 0);
    /* MHD's own limit has room above ours: a record is freed a moment before MHD forgets the socket. */
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)o->max_connections + 16, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                 /* 4 MiB of (virtual) stack: glibc places each thread's thread-local storage, which
                                  * includes the kernels' GEMM packing buffer, inside that mapping. */
                                 MHD_OPTION_THREAD_STACK_SIZE, (size_t)4 << 20, MHD_OPTION_END);
    if (!s->daemon) {
        close(s->listen_fd);
        return anv_error("serve: cannot start the HTTP server");
    }
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
        MHD_stop_daemon(s->daemon);
        close(s->listen_fd);
        return anv_error("serve: cannot start the thread that accepts connections");
    }
    return 0;
}

static void stop_accepting(server_t *s) {
    atomic_store(&s->stop_accepting, 1);
    pthread_join(s->acceptor, NULL);
    close(s->listen_fd);
}

int anv_serve(const anv_serve_opts_t *o) {
    if (!o) return anv_error("serve: no options");
    if (o->slots < 1 || o->threads_per_slot < 1 || o->max_connections < 1 || o->max_per_address < 1 ||
        o->timeout_s < 1 || !(o->request_timeout_s > 0) || o->max_body < 1 || o->max_tokens_limit < 0 || o->port < 0 ||
        o->port > 65535)
        return anv_error("serve: invalid options (slots, threads, connections, timeouts, body limit, port)");
    server_t *s = anv_calloc(sizeof *s, "server");
    if (!s) return -1;
    s->conns = anv_calloc((size_t)o->max_connections * sizeof *s->conns, "connection table");
    if (!s->conns) {
        anv_free(s);
        return -1;
    }
    pthread_mutex_init(&s->conn_mu, NULL);
    s->o = o;
    s->created = (long long)time(NULL);
    s->lim = (anv_srv_limits_t){o->tok, anv_model_config(o->model)->block_size, o->max_tokens_limit, o->chat};
    int rc = anv_srv_pool_start(&s->pool, o->model, o->tok, o->slots, o->threads_per_slot);
    if (rc == 0 && (rc = start_daemon(s)) != 0) anv_srv_pool_stop(&s->pool);
    if (rc != 0) {
        pthread_mutex_destroy(&s->conn_mu);
        anv_free(s->conns);
        anv_free(s);
        return -1;
    }
    if (o->on_ready) o->on_ready(bound_port(s->listen_fd), o->ctx);
    while (!*o->stop) sleep_ms(50);

    /* Shutdown: stop accepting, let the requests in flight finish, then cancel what remains. */
    atomic_store(&s->draining, 1);
    anv_log(ANV_LOG_INFO, "serve: stopping: %d requests in flight, waiting up to %g s for them",
            anv_srv_pool_busy(&s->pool), o->drain_s);
    stop_accepting(s);
    double deadline = anv_now() + o->drain_s;
    while (anv_srv_pool_busy(&s->pool) && anv_now() < deadline) sleep_ms(20);
    anv_srv_error_t err;
    anv_srv_fail(&err, 503, "server_error", NULL, NULL, "the server is shutting down");
    anv_srv_pool_cancel_all(&s->pool, &err);
    for (deadline = anv_now() + 2; atomic_load(&s->in_flight) && anv_now() < deadline;) sleep_ms(20);
    MHD_stop_daemon(s->daemon);
    anv_srv_pool_stop(&s->pool);
    pthread_mutex_destroy(&s->conn_mu);
    anv_free(s->conns);
    anv_free(s);
    return 0;
}

#else

int anv_serve_available(void) { return 0; }

int anv_serve(const anv_serve_opts_t *o) {
    (void)o;
    return anv_error("serve: anvil was built without an HTTP library (install libmicrohttpd-dev and rebuild)");
}

#endif
