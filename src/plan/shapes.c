/* Concrete model shapes of about a given parameter count. For each width, the depth that comes nearest
 * the count (parameters grow linearly with depth); kept when the width-to-depth ratio lies where trained
 * models lie (GPT-2 124M: 768 / 12 = 64, SmolLM2-135M: 576 / 30 = 19, Llama 3.2 1B: 2048 / 16 = 128),
 * or any ratio when no shape has those. */
#include "anvil/plan.h"

#include <math.h>

#define MAX_WIDTH 16384
#define MAX_DEPTH 1024
#define MIN_ASPECT 16.0 /* n_embd / n_layer */
#define MAX_ASPECT 160.0
#define USUAL_ASPECT 64.0 /* preferred among shapes of about the same size */

static int next_width(int w) { return w < 256 ? w + 32 : w + 64; }

static anv_config_t shape(anv_arch_t arch, int n_layer, int n_embd, int vocab_size, int seq) {
    int head_size = n_embd >= 128 && n_embd % 64 == 0 ? 64 : 32;
    int n_head = n_embd / head_size;
    if (arch == ANV_ARCH_GPT2) return anv_config_gpt2(n_layer, n_head, n_embd, vocab_size, seq);
    int n_kv_head = n_head;
    const int groups[3] = {3, 4, 2}; /* query heads per key/value head */
    for (int i = 0; i < 3 && n_kv_head == n_head; i++)
        if (n_head % groups[i] == 0) n_kv_head = n_head / groups[i];
    int n_ff = (8 * n_embd / 3 + 63) / 64 * 64;
    return anv_config_llama(n_layer, n_head, n_kv_head, n_embd, n_ff, vocab_size, seq);
}

anv_config_t anv_plan_smallest(anv_arch_t arch, int vocab_size, int seq) { return shape(arch, 1, 32, vocab_size, seq); }

/* How far a shape is from the target and from the usual proportions (lower is better). */
static double shape_score(const anv_config_t *c, double params) {
    double size = fabs(log((double)anv_config_num_params(c) / params));
    return size + 0.25 * fabs(log((double)c->n_embd / c->n_layer / USUAL_ASPECT));
}

static int shapes_of(anv_arch_t arch, double params, int vocab_size, int seq, int usual_only, anv_config_t *out,
                     int max) {
    int count = 0;
    anv_config_t nearest_usual = {0}; /* of any size */
    double nearest_gap = INFINITY;
    /* Small models rarely meet the usual proportions: unless usual_only, the second pass drops them. */
    for (int strict = 1; strict >= !!usual_only && count == 0; strict--)
        for (int w = 32; w <= MAX_WIDTH; w = next_width(w)) {
            anv_config_t one = shape(arch, 1, w, vocab_size, seq), two = shape(arch, 2, w, vocab_size, seq);
            double per_layer = (double)anv_config_num_params(&two) - (double)anv_config_num_params(&one);
            double rest = (double)anv_config_num_params(&one) - per_layer;
            double layers = round((params - rest) / per_layer);
            if (layers < 1 || layers > MAX_DEPTH) continue;
            int depth = (int)layers;
            if (strict && ((double)w / depth < MIN_ASPECT || (double)w / depth > MAX_ASPECT)) continue;
            anv_config_t c = shape(arch, depth, w, vocab_size, seq);
            double ratio = (double)anv_config_num_params(&c) / params;
            if (strict && fabs(log(ratio)) < nearest_gap) nearest_usual = c, nearest_gap = fabs(log(ratio));
            if (ratio > ANV_SHAPE_SLACK || ratio < 1.0 / ANV_SHAPE_SLACK) continue;
            /* Insert by score, keeping the best max. */
            double score = shape_score(&c, params);
            int at = count < max ? count : max;
            while (at > 0 && shape_score(&out[at - 1], params) > score) {
                if (at < max) out[at] = out[at - 1];
                at--;
            }
            if (at < max) {
                out[at] = c;
                if (count < max) count++;
            }
        }
    /* Where small sizes have gaps between the usual shapes: the usual shape nearest in size. */
    if (usual_only && count == 0 && max > 0 && isfinite(nearest_gap)) out[count++] = nearest_usual;
    /* Smallest first. */
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && anv_config_num_params(&out[j]) < anv_config_num_params(&out[j - 1]); j--) {
            anv_config_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return count;
}

int anv_plan_shapes(anv_arch_t arch, double params, int vocab_size, int seq, anv_config_t *out, int max) {
    return shapes_of(arch, params, vocab_size, seq, 0, out, max);
}

int anv_plan_usual_shapes(anv_arch_t arch, double params, int vocab_size, int seq, anv_config_t *out, int max) {
    return shapes_of(arch, params, vocab_size, seq, 1, out, max);
}

int anv_plan_best(const anv_config_t *shapes, int n, double params) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (shape_score(&shapes[i], params) < shape_score(&shapes[best], params)) best = i;
    return best;
}

int anv_plan_nearest(const anv_config_t *shapes, int n, double params) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (fabs(log((double)anv_config_num_params(&shapes[i]) / params)) <
            fabs(log((double)anv_config_num_params(&shapes[best]) / params)))
            best = i;
    return best;
}
