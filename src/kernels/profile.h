/* The kernel profiler's hooks for dispatch.c (internal; the public side is in anvil/kernels.h). */
#ifndef ANVIL_KERNELS_PROFILE_H
#define ANVIL_KERNELS_PROFILE_H

/* The kernels that are timed: every line of kernel_list.h, in its order (the report's ties). */
typedef enum {
#define ANV_KERNEL(ret, name, params, args) PROF_##name,
#include "anvil/kernel_list.h"
    PROF_KERNELS
} anv_prof_kernel_t;

/* Nonzero between anv_profile_start and anv_profile_stop; set with release order after the profiler's
 * state, read with acquire order, so that a kernel call on any thread sees that state complete. */
extern int anv_profiling;

/* A timed call: begin returns a mark (negative: this call is not timed, being on another thread than the
 * one that started profiling), end adds the time since the mark to the kernel's total. */
long anv_profile_begin(void);
void anv_profile_end(anv_prof_kernel_t kernel, long mark);

/* Runs `call` (a statement), timed as `kernel` while profiling. */
#define ANV_PROFILED(kernel, call)                                                                                     \
    do {                                                                                                               \
        if (__builtin_expect(__atomic_load_n(&anv_profiling, __ATOMIC_ACQUIRE), 0)) {                                  \
            long mark_ = anv_profile_begin();                                                                          \
            call;                                                                                                      \
            anv_profile_end(kernel, mark_);                                                                            \
        } else {                                                                                                       \
            call;                                                                                                      \
        }                                                                                                              \
    } while (0)

#endif
