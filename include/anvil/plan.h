/* Compute-optimal planning: a parametric loss law L(N, D) = E + A / N^alpha + B / D^beta (N parameters,
 * D training tokens), its compute-optimal allocation under C = 6 N D, repeated data, concrete model
 * shapes near a parameter count, the throughput of this machine, and fitting a law to measured runs
 * (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", Approach 3). */
#ifndef ANVIL_PLAN_H
#define ANVIL_PLAN_H

#include "anvil/model.h"

#include <stddef.h>

typedef struct {
    double E, A, B, alpha, beta;
    /* > 0: fitted to runs that repeated this many unique tokens, on what their tokens and parameters
     * were worth (anv_effective_tokens, anv_effective_params). */
    double unique_tokens;
    /* R_D*, how fast repeated tokens lose their worth: fitted with unique_tokens; 0 for Muennighoff et
     * al.'s ANV_REPEAT_DECAY. */
    double repeat_decay;
    /* R_N*, how fast parameters beyond what the unique tokens support lose their worth: 0 for
     * ANV_EXCESS_DECAY; INFINITY for none (N' = N: a FIT.json of an earlier anvil, fitted so). */
    double excess_decay;
} anv_law_t;

/* "hoffmann" (Hoffmann et al. 2022) or "epoch" (Besiroglu et al. 2024, Epoch AI's replication). */
int anv_law_builtin(const char *name, anv_law_t *law);
extern const char *const anv_law_builtin_names; /* "hoffmann, epoch" for messages */
/* A JSON object with the numbers E, A, B, alpha, beta (A, B, alpha, beta > 0) and optionally unique_tokens,
 * repeat_decay and excess_decay (absent beside unique_tokens: INFINITY). */
int anv_law_load(const char *path, anv_law_t *law);
double anv_law_loss(const anv_law_t *law, double params, double tokens);

/* The compute-optimal point of a budget: params N, tokens D, flops C = 6 N D, the law's loss there. */
typedef struct {
    double flops, params, tokens, loss;
} anv_optimum_t;
/* argmin over N of L(N, C / (6 N)): N = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)). */
void anv_law_optimum_for_flops(const anv_law_t *law, double flops, anv_optimum_t *out);
/* The budget whose compute-optimal token count is `tokens`, and its optimum. */
void anv_law_optimum_for_tokens(const anv_law_t *law, double tokens, anv_optimum_t *out);

/* Repeated data (Muennighoff et al. 2023), with `unique` distinct training tokens: what `tokens` trained
 * on are worth as unique tokens (tokens itself when tokens <= unique); what `params` are worth when they
 * exceed U_N, the law's compute-optimal size for the unique tokens; and the law's loss at both.
 * unique <= 0: no limit, nothing discounted. */
#define ANV_REPEAT_DECAY 15.3878 /* Muennighoff et al.'s fitted R_D* */
#define ANV_EXCESS_DECAY 5.3097  /* and R_N*: parameters beyond about 5 U_N add almost nothing */
/* Both follow one curve: a base (U_D, U_N) times 1 + R, with R of it repeated or in excess, is worth the
 * base times 1 + R* (1 - e^(-R / R*)) (exact to rounding where R / R* is tiny). */
double anv_repeat_worth(double excess, double decay);
double anv_effective_tokens(double tokens, double unique, double repeat_decay);
/* The same with the law's R_D*. */
double anv_law_effective_tokens(const anv_law_t *law, double tokens, double unique);
double anv_effective_params(const anv_law_t *law, double params, double unique);
double anv_law_loss_repeated(const anv_law_t *law, double params, double tokens, double unique);
/* The optimum of a budget when only `unique` tokens exist: N minimises anv_law_loss_repeated along
 * C = 6 N D; tokens is what is trained on (tokens / unique epochs). */
void anv_law_optimum_repeated(const anv_law_t *law, double flops, double unique, anv_optimum_t *out);

/* Fitting a law to measured runs. */
typedef struct {
    double params, tokens, loss;
} anv_point_t;
/* A CSV with the header "params,tokens,loss" and one run per line, every value a positive number.
 * Errors name the file and line. *points is freed with anv_free. */
int anv_points_load(const char *path, anv_point_t **points, int *n);

typedef struct {
    anv_law_t law;
    double objective; /* sum over points of Huber(log L^ - log L), delta 1e-3 */
    int starts;       /* initial points tried */
} anv_fit_t;
/* Minimises the Huber loss of log L^ = LSE(a - alpha log N, b - beta log D, e) against log L over the
 * points with L-BFGS from every start of the grid alpha, beta in {0, 0.5, .., 2}, e in {-1, -0.5, .., 1},
 * a, b in {0, 5, .., 25}; keeps the best. Needs at least 5 points. */
