/* Softmax fused with cross-entropy over the real vocabulary columns of the logits. */
#include "anvil/kernels.h"
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

double anv_crossentropy_forward(float *lse, const float *logits, const int32_t *targets, int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) lse[n] = row_lse(logits + (size_t)n * Vp, V);
    double total = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) total += (double)lse[n] - logits[(size_t)n * Vp + targets[n]];
    return total;
}

void anv_crossentropy_backward(float *logits, const float *lse, const int32_t *targets, float dloss, int N, int V,
                               int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * Vp;
        int y = targets[n];
        if (y < 0) {
            for (int v = 0; v < Vp; v++) row[v] = 0.0f;
            continue;
        }
        float l = lse[n];
        for (int v = 0; v < V; v++) row[v] = dloss * anv_vexpf(row[v] - l);
        for (int v = V; v < Vp; v++) row[v] = 0.0f;
        row[y] -= dloss;
    }
}
