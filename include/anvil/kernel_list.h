/* Every kernel, declared once (no include guard: included once per use).
 *
 * A line is ANV_KERNEL(return type, name, (parameters), (arguments)), or ANV_KERNEL_VALUE for a kernel
 * that returns a value, or ANV_KERNEL_INTERNAL for one that only the backends call (the GEMMs under
 * the matmuls). A file that includes this list defines the macros to make what it needs of each
 * kernel: the prototypes of anv_<name> (kernels.h, kernels/cpu/gemm.h), a backend's table of function
 * pointers and its initialiser (kernels/table.h, cpu/table.c, cuda/table.cu), the per-instruction-set
 * symbol names (cpu/isa.h), the wrappers that time a call and pass it to the table in use
 * (cpu/dispatch.c), the profiler's names (profile.h, profile.c) and the CUDA backend's declarations
 * (cuda/cuda_kernels.h). Undefined macros default to nothing; ANV_KERNEL_VALUE and ANV_KERNEL_INTERNAL
 * default to ANV_KERNEL. Adding a kernel is a line here with its contract, and its implementation in
 * each backend.
 *
 * Shapes in comments; every tensor row-major fp32; N is the number of token rows (B*T). Conventions in
 * kernels.h. */
#ifndef ANV_KERNEL
#define ANV_KERNEL(ret, name, params, args)
#endif
#ifndef ANV_KERNEL_VALUE
#define ANV_KERNEL_VALUE ANV_KERNEL
#endif
#ifndef ANV_KERNEL_INTERNAL
#define ANV_KERNEL_INTERNAL ANV_KERNEL
#endif

/* ---- linear layers: Conv1D layout (weight (in, out), GPT-2) and nn.Linear layout (weight (out, in),
 * Llama and the LM head) ---- */

/* out (N, OC) = inp (N, C) @ w (C, OC) + bias (OC); bias may be NULL. */
ANV_KERNEL(void, matmul_forward,
           (float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC),
           (out, inp, w, bias, N, C, OC))
/* dinp (N, C) = dout (N, OC) @ w^T  (overwritten);
 * dw (C, OC) += inp^T @ dout;  dbias (OC) += column sums of dout. dw and dbias may be NULL (a frozen
 * or absent tensor: not computed). */
ANV_KERNEL(void, matmul_backward,
           (float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N, int C,
            int OC),
           (dinp, dw, dbias, dout, inp, w, N, C, OC))
/* nn.Linear without bias, and the LM head (weight stored as embedding rows):
 * out (N, OC) = inp (N, C) @ w (OC, C)^T. */
ANV_KERNEL(void, matmul_nt_forward, (float *out, const float *inp, const float *w, int N, int C, int OC),
           (out, inp, w, N, C, OC))
/* dinp (N, C) += dout (N, OC) @ w;  dw (OC, C) += dout^T @ inp (dw may be NULL: frozen). Both
 * accumulate, so the head can be differentiated one chunk of vocabulary rows of w at a time. */
ANV_KERNEL(void, matmul_nt_backward,
           (float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N, int C, int OC),
           (dinp, dw, dout, inp, w, N, C, OC))
/* LoRA, a low-rank update beside a linear layer (Hu et al. 2021): a (r, IC) and b (OC, r) are PEFT's
 * lora_A and lora_B. u (N, r) = inp (N, IC) @ a^T, kept for the backward pass; then the OC columns of
 * out, rows of stride ld (a slice of a fused product such as q | k | v), += scale * u @ b^T. */
ANV_KERNEL(void, lora_forward,
           (float *out, int ld, float *u, const float *inp, const float *a, const float *b, float scale, int N, int IC,
            int OC, int r),
           (out, ld, u, inp, a, b, scale, N, IC, OC, r))
/* Its gradients from dout, the OC columns (row stride ld) of the product's gradient:
 * db (OC, r) += scale * dout^T @ u;  du (N, r) = scale * dout @ b (overwritten);  da (r, IC) += du^T @ inp;
 * dinp (N, IC) += du @ a. */
ANV_KERNEL(void, lora_backward,
           (float *dinp, float *da, float *db, float *du, const float *dout, int ld, const float *inp, const float *u,
            const float *a, const float *b, float scale, int N, int IC, int OC, int r),
           (dinp, da, db, du, dout, ld, inp, u, a, b, scale, N, IC, OC, r))

/* ---- packed rows ----
 * A row of (B, T) may hold several sequences back to back (fine-tuning examples packed together). Then
 * starts (B, T) gives, for the token at (b, t), the column where its sequence begins in row b: its
 * position is t - starts[b, t] and it attends to the columns starts[b, t] .. t only. A sequence's columns
 * are contiguous, so starts[b, t] is t or starts[b, t - 1]. starts NULL: each row is one sequence
 * (starts[b, t] = 0). */

