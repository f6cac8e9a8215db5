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

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear layers (Conv1D layout: weight (in, out)) ---- */

/* out (N, OC) = inp (N, C) @ w (C, OC) + bias (OC); bias may be NULL. */
void anv_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
/* dinp (N, C) = dout (N, OC) @ w^T  (overwritten);
 * dw (C, OC) += inp^T @ dout;  dbias (OC) += column sums of dout (dbias may be NULL). */
void anv_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int N, int C, int OC);

/* The tied LM head, weight stored as embedding rows: out (N, OC) = inp (N, C) @ w (OC, C)^T. */
void anv_matmul_nt_forward(float *out, const float *inp, const float *w, int N, int C, int OC);
/* dinp (N, C) += dout (N, OC) @ w;  dw (OC, C) += dout^T @ inp. Both accumulate, so the head can be
 * differentiated one chunk of vocabulary rows of w at a time. */
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
/* Inference with a KV cache: n new rows of one sequence at positions pos..pos+n-1. Their keys and
 * values are first copied from qkv (n, 3C) into the caches kc, vc (rows of C, at least pos + n of them)
 * at rows pos..pos+n-1; then out (n, C) = new row i's attention over the cached rows 0..pos+i. */
void anv_attention_decode(float *out, float *kc, float *vc, const float *qkv, int pos, int n, int C, int NH);

/* ---- softmax + cross-entropy over the vocabulary, one chunk of vocabulary columns at a time ----
 * The caller computes the logits of the columns [v0, v0 + Vc) of the real vocabulary into an (N, Vc)
 * array with row stride ld, calls the forward once per chunk (so the (N, V) logits never need to
 * exist in full), and after the last chunk has each row's log-sum-exp. targets (N) in [0, V) or -1
 * (ignored). Columns outside the chunk (such as padding) are never read or written. */

/* lse (N): combined in place with the chunk's log-sum-exp of every row (start from -INFINITY);
 * tlogit (N): receives the logit of each row whose target falls in the chunk. */
void anv_crossentropy_chunk_forward(float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets,
                                    int N, int v0, int Vc);
/* The SUM of -log p(target) = lse - tlogit over rows with a target (double: the caller divides by
 * the count), once every chunk has been through the forward. */
double anv_crossentropy_loss_sum(const float *lse, const float *tlogit, const int32_t *targets, int N);
/* In place: the chunk's logits become dlogits = dloss * (softmax(logits) - onehot(target)) on rows
 * with a target, zero on ignored rows; lse is the complete log-sum-exp from the forward. dloss is
 * d(loss)/d(each row's loss). */
void anv_crossentropy_chunk_backward(float *logits, int ld, const float *lse, const int32_t *targets, float dloss,
                                     int N, int v0, int Vc);

/* ---- precision of matrix products ----
 * ANV_PRECISION_BF16 is mixed precision: each matrix product of the matmul kernels (linear layers, LM
 * head) rounds its two inputs to bfloat16 (round to nearest even) and accumulates in fp32; outputs, all
 * other kernels, master weights and optimizer state stay fp32. Default FP32. Not while kernels run. */
typedef enum { ANV_PRECISION_FP32, ANV_PRECISION_BF16 } anv_precision_t;
void anv_matmul_precision_set(anv_precision_t p);
anv_precision_t anv_matmul_precision(void);
/* "fp32" or "bf16"; -1 with an error otherwise. */
int anv_precision_parse(const char *name, anv_precision_t *out);
const char *anv_precision_name(anv_precision_t p);

/* ---- vectors ---- */

/* x (n) = value */
void anv_fill(float *x, float value, size_t n);
/* dst (n) = scale * src (n); dst may be src. */
void anv_scale_into(float *dst, const float *src, float scale, size_t n);
/* dst (n) += scale * src (n) */
void anv_add_scaled(float *dst, const float *src, float scale, size_t n);
/* Sum of squares of x (n) in double; the same bits for any thread count on a given backend. */
double anv_sumsq(const float *x, size_t n);

