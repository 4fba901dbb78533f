/* The CSR sparse layer y = x·Wᵀ + b, W (n_out, n_in) with nnz stored entries (docs/sparse.md):
 * forward SpMM, backward SpMM with the transpose for dx and SDDMM for the values' gradient, on
 * the backend's CSR ops. Those take the batch feature-major, so a batch of B > 1 is transposed
 * in and out (O(B·n), next to the O(B·nnz) products). Parameters: the nnz values, then the bias;
 * the pattern (row_ptr, col_idx: int32) is the layer's own, in backend memory with a host
 * mirror, saved in checkpoints beside the parameters. Also the "sparse" kind's descriptor. */
#include "sparse/csr.h"
#include "dense/init.h"

#include <factornet/sparse.h>

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sparse {
    fnet_layer base;
    int64_t nnz;
    int32_t *row_ptr, *col;     // backend memory: (n_out + 1), (nnz)
    int32_t *h_row_ptr, *h_col; // the host mirror
    fnet_init init;             // what init drew the values with (SET's new weights)
    float *xt, *yt, *dxt;       // (n_in, max_batch), (n_out, max_batch), (n_in, max_batch)
    const float *xt_of;         // the x whose transpose xt holds (forward -> backward), or NULL
    int64_t xt_batch;
    float *probe;               // RigL: dense gradient (n_out, n_in) accumulated by backward
};

static struct sparse *S(const fnet_layer *l)
{
    return (struct sparse *)l;
}

static const float *bias_of(const fnet_layer *l, const float *w)
{
    return w + S(l)->nnz;
}

static fnet_status sparse_reserve(fnet_layer *l, int64_t max_batch)
{
    struct sparse *s = S(l);
    s->xt_of = NULL;
    float **const bufs[] = {&s->xt, &s->yt, &s->dxt};
    const int64_t counts[] = {l->n_in * max_batch, l->n_out * max_batch, l->n_in * max_batch};
    return fnet_layer_workspaces(l, 3, bufs, counts, "sparse workspace", max_batch);
}

// x (B, n_in) -> y (B, n_out) = x·Wᵀ + b: Yᵀ = W·Xᵀ on the transposed batch (B = 1: in place)
static fnet_status sparse_forward(fnet_layer *l, const float *x, int64_t B, float *y)
{
    struct sparse *s = S(l);
    fnet_ctx *ctx = l->ctx;
    const struct fnet_backend_ops *be = ctx->be;
    if (B == 1) {
        be->csr_spmm(ctx, l->n_out, l->n_in, 1, s->row_ptr, s->col, l->w, x, y, false);
    } else {
        be->transpose(ctx, B, l->n_in, x, s->xt);
        s->xt_of = x;
        s->xt_batch = B;
        be->csr_spmm(ctx, l->n_out, l->n_in, B, s->row_ptr, s->col, l->w, s->xt, s->yt, false);
        be->transpose(ctx, l->n_out, B, s->yt, y);
    }
    be->bias_add(ctx, B, l->n_out, bias_of(l, l->w), y);
    return FNET_OK;
}

