/* Worker slots: each owns a generator (KV cache + scratch) and takes jobs from one FIFO queue. The
 * model is shared: anv_model_decode only reads the weights, everything it writes lives in the cache. */
#include "serve/serve_internal.h"

#include <string.h>

struct anv_srv_slot {
    anv_srv_pool_t *pool;
    anv_generator_t *gen;
    int threads;
    anv_srv_job_t *job; /* running, guarded by the pool's mutex */
};

int anv_srv_job_init(anv_srv_job_t *j, anv_srv_request_t *req) {
    memset(j, 0, sizeof *j);
    j->req = req;
    j->logprobs = (anv_gen_logprobs_t){.prompt = req->echo, .top = req->logprobs};
    return pthread_cond_init(&j->cond, NULL) == 0 ? 0 : anv_error("serve: cannot create a condition variable");
}

void anv_srv_job_free(anv_srv_job_t *j) {
    pthread_cond_destroy(&j->cond);
    anv_buf_free(&j->text);
    anv_gen_logprobs_free(&j->logprobs);
}

typedef struct {
    anv_srv_pool_t *pool;
    anv_srv_job_t *job;
} sink_t;

/* Generated text goes to the job under the lock; chat replies lose their leading whitespace. */
static int on_text(void *ctx, const char *text, size_t len) {
    sink_t *s = ctx;
    anv_srv_job_t *j = s->job;
    pthread_mutex_lock(&s->pool->mu);
    if (j->req->chat && !j->started) {
        while (len && (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r')) text++, len--;
        j->started = len > 0;
    }
    int rc = len ? anv_buf_append(&j->text, text, len) : 0;
    if (len) pthread_cond_broadcast(&j->cond);
    int cancel = j->cancel;
    pthread_mutex_unlock(&s->pool->mu);
    return rc != 0 ? -1 : cancel;
}

static void *worker(void *arg) {
    struct anv_srv_slot *slot = arg;
    anv_srv_pool_t *p = slot->pool;
    anv_threads_set(slot->threads); /* OpenMP settings are per thread */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->closing) pthread_cond_wait(&p->work, &p->mu);
        if (!p->head) break;
        anv_srv_job_t *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->n_queued--;
        p->n_running++;
        j->queued = 0;
        j->running = 1;
        slot->job = j;
        pthread_mutex_unlock(&p->mu);

        sink_t sink = {p, j};
        anv_gen_result_t res;
        int rc = anv_generate(slot->gen, j->req->prompt.ids, j->req->prompt.len, &j->req->gen, on_text, &sink, &res,
                              j->req->logprobs >= 0 ? &j->logprobs : NULL);

        pthread_mutex_lock(&p->mu);
        if (rc != 0 && !j->failed)
            anv_srv_fail(&j->error, 500, "server_error", NULL, NULL, "generation failed: %s", anv_last_error());
        j->failed |= rc != 0;
        j->res = res;
        j->running = 0;
        j->done = 1;
        slot->job = NULL;
        p->n_running--;
        pthread_cond_broadcast(&j->cond);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int anv_srv_pool_start(anv_srv_pool_t *p, anv_model_t *m, const anv_tokenizer_t *tok, int n_slots,
                       int threads_per_slot) {
    memset(p, 0, sizeof *p);
    if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->work, NULL) != 0)
        return anv_error("serve: cannot create the queue's lock");
    p->threads = anv_calloc((size_t)n_slots * sizeof *p->threads, "serve worker threads");
    p->slots = anv_calloc((size_t)n_slots * sizeof *p->slots, "serve worker slots");
    if (!p->threads || !p->slots) goto fail;
    p->n_slots = n_slots;
    for (int i = 0; i < n_slots; i++) {
        p->slots[i] = (struct anv_srv_slot){p, NULL, threads_per_slot, NULL};
        if (anv_generator_create(m, tok, &p->slots[i].gen) != 0) goto fail;
    }
    for (; p->n_started < n_slots; p->n_started++)
        if (pthread_create(&p->threads[p->n_started], NULL, worker, &p->slots[p->n_started]) != 0) {
            anv_error("serve: cannot start worker thread %d", p->n_started);
            goto fail;
        }
    return 0;
fail:
    anv_srv_pool_stop(p);
    return -1;
}

void anv_srv_pool_stop(anv_srv_pool_t *p) {
    anv_srv_error_t err;
    anv_srv_fail(&err, 503, "server_error", NULL, NULL, "the server is shutting down");
    anv_srv_pool_cancel_all(p, &err);
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    for (int i = 0; p->slots && i < p->n_slots; i++) anv_generator_free(p->slots[i].gen);
    anv_free(p->threads);
    anv_free(p->slots);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
}

void anv_srv_pool_submit(anv_srv_pool_t *p, anv_srv_job_t *j) {
    pthread_mutex_lock(&p->mu);
    j->queued = 1;
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->n_queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void anv_srv_pool_cancel_locked(anv_srv_pool_t *p, anv_srv_job_t *j, const anv_srv_error_t *err) {
    if (j->done) return;
    if (j->running) {
        if (!j->cancel) j->error = *err;
        j->cancel = j->failed = 1;
        return;
    }
    for (anv_srv_job_t **at = &p->head, *prev = NULL; *at; prev = *at, at = &(*at)->next)
        if (*at == j) {
            *at = j->next;
            if (p->tail == j) p->tail = prev;
            p->n_queued--;
            break;
        }
    j->queued = 0;
    j->error = *err;
    j->failed = j->done = 1;
    pthread_cond_broadcast(&j->cond);
}

void anv_srv_pool_cancel_all(anv_srv_pool_t *p, const anv_srv_error_t *err) {
    pthread_mutex_lock(&p->mu);
    while (p->head) anv_srv_pool_cancel_locked(p, p->head, err);
    for (int i = 0; p->slots && i < p->n_slots; i++)
        if (p->slots[i].job) anv_srv_pool_cancel_locked(p, p->slots[i].job, err);
    pthread_mutex_unlock(&p->mu);
}

int anv_srv_pool_busy(anv_srv_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->n_queued + p->n_running;
    pthread_mutex_unlock(&p->mu);
    return n;
}
