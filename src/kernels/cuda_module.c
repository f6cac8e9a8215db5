/* Finds and loads the CUDA backend on first use.
 *
 * The backend (src/kernels/cuda/ and the NCCL collectives) is built as a separate module,
 * libanvil_cuda.so, next to the anvil executable, and opened only when the device "cuda" is asked
 * for. So anvil runs on machines without the CUDA libraries, and a CPU run never maps them (cuBLASLt
 * alone would add about 150 MiB of resident memory at start). The module resolves the anvil functions
 * it calls (anv_error, anv_matmul_precision, ...) from the executable, which exports them. */
#include "kernels/cuda_module.h"

#include "anvil/base.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char MODULE_NAME[] = "libanvil_cuda.so";

static void *handle;
static anv_cuda_module_t module;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* <directory of the running executable>/libanvil_cuda.so, or "" when it cannot be found. */
static void module_next_to_executable(char *path, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    path[0] = '\0';
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(path, cap, "%s/%s", exe, MODULE_NAME);
}

static void *symbol(const char *name) {
    void *p = dlsym(handle, name);
    if (!p && !load_error[0]) snprintf(load_error, sizeof load_error, "%s lacks the symbol %s", MODULE_NAME, name);
    return p;
}

static void load(void) {
    char path[PATH_MAX + 32];
    const char *forced = getenv("ANVIL_CUDA_MODULE");
    if (forced && *forced) {
        snprintf(path, sizeof path, "%s", forced);
    } else {
        module_next_to_executable(path, sizeof path);
        if (!path[0] || access(path, R_OK) != 0) snprintf(path, sizeof path, "%s", MODULE_NAME);
    }
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(load_error, sizeof load_error,
                 "cannot load the CUDA backend %s (%s); build anvil where the CUDA toolkit (nvcc) is installed", path,
                 dlerror());
        return;
    }
    module.kernels = symbol("anv_cuda_kernels");
    *(void **)&module.init = symbol("anv_cuda_init");
    *(void **)&module.alloc = symbol("anv_cuda_alloc");
    *(void **)&module.free = symbol("anv_cuda_free");
    *(void **)&module.sync = symbol("anv_cuda_sync");
    *(void **)&module.memory_bytes = symbol("anv_cuda_memory_bytes");
    *(void **)&module.timer_mark = symbol("anv_cuda_timer_mark");
    *(void **)&module.timer_seconds = symbol("anv_cuda_timer_seconds");
    *(void **)&module.timer_reset = symbol("anv_cuda_timer_reset");
}

const anv_cuda_module_t *anv_cuda_module(void) {
    pthread_once(&once, load);
    if (load_error[0]) {
        anv_error("device cuda: %s", load_error);
        return NULL;
    }
    return &module;
}

void *anv_cuda_module_symbol(const char *name) {
    if (!anv_cuda_module()) return NULL;
    void *p = dlsym(handle, name);
    if (!p) anv_error("device cuda: %s lacks the symbol %s", MODULE_NAME, name);
    return p;
}
