/* Learning-rate schedules: linear warmup, then cosine, constant or warmup-stable-decay (WSD). */
#include "anvil/optim.h"

#include <math.h>
#include <string.h>

int anv_schedule_parse(const char *name, anv_schedule_kind_t *kind) {
    if (!strcmp(name, "cosine"))
        *kind = ANV_SCHEDULE_COSINE;
    else if (!strcmp(name, "constant"))
        *kind = ANV_SCHEDULE_CONSTANT;
    else if (!strcmp(name, "wsd"))
        *kind = ANV_SCHEDULE_WSD;
    else
        return anv_error("unknown learning-rate schedule '%s' (expected cosine, constant or wsd)", name);
    return 0;
}

float anv_schedule_lr(const anv_schedule_t *s, long long step) {
    if (step < s->warmup) return s->max_lr * (float)(step + 1) / (float)s->warmup;
    switch (s->kind) {
    case ANV_SCHEDULE_CONSTANT:
        return s->max_lr;
    case ANV_SCHEDULE_COSINE: {
        if (step >= s->total) return s->min_lr;
        /* progress in [0, 1): 0 right after warmup, 1 at `total` */
        double progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);
        return (float)(s->min_lr + 0.5 * (s->max_lr - s->min_lr) * (1.0 + cos(M_PI * progress)));
    }
    case ANV_SCHEDULE_WSD: {
        long long start = s->total - s->decay_steps; /* first step of the decay */
        if (start < s->warmup) start = s->warmup;
        if (step < start) return s->max_lr;
        if (step >= s->total) return s->min_lr;
        double progress = (double)(step - start) / (double)(s->total - start);
        return (float)(s->max_lr + (s->min_lr - s->max_lr) * progress);
    }
    }
    return s->max_lr;
}
