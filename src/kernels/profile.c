/* The kernel profiler (anv_profile_start / anv_profile_stop): time per kernel, summed over calls.
 * On the CPU a call's time is its wall time: the kernels return when their work is done. On the GPU,
 * where they return once their work is queued, it is the time between two CUDA events recorded on the
 * kernels' stream before and after the call, read when profiling stops, so the timing leaves the
 * asynchronous execution as it is. Only the thread that started profiling is timed. Kernels never call
 * the public (dispatched) kernels themselves: the CPU copies call their own instruction set's functions
 * directly (isa.h), so timed calls do not nest. */
#include "kernels/profile.h"

#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cuda_module.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int anv_profiling;

static const char *const names[PROF_KERNELS] = {
#define ANV_KERNEL(ret, name, params, args) #name,
#include "anvil/kernel_list.h"
};

static struct {
    long calls;
    double seconds;
} totals[PROF_KERNELS];
static pthread_t owner;
static const anv_cuda_module_t *gpu; /* the CUDA module while profiling on the GPU, else NULL */
static double cpu_start;
static int gpu_start;

/* GPU calls whose events are read at stop: the kernel and its two events. */
enum { MAX_PENDING = 8192 };
static struct {
    anv_prof_kernel_t kernel;
    int begin, end;
} pending[MAX_PENDING];
static int n_pending, n_untimed;

void anv_profile_start(void) {
    memset(totals, 0, sizeof totals);
    n_pending = n_untimed = 0;
    gpu = strcmp(anv_device(), "cuda") == 0 ? anv_cuda_module() : NULL;
    if (gpu) {
        anv_device_sync(); /* events recorded from here on measure only what is queued from here on */
        gpu->timer_reset();
    }
    owner = pthread_self();
    __atomic_store_n(&anv_profiling, 1, __ATOMIC_RELEASE);
}

long anv_profile_begin(void) {
    if (!pthread_equal(pthread_self(), owner)) return -1;
    if (gpu)
        gpu_start = gpu->timer_mark();
    else
        cpu_start = anv_now();
    return 0;
}

void anv_profile_end(anv_prof_kernel_t kernel, long mark) {
    if (mark < 0) return;
    totals[kernel].calls++;
    if (!gpu) {
        totals[kernel].seconds += anv_now() - cpu_start;
        return;
    }
    int end = gpu->timer_mark();
    if (gpu_start < 0 || end < 0 || n_pending == MAX_PENDING) {
        n_untimed++;
        return;
    }
    pending[n_pending].kernel = kernel;
    pending[n_pending].begin = gpu_start;
    pending[n_pending].end = end;
    n_pending++;
}

static int by_time(const void *a, const void *b) {
    const anv_profile_entry_t *x = a, *y = b;
    return x->seconds < y->seconds ? 1 : x->seconds > y->seconds ? -1 : 0;
}

int anv_profile_stop(anv_profile_entry_t *out, int max) {
    __atomic_store_n(&anv_profiling, 0, __ATOMIC_RELEASE);
    if (gpu) {
        for (int i = 0; i < n_pending; i++)
            totals[pending[i].kernel].seconds += gpu->timer_seconds(pending[i].begin, pending[i].end);
        if (n_untimed)
            anv_log(ANV_LOG_WARN, "profile: %d GPU kernel calls were not timed (more than %d events)", n_untimed,
                    2 * MAX_PENDING);
    }
    int n = 0;
    for (int k = 0; k < PROF_KERNELS && n < max; k++)
        if (totals[k].calls) out[n++] = (anv_profile_entry_t){names[k], totals[k].calls, totals[k].seconds};
    qsort(out, (size_t)n, sizeof *out, by_time);
    return n;
}