/* ---- int8 weights for inference (--weights q8): llama.cpp's q8_0 scheme ----
 * x (n), n a multiple of ANV_Q8_BLOCK (32, kernels.h), is held as n / 32 blocks: q, 32 int8, and a scale
 * d, the block's values being d q with d = max |x| / 127 and q = round(x / d) (nearest, ties to even; an
 * all-zero block has d 0). */

/* q (n), d (n / 32) = x (n) quantized. */
ANV_KERNEL(void, quantize_q8, (int8_t * q, float *d, const float *x, size_t n), (q, d, x, n))
/* A weight (OC, IC) quantized row by row (wq (OC, IC), wd (OC, IC / 32)) rearranged in place into the
 * layout this backend's matmul_q8_forward reads (the same bytes; the CPU's: panels of 16 rows, the CUDA
 * backend's: as it is). */
ANV_KERNEL(void, pack_q8, (int8_t * wq, float *wd, int IC, int OC), (wq, wd, IC, OC))
/* out (N, OC) = inp (N, IC) @ W^T + bias (OC, may be NULL) for a weight W (OC, IC) quantized row by row
 * and packed (wq, wd), IC a multiple of 32. Each row of inp is quantized the same way first,
 * so each block contributes d_w d_x times the exact integer sum of its 32 products (llama.cpp's
 * q8_0 x q8_0 dot product); the blocks add up in fp32. */
ANV_KERNEL(void, matmul_q8_forward,
           (float *out, const float *inp, const int8_t *wq, const float *wd, const float *bias, int N, int IC, int OC),
           (out, inp, wq, wd, bias, N, IC, OC))

/* ---- embeddings ---- */

/* out (B, T, C) = wte[tokens[b, t]] + wpe[position of (b, t)]; without position embeddings (wpe NULL,
 * rotary models) wte[tokens[b, t]]. Tokens must be valid rows of wte. */
ANV_KERNEL(void, embedding_forward,
           (float *out, const int32_t *tokens, const int32_t *starts, const float *wte, const float *wpe, int B, int T,
            int C),
           (out, tokens, starts, wte, wpe, B, T, C))
/* dwte[tokens[b, t]] += dout[b, t];  dwpe[p] += dout[b, t] over the tokens at position p (dwpe may be
 * NULL). */
ANV_KERNEL(void, embedding_backward,
           (float *dwte, float *dwpe, const float *dout, const int32_t *tokens, const int32_t *starts, int B, int T,
            int C),
           (dwte, dwpe, dout, tokens, starts, B, T, C))

/* ---- normalisation ---- */

/* out (N, C) = (inp - mean) * rstd * w + b over the last axis, eps 1e-5; mean, rstd (N) saved (may be
 * NULL). */
ANV_KERNEL(void, layernorm_forward,
           (float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C),
           (out, mean, rstd, inp, w, b, N, C))
/* dinp (N, C) += d(out)/d(inp)^T dout (accumulated: dinp is the residual-stream gradient);
 * dw (C) += sum over rows of dout * xhat;  db (C) += sum over rows of dout (dw and db NULL: frozen). */
ANV_KERNEL(void, layernorm_backward,
           (float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, const float *mean,
            const float *rstd, int N, int C),
           (dinp, dw, db, dout, inp, w, mean, rstd, N, C))

/* RMSNorm (Llama): out (N, C) = inp * rstd * w with rstd = 1 / sqrt(mean(inp^2) + eps) over the last
 * axis; rstd (N) saved (may be NULL). */
ANV_KERNEL(void, rmsnorm_forward, (float *out, float *rstd, const float *inp, const float *w, float eps, int N, int C),
           (out, rstd, inp, w, eps, N, C))
/* dinp (N, C) += d(out)/d(inp)^T dout (accumulated, as layernorm_backward); dw (C) += sum over rows of
 * dout * inp * rstd (dw NULL: frozen). */
ANV_KERNEL(void, rmsnorm_backward,
           (float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd, int N,
            int C),
           (dinp, dw, dout, inp, w, rstd, N, C))

/* ---- rotary position embeddings (RoPE), Hugging Face's rotate_half convention ----
 * In place on the query and key heads of qkv (B, T, (NH + 2 NKV) hs) (q | k | v per row, as attention
 * takes it; v is left alone). Row (b, t) is at position p = pos + t - starts[b, t] (packed rows, above);
 * for each head x (hs) and i < hs/2, with a = p * inv_freq[i] (the product rounded to float, as PyTorch
 * forms it):
 *   x[i] = x[i] cos a - x[i + hs/2] sin a;  x[i + hs/2] = x[i + hs/2] cos a + x[i] sin a.
 * inv_freq (hs/2) is device memory (the model's, from rope_theta and the RoPE scaling). */