// dvalues (+)= SDDMM(dyᵀ, xᵀ) at the stored entries; db (+)= Σ_rows dy; dxᵀ = Wᵀ·dyᵀ
static fnet_status sparse_backward(fnet_layer *l, const float *x, const float *y, const float *dy,
                                   int64_t B, float *dx, bool accumulate)
{
    (void)y;
    struct sparse *s = S(l);
    fnet_ctx *ctx = l->ctx;
    const struct fnet_backend_ops *be = ctx->be;
    be->bias_grad(ctx, B, l->n_out, dy, l->g + s->nnz, accumulate);
    const float *xt = x, *dyt = dy;
    if (B > 1) {
        if (s->xt_of != x || s->xt_batch != B)
            be->transpose(ctx, B, l->n_in, x, s->xt);
        s->xt_of = NULL; // yt is overwritten below: the next backward transposes again
        be->transpose(ctx, B, l->n_out, dy, s->yt);
        xt = s->xt;
        dyt = s->yt;
    }
    be->csr_sddmm(ctx, l->n_out, l->n_in, B, s->row_ptr, s->col, dyt, xt, l->g, accumulate);
    if (s->probe != NULL)
        be->sgemm(ctx, true, false, l->n_out, l->n_in, B, 1.0f, dy, l->n_out, x, l->n_in, 1.0f,
                  s->probe, l->n_in);
    if (dx != NULL) {
        if (B == 1) {
            be->csr_spmm_t(ctx, l->n_out, l->n_in, 1, s->row_ptr, s->col, l->w, dy, dx, false);
        } else {
            be->csr_spmm_t(ctx, l->n_out, l->n_in, B, s->row_ptr, s->col, l->w, dyt, s->dxt,
                           false);
            be->transpose(ctx, l->n_in, B, s->dxt, dx);
        }
    }
    return FNET_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// want distinct positions in [0, total), uniformly: draws with replacement until want distinct
// ones are seen, in batches of exactly as many as are still missing (so the set is the one
// drawing one at a time would give), sorted. O(want·log want) for want <= total/2.
static void draw_distinct(fnet_rng *rng, int64_t total, int64_t want, int64_t *pos)
{
    int64_t have = 0;
    while (have < want) {
        for (int64_t i = have; i < want; i++)
            pos[i] = (int64_t)fnet_rng_below(rng, (uint64_t)total);
        qsort(pos, (size_t)want, sizeof(int64_t), cmp_i64);
        have = 0;
        for (int64_t i = 0; i < want; i++)
            if (have == 0 || pos[i] != pos[have - 1])
                pos[have++] = pos[i];
    }
}

// A pattern of nnz entries drawn uniformly among the n_out·n_in positions, into the host mirror
// as sorted CSR. In O(nnz·log nnz), not O(n_out·n_in): a checkpoint's spec may name a huge
// matrix with few entries. Above half full, the positions left out are drawn instead.
static fnet_status draw_pattern(struct sparse *s, fnet_rng *rng)
{
    const fnet_layer *l = &s->base;
    int64_t total = l->n_out * l->n_in, nnz = s->nnz;
    bool complement = nnz > total / 2;
    int64_t want = complement ? total - nnz : nnz;
    int64_t *pos = fnet_malloc_array((size_t)(want > 0 ? want : 1), sizeof(int64_t));
    if (pos == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "sparse pattern of %lld entries",
                         (long long)want);
    draw_distinct(rng, total, want, pos);
    int64_t k = 0, skip = 0;
    s->h_row_ptr[0] = 0;
    for (int64_t r = 0; r < l->n_out; r++) {
        if (!complement) {
            while (k < nnz && pos[k] / l->n_in == r) {
                s->h_col[k] = (int32_t)(pos[k] % l->n_in);
                k++;
            }
        } else {
            for (int64_t c = 0; c < l->n_in; c++) {
                if (skip < want && pos[skip] == r * l->n_in + c)
                    skip++;
                else
                    s->h_col[k++] = (int32_t)c;
            }
        }
        s->h_row_ptr[r + 1] = (int32_t)k;
    }
    fnet_free(pos);
    return FNET_OK;
}

static void upload_pattern(struct sparse *s)
{
    fnet_ctx *ctx = s->base.ctx;
    ctx->be->upload(ctx, s->row_ptr, s->h_row_ptr, (size_t)(s->base.n_out + 1) * sizeof(int32_t));
    ctx->be->upload(ctx, s->col, s->h_col, (size_t)s->nnz * sizeof(int32_t));
}

// Fans of a sparse layer for the initializers: the stored entries per row and per column on
// average (Evci et al. scale a sparse layer's init by its fan-in this way).
static void sparse_fans(const struct sparse *s, int64_t *fan_in, int64_t *fan_out)
{
    const fnet_layer *l = &s->base;
    *fan_in = (s->nnz + l->n_out - 1) / l->n_out;
    *fan_out = (s->nnz + l->n_in - 1) / l->n_in;
}

// The pattern drawn from rng first, then the values, the bias zero
static fnet_status sparse_init(fnet_layer *l, fnet_init init, fnet_rng *rng,
                               struct fnet_init_out *out)
{
    struct sparse *s = S(l);
    fnet_status st = draw_pattern(s, rng);
    if (st != FNET_OK)
        return st;
    upload_pattern(s);
    s->init = init;
    int64_t fan_in, fan_out;
    sparse_fans(s, &fan_in, &fan_out);
    float piece[FNET_INIT_CHUNK];
    for (int64_t done = 0; done < s->nnz; done += FNET_INIT_CHUNK) {
        int64_t k = s->nnz - done < FNET_INIT_CHUNK ? s->nnz - done : FNET_INIT_CHUNK;
        fnet_init_fill(init, fan_in, fan_out, rng, k, piece);
        fnet_init_put(out, piece, k);
    }
    fnet_init_put_zeros(out, l->n_out);
    return FNET_OK;
}

static double sparse_flops(const fnet_layer *l, int64_t B)
{
    return 2.0 * (double)B * (double)S(l)->nnz;
}

static fnet_status sparse_to_dense(const fnet_layer *l, float *W)
{
    const struct sparse *s = S(l);
    float *v = fnet_malloc_array((size_t)s->nnz, sizeof(float));
    if (v == NULL)
        return fnet_fail(l->ctx, FNET_ERR_OUT_OF_MEMORY, "sparse to_dense: %" PRId64 " values",
                         s->nnz);
    l->ctx->be->download(l->ctx, v, l->w, (size_t)s->nnz * sizeof(float));
    memset(W, 0, (size_t)(l->n_out * l->n_in) * sizeof(float));
    for (int64_t r = 0; r < l->n_out; r++)
        for (int32_t k = s->h_row_ptr[r]; k < s->h_row_ptr[r + 1]; k++)
            W[r * l->n_in + s->h_col[k]] = v[k];
    fnet_free(v);
    return FNET_OK;
}

static int sparse_num_tensors(const fnet_layer *l)
{
    (void)l;
    return 2;
}

static void sparse_tensor(const fnet_layer *l, int i, fnet_tensor_info *t)
{
    t->ndim = 1;
    if (i == 0) {
        t->name = "values";
        t->shape[0] = S(l)->nnz;
        t->offset = 0;
        t->decay = true;
    } else {
        t->name = "bias";
        t->shape[0] = l->n_out;
        t->offset = S(l)->nnz;
        t->decay = false;
    }
    t->numel = t->shape[0];
}

static int sparse_num_aux(const fnet_layer *l)
{
    (void)l;
    return 2;
}

static void sparse_aux(const fnet_layer *l, int i, struct fnet_aux_info *a)
{
    const struct sparse *s = S(l);
    a->name = i == 0 ? "row_ptr" : "col_idx";
    a->numel = i == 0 ? l->n_out + 1 : s->nnz;
    a->data = i == 0 ? s->row_ptr : s->col;
}

// A pattern read from a file: row_ptr from 0 to nnz, never decreasing, columns in [0, n_in) and
// increasing within each row.
static fnet_status sparse_check_aux(const fnet_layer *l, const void *const *data)
{
    const struct sparse *s = S(l);
    const unsigned char *rp = data[0], *cp = data[1];
    int32_t prev = 0, first;
    memcpy(&first, rp, sizeof(first));
    if (first != 0)
        return fnet_fail(l->ctx, FNET_ERR_FORMAT, "tensor 'row_ptr': element 0 is %" PRId32
                         ", not 0", first);
    for (int64_t r = 0; r < l->n_out; r++) {
        int32_t end;
        memcpy(&end, rp + 4 * (r + 1), sizeof(end));
        if (end < prev || end > s->nnz)
            return fnet_fail(l->ctx, FNET_ERR_FORMAT, "tensor 'row_ptr': element %" PRId64 " is "
                             "%" PRId32 ", outside [%" PRId32 ", %" PRId64 "] (row pointers "
                             "must not decrease)", r + 1, end, prev, s->nnz);
        int32_t last = -1;
        for (int32_t k = prev; k < end; k++) {
            int32_t c;
            memcpy(&c, cp + 4 * (int64_t)k, sizeof(c));
            if (c < 0 || c >= l->n_in)
                return fnet_fail(l->ctx, FNET_ERR_FORMAT, "tensor 'col_idx': element %" PRId32
                                 " is %" PRId32 ", outside [0, %" PRId64 ")", k, c, l->n_in);
            if (c <= last)
                return fnet_fail(l->ctx, FNET_ERR_FORMAT, "tensor 'col_idx': element %" PRId32
                                 " (%" PRId32 ") does not follow %" PRId32 " in row %" PRId64
                                 ": columns must increase within a row", k, c, last, r);
            last = c;
        }
        prev = end;
    }
    if (prev != s->nnz)
        return fnet_fail(l->ctx, FNET_ERR_FORMAT, "tensor 'row_ptr': last element is %" PRId32
                         ", expected nnz %" PRId64, prev, s->nnz);
    return FNET_OK;
}

static void sparse_set_aux(fnet_layer *l, const void *const *data)
{
    struct sparse *s = S(l);
    memcpy(s->h_row_ptr, data[0], (size_t)(l->n_out + 1) * sizeof(int32_t));
    memcpy(s->h_col, data[1], (size_t)s->nnz * sizeof(int32_t));
    upload_pattern(s);
}

static void sparse_destroy(fnet_layer *l)
{
    struct sparse *s = S(l);
    fnet_ctx *ctx = l->ctx;
    ctx->be->free(ctx, s->row_ptr);
    ctx->be->free(ctx, s->col);
    ctx->be->free(ctx, s->xt);
    ctx->be->free(ctx, s->yt);
    ctx->be->free(ctx, s->dxt);
    fnet_free(s->h_row_ptr);
    fnet_free(s->h_col);
}

static void sparse_describe(const fnet_layer *l, struct fnet_spec_item *it)
{
    fnet_spec_item_init(it, &fnet_sparse_desc);
    it->n = l->n_out;
    fnet_spec_set_int(it, "nnz", S(l)->nnz);
}

static const struct fnet_layer_ops sparse_ops = {
    .desc = &fnet_sparse_desc,
    .needs = FNET_OPS(FNET_OP_CSR_SPMM) | FNET_OPS(FNET_OP_CSR_SPMM_T) |
             FNET_OPS(FNET_OP_CSR_SDDMM) | FNET_OPS(FNET_OP_TRANSPOSE),
    .init = sparse_init,
    .reserve = sparse_reserve,
    .forward = sparse_forward,
    .backward = sparse_backward,
    .flops = sparse_flops,
    .to_dense = sparse_to_dense,
    .num_tensors = sparse_num_tensors,
    .tensor = sparse_tensor,
    .num_aux = sparse_num_aux,
    .aux = sparse_aux,
    .check_aux = sparse_check_aux,
    .set_aux = sparse_set_aux,
    .destroy = sparse_destroy,
    .describe = sparse_describe,
};

// ---- the private face (csr.h) ----

bool fnet_sparse_is(const fnet_layer *l)
{
    return l != NULL && l->ops == &sparse_ops;
}

const int32_t *fnet_sparse_row_ptr(const fnet_layer *l)
{
    return S(l)->h_row_ptr;
}

const int32_t *fnet_sparse_col(const fnet_layer *l)
{
    return S(l)->h_col;
}

void fnet_sparse_set_pattern(fnet_layer *l, const int32_t *row_ptr, const int32_t *col)
{
    struct sparse *s = S(l);
    if (row_ptr != s->h_row_ptr)
        memcpy(s->h_row_ptr, row_ptr, (size_t)(l->n_out + 1) * sizeof(int32_t));
    if (col != s->h_col)
        memcpy(s->h_col, col, (size_t)s->nnz * sizeof(int32_t));
    s->xt_of = NULL;
    upload_pattern(s);
}

void fnet_sparse_probe(fnet_layer *l, float *G)
{
    S(l)->probe = G;
}

fnet_init fnet_sparse_init_kind(const fnet_layer *l)
{
    return S(l)->init;
}

int64_t fnet_sparse_nnz(const fnet_layer *l)
{
    return fnet_sparse_is(l) ? S(l)->nnz : 0;
}

// ---- creation ----

#define MAX_INDEX ((int64_t)INT32_MAX)

fnet_status fnet_sparse_create(fnet_ctx *ctx, int64_t n_in, int64_t n_out, int64_t nnz,
                               fnet_layer **out)
{
    if (ctx == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse: ctx and out must not be NULL");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > MAX_INDEX || n_out >= MAX_INDEX)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse: n_out must be in 1..2^31-2 and n_in "
                         "in 1..2^31-1, got %lld x %lld", (long long)n_out, (long long)n_in);
    if (nnz < 1 || nnz > MAX_INDEX || nnz > n_in * n_out)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse: %lld stored entries do not fit a "
                         "%lld x %lld matrix (1..min(n_out·n_in, 2^31-1))", (long long)nnz,
                         (long long)n_out, (long long)n_in);
    struct sparse *s = fnet_calloc(1, sizeof(*s));
    if (s == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse layer");
    s->nnz = nnz;
    s->init = FNET_INIT_GLOROT_UNIFORM;
    fnet_status st = fnet_layer_base_init(&s->base, ctx, &sparse_ops, n_in, n_out, nnz + n_out);
    if (st != FNET_OK) {
        fnet_free(s);
        return st;
    }
    s->h_row_ptr = fnet_malloc_array((size_t)n_out + 1, sizeof(int32_t));
    s->h_col = fnet_malloc_array((size_t)nnz, sizeof(int32_t));
    s->row_ptr = ctx->be->alloc(ctx, (size_t)(n_out + 1) * sizeof(int32_t));
    s->col = ctx->be->alloc(ctx, (size_t)nnz * sizeof(int32_t));
    if (s->h_row_ptr == NULL || s->h_col == NULL || s->row_ptr == NULL || s->col == NULL) {
        fnet_layer_free(&s->base);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse layer pattern of %lld entries",
                         (long long)nnz);
    }
    // until init draws one: the entries spread evenly over the rows and, in each, over the
    // columns (nnz <= n_in·n_out: a row never gets more than n_in)
    int64_t k = 0, base = nnz / n_out, extra = nnz % n_out;
    s->h_row_ptr[0] = 0;
    for (int64_t r = 0; r < n_out; r++) {
        int64_t cnt = base + (r < extra);
        for (int64_t j = 0; j < cnt; j++)
            s->h_col[k++] = (int32_t)(j * n_in / cnt);
        s->h_row_ptr[r + 1] = (int32_t)k;
    }
    upload_pattern(s);
    *out = &s->base;
    return FNET_OK;
}

