/* The CUDA backend as a module loaded at run time (internal; see cuda_module.c). */
#ifndef ANVIL_KERNELS_CUDA_MODULE_H
#define ANVIL_KERNELS_CUDA_MODULE_H

#include "kernels/table.h"

typedef struct {
    const anv_kernel_table_t *kernels;
    int (*init)(void);                              /* 0 when a usable GPU is present, else -1 with an error */
    void *(*alloc)(size_t bytes, const char *what); /* managed memory, zero-filled */
    void (*free)(void *p);
    void (*sync)(void);
    size_t (*memory_bytes)(void); /* the GPU's memory; 0 when it cannot be read */
    /* The profiler's timers: mark records an event on the kernels' stream and returns its number (-1
     * when the pool of events is used up); seconds waits for event `end` and returns the time from
     * `begin`; reset makes every event free again. */
    int (*timer_mark)(void);
    double (*timer_seconds)(int begin, int end);
    void (*timer_reset)(void);
} anv_cuda_module_t;

/* The loaded module (loaded once); NULL with an error saying why it is not available. */
const anv_cuda_module_t *anv_cuda_module(void);
/* Another symbol of the module (the NCCL collectives); NULL with an error. */
void *anv_cuda_module_symbol(const char *name);

#endif