int anv_law_fit(const anv_point_t *points, int n, anv_fit_t *out);
/* The same for runs that repeated `unique` tokens: on what their tokens and parameters were worth, with
 * log R_D* a sixth variable (each start of the grid also at R_D* 3, 15 and 75) and R_N* Muennighoff et
 * al.'s; out->law holds unique, the R_D* and the R_N*. Needs at least 6 runs. */
int anv_law_fit_repeated(const anv_point_t *runs, int n, double unique, anv_fit_t *out);
/* 95% percentile intervals of E, A, B, alpha, beta (lo[5], hi[5] in that order) and of the
 * compute-optimal N at `flops`: `resamples` fits to runs drawn with replacement, each started from `best`
 * and its neighbours (runs as trained; a `best` fitted to repeated runs keeps its unique tokens, R_D* and
 * R_N*). Deterministic for a seed. */
typedef struct {
    double lo[5], hi[5];
    double n_opt_lo, n_opt_hi;
} anv_fit_ci_t;
int anv_law_bootstrap(const anv_point_t *runs, int n, const anv_law_t *best, int resamples, double flops, uint64_t seed,
                      anv_fit_ci_t *out);

/* FIT.json: E, A, B, alpha, beta, the objective, the number of points, the 95% intervals and the runs
 * fitted ("runs": [[params, tokens, loss], ...], tokens as trained on). */
int anv_fit_json(const anv_fit_t *fit, const anv_fit_ci_t *ci, const anv_point_t *runs, int n, anv_buf_t *out);
/* The runs a FIT.json was fitted on; *n = 0 for one without them. Errors name the file and the run. *runs
 * is freed with anv_free. */
int anv_fit_runs_load(const char *path, anv_point_t **runs, int *n);
/* The most epochs of `unique` tokens that the runs within a factor of 2 of `params` read (0 for none),
 * and their sizes *lo to *hi: how far the runs measured what repeated tokens are worth near that size. */
double anv_epochs_measured(const anv_point_t *runs, int n, double unique, double params, double *lo, double *hi);

/* The x in [lo, hi] where f is least: f at `points` (>= 2) evenly spaced values, the first lowest kept,
 * then `steps` golden-section narrowings between its neighbours; returns the middle of the last interval. */
typedef double (*anv_scalar_fn)(void *ctx, double x);
double anv_scan_min(anv_scalar_fn f, void *ctx, double lo, double hi, int points, int steps);

/* Unconstrained minimisation by L-BFGS with a line search satisfying the strong Wolfe conditions.
 * f returns the objective at x (n) and writes its gradient into grad (n). */
typedef double (*anv_objective_fn)(void *ctx, const double *x, double *grad);
typedef struct {
    int max_iterations; /* e.g. 200 */
    int history;        /* correction pairs kept, e.g. 8 */
    double grad_tol;    /* stop when max |grad| <= grad_tol */
    double rel_tol;     /* or when the objective improves by less than rel_tol (relative) */
} anv_lbfgs_opts_t;
/* Improves x in place; returns the iterations taken, -1 on allocation failure. *fx: the final value. */
int anv_lbfgs(anv_objective_fn f, void *ctx, double *x, int n, const anv_lbfgs_opts_t *opts, double *fx);

/* Model shapes of about `params` parameters (anv_config_num_params; within a factor ANV_SHAPE_SLACK) for
 * an architecture, vocabulary and sequence length: up to max configs sorted by size, widths a multiple of
 * 32 (64 from 256 on), heads of 64 (32 below 128 wide), depth-to-width ratios near those of trained
 * models; Llama with n_kv_head = n_head / 3 (or / 4, / 2) and n_ff = 8/3 n_embd rounded up to 64.
 * Returns how many. */
#define ANV_SHAPE_SLACK 1.25
int anv_plan_shapes(anv_arch_t arch, double params, int vocab_size, int seq, anv_config_t *out, int max);
/* The same, but only shapes of the usual proportions (where a small size falls between them, the one
 * nearest in size): the models of one study, whose losses should differ by size and not by a stray shape. */
int anv_plan_usual_shapes(anv_arch_t arch, double params, int vocab_size, int seq, anv_config_t *out, int max);
/* The index of the shape that anv_plan_shapes ranks first for params: near it in size and nearest the
 * usual proportions (n > 0). */
