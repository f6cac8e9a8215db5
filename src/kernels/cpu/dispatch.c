/* The public CPU kernels: each calls the copy for the instruction set chosen once at the first call
 * (see isa.h): the widest the CPU and OS support, or the one named by the environment variable
 * ANVIL_CPU (avx512, avx2, portable), or by anv_cpu_isa_set(). */
#include "kernels/cpu/dispatch.h"

#include "anvil/base.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const anv_cpu_kernels_t *const tables[] = {
#ifdef ANVIL_HAVE_ISA_X86
    &anv_cpu_kernels_avx512,
    &anv_cpu_kernels_avx2,
#endif
    &anv_cpu_kernels_portable,
};
enum { N_TABLES = sizeof tables / sizeof tables[0] };

static const anv_cpu_kernels_t *active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int supported(const anv_cpu_kernels_t *t) {
#ifdef ANVIL_HAVE_ISA_X86
    __builtin_cpu_init();
    if (t == &anv_cpu_kernels_avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("bmi2");
    if (t == &anv_cpu_kernels_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
#endif
    (void)t;
    return 1;
}

/* Makes the named copy the active one; -1 with an error when unknown or unsupported. */
static int select_isa(const char *name) {
    for (int i = 0; i < N_TABLES; i++) {
        if (strcmp(tables[i]->name, name) != 0) continue;
        if (!supported(tables[i])) return anv_error("kernels for %s: this CPU does not support them", name);
        __atomic_store_n(&active, tables[i], __ATOMIC_RELEASE);
        return 0;
    }
    return anv_error("kernels for '%s': unknown instruction set (avx512, avx2, portable)", name);
}

static void choose(void) {
    int i = 0;
    while (i < N_TABLES - 1 && !supported(tables[i])) i++; /* the last, portable, always runs */
    __atomic_store_n(&active, tables[i], __ATOMIC_RELEASE);
    const char *forced = getenv("ANVIL_CPU");
    if (forced && *forced && select_isa(forced) != 0)
        anv_log(ANV_LOG_WARN, "ANVIL_CPU: %s; using %s", anv_last_error(), active->name);
}

static inline const anv_cpu_kernels_t *K(void) {
    const anv_cpu_kernels_t *t = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (t) return t;
    pthread_once(&once, choose);
    return active;
}

int anv_cpu_isa_set(const char *name) {
    pthread_once(&once, choose);
    return select_isa(name);
}

const char *anv_cpu_isa(void) { return K()->name; }

void anv_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    K()->matmul_forward(out, inp, w, bias, N, C, OC);
}
void anv_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int N, int C, int OC) {
    K()->matmul_backward(dinp, dw, dbias, dout, inp, w, N, C, OC);
}
void anv_matmul_nt_forward(float *out, const float *inp, const float *w, int N, int C, int OC) {
    K()->matmul_nt_forward(out, inp, w, N, C, OC);
}
void anv_matmul_nt_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N,
                            int C, int OC) {
    K()->matmul_nt_backward(dinp, dw, dout, inp, w, N, C, OC);
}
void anv_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int B, int T,
                           int C) {
    K()->embedding_forward(out, tokens, wte, wpe, B, T, C);
}
void anv_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B, int T, int C) {
    K()->embedding_backward(dwte, dwpe, dout, tokens, B, T, C);
}
void anv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                           int N, int C) {
    K()->layernorm_forward(out, mean, rstd, inp, w, b, N, C);
}
void anv_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, int N, int C) {
    K()->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}
void anv_gelu_forward(float *out, const float *inp, size_t n) { K()->gelu_forward(out, inp, n); }
void anv_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    K()->gelu_backward(dinp, inp, dout, n);
}
void anv_residual_forward(float *out, const float *a, const float *b, size_t n) { K()->residual_forward(out, a, b, n); }
void anv_residual_backward(float *da, float *db, const float *dout, size_t n) { K()->residual_backward(da, db, dout, n); }
size_t anv_attention_scratch_floats(int T) { return K()->attention_scratch_floats(T); }
void anv_attention_forward(float *out, float *lse, float *scratch, const float *qkv, int B, int T, int C, int NH) {
    K()->attention_forward(out, lse, scratch, qkv, B, T, C, NH);
}
void anv_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                            const float *lse, int B, int T, int C, int NH) {
    K()->attention_backward(dqkv, scratch, dout, qkv, out, lse, B, T, C, NH);
}
void anv_crossentropy_chunk_forward(float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets,
                                    int N, int v0, int Vc) {
    K()->crossentropy_chunk_forward(lse, tlogit, logits, ld, targets, N, v0, Vc);
}
double anv_crossentropy_loss_sum(const float *lse, const float *tlogit, const int32_t *targets, int N) {
    return K()->crossentropy_loss_sum(lse, tlogit, targets, N);
}
void anv_crossentropy_chunk_backward(float *logits, int ld, const float *lse, const int32_t *targets, float dloss,
                                     int N, int v0, int Vc) {
    K()->crossentropy_chunk_backward(logits, ld, lse, targets, dloss, N, v0, Vc);
}
void anv_gemm(int ta, int tb, int M, int N, int K_, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    K()->gemm(ta, tb, M, N, K_, alpha, A, lda, B, ldb, beta, C, ldc);
}
void anv_gemm_builtin(int ta, int tb, int M, int N, int K_, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
    K()->gemm_builtin(ta, tb, M, N, K_, alpha, A, lda, B, ldb, beta, C, ldc);
}
