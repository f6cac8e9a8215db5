/* The public kernels: each calls the table in use. On the CPU that is the copy for the instruction set
 * chosen once at the first call (see isa.h): the widest the CPU and OS support, or the one named by
 * the environment variable ANVIL_CPU (avx512, avx2, portable), or by anv_cpu_isa_set(). With the
 * device "cuda" (ANVIL_DEVICE or anv_device_set) it is the CUDA backend's table. Device memory and the
 * precision of matrix products are chosen here too. */
#include "kernels/cpu/dispatch.h"

#include "anvil/base.h"
#include "kernels/cuda_module.h"
#include "kernels/profile.h"

#include <pthread.h>
#include <stdio.h>
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

static const anv_kernel_table_t *active;
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

static const anv_kernel_table_t *cpu_table; /* the CPU copy chosen, kept while the device is cuda */
static int on_cuda;

static int select_device(const char *name) {
    if (strcmp(name, "cpu") == 0) {
        on_cuda = 0;
        __atomic_store_n(&active, cpu_table, __ATOMIC_RELEASE);
        return 0;
    }
    if (strcmp(name, "cuda") != 0) return anv_error("device '%s': unknown (cpu, cuda)", name);
    const anv_cuda_module_t *cuda = anv_cuda_module();
    if (!cuda || cuda->init() != 0) return -1;
    on_cuda = 1;
    __atomic_store_n(&active, cuda->kernels, __ATOMIC_RELEASE);
    return 0;
}

static void choose(void) {
    int i = 0;
    while (i < N_TABLES - 1 && !supported(tables[i])) i++; /* the last, portable, always runs */
    __atomic_store_n(&active, tables[i], __ATOMIC_RELEASE);
    const char *forced = getenv("ANVIL_CPU");
    if (forced && *forced && select_isa(forced) != 0)
        anv_log(ANV_LOG_WARN, "ANVIL_CPU: %s; using %s", anv_last_error(), active->name);
    cpu_table = active;
    /* A device asked for by the environment and not available ends the program: running on another
     * device instead would be silently wrong (timings, tests that must run on the GPU). */
    const char *device = getenv("ANVIL_DEVICE");
    if (device && *device && select_device(device) != 0) {
        fprintf(stderr, "anvil: ANVIL_DEVICE=%s: %s\n", device, anv_last_error());
        exit(2);
    }
}

static inline const anv_kernel_table_t *K(void) {
    const anv_kernel_table_t *t = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (t) return t;
    pthread_once(&once, choose);
    return active;
}

int anv_cpu_isa_set(const char *name) {
    pthread_once(&once, choose);
    if (select_isa(name) != 0) return -1;
    cpu_table = active;
    on_cuda = 0;
    return 0;
}

const char *anv_cpu_isa(void) {
    pthread_once(&once, choose);
    return cpu_table->name;
}

int anv_device_set(const char *name) {
    pthread_once(&once, choose);
    return select_device(name);
}

const char *anv_device(void) {
    pthread_once(&once, choose);
    return on_cuda ? "cuda" : "cpu";
}

void *anv_device_alloc(size_t bytes, const char *what) {
    pthread_once(&once, choose);
    if (on_cuda) return anv_cuda_module()->alloc(bytes, what);
    return anv_calloc(bytes ? bytes : 1, what);
}

void anv_device_free(void *p) {
    if (!p) return;
    if (on_cuda) {
        anv_cuda_module()->free(p);
        return;
    }
    anv_free(p);
}

void anv_device_sync(void) {
    if (on_cuda) anv_cuda_module()->sync();
}

static anv_precision_t precision = ANV_PRECISION_FP32;

void anv_matmul_precision_set(anv_precision_t p) { precision = p; }
anv_precision_t anv_matmul_precision(void) { return precision; }

const char *anv_precision_name(anv_precision_t p) { return p == ANV_PRECISION_BF16 ? "bf16" : "fp32"; }

int anv_precision_parse(const char *name, anv_precision_t *out) {
    if (strcmp(name, "fp32") == 0)
        *out = ANV_PRECISION_FP32;
    else if (strcmp(name, "bf16") == 0)
        *out = ANV_PRECISION_BF16;
    else
        return anv_error("precision '%s': unknown (fp32, bf16)", name);
    return 0;
}

