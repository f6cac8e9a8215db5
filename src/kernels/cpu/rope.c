/* Rotary position embeddings in Hugging Face's rotate_half convention, in place on the query and key
 * heads of a fused qkv. The backward pass is the same rotation by the opposite angle. */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <math.h>

/* Rotates the NH + NKV q and k heads of every row by sign * angle; one row per task. */
static void rotate(float *qkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH, int NKV,
                   int hs, float sign) {
    int half = hs / 2, heads = NH + NKV;
    size_t row = (size_t)(NH + 2 * NKV) * hs;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        float p = (float)(pos + bt % T - (starts ? starts[bt] : 0));
        float *x = qkv + (size_t)bt * row;
        for (int i = 0; i < half; i++) {
            float a = p * inv_freq[i];
            float c = cosf(a), s = sign * sinf(a);
            for (int h = 0; h < heads; h++) {
                float *xh = x + (size_t)h * hs, x1 = xh[i], x2 = xh[i + half];
                xh[i] = x1 * c - x2 * s;
                xh[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

void anv_rope_forward(float *qkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH, int NKV,
                      int hs) {
    rotate(qkv, starts, inv_freq, B, T, pos, NH, NKV, hs, 1.0f);
}

void anv_rope_backward(float *dqkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH,
                       int NKV, int hs) {
    rotate(dqkv, starts, inv_freq, B, T, pos, NH, NKV, hs, -1.0f);
}
