/* anvil serve: options, signals and the startup line around anv_serve(). */
#include "cli.h"

#include "anvil/generate.h"
#include "anvil/kernels.h"
#include "anvil/serve.h"
#include "anvil/trainer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "anvil serve --run RUN [options]\n"
    "Serves the run over an OpenAI-compatible HTTP API: POST /v1/completions, POST /v1/chat/completions\n"
    "(\"stream\": true for server-sent events), GET /v1/models, GET /health. Listens on 127.0.0.1 unless\n"
    "--host says otherwise; with --api-key (or $ANVIL_API_KEY) every request needs 'Authorization: Bearer KEY'.\n"
    "Chat requests use the template \"System: ...\\nUser: ...\\nAssistant:\" and stop at \"\\nUser:\".\n"
    "SIGINT/SIGTERM stop accepting, let requests in flight finish (up to --drain seconds) and exit 0;\n"
    "a second signal stops at once.";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

typedef struct {
    const char *host, *name;
    int slots, threads;
} ready_t;

static void on_ready(int port, void *ctx) {
    const ready_t *r = ctx;
    const char *open = strchr(r->host, ':') ? "[" : "", *close = strchr(r->host, ':') ? "]" : "";
    fprintf(stderr, "anvil serve: listening on http://%s%s%s:%d/v1 (model %s on %s, %d slots x %d threads)\n", open,
            r->host, close, port, r->name, anv_device(), r->slots, r->threads);
    fflush(stderr);
}

/* The run directory's last path component: "runs/tiny/" -> "tiny". */
static void run_name(const char *run, char *out, size_t size) {
    size_t n = strlen(run);
    while (n > 1 && run[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && run[start - 1] != '/') start--;
    snprintf(out, size, "%.*s", (int)(n - start), run + start);
}

/* Each slot owns a generator (a KV cache for the whole context) and its threads' stacks and GEMM
 * buffers (about 4 MiB each): together they must fit in half of this machine's memory. */
static int check_memory(const anv_model_t *m, int slots) {
    double per_slot = (double)anv_generator_bytes(m) + (double)(4 << 20);
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && per_slot * slots > ram / 2)
        return anv_error("--max-concurrency %d: %d slots of %.0f MiB need %.1f GiB, more than half of this machine's "
                         "%.1f GiB (at most %d)",
                         slots, slots, per_slot / 1048576, per_slot * slots / 1073741824, ram / 1073741824,
                         (int)(ram / 2 / per_slot));
    return 0;
}

