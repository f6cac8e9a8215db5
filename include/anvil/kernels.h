/* The kernel interface: plain functions over raw pointers with sizes. The model is written once as a
 * sequence of these calls; backends (CPU now, CUDA later) implement them. Shapes in comments; all
 * tensors row-major fp32. N is the number of token rows (B*T).
 *
 * Gradient conventions: backward kernels ACCUMULATE (+=) into parameter gradients (so micro-batches
 * can accumulate) and into the residual-stream gradient where stated; other activation gradients are
 * overwritten. Every kernel is deterministic for a given thread count: no atomics, static schedules,
 * fixed reduction orders. */
#ifndef ANVIL_KERNELS_H
#define ANVIL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- linear layers (Conv1D layout: weight (in, out)) ---- */

/* out (N, OC) = inp (N, C) @ w (C, OC) + bias (OC); bias may be NULL. */
void anv_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
/* dinp (N, C) = dout (N, OC) @ w^T  (overwritten);
 * dw (C, OC) += inp^T @ dout;  dbias (OC) += column sums of dout (dbias may be NULL). */
void anv_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int N, int C, int OC);

/* The tied LM head, weight stored as embedding rows: out (N, OC) = inp (N, C) @ w (OC, C)^T. */
void anv_matmul_nt_forward(float *out, const float *inp, const float *w, int N, int C, int OC);
/* dinp (N, C) = dout (N, OC) @ w (overwritten);  dw (OC, C) += dout^T @ inp. */
void anv_matmul_nt_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N,
                            int C, int OC);

/* ---- embeddings ---- */

/* out (B, T, C) = wte[tokens[b, t]] + wpe[t]. Tokens must be valid rows of wte. */
void anv_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int B, int T,
                           int C);
/* dwte[tokens[b, t]] += dout[b, t];  dwpe[t] += sum over b of dout[b, t]. */
void anv_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B, int T, int C);

/* ---- normalisation ---- */

/* out (N, C) = (inp - mean) * rstd * w + b over the last axis, eps 1e-5; mean, rstd (N) saved (may be
 * NULL). */
void anv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int N, int C);
/* dinp (N, C) += d(out)/d(inp)^T dout (accumulated: dinp is the residual-stream gradient);
 * dw (C) += sum over rows of dout * xhat;  db (C) += sum over rows of dout. */
void anv_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int N, int C);

/* ---- activations and residuals ---- */

/* out (n) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void anv_gelu_forward(float *out, const float *inp, size_t n);
/* dinp (n) = gelu'(inp) * dout (overwritten; dinp may alias dout). */
void anv_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* out (n) = a + b. */
void anv_residual_forward(float *out, const float *a, const float *b, size_t n);
/* da (n) += dout;  db (n) += dout. */
void anv_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- causal self-attention over a fused qkv ---- */

/* qkv (B, T, 3C) holds q | k | v, each C = NH heads of hs = C / NH. For each (b, h):
 * out[b, t, h] = softmax over s <= t of (q_t . k_s / sqrt(hs)) applied to v_s.
 * out (B, T, C); lse (B, NH, T) saves each softmax row's log-sum-exp for the backward pass, which
 * recomputes the probabilities instead of storing (B, NH, T, T) of them.
 * scratch: anv_attention_scratch_floats(T) floats, for the thread count in effect at the call. */
size_t anv_attention_scratch_floats(int T);
void anv_attention_forward(float *out, float *lse, float *scratch, const float *qkv, int B, int T, int C, int NH);
/* dqkv (B, T, 3C) = gradient of qkv (overwritten) from dout (B, T, C); out and lse from the forward. */
void anv_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                            const float *lse, int B, int T, int C, int NH);

/* ---- softmax + cross-entropy over the vocabulary ----
 * logits (N, Vp): the first V columns are the real vocabulary, the rest padding that never enters
 * the softmax. targets (N) in [0, V) or -1 (ignored). */

/* lse (N) = log-sum-exp of each row over its first V columns (every row, ignored or not); returns the
 * SUM of -log p(target) over rows with a target (double: the caller divides by the count). */
double anv_crossentropy_forward(float *lse, const float *logits, const int32_t *targets, int N, int V, int Vp);
/* In place: logits (N, Vp) becomes dlogits = dloss * (softmax(logits) - onehot(target)) on rows with
 * a target, zero on ignored rows and in the padding columns. dloss is d(loss)/d(each row's loss). */
void anv_crossentropy_backward(float *logits, const float *lse, const int32_t *targets, float dloss, int N, int V,
                               int Vp);

#endif