void anv_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    ANV_PROFILED(PROF_MATMUL_FORWARD, K()->matmul_forward(out, inp, w, bias, N, C, OC));
}
void anv_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         int N, int C, int OC) {
    ANV_PROFILED(PROF_MATMUL_BACKWARD, K()->matmul_backward(dinp, dw, dbias, dout, inp, w, N, C, OC));
}
void anv_matmul_nt_forward(float *out, const float *inp, const float *w, int N, int C, int OC) {
    ANV_PROFILED(PROF_MATMUL_NT_FORWARD, K()->matmul_nt_forward(out, inp, w, N, C, OC));
}
void anv_matmul_nt_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N, int C,
                            int OC) {
    ANV_PROFILED(PROF_MATMUL_NT_BACKWARD, K()->matmul_nt_backward(dinp, dw, dout, inp, w, N, C, OC));
}
void anv_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int B, int T, int C) {
    ANV_PROFILED(PROF_EMBEDDING_FORWARD, K()->embedding_forward(out, tokens, wte, wpe, B, T, C));
}
void anv_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B, int T, int C) {
    ANV_PROFILED(PROF_EMBEDDING_BACKWARD, K()->embedding_backward(dwte, dwpe, dout, tokens, B, T, C));
}
void anv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                           int N, int C) {
    ANV_PROFILED(PROF_LAYERNORM_FORWARD, K()->layernorm_forward(out, mean, rstd, inp, w, b, N, C));
}
void anv_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, int N, int C) {
    ANV_PROFILED(PROF_LAYERNORM_BACKWARD, K()->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C));
}
void anv_gelu_forward(float *out, const float *inp, size_t n) {
    ANV_PROFILED(PROF_GELU_FORWARD, K()->gelu_forward(out, inp, n));
}
void anv_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    ANV_PROFILED(PROF_GELU_BACKWARD, K()->gelu_backward(dinp, inp, dout, n));
}
void anv_residual_forward(float *out, const float *a, const float *b, size_t n) {
    ANV_PROFILED(PROF_RESIDUAL_FORWARD, K()->residual_forward(out, a, b, n));
}
void anv_residual_backward(float *da, float *db, const float *dout, size_t n) {
    ANV_PROFILED(PROF_RESIDUAL_BACKWARD, K()->residual_backward(da, db, dout, n));
}
size_t anv_attention_scratch_floats(int T) { return K()->attention_scratch_floats(T); }
void anv_attention_forward(float *out, float *lse, float *scratch, const float *qkv, int B, int T, int C, int NH) {
    ANV_PROFILED(PROF_ATTENTION_FORWARD, K()->attention_forward(out, lse, scratch, qkv, B, T, C, NH));
}
void anv_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                            const float *lse, int B, int T, int C, int NH) {
    ANV_PROFILED(PROF_ATTENTION_BACKWARD, K()->attention_backward(dqkv, scratch, dout, qkv, out, lse, B, T, C, NH));
}
void anv_attention_decode(float *out, float *kc, float *vc, const float *qkv, int pos, int n, int C, int NH) {
    ANV_PROFILED(PROF_ATTENTION_DECODE, K()->attention_decode(out, kc, vc, qkv, pos, n, C, NH));
}
void anv_crossentropy_chunk_forward(float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets,
                                    int N, int v0, int Vc) {
    ANV_PROFILED(PROF_CROSSENTROPY_FORWARD,
                 K()->crossentropy_chunk_forward(lse, tlogit, logits, ld, targets, N, v0, Vc));
}
double anv_crossentropy_loss_sum(const float *lse, const float *tlogit, const int32_t *targets, int N) {
    double result;
    ANV_PROFILED(PROF_CROSSENTROPY_LOSS_SUM, result = K()->crossentropy_loss_sum(lse, tlogit, targets, N));
    return result;
}
void anv_crossentropy_chunk_backward(float *logits, int ld, const float *lse, const int32_t *targets, float dloss,
                                     int N, int v0, int Vc) {
    ANV_PROFILED(PROF_CROSSENTROPY_BACKWARD,
                 K()->crossentropy_chunk_backward(logits, ld, lse, targets, dloss, N, v0, Vc));
}
void anv_fill(float *x, float value, size_t n) { ANV_PROFILED(PROF_FILL, K()->fill(x, value, n)); }
void anv_scale_into(float *dst, const float *src, float scale, size_t n) {
    ANV_PROFILED(PROF_SCALE_INTO, K()->scale_into(dst, src, scale, n));
}
void anv_add_scaled(float *dst, const float *src, float scale, size_t n) {
    ANV_PROFILED(PROF_ADD_SCALED, K()->add_scaled(dst, src, scale, n));
}
double anv_sumsq(const float *x, size_t n) {
    double result;
    ANV_PROFILED(PROF_SUMSQ, result = K()->sumsq(x, n));
    return result;
}
void anv_adamw_update(float *p, const float *g, float *m, float *v, size_t lo, size_t n,
                      const anv_adamw_segments_t *segs, float lr, float beta1, float beta2, float eps, float wd,
                      float bc1, float bc2_sqrt) {
    ANV_PROFILED(PROF_ADAMW_UPDATE,
                 K()->adamw_update(p, g, m, v, lo, n, segs, lr, beta1, beta2, eps, wd, bc1, bc2_sqrt));
}
void anv_gemm(int ta, int tb, int M, int N, int K_, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    ANV_PROFILED(PROF_GEMM, K()->gemm(ta, tb, M, N, K_, alpha, A, lda, B, ldb, beta, C, ldc));
}
void anv_gemm_builtin(int ta, int tb, int M, int N, int K_, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
    ANV_PROFILED(PROF_GEMM_BUILTIN, K()->gemm_builtin(ta, tb, M, N, K_, alpha, A, lda, B, ldb, beta, C, ldc));
}
void anv_gemm_bf16(int ta, int tb, int M, int N, int K_, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
    ANV_PROFILED(PROF_GEMM_BF16, K()->gemm_bf16(ta, tb, M, N, K_, alpha, A, lda, B, ldb, beta, C, ldc));
}