int anv_plan_best(const anv_config_t *shapes, int n, double params);
/* The index of the shape whose parameter count is nearest params (n > 0). */
int anv_plan_nearest(const anv_config_t *shapes, int n, double params);
/* The smallest shape anv_plan_shapes can give for an architecture and vocabulary. */
anv_config_t anv_plan_smallest(anv_arch_t arch, int vocab_size, int seq);

/* An IsoFLOP ladder: `levels` compute budgets, each level_ratio times the one before, and at each up
 * to `sizes` models spaced by factors of size_step around the prior law's N_opt, each trained on the
 * C / (6 N) tokens of its level in whole steps of batch_tokens (sizes below the smallest shape move
 * up to start there). Runs shorter than min_steps and sizes without a shape are left out. */
typedef struct {
    anv_arch_t arch;
    int vocab, seq;
    long long batch_tokens;
    int levels, sizes;
    double level_ratio, size_step;
    long long min_steps;
} anv_ladder_spec_t;

typedef struct {
    anv_config_t cfg;
    int level;       /* 0-based compute level */
    double flops;    /* the level's C */
    double params;   /* anv_config_num_params(&cfg) */
    long long steps; /* optimizer steps of batch_tokens */
} anv_ladder_run_t;

/* The ladder whose smallest level is c0 FLOPs, smallest level and size first; returns how many runs
 * (at most max). */
int anv_ladder_design(const anv_ladder_spec_t *spec, const anv_law_t *prior, double c0, anv_ladder_run_t *out, int max);
/* A shape for a run of about `params` parameters beyond the ladder (its check): the ladder's own shape
 * nearest in size where one lies within ANV_SHAPE_SLACK, so that such a run differs from the ladder's in
 * compute and data and not also in shape, whose depth the law does not see; else the usual shape. */
int anv_ladder_shape_near(const anv_ladder_spec_t *spec, const anv_ladder_run_t *runs, int n, double params,
                          anv_config_t *cfg);
/* The sum of 6 N D over the runs. */
double anv_ladder_flops(const anv_ladder_run_t *runs, int n, long long batch_tokens);

/* Writes dir/isoflop.svg (loss against parameters per compute level: the runs, the law along each
 * level, its minima, the frontier) and dir/prediction.svg (the law's loss against each measured loss),
 * with repeated tokens at their worth for a law fitted so. loss[i] is run i's measured loss; at most 8
 * levels. */
int anv_ladder_plots(const char *dir, const anv_ladder_run_t *runs, const double *loss, int n, const anv_law_t *law);

/* Training speed on this machine against model size: the share of the peak (MFU) that whole training
 * steps reach, timed at a few shapes; log-linear in the parameter count between them, flat beyond
 * (0.3 before any is timed). Small models reach a far lower share than large ones. */
#define ANV_SPEED_POINTS 8
typedef struct {
    double peak; /* FLOP/s of the matrix products at the precision used */
    int n;
    double params[ANV_SPEED_POINTS], mfu[ANV_SPEED_POINTS]; /* ascending params */
} anv_speed_t;
/* Times a training step (zero_grad, forward, backward, clipping, AdamW) of cfg on random tokens (B, T)
 * at the current matmul precision, the mean over a second of steps after a warm-up step, and adds the
 * point; *seconds: the step's time. */
int anv_speed_add(anv_speed_t *s, const anv_config_t *cfg, int B, int T, double *seconds);
double anv_speed_mfu(const anv_speed_t *s, double params);
double anv_speed_tokens_per_s(const anv_speed_t *s, const anv_config_t *cfg, int T);
/* --precision auto for models not made yet (plan, scale run): anv_precision_measure on the shape nearest
 * params (the smallest one when none is near), which *shape gets, with micro-batches of B rows of T. */
int anv_plan_precision(anv_arch_t arch, double params, int vocab_size, int B, int T, anv_config_t *shape,
                       anv_precision_timing_t *out);

/* The model that reaches the lowest loss (repeated data counted when unique > 0) in `seconds` of
 * training on this machine: each size trains on seconds x its own tokens per second, so sizes that use
 * the machine better get more FLOPs. *out: its params, tokens, 6 N D and loss; *shape: its config. */
int anv_plan_for_seconds(const anv_law_t *law, const anv_speed_t *speed, anv_arch_t arch, int vocab, int seq,
                         double seconds, double unique, anv_optimum_t *out, anv_config_t *shape);

#endif
