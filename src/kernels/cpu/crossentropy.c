/* Softmax fused with cross-entropy, over one chunk of vocabulary columns at a time, so a caller never
 * needs the (N, V) logits in full: the log-sum-exp of each row is combined chunk by chunk. */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */
#include "kernels/cpu/vmath.h"

#include <math.h>

enum { LANES = 16 };

/* log-sum-exp of x[0..V): max, then sum of exp, each over LANES independent partials (so the loops
 * vectorise) combined in a fixed order, the sum in double. */
static float row_lse(const float *x, int V) {
    float lane_max[LANES];
    for (int l = 0; l < LANES; l++) lane_max[l] = x[0];
    int v = 0;
    for (; v + LANES <= V; v += LANES)
        for (int l = 0; l < LANES; l++) lane_max[l] = x[v + l] > lane_max[l] ? x[v + l] : lane_max[l];
    float mx = x[0];
    for (; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    for (int l = 0; l < LANES; l++) mx = lane_max[l] > mx ? lane_max[l] : mx;
    float part[LANES] = {0};
    for (v = 0; v + LANES <= V; v += LANES)
        for (int l = 0; l < LANES; l++) part[l] += anv_vexpf(x[v + l] - mx);
    double sum = 0;
    for (; v < V; v++) sum += anv_vexpf(x[v] - mx);
    for (int l = 0; l < LANES; l++) sum += part[l];
    return mx + (float)log(sum);
}

/* log(e^a + e^b), with a = -inf meaning "nothing yet". */
static float log_add_exp(float a, float b) {
    if (a == -INFINITY) return b;
    float hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + (float)log1p(exp((double)lo - hi));
}

void anv_crossentropy_chunk_forward(float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets,
                                    int N, int v0, int Vc) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *row = logits + (size_t)n * ld;
        lse[n] = log_add_exp(lse[n], row_lse(row, Vc));
        int y = targets[n] - v0;
        if (y >= 0 && y < Vc) tlogit[n] = row[y];
    }
}

void anv_crossentropy_chunk_backward(float *logits, int ld, const float *lse, const int32_t *targets, float dloss,
                                     int N, int v0, int Vc) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * ld;
        if (targets[n] < 0) {
            for (int v = 0; v < Vc; v++) row[v] = 0.0f;
            continue;
        }
        float l = lse[n];
        for (int v = 0; v < Vc; v++) row[v] = dloss * anv_vexpf(row[v] - l);
        int y = targets[n] - v0;
        if (y >= 0 && y < Vc) row[y] -= dloss;
    }
}

double anv_crossentropy_loss_sum(const float *lse, const float *tlogit, const int32_t *targets, int N) {
    double total = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) total += (double)lse[n] - tlogit[n];
    return total;
}