ANV_KERNEL(void, rope_forward,
           (float *qkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH, int NKV, int hs),
           (qkv, starts, inv_freq, B, T, pos, NH, NKV, hs))
/* The gradient through the rotation (its transpose, the rotation by -a), in place on dqkv's q and k. */
ANV_KERNEL(void, rope_backward,
           (float *dqkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH, int NKV, int hs),
           (dqkv, starts, inv_freq, B, T, pos, NH, NKV, hs))

/* ---- activations and residuals ---- */

/* out (n) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
ANV_KERNEL(void, gelu_forward, (float *out, const float *inp, size_t n), (out, inp, n))
/* dinp (n) = gelu'(inp) * dout (overwritten; dinp may alias dout). */
ANV_KERNEL(void, gelu_backward, (float *dinp, const float *inp, const float *dout, size_t n), (dinp, inp, dout, n))
/* SwiGLU (Llama's MLP): inp (N, 2F) holds gate | up per row; out (N, F) = silu(gate) * up with
 * silu(x) = x / (1 + e^-x). */
ANV_KERNEL(void, swiglu_forward, (float *out, const float *inp, int N, int F), (out, inp, N, F))
/* dinp (N, 2F) = gradient of gate | up (overwritten) from dout (N, F). */
ANV_KERNEL(void, swiglu_backward, (float *dinp, const float *inp, const float *dout, int N, int F),
           (dinp, inp, dout, N, F))
/* out (n) = a + b. */
ANV_KERNEL(void, residual_forward, (float *out, const float *a, const float *b, size_t n), (out, a, b, n))
/* da (n) += dout;  db (n) += dout. */
ANV_KERNEL(void, residual_backward, (float *da, float *db, const float *dout, size_t n), (da, db, dout, n))

/* ---- causal self-attention over a fused qkv, with grouped-query heads ----
 * qkv (B, T, (NH + 2 NKV) hs) holds q | k | v per row: NH query heads, NKV key and value heads, each of
 * hs = C / NH values (NKV divides NH; GPT-2 has NKV = NH). Query head h reads key/value head
 * h / (NH / NKV): the K/V heads are indexed, never copied. For each (b, h):
 * out[b, t, h] = softmax over starts[b, t] <= s <= t of (q_t . k_s / sqrt(hs)) applied to v_s (a packed row's
 * sequences never see each other; starts NULL: over s <= t).
 * out (B, T, C); lse (B, NH, T) saves each softmax row's log-sum-exp for the backward pass, which
 * recomputes the probabilities instead of storing (B, NH, T, T) of them. */

/* The scratch the forward and backward take: floats for the thread count in effect at the call. */
ANV_KERNEL_VALUE(size_t, attention_scratch_floats, (int T), (T))
ANV_KERNEL(void, attention_forward,
           (float *out, float *lse, float *scratch, const float *qkv, const int32_t *starts, int B, int T, int C,
            int NH, int NKV),
           (out, lse, scratch, qkv, starts, B, T, C, NH, NKV))
/* dqkv (B, T, (NH + 2 NKV) hs) = gradient of qkv (overwritten) from dout (B, T, C); out and lse from
 * the forward. A K/V head's gradient sums over the query heads of its group. */
ANV_KERNEL(void, attention_backward,
           (float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out, const float *lse,
            const int32_t *starts, int B, int T, int C, int NH, int NKV),
           (dqkv, scratch, dout, qkv, out, lse, starts, B, T, C, NH, NKV))
/* Inference with a KV cache: n new rows of one sequence at positions pos..pos+n-1. Their keys and
 * values are first copied from qkv (n, (NH + 2 NKV) hs) into the caches kc, vc (rows of NKV hs, at least
 * pos + n of them) at rows pos..pos+n-1; then out (n, C) = new row i's attention over the cached rows
 * 0..pos+i. */
ANV_KERNEL(void, attention_decode,
           (float *out, float *kc, float *vc, const float *qkv, int pos, int n, int C, int NH, int NKV),
           (out, kc, vc, qkv, pos, n, C, NH, NKV))

/* ---- softmax + cross-entropy over the vocabulary, one chunk of vocabulary columns at a time ----
 * The caller computes the logits of the columns [v0, v0 + Vc) of the real vocabulary into an (N, Vc)
 * array with row stride ld, calls the forward once per chunk (so the (N, V) logits never need to
 * exist in full), and after the last chunk has each row's log-sum-exp. targets (N) in [0, V) or -1
 * (ignored). Columns outside the chunk (such as padding) are never read or written. */