/* ---- optimizer ----
 * One AdamW update, element-wise (bc1 = 1 - beta1^t, bc2_sqrt = sqrt(1 - beta2^t)):
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *   p -= lr * ((m / bc1) / (sqrt(v) / bc2_sqrt + eps) + wd_s * p)
 * of every tensor of a parameter block at once (one GPU launch): the floats [lo, lo + n) of the block,
 * with p, g, m, v pointing at float lo. The tensors are the segments of segs, in floats of the whole
 * block: segment s is [start[s], end[s]) (increasing, not overlapping) and has wd_s = wd when decay[s]
 * is nonzero, else 0. Floats outside every segment are left alone. The segment arrays are device
 * memory (anv_device_alloc). */
typedef struct {
    int count;
    const size_t *start, *end;
    const unsigned char *decay;
} anv_adamw_segments_t;
void anv_adamw_update(float *p, const float *g, float *m, float *v, size_t lo, size_t n,
                      const anv_adamw_segments_t *segs, float lr, float beta1, float beta2, float eps, float wd,
                      float bc1, float bc2_sqrt);

/* ---- device ----
 * The backend that runs every kernel above: "cpu" (default) or "cuda" (the module libanvil_cuda.so,
 * built where nvcc is installed, on a machine with a GPU). Chosen by anv_device_set() or, at the first
 * kernel call, by the environment variable ANVIL_DEVICE (a device named there that is not available
 * ends the program with a message). Buffers that kernels touch come from anv_device_alloc: host memory
 * on the CPU, CUDA managed memory on the GPU, so the host can still read and write them (checkpoints,
 * tests) after anv_device_sync(). Kernels may run asynchronously; functions that return a value
 * (sumsq, loss_sum) wait for the device. Switch devices only before allocating. */
int anv_device_set(const char *name);      /* -1 with an error when unknown or unavailable */
const char *anv_device(void);              /* "cpu" or "cuda" */
/* Zero-filled, 64-byte aligned; NULL with an error naming `what` on failure. */
void *anv_device_alloc(size_t bytes, const char *what);
void anv_device_free(void *p);             /* NULL is fine */
void anv_device_sync(void);                /* waits until every kernel issued so far has finished */

/* ---- profile ----
 * Where the time of a step goes, per kernel above (anvil bench train --profile). Between start and stop,
 * every kernel call made by the thread that called start is timed: wall time on the CPU; on the GPU the
 * time between CUDA events recorded before and after the call on the kernels' stream, which leaves the
 * kernels asynchronous. stop waits for the device, fills out (at most max entries) with the kernels called, the
 * most time first, and returns how many it wrote. */
typedef struct {
    const char *name;
    long calls;
    double seconds;
} anv_profile_entry_t;
void anv_profile_start(void);
int anv_profile_stop(anv_profile_entry_t *out, int max);

/* ---- instruction set ----
 * Every kernel above exists in copies for several instruction sets (x86-64: "avx512", "avx2", and
 * "portable" for the build's baseline); the first kernel call picks the widest the CPU supports, or
 * the one the environment variable ANVIL_CPU names. */
const char *anv_cpu_isa(void); /* the copy in use */
/* Switches to the named copy; -1 with an error if unknown or not supported by this CPU. Not while
 * kernels run on other threads. */
int anv_cpu_isa_set(const char *name);

/* ---- machine ceiling ----
 * The measured fp32 FMA peak in GFLOP/s of all anv_threads_count() threads: the best of 8 slices
 * over about `seconds` in all; *vector_bits (may be NULL) gets the vector width used (512, 256). */
double anv_cpu_fma_peak(double seconds, int *vector_bits);
/* The same for bf16 dot products (vdpbf16ps, the bf16 matmuls' instruction); 0 on CPUs without
 * AVX512_BF16, where bf16 products run at the fp32 peak. */
double anv_cpu_bf16_peak(double seconds);
/* The ceiling of the matmuls in precision p, from the two peaks above (GFLOP/s, either may be 0 if not
 * measured): the bf16 peak for BF16 where the CPU has one, else the fp32 FMA peak. */
double anv_cpu_precision_peak(anv_precision_t p, double fma_peak, double bf16_peak);

#ifdef __cplusplus
}
#endif

#endif