fnet_status fnet_sparse_from_dense(fnet_ctx *ctx, const float *W, const float *bias,
                                   int64_t n_out, int64_t n_in, fnet_layer **out)
{
    if (ctx == NULL || W == NULL || out == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse_from_dense: NULL ctx, W or out");
    *out = NULL;
    if (n_in < 1 || n_out < 1 || n_in > MAX_INDEX || n_out >= MAX_INDEX)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "sparse_from_dense: n_out must be in "
                         "1..2^31-2 and n_in in 1..2^31-1, got %lld x %lld", (long long)n_out,
                         (long long)n_in);
    int64_t nnz = 0;
    for (int64_t e = 0; e < n_out * n_in; e++)
        nnz += W[e] != 0.0f;
    bool empty = nnz == 0; // one stored zero keeps the pattern non-empty
    fnet_layer *l = NULL;
    fnet_status st = fnet_sparse_create(ctx, n_in, n_out, empty ? 1 : nnz, &l);
    if (st != FNET_OK)
        return st;
    struct sparse *s = S(l);
    float *v = fnet_malloc_array((size_t)(s->nnz + n_out), sizeof(float));
    if (v == NULL) {
        fnet_layer_free(l);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "sparse_from_dense: %lld values",
                         (long long)nnz);
    }
    int64_t k = 0;
    s->h_row_ptr[0] = 0;
    for (int64_t r = 0; r < n_out; r++) {
        for (int64_t c = 0; c < n_in; c++)
            if (W[r * n_in + c] != 0.0f || (empty && k == 0)) {
                v[k] = W[r * n_in + c];
                s->h_col[k++] = (int32_t)c;
            }
        s->h_row_ptr[r + 1] = (int32_t)k;
    }
    for (int64_t r = 0; r < n_out; r++)
        v[s->nnz + r] = bias ? bias[r] : 0.0f;
    upload_pattern(s);
    ctx->be->upload(ctx, l->w, v, (size_t)(s->nnz + n_out) * sizeof(float));
    fnet_free(v);
    *out = l;
    return FNET_OK;
}

