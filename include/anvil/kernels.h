/* The kernel interface: plain functions over raw pointers with sizes. The model is written once as a
 * sequence of these calls; backends (CPU now, CUDA later) implement them. Shapes in comments; all
 * tensors row-major fp32. Backward kernels ACCUMULATE (+=) into parameter gradients. */
#ifndef ANVIL_KERNELS_H
#define ANVIL_KERNELS_H

#include <stddef.h>

/* out (N, OC) = inp (N, C) @ w (C, OC) + bias (OC); bias may be NULL. */
void anv_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);

/* out (N, C) = (inp - mean) * rstd * w + b over the last axis; mean, rstd (N) saved (may be NULL). */
void anv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int N, int C);

/* out (n) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void anv_gelu_forward(float *out, const float *inp, size_t n);

#endif