/* lse (N): combined in place with the chunk's log-sum-exp of every row (start from -INFINITY);
 * tlogit (N): receives the logit of each row whose target falls in the chunk. */
ANV_KERNEL(void, crossentropy_chunk_forward,
           (float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets, int N, int v0, int Vc),
           (lse, tlogit, logits, ld, targets, N, v0, Vc))
/* The SUM of -log p(target) = lse - tlogit over rows with a target (double: the caller divides by
 * the count), once every chunk has been through the forward. */
ANV_KERNEL_VALUE(double, crossentropy_loss_sum, (const float *lse, const float *tlogit, const int32_t *targets, int N),
                 (lse, tlogit, targets, N))
/* In place: the chunk's logits become dlogits = dloss * (softmax(logits) - onehot(target)) on rows
 * with a target, zero on ignored rows; lse is the complete log-sum-exp from the forward. dloss is
 * d(loss)/d(each row's loss). */
ANV_KERNEL(void, crossentropy_chunk_backward,
           (float *logits, int ld, const float *lse, const int32_t *targets, float dloss, int N, int v0, int Vc),
           (logits, ld, lse, targets, dloss, N, v0, Vc))

/* ---- vectors ---- */

/* x (n) = value */
ANV_KERNEL(void, fill, (float *x, float value, size_t n), (x, value, n))
/* dst (n) = scale * src (n); dst may be src. */
ANV_KERNEL(void, scale_into, (float *dst, const float *src, float scale, size_t n), (dst, src, scale, n))
/* dst (n) += scale * src (n) */
ANV_KERNEL(void, add_scaled, (float *dst, const float *src, float scale, size_t n), (dst, src, scale, n))
/* Inverted dropout: element i of inp (n) is kept, times 1 / (1 - p), when its mask draw
 * anv_dropout_keep(seed, i, p) (kernels/dropout_mask.h) says so, else zeroed; out = the result
 * (accumulate 0) or out += it (accumulate 1: the backward pass through the same mask). The same mask on
 * every backend and thread count. */
ANV_KERNEL(void, dropout, (float *out, const float *inp, size_t n, float p, uint64_t seed, int accumulate),
           (out, inp, n, p, seed, accumulate))
/* Sum of squares of x (n) in double; the same bits for any thread count on a given backend. */
ANV_KERNEL_VALUE(double, sumsq, (const float *x, size_t n), (x, n))

/* ---- optimizer ----
 * One AdamW update, element-wise (bc1 = 1 - beta1^t, bc2_sqrt = sqrt(1 - beta2^t)):
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *   p -= lr * ((m / bc1) / (sqrt(v) / bc2_sqrt + eps) + wd_s * p)
 * of every tensor of a parameter block at once (one GPU launch): the floats [lo, lo + n) of the block,
 * with p, g, m, v pointing at float lo. The tensors are the segments of segs (anv_adamw_segments_t in
 * kernels.h). Floats outside every segment are left alone. */
ANV_KERNEL(void, adamw_update,
           (float *p, const float *g, float *m, float *v, size_t lo, size_t n, const anv_adamw_segments_t *segs,
            float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2_sqrt),
           (p, g, m, v, lo, n, segs, lr, beta1, beta2, eps, wd, bc1, bc2_sqrt))

/* ---- general matrix multiply, under the matmuls ----
 * C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C, row-major with leading dimensions.
 * op(A) = A^T when ta (A stored (K, M)); op(B) = B^T when tb (B stored (N, K)). beta 0 ignores C's
 * old contents. On the CPU: runs on the OpenMP pool when called outside a parallel region, on the
 * calling thread inside one. Deterministic: each C element sums over K in a fixed order. */

/* fp32: OpenBLAS on the CPU where built with it, else the built-in one. */
ANV_KERNEL_INTERNAL(void, gemm,
                    (int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc),
                    (ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
/* The built-in blocked GEMM (the same contract): gemm without OpenBLAS or on AVX-512, and the small
 * per-head products of attention, which run inside the kernel's own parallel loop (whatever OpenMP
 * runtime OpenBLAS was built with). */
ANV_KERNEL_INTERNAL(void, gemm_builtin,
                    (int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc),
                    (ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
/* Mixed precision (anv_matmul_precision() BF16): op(A) and op(B) rounded to bfloat16 (round to nearest
 * even; subnormals to zero, NaN kept), products accumulated in fp32, C fp32; vdpbf16ps on CPUs with
 * AVX512_BF16, software rounding elsewhere. */
ANV_KERNEL_INTERNAL(void, gemm_bf16,
                    (int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc),
                    (ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))

#undef ANV_KERNEL
#undef ANV_KERNEL_VALUE
#undef ANV_KERNEL_INTERNAL