int cmd_serve(int argc, char **argv) {
    const char *run = NULL, *host = "127.0.0.1", *api_key = NULL, *name = NULL, *device = NULL, *chat_name = NULL,
               *weights = NULL;
    int port = 8080, slots = 0, max_tokens_limit = 2048, threads = 0, timeout = 30, max_connections = 64;
    int max_per_address = 32;
    long long max_body = 1 << 20;
    double drain = 30, request_timeout = 10;
    opt_t opts[] = {
        {"--run", OPT_STRING, &run, "run directory (from anvil train or import)"},
        {"--host", OPT_STRING, &host, "address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)"},
        {"--port", OPT_INT, &port, "TCP port (default 8080; 0 = any free port, printed at startup)"},
        {"--api-key", OPT_STRING, &api_key, "require 'Authorization: Bearer KEY' (default: $ANVIL_API_KEY if set)"},
        {"--max-concurrency", OPT_INT, &slots,
         "requests generated at once, each with its own KV cache (default: cores)"},
        {"--max-tokens-limit", OPT_INT, &max_tokens_limit, "largest max_tokens a request may ask for (default 2048)"},
        {"--threads", OPT_INT, &threads, "compute threads in all, shared out among the slots (default: all cores)"},
        {"--timeout", OPT_INT, &timeout, "seconds an idle or slow connection is kept (default 30)"},
        {"--request-timeout", OPT_DOUBLE, &request_timeout,
         "seconds a request (headers and body) may take to arrive (default 10)"},
        {"--max-connections", OPT_INT, &max_connections, "open connections at most, then 503 (default 64)"},
        {"--max-per-address", OPT_INT, &max_per_address, "open connections from one client address (default 32)"},
        {"--max-body", OPT_LONG, &max_body, "largest request body in bytes (default 1048576; larger: 413)"},
        {"--drain", OPT_DOUBLE, &drain, "seconds to finish requests in flight on SIGTERM (default 30)"},
        {"--model-name", OPT_STRING, &name, "model id in responses (default: the run directory's name)"},
        {"--device", OPT_STRING, &device, "cpu (default) or cuda (the slots then take turns on the GPU)"},
        {"--weights", OPT_STRING, &weights, "f32 (default) or q8: int8 matrices, about 4x less to read per token"},
        {"--chat-template", OPT_STRING, &chat_name,
         "chat messages as chatml, llama3, plain, a Jinja template file or text (default: the run's from --sft, else "
         "text: User:/Assistant:)"},
    };
    const opt_range_t ranges[] = {
        {"--port", 0, 65535},
        {"--max-concurrency", 0, 4096},
        {"--max-tokens-limit", 1, 1 << 24},
        {"--threads", 0, cli_max_threads()},
        {"--timeout", 1, 86400},
        {"--request-timeout", 1, 86400},
        {"--max-connections", 1, 65536},
        {"--max-per-address", 1, 65536},
        {"--max-body", 1, 1 << 30},
        {"--drain", 0, 86400},
    };
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!run) return anv_error("--run RUN is required"), cli_fail();
    if (!api_key) api_key = getenv("ANVIL_API_KEY");
    if (api_key && !*api_key) return anv_error("--api-key must not be empty"), cli_fail();
    if (port < 0 || port > 65535) return anv_error("--port must be in 0..65535, got %d", port), cli_fail();
    if (slots > max_connections)
        return anv_error("--max-concurrency %d: more than --max-connections %d could use", slots, max_connections),
               cli_fail();
    if (max_per_address > max_connections) max_per_address = max_connections;
    if (!anv_serve_available()) return anv_serve(NULL), cli_fail();
    if (device && anv_device_set(device) != 0) return cli_fail();

    anv_threads_set(threads);
    int total = anv_threads_count();
    if (slots == 0) slots = total;
    int per_slot = total / slots > 0 ? total / slots : 1;
    anv_model_t *m;
    anv_tokenizer_t *tok;
    if (anv_run_load(run, &m, &tok) != 0) return cli_fail();
    const anv_chat_template_t *chat = NULL;
    if ((chat_name ? strcmp(chat_name, "text") && anv_chat_template_open(chat_name, tok, &chat)
                   : anv_chat_template_of_run(run, tok, &chat)) ||
        cli_weights(m, weights) != 0 || check_memory(m, slots) != 0) {
        anv_chat_template_free(chat);
        anv_model_free(m);
        anv_tokenizer_free(tok);
        return cli_fail();
    }
    char default_name[256];
    run_name(run, default_name, sizeof default_name);
    ready_t ready = {host, name ? name : default_name, slots, per_slot};

    cli_catch_stop_signals(on_signal, 0);
    signal(SIGPIPE, SIG_IGN);
    anv_serve_opts_t o = {.model = m,
                          .tok = tok,
                          .model_name = ready.name,
                          .chat = chat,
                          .host = host,
                          .port = port,
                          .api_key = api_key,
                          .slots = slots,
                          .threads_per_slot = per_slot,
                          .max_tokens_limit = max_tokens_limit,
                          .max_connections = max_connections,
                          .max_per_address = max_per_address,
                          .timeout_s = timeout,
                          .request_timeout_s = request_timeout,
                          .max_body = (size_t)max_body,
                          .drain_s = drain,
                          .stop = &stop_flag,
                          .on_ready = on_ready,
                          .ctx = &ready};
    if (chat)
        fprintf(stderr, "anvil serve: chat messages rendered with the %s template\n", anv_chat_template_name(chat));
    rc = anv_serve(&o);
    if (rc == 0) fprintf(stderr, "anvil serve: stopped\n");
    anv_chat_template_free(chat);
    anv_model_free(m);
    anv_tokenizer_free(tok);
    return rc == 0 ? 0 : cli_fail();
}
