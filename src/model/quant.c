/* Int8 weights for inference (--weights q8): every linear layer's weight and the LM head quantized row
 * by row into kernel_list.h's q8 blocks along the input dimension (GPT-2's Conv1D weights, stored
 * (in, out), are transposed first) and packed as the backend's matmul_q8_forward reads them. The forward passes of
 * inference then multiply with matmul_q8_forward; the fp32 parameters stay for the embeddings and norms. */
#include "model/model_internal.h"

#include <string.h>

/* The matrices to quantize, each a weight of out x in. */
typedef struct {
    const float *w; /* the fp32 weight: (in, out) when in_out, else (out, in) */
    int in_out, out, in;
    anv_q8_matrix_t *q;
} matrix_t;

static int list_matrices(anv_model_t *m, anv_q8_weights_t *q8, matrix_t *list) {
    const anv_config_t *c = &m->cfg;
    int io = m->arch->weights == ANV_WEIGHTS_IN_OUT, n = 0, C = c->n_embd;
    for (int l = 0; l < c->n_layer; l++) {
        const anv_layer_t *w = &m->w.h[l];
        anv_q8_layer_t *q = &q8->h[l];
        list[n++] = (matrix_t){w->qkv_w, io, anv_qkv_width(c), C, &q->qkv};
        list[n++] = (matrix_t){w->attn_proj_w, io, C, C, &q->attn_proj};
        list[n++] = (matrix_t){w->mlp_in_w, io, anv_mlp_in_width(c), C, &q->mlp_in};
        list[n++] = (matrix_t){w->mlp_out_w, io, C, c->n_ff, &q->mlp_out};
    }
    list[n++] = (matrix_t){m->w.head, 0, m->Vp, C, &q8->head};
    return n;
}

/* The weight's rows (out, in) on the host, transposed from (in, out) where stored so. */
static float *host_rows(const matrix_t *x) {
    size_t n = (size_t)x->out * x->in;
    float *stored = anv_alloc(n * sizeof(float), "weight for quantization");
    float *rows = stored && x->in_out ? anv_alloc(n * sizeof(float), "weight for quantization") : stored;
    if (!rows) {
        anv_free(stored);
        return NULL;
    }
    anv_device_download(stored, x->w, n * sizeof(float));
    if (x->in_out) {
        anv_transpose(rows, stored, (size_t)x->out, (size_t)x->in);
        anv_free(stored);
    }
    return rows;
}

void anv_q8_free(anv_q8_weights_t *q8) {
    if (!q8) return;
    anv_device_free(q8->block);
    anv_free(q8->h);
    anv_free(q8);
}

int anv_model_quantize_q8(anv_model_t *m, size_t *bytes) {
    const anv_config_t *c = &m->cfg;
    if (m->q8) return anv_error("the model's weights are int8 already");
    if (m->lora) return anv_error("int8 weights: merge the LoRA adapters into the model first");
    if (c->n_embd % ANV_Q8_BLOCK || c->n_ff % ANV_Q8_BLOCK)
        return anv_error("int8 weights need n_embd (%d) and the MLP width (%d) to be multiples of %d", c->n_embd,
                         c->n_ff, ANV_Q8_BLOCK);
    anv_q8_weights_t *q8 = anv_calloc(sizeof *q8, "int8 weights");
    matrix_t *list = anv_alloc(sizeof *list * (size_t)(4 * c->n_layer + 1), "int8 weights");
    if (q8) q8->h = anv_calloc(sizeof *q8->h * (size_t)c->n_layer, "int8 weights");
    int rc = q8 && list && q8->h ? 0 : -1, n = rc == 0 ? list_matrices(m, q8, list) : 0;
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)list[i].out * list[i].in;
        q8->bytes += count + count / ANV_Q8_BLOCK * sizeof(float);
    }
    if (rc == 0 && !(q8->block = anv_device_alloc(q8->bytes, "int8 weights"))) rc = -1;
    char *at = q8 ? q8->block : NULL;
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t count = (size_t)list[i].out * list[i].in;
        list[i].q->q = (int8_t *)at;
        list[i].q->d = (float *)(at + count); /* count is a multiple of 32: aligned */
        at += count + count / ANV_Q8_BLOCK * sizeof(float);
        float *rows = host_rows(&list[i]), *dev = rows ? anv_device_alloc(count * sizeof(float), "weight") : NULL;
        if (dev) {
            anv_device_upload(dev, rows, count * sizeof(float));
            anv_quantize_q8(list[i].q->q, list[i].q->d, dev, count);
            anv_pack_q8(list[i].q->q, list[i].q->d, list[i].in, list[i].out);
            anv_device_sync();
        }
        rc = dev ? 0 : -1;
        anv_device_free(dev);
        anv_free(rows);
    }
    anv_free(list);
    if (rc == 0 && anv_kernel_status() != 0) rc = anv_error_prefix("int8 weights");
    if (rc != 0) {
        anv_q8_free(q8);
        return -1;
    }
    m->q8 = q8;
    if (bytes) *bytes = q8->bytes;
    return 0;
}
