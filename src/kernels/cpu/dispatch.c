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
#include <unistd.h>

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

static inline const anv_kernel_table_t *table_in_use(void) {
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

/* Device memory is host memory on the CPU and CUDA managed memory on the GPU: once the device is
 * idle, the host reads and writes it directly. */
void anv_device_upload(void *dst, const void *src, size_t bytes) {
    anv_device_sync();
    memcpy(dst, src, bytes);
}

void anv_device_download(void *dst, const void *src, size_t bytes) {
    anv_device_sync();
    memcpy(dst, src, bytes);
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

size_t anv_device_block_floats(void) { return table_in_use()->block_floats; }

size_t anv_device_memory_bytes(void) {
    pthread_once(&once, choose);
    if (on_cuda) return anv_cuda_module()->memory_bytes();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
}

static _Thread_local char failure[512]; /* the first kernel failure not yet reported; "" when none */

void anv_kernel_failed(void) {
    if (!failure[0]) snprintf(failure, sizeof failure, "%s", anv_last_error());
}

int anv_kernel_status(void) {
    if (!failure[0]) return 0;
    anv_error("%s", failure);
    failure[0] = 0;
    return -1;
}

/* The CUDA backend's host state (its scratch block, cuBLASLt workspace) is not meant for several host
 * threads at once (serve's slots decode in parallel), so on the GPU kernel calls take turns; the
 * kernels run in order on one stream either way. */
static pthread_mutex_t cuda_turn = PTHREAD_MUTEX_INITIALIZER;

#define BACKEND_CALL(kernel, call)                                                                                     \
    do {                                                                                                               \
        if (on_cuda) {                                                                                                 \
            pthread_mutex_lock(&cuda_turn);                                                                            \
            ANV_PROFILED(kernel, call);                                                                                \
            pthread_mutex_unlock(&cuda_turn);                                                                          \
        } else {                                                                                                       \
            ANV_PROFILED(kernel, call);                                                                                \
        }                                                                                                              \
    } while (0)

/* The public kernels: each passes its call to the table in use, timed while profiling. */
#define ANV_KERNEL(ret, name, params, args)                                                                            \
    ret anv_##name params { BACKEND_CALL(PROF_##name, table_in_use()->name args); }
#define ANV_KERNEL_VALUE(ret, name, params, args)                                                                      \
    ret anv_##name params {                                                                                            \
        ret result;                                                                                                    \
        BACKEND_CALL(PROF_##name, result = table_in_use()->name args);                                                 \
        return result;                                                                                                 \
    }
#include "anvil/kernel_list.h"