// ---- the kind ----

// The stored entries an item asks for on n_in inputs: nnz=K, or density·n_in·N rounded (>= 1).
static int64_t item_nnz(const struct fnet_spec_item *it, int64_t n_in)
{
    if (fnet_spec_has(it, "nnz"))
        return fnet_spec_int(it, "nnz", 1);
    double k = round((double)fnet_spec_real(it, "density", 1.0f) * (double)n_in * (double)it->n);
    return k < 1.0 ? 1 : k > 9e18 ? INT64_MAX : (int64_t)k;
}

static fnet_status sparse_check_item(const struct fnet_spec_where *w,
                                     const struct fnet_spec_item *it)
{
    bool d = fnet_spec_has(it, "density"), n = fnet_spec_has(it, "nnz");
    if (d == n)
        return fnet_spec_fail(w, "give density=D or nnz=K, one of them");
    return FNET_OK;
}

static fnet_status sparse_create_item(fnet_ctx *ctx, const struct fnet_spec_item *it, int64_t n_in,
                                      fnet_layer **out)
{
    return fnet_sparse_create(ctx, n_in, it->n, item_nnz(it, n_in), out);
}

static int64_t sparse_min_params(const struct fnet_spec_item *it, int64_t n_in)
{
    return fnet_sat_add(item_nnz(it, n_in), it->n);
}

static const struct fnet_spec_opt sparse_opts[] = {
    {.name = "density", .type = FNET_SPEC_REAL, .range = {0.0, 1.0, true, false}},
    {.name = "nnz", .type = FNET_SPEC_INT},
};

const struct fnet_layer_desc fnet_sparse_desc = {
    .kind = FNET_LAYER_SPARSE,
    .name = "sparse",
    .usage = "sparse:N:density=D|nnz=K",
    .arg = FNET_SPEC_ARG_SIZE,
    .opts = sparse_opts,
    .n_opts = 2,
    .check = sparse_check_item,
    .create = sparse_create_item,
    .min_params = sparse_min_params,
};
