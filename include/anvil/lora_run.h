/* LoRA runs and how any run's weights are loaded.
 *
 * A LoRA run directory holds what every run holds (trainer.h), with adapter_model.safetensors in place of
 * model.safetensors (checkpoint.h), and adapter_config.json: PEFT's file, so that Hugging Face's PEFT
 * loads the adapters, with the base run and the hash of the base weights the adapters were trained on:
 *   {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16, "lora_dropout": 0,
 *    "target_modules": ["q_proj", "v_proj"], "fan_in_fan_out": false, "bias": "none",
 *    "init_lora_weights": "gaussian", "base_model_name_or_path": "/abs/path/of/base/run",
 *    "anvil_targets": "q,v", "anvil_base_weights_hash": "<16 hex digits>"}
 * Loading it loads the base's committed weights (a LoRA base merged), refuses a base that is missing or
 * whose weights changed, and adds the adapters. */
#ifndef ANVIL_LORA_RUN_H
#define ANVIL_LORA_RUN_H

#include "anvil/model.h"

typedef struct {
    anv_lora_config_t lora;
    char base[4096];    /* the base run directory, absolute */
    uint64_t base_hash; /* anv_model_weights_hash of the base weights */
} anv_lora_run_t;

int anv_lora_run_is(const char *run_dir); /* 1 when run_dir has adapter_config.json */
/* Writes run_dir/adapter_config.json (atomically) for m, the base with its adapters added. */
int anv_lora_run_write(const char *run_dir, const anv_lora_run_t *r, const anv_model_t *m);
int anv_lora_run_read(const char *run_dir, anv_lora_run_t *r);

/* Reads the committed weights of run_dir into m, a model of the same config: a plain run's
 * model.safetensors, or a LoRA run's base with the run's adapters merged into it. */
int anv_run_load_weights(const char *run_dir, anv_model_t *m);
/* The model of run_dir (config.json) with its committed weights; a LoRA run's model has its adapters,
 * on its checked base. */
int anv_run_load_model(const char *run_dir, anv_model_t **m);
/* The frozen part of a LoRA run: reads the base of r into m (checked against r->base_hash and the run's
 * config) and adds r's adapters, initialised from seed (a resume or a load then reads them). */
int anv_lora_run_base(const char *run_dir, const anv_lora_run_t *r, anv_model_t *m, uint64_t seed);

#endif
