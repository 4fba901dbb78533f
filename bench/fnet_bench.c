/* fnet-bench: training throughput of dense models against the backend's own sgemm on the same
 * GEMM shapes, measured side by side in one run (medians of repeats). Uses src/ internals for
 * the raw sgemm; everything else through the public API. Every buffer the timed calls read or
 * write is backend memory. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "compare.h"
#include "core/backend.h"
#include "core/layer_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fnet-bench [options]\n"
    "\n"
    "Under mpirun -np P (or srun) it runs data-parallel: each batch split across the ranks,\n"
    "rank 0 printing and writing the files (docs/distributed.md).\n"
    "\n"
    "Time training steps (batch gather, forward, loss, backward, optimizer step: the trainer's\n"
    "epochs, so on a GPU the steps replayed as one CUDA graph) of models and the backend's\n"
    "sgemm alone on the GEMM shapes of their dense and low-rank layers, in the same run;\n"
    "report samples/s, GFLOP/s, the fraction of the sgemm rate the whole step reaches, and\n"
    "peak memory. GFLOP/s counts the GEMMs only: the work of TT, tensor-ring,\n"
    "Tucker, CP and block-circulant layers is in the time but not in the count.\n"
    "\n"
    "  --model SPEC     a model to time (repeatable); default: the seed network at batch 32 and\n"
    "                   the wide network at batch 256\n"
    "  --batch N        batch size for the --model cases (default 32)\n"
    "  --optim NAME     optimizer of the step (default adam)\n"
    "  --data DIR       Fashion-MNIST directory (default as fnet-train); synthetic data when absent\n"
    "  --seconds X      time per repeat (default 1.0)\n"
    "  --repeat N       repeats; the median is reported (default 5)\n"
    "  --threads N      threads (default: the number of cores)\n"
    "  --device DEV     cpu (default), reference, guarded, cuda[:K]\n"
    "  --tf32           cuda: GEMMs on TF32 tensor cores (about 3e-4 relative error)\n"
    "  --json FILE      JSON lines, one object per case\n"
    "  --layers         instead: time one TT layer against the dense layer of the same shape,\n"
    "                   forward and backward, at batch 1, 32 and 256: 1024x1024 (rank 8, modes\n"
    "                   chosen and in=4x8x8x4:out=4x8x8x4) and VGG-16 FC6 25088x4096 (rank 4);\n"
    "                   every grouping the planner rejected is timed too ('vs best': the\n"
    "                   chosen plan's forward+backward time over the fastest one's, the two\n"
    "                   timed again in turn when another one was faster); then fnet-compare's\n"
    "                   1024x1024 middle layers " CMP_LOWRANK_LAYER ", " CMP_CIRC_LAYER ",\n"
    "                   " CMP_TR_LAYER ", " CMP_TUCKER_LAYER "\n"
    "                   and " CMP_CP_LAYER " against the dense one, forward and\n"
    "                   forward+backward, at batch 1, 32 and 256; then CSR sparse 1024x1024\n"
    "                   layers at densities 1, 2, 5, 10, 20 and 50% against the dense one,\n"
    "                   with the density where CSR stops being faster\n"
    "  --svd N          instead: time the thin SVD of a random NxN matrix (the TT-SVD step) by\n"
    "                   the backend's host linear algebra (cuSOLVER's gesvdj on cuda) and by the\n"
    "                   CPU backend's LAPACK, in the same run, with the reconstruction error\n"
    "  --kinds LIST     with --layers: only these rows, comma-separated, of tt, lowrank, circ,\n"
    "                   tr, tucker, cp, sparse (default: all)\n"
    "  --help, --version\n";

// n floats of backend memory, or the program stops (exit 1).
static float *backend_floats(fnet_ctx *ctx, size_t n)
{
    void *p = NULL;
    cli_check(ctx, fnet_backend_alloc(ctx, (n > 0 ? n : 1) * sizeof(float), &p), "allocation");
    return p;
}

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {"--model",  "--batch",  "--optim", "--data",
                                             "--seconds", "--repeat", "--threads", "--json",
                                             "--kinds", "--device", "--svd"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

static bool layers_mode;


struct bench_case {
    const char *spec;
    int64_t batch;
};

// One training step's GEMMs, as the dense and low-rank layers issue them.
struct gemm_shape {
    bool ta, tb;
    int64_t M, N, K;
};

// At most 6 per layer.
static int model_gemms(fnet_model *m, int64_t B, struct gemm_shape *s, double *flops)
{
    int n = 0;
    *flops = 0;
    for (int i = 0; i < fnet_model_num_layers(m); i++) {
        fnet_layer *l = fnet_model_layer(m, i);
        int64_t ni = fnet_layer_n_in(l), no = fnet_layer_n_out(l), r = 0;
        if (fnet_lowrank_layer_rank(l, &r) == FNET_OK) {
            // h = x·Vᵀ, y = h·Uᵀ; dU = dyᵀ·h, dh = dy·U, dV = dhᵀ·x; dx = dh·V
            s[n++] = (struct gemm_shape){false, true, B, r, ni};
            s[n++] = (struct gemm_shape){false, true, B, no, r};
            s[n++] = (struct gemm_shape){true, false, no, r, B};
            s[n++] = (struct gemm_shape){false, false, B, r, no};
            s[n++] = (struct gemm_shape){true, false, r, ni, B};
            *flops += (double)(B * r) * (4.0 * (double)ni + 6.0 * (double)no);
            if (i > 0) {
                s[n++] = (struct gemm_shape){false, false, B, ni, r};
                *flops += 2.0 * (double)(B * ni * r);
            }
            continue;
        }
        if (fnet_layer_kind_of(l) != FNET_LAYER_DENSE)
            continue;
        s[n++] = (struct gemm_shape){false, true, B, no, ni};  // forward
        s[n++] = (struct gemm_shape){true, false, no, ni, B};  // weight gradient
        *flops += 4.0 * (double)(B * ni * no);
        if (i > 0) {
            s[n++] = (struct gemm_shape){false, false, B, ni, no}; // input gradient
            *flops += 2.0 * (double)(B * ni * no);
        }
    }
    return n;
}

// Median seconds of fn over `repeat` runs of at least `seconds` each.
struct layer_run {
    fnet_layer *l;
    const float *x, *dy;
    float *y, *dx;
    int64_t B;
    bool backward;
};

static double time_layer(struct layer_run *r, double seconds, int repeat)
{
    double med[101];
    for (int k = -1; k < repeat; k++) {
        int64_t n = 0;
        double t0 = fnet_now(), t;
        do {
            fnet_layer_forward(r->l, r->x, r->B, r->y);
            if (r->backward)
                fnet_layer_backward(r->l, r->x, r->y, r->dy, r->B, r->dx);
            n++;
            fnet_ctx *lctx = fnet_layer_ctx(r->l);
            cli_check(lctx, fnet_ctx_synchronize(lctx), "synchronize");
            t = fnet_now() - t0;
        } while (t < seconds);
        if (k >= 0)
            med[k] = t / (double)n;
    }
    return cli_median(med, repeat);
}

// The grouping as text: "0123" is the plain sweep, "(01)(23)" merges two pairs.
static const char *plan_name(unsigned mask, int d)
{
    static char buf[32];
    int pos = 0;
    for (int k = 0; k < d; k++) {
        bool opens = (k == 0 || !(mask & (1u << (k - 1)))) && k < d - 1 && (mask & (1u << k));
        bool closes = k > 0 && (mask & (1u << (k - 1))) && (k == d - 1 || !(mask & (1u << k)));
        if (opens)
            buf[pos++] = '(';
        buf[pos++] = (char)('0' + k);
        if (closes)
            buf[pos++] = ')';
    }
    buf[pos] = '\0';
    return buf;
}

struct shape_case {
    const char *name;
    int64_t n_in, n_out, rank;
    int64_t in[4], out[4];
};

// The TT layer of grouping `mask` over the modes the planner chose, with tt's parameters; NULL
// when its merged cores would pass 2^24 floats (FC6's dense W is not an alternative).
static fnet_layer *alternative(fnet_ctx *ctx, const struct shape_case *sc,
                               const fnet_tt_params *p, const fnet_tt_info *info, unsigned mask,
                               fnet_layer *tt)
{
    fnet_tt_params q = *p;
    q.plan = FNET_TT_PLAN_MERGE;
    q.merge = mask;
    for (int k = 0; k < info->d; k++) {
        q.in_modes[k] = info->in_modes[k];
        q.out_modes[k] = info->out_modes[k];
    }
    q.n_in_modes = q.n_out_modes = info->d;
    double merged = 1.0;
    for (int k = 0; k < info->d; k++)
        if (mask & (1u << k) || (k > 0 && (mask & (1u << (k - 1)))))
            merged *= (double)(info->in_modes[k] * info->out_modes[k]);
    if (merged * (double)p->rank * (double)p->rank > (double)(1 << 24))
        return NULL;
    fnet_layer *alt;
    if (fnet_tt_create(ctx, sc->n_in, sc->n_out, &q, &alt) != FNET_OK)
        return NULL;
    float *w = malloc(sizeof(float) * (size_t)fnet_layer_num_params(tt));
    if (w == NULL)
        cli_die(1, "layer benchmark", "out of memory");
    cli_check(ctx, fnet_layer_get_params(tt, w), "tt parameters");
    cli_check(ctx, fnet_layer_set_params(alt, w), "tt parameters");
    free(w);
    return alt;
}

// TT against dense, one layer, forward and forward+backward, at batch 1, 32, 256.
static void bench_layers(fnet_ctx *ctx, double seconds, int repeat, FILE *json)
{
    struct shape_case cases[] = {
        {"1024x1024 rank 8, modes chosen", 1024, 1024, 8, {0}, {0}},
        {"1024x1024 rank 8, in=4x8x8x4:out=4x8x8x4", 1024, 1024, 8, {4, 8, 8, 4}, {4, 8, 8, 4}},
        {"FC6 25088x4096 rank 4, modes chosen", 25088, 4096, 4, {0}, {0}},
    };
    const int64_t batches[3] = {1, 32, 256};
    printf("%-44s %5s %12s %12s %8s %12s %12s %8s %9s %9s %9s %6s\n", "TT layer", "batch",
           "dense fwd ms", "tt fwd ms", "speedup", "dense f+b ms", "tt f+b ms", "speedup", "plan",
           "tt GF/s", "best", "vs best");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        fnet_tt_params p = fnet_tt_params_default();
        p.rank = cases[c].rank;
        if (cases[c].in[0]) {
            p.n_in_modes = p.n_out_modes = 4;
            memcpy(p.in_modes, cases[c].in, sizeof(p.in_modes[0]) * 4);
            memcpy(p.out_modes, cases[c].out, sizeof(p.out_modes[0]) * 4);
        }
        fnet_layer *tt, *dense;
        cli_check(ctx, fnet_tt_create(ctx, cases[c].n_in, cases[c].n_out, &p, &tt), "tt layer");
        cli_check(ctx, fnet_dense_create(ctx, cases[c].n_in, cases[c].n_out, true, &dense), "dense layer");
        fnet_rng rng;
        fnet_rng_seed(&rng, 1);
        cli_check(ctx, fnet_layer_init(tt, FNET_INIT_GLOROT_UNIFORM, &rng), "init");
        cli_check(ctx, fnet_layer_init(dense, FNET_INIT_GLOROT_UNIFORM, &rng), "init");
        for (int b = 0; b < 3; b++) {
            int64_t B = batches[b];
            size_t nx = (size_t)(B * cases[c].n_in), ny = (size_t)(B * cases[c].n_out);
            float *hx = malloc(nx * sizeof(float)), *hdy = malloc(ny * sizeof(float));
            float *x = backend_floats(ctx, nx), *dx = backend_floats(ctx, nx);
            float *y = backend_floats(ctx, ny), *dy = backend_floats(ctx, ny);
            if (!hx || !hdy)
                cli_die(1, "layer benchmark", "out of memory");
            for (size_t i = 0; i < nx; i++)
                hx[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
            for (size_t i = 0; i < ny; i++)
                hdy[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
            cli_check(ctx, fnet_backend_upload(ctx, x, hx, nx * sizeof(float)), "upload");
            cli_check(ctx, fnet_backend_upload(ctx, dy, hdy, ny * sizeof(float)), "upload");
            free(hx), free(hdy);
            struct layer_run rd = {dense, x, dy, y, dx, B, false}, rt = {tt, x, dy, y, dx, B, false};
            double df = time_layer(&rd, seconds, repeat), tf = time_layer(&rt, seconds, repeat);
            rd.backward = rt.backward = true;
            double db = time_layer(&rd, seconds, repeat), tb = time_layer(&rt, seconds, repeat);
            fnet_tt_info info;
            cli_check(ctx, fnet_tt_layer_info(tt, B, &info), "tt info");
            // every alternative grouping the planner rejected, timed the same way
            double best = tb, chosen = tb;
            unsigned best_mask = info.merge;
            for (unsigned mask = 0; mask < (1u << (info.d - 1)); mask++) {
                if (mask == info.merge)
                    continue;
                fnet_layer *alt = alternative(ctx, &cases[c], &p, &info, mask, tt);
                if (alt == NULL)
                    continue;
                struct layer_run ra = {alt, x, dy, y, dx, B, true};
                double ta = time_layer(&ra, seconds, repeat);
                if (ta < best) {
                    best = ta;
                    best_mask = mask;
                }
                fnet_layer_free(alt);
            }
            if (best_mask != info.merge) {
                // the machine drifts between the first and the last grouping timed: time the
                // chosen plan and the fastest alternative again, one repeat each in turn
                fnet_layer *alt = alternative(ctx, &cases[c], &p, &info, best_mask, tt);
                struct layer_run ra = {alt, x, dy, y, dx, B, true};
                double tc[101], ta[101];
                for (int k = 0; k < repeat; k++) {
                    tc[k] = time_layer(&rt, seconds, 1);
                    ta[k] = time_layer(&ra, seconds, 1);
                }
                chosen = cli_median(tc, repeat);
                best = cli_median(ta, repeat);
                if (chosen <= best) {
                    best = chosen;
                    best_mask = info.merge;
                }
                fnet_layer_free(alt);
            }
            char best_name[32];
            snprintf(best_name, sizeof(best_name), "%s", plan_name(best_mask, info.d));
            double gf = (info.flops_forward + info.flops_backward) / tb * 1e-9;
            printf("%-44s %5lld %12.3f %12.3f %7.1fx %12.3f %12.3f %7.1fx %9s %9.1f %9s %6.2f\n",
                   cases[c].name, (long long)B, df * 1e3, tf * 1e3, df / tf, db * 1e3, tb * 1e3,
                   db / tb, plan_name(info.merge, info.d), gf, best_name, chosen / best);
            fflush(stdout);
            if (json) {
                fputc('{', json);
                cli_json_string(json, "event", "tt_layer", false);
                cli_json_string(json, "layer", cases[c].name, false);
                cli_json_number(json, "batch", (double)B, false);
                cli_json_number(json, "dense_forward_s", df, false);
                cli_json_number(json, "tt_forward_s", tf, false);
                cli_json_number(json, "dense_step_s", db, false);
                cli_json_number(json, "tt_step_s", tb, false);
                cli_json_string(json, "plan", plan_name(info.merge, info.d), false);
                cli_json_number(json, "tt_flops_forward", info.flops_forward, false);
                cli_json_number(json, "tt_flops_backward", info.flops_backward, false);
                cli_json_number(json, "flops_sweep", info.flops_sweep, false);
                cli_json_number(json, "flops_reconstruct", info.flops_reconstruct, false);
                cli_json_string(json, "best_plan", best_name, false);
                cli_json_number(json, "chosen_over_best", chosen / best, true);
            }
            fnet_backend_free(ctx, x), fnet_backend_free(ctx, dx);
            fnet_backend_free(ctx, y), fnet_backend_free(ctx, dy);
        }
        fnet_layer_free(tt);
        fnet_layer_free(dense);
    }
}

// The buffers of timing a layer n -> n at batch B: x and dy (B, n) filled with fixed values in
// [0, 1) and [-0.5, 0.5), y and dx (B, n) for the outputs; backend memory.
static void square_io(fnet_ctx *ctx, int64_t B, int64_t n, float **x, float **dx, float **y,
                      float **dy)
{
    size_t nx = (size_t)(B * n);
    float *h = malloc(nx * sizeof(float));
    *x = backend_floats(ctx, nx), *dx = backend_floats(ctx, nx);
    *y = backend_floats(ctx, nx), *dy = backend_floats(ctx, nx);
    if (h == NULL)
        cli_die(1, "layer benchmark", "out of memory");
    for (size_t i = 0; i < nx; i++)
        h[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    cli_check(ctx, fnet_backend_upload(ctx, *x, h, nx * sizeof(float)), "upload");
    for (size_t i = 0; i < nx; i++)
        h[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    cli_check(ctx, fnet_backend_upload(ctx, *dy, h, nx * sizeof(float)), "upload");
    free(h);
}

// The 1024x1024 layers timed against the dense one: fnet-compare's middle layers (compare.h).
static const char *const factored_specs[] = {CMP_LOWRANK_LAYER, CMP_CIRC_LAYER, CMP_TR_LAYER,
                                             CMP_TUCKER_LAYER, CMP_CP_LAYER};
#define N_FACTORED (int)(sizeof(factored_specs) / sizeof(factored_specs[0]))

// --kinds: which rows of --layers to time (NULL: all).
static const char *kinds_list;

// Whether --kinds names this kind (a spec's kind: what comes before its first ':').
static bool kind_wanted(const char *spec)
{
    if (kinds_list == NULL)
        return true;
    size_t n = strcspn(spec, ":");
    for (const char *p = kinds_list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, spec, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

// --kinds: every name one of the rows', or exit 2.
static void check_kinds(void)
{
    static const char *const names[] = {"tt", "lowrank", "circ", "tr", "tucker", "cp", "sparse"};
    if (kinds_list == NULL)
        return;
    for (const char *p = kinds_list;;) {
        size_t len = strcspn(p, ","), k = 0;
        while (k < sizeof(names) / sizeof(names[0]) &&
               !(strlen(names[k]) == len && strncmp(p, names[k], len) == 0))
            k++;
        if (k == sizeof(names) / sizeof(names[0]))
            cli_die(2, "--kinds", "expected names of tt, lowrank, circ, tr, tucker, cp, sparse "
                    "separated by commas, got '%s'", kinds_list);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
}

// Each layer of factored_specs against the dense layer of the same shape, forward and
// forward+backward, at batch 1, 32 and 256; each built from its spec (a model of that one
// layer, initialized as fnet-train would: Glorot, seed 1) and timed through the layer API.
static void bench_factored_layers(fnet_ctx *ctx, double seconds, int repeat, FILE *json)
{
    const int64_t n = 1024, batches[3] = {1, 32, 256};
    int w = 44; // the column as wide as the longest name, "SPEC (1024x1024)"
    for (int c = 0; c < N_FACTORED; c++)
        if ((int)strlen(factored_specs[c]) + 12 > w)
            w = (int)strlen(factored_specs[c]) + 12;
    bool header = false;
    for (int c = 0; c < N_FACTORED; c++) {
        if (!kind_wanted(factored_specs[c]))
            continue;
        if (!header)
            printf("\n%-*s %5s %12s %12s %8s %12s %12s %8s\n", w, "layer", "batch",
                   "dense fwd ms", "fwd ms", "speedup", "dense f+b ms", "f+b ms", "speedup");
        header = true;
        char name[96];
        snprintf(name, sizeof(name), "%s (1024x1024)", factored_specs[c]);
        fnet_model *fm;
        cli_check(ctx, fnet_model_create_from_spec(ctx, factored_specs[c], n, 1, &fm), name);
        fnet_layer *f = fnet_model_layer(fm, 0), *dense;
        cli_check(ctx, fnet_dense_create(ctx, n, n, true, &dense), "dense layer");
        fnet_rng rng;
        fnet_rng_seed(&rng, 1);
        cli_check(ctx, fnet_layer_init(dense, FNET_INIT_GLOROT_UNIFORM, &rng), "init");
        for (int b = 0; b < 3; b++) {
            int64_t B = batches[b];
            float *x, *dx, *y, *dy;
            square_io(ctx, B, n, &x, &dx, &y, &dy);
            // the two layers timed in turn, repeat by repeat: the machine drifts
            double df[101], ff[101], db[101], fb[101];
            for (int k = 0; k < repeat; k++) {
                struct layer_run rd = {dense, x, dy, y, dx, B, false}, rf = {f, x, dy, y, dx, B, false};
                df[k] = time_layer(&rd, seconds, 1);
                ff[k] = time_layer(&rf, seconds, 1);
                rd.backward = rf.backward = true;
                db[k] = time_layer(&rd, seconds, 1);
                fb[k] = time_layer(&rf, seconds, 1);
            }
            double mdf = cli_median(df, repeat), mff = cli_median(ff, repeat);
            double mdb = cli_median(db, repeat), mfb = cli_median(fb, repeat);
            printf("%-*s %5lld %12.3f %12.3f %7.1fx %12.3f %12.3f %7.1fx\n", w, name,
                   (long long)B, mdf * 1e3, mff * 1e3, mdf / mff, mdb * 1e3, mfb * 1e3, mdb / mfb);
            fflush(stdout);
            if (json) {
                fputc('{', json);
                cli_json_string(json, "event", "factored_layer", false);
                cli_json_string(json, "layer", name, false);
                cli_json_string(json, "kind", fnet_layer_kind_name(fnet_layer_kind_of(f)), false);
                cli_json_string(json, "spec", fnet_model_spec(fm), false);
                cli_json_number(json, "params", (double)fnet_layer_num_params(f), false);
                cli_json_number(json, "batch", (double)B, false);
                cli_json_number(json, "dense_forward_s", mdf, false);
                cli_json_number(json, "forward_s", mff, false);
                cli_json_number(json, "dense_step_s", mdb, false);
                cli_json_number(json, "step_s", mfb, true);
            }
            fnet_backend_free(ctx, x), fnet_backend_free(ctx, dx);
            fnet_backend_free(ctx, y), fnet_backend_free(ctx, dy);
        }
        fnet_model_free(fm);
        fnet_layer_free(dense);
    }
}

// ‖U·diag(S)·Vt − A‖_F / ‖A‖_F of a thin SVD of A (n, n), in double.
static double svd_error(int64_t n, const float *A, const float *U, const float *S, const float *Vt)
{
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = 0.0;
            for (int64_t k = 0; k < n; k++)
                v += (double)U[i * n + k] * S[k] * Vt[k * n + j];
            err += (v - A[i * n + j]) * (v - A[i * n + j]);
            norm += (double)A[i * n + j] * A[i * n + j];
        }
    return norm > 0 ? sqrt(err / norm) : 0.0;
}

// --svd N: the host linear algebra's thin SVD of one random N×N matrix on ctx's backend and on
// the CPU's LAPACK, timed in turn (median of repeat after a warm-up), with their errors.
static void bench_svd(fnet_ctx *ctx, int64_t n, int repeat, FILE *json)
{
    fnet_ctx *cpu = NULL;
    cli_check(ctx, fnet_ctx_create_cpu(&cpu), "the CPU ctx");
    size_t nn = sizeof(float) * (size_t)(n * n);
    float *A = malloc(nn), *U = malloc(nn), *Vt = malloc(nn);
    float *S = malloc(sizeof(float) * (size_t)n);
    if (!A || !U || !S || !Vt)
        cli_die(1, "--svd", "out of memory for %lldx%lld matrices", (long long)n, (long long)n);
    fnet_rng rng;
    fnet_rng_seed(&rng, 1);
    for (int64_t i = 0; i < n * n; i++)
        A[i] = (float)fnet_rng_normal(&rng);
    fnet_ctx *ctxs[2] = {ctx, cpu};
    printf("thin SVD of a %lldx%lld Gaussian matrix (median of %d)\n", (long long)n, (long long)n,
           repeat);
    printf("%-10s %-10s %10s %12s\n", "backend", "host_la", "ms", "rel_error");
    int n_ctx = fnet_ctx_backend(ctx) == FNET_BACKEND_CPU ? 1 : 2; // the CPU once
    for (int c = 0; c < n_ctx; c++) {
        fnet_ctx *x = ctxs[c];
        double *t = malloc(sizeof(double) * (size_t)repeat);
        for (int r = -1; r < repeat; r++) { // r = -1 warms up (handles, workspaces)
            double t0 = fnet_now();
            cli_check(x, x->be->host_la->gesvd(x, n, n, A, U, S, Vt), "--svd");
            if (r >= 0)
                t[r] = fnet_now() - t0;
        }
        double ms = 1e3 * cli_median(t, repeat), err = n <= 1024 ? svd_error(n, A, U, S, Vt) : NAN;
        printf("%-10s %-10s %10.2f %12.2e\n", fnet_ctx_backend_name(x), x->be->host_la->name, ms,
               err);
        if (json) {
            fputc('{', json);
            cli_json_string(json, "event", "svd", false);
            cli_json_string(json, "backend", fnet_ctx_backend_name(x), false);
            cli_json_string(json, "host_la", x->be->host_la->name, false);
            cli_json_number(json, "n", (double)n, false);
            cli_json_number(json, "ms", ms, false);
            cli_json_number(json, "rel_error", err, true);
        }
        free(t);
    }
    free(A), free(U), free(S), free(Vt);
    fnet_ctx_free(cpu);
}

// CSR sparse layers against the dense layer of the same shape (1024x1024), forward and
// forward+backward, at densities 1..50% and batch 1, 32 and 256; the crossover: the density at
// which CSR's time reaches dense's, interpolated on a log scale between the densities measured.
static void bench_sparse_layers(fnet_ctx *ctx, double seconds, int repeat, FILE *json)
{
    const int64_t n = 1024, batches[3] = {1, 32, 256};
    const double density[6] = {0.01, 0.02, 0.05, 0.10, 0.20, 0.50};
    printf("\n%-44s %5s %12s %12s %8s %12s %12s %8s\n", "sparse layer", "batch", "dense fwd ms",
           "fwd ms", "speedup", "dense f+b ms", "f+b ms", "speedup");
    fnet_layer *dense;
    cli_check(ctx, fnet_dense_create(ctx, n, n, true, &dense), "dense layer");
    fnet_rng rng;
    fnet_rng_seed(&rng, 1);
    cli_check(ctx, fnet_layer_init(dense, FNET_INIT_GLOROT_UNIFORM, &rng), "init");
    for (int b = 0; b < 3; b++) {
        int64_t B = batches[b];
        float *x, *dx, *y, *dy;
        square_io(ctx, B, n, &x, &dx, &y, &dy);
        double ratio_f[6], ratio_b[6];
        for (int d = 0; d < 6; d++) {
            fnet_layer *sp;
            int64_t nnz = (int64_t)llround(density[d] * (double)(n * n));
            cli_check(ctx, fnet_sparse_create(ctx, n, n, nnz, &sp), "sparse layer");
            cli_check(ctx, fnet_layer_init(sp, FNET_INIT_GLOROT_UNIFORM, &rng), "init");
            double df[101], sf[101], db[101], sb[101];
            for (int k = 0; k < repeat; k++) {
                struct layer_run rd = {dense, x, dy, y, dx, B, false}, rs = {sp, x, dy, y, dx, B, false};
                df[k] = time_layer(&rd, seconds, 1);
                sf[k] = time_layer(&rs, seconds, 1);
                rd.backward = rs.backward = true;
                db[k] = time_layer(&rd, seconds, 1);
                sb[k] = time_layer(&rs, seconds, 1);
            }
            double mdf = cli_median(df, repeat), msf = cli_median(sf, repeat);
            double mdb = cli_median(db, repeat), msb = cli_median(sb, repeat);
            ratio_f[d] = mdf / msf;
            ratio_b[d] = mdb / msb;
            char name[64];
            snprintf(name, sizeof(name), "sparse:1024:density=%g (1024x1024)", density[d]);
            printf("%-44s %5lld %12.3f %12.3f %7.2fx %12.3f %12.3f %7.2fx\n", name, (long long)B,
                   mdf * 1e3, msf * 1e3, ratio_f[d], mdb * 1e3, msb * 1e3, ratio_b[d]);
            fflush(stdout);
            if (json) {
                fputc('{', json);
                cli_json_string(json, "event", "sparse_layer", false);
                cli_json_number(json, "density", density[d], false);
                cli_json_number(json, "batch", (double)B, false);
                cli_json_number(json, "dense_forward_s", mdf, false);
                cli_json_number(json, "forward_s", msf, false);
                cli_json_number(json, "dense_step_s", mdb, false);
                cli_json_number(json, "step_s", msb, true);
            }
            fnet_layer_free(sp);
        }
        // the crossover: where the speedup falls through 1
        for (int pass = 0; pass < 2; pass++) {
            const double *r = pass == 0 ? ratio_f : ratio_b;
            char what[80];
            if (r[0] < 1.0) {
                snprintf(what, sizeof(what), "nowhere from 1%% up: slower at every density measured");
            } else if (r[5] >= 1.0) {
                snprintf(what, sizeof(what), "at every density measured, up to 50%%");
            } else {
                int d = 0;
                while (r[d + 1] >= 1.0)
                    d++;
                double t = log(r[d]) / (log(r[d]) - log(r[d + 1]));
                double c = exp(log(density[d]) + t * (log(density[d + 1]) - log(density[d])));
                snprintf(what, sizeof(what), "below density %.1f%% (the crossover)", 100.0 * c);
            }
            printf("  batch %lld %s: CSR is faster than dense %s\n", (long long)B,
                   pass == 0 ? "forward" : "forward+backward", what);
        }
        fnet_backend_free(ctx, x), fnet_backend_free(ctx, dx);
        fnet_backend_free(ctx, y), fnet_backend_free(ctx, dy);
    }
    fnet_layer_free(dense);
}

int main(int argc, char **argv)
{
    cli_init("fnet-bench", usage);
    const char *data = cli_default_data(), *json_path = NULL, *optim = "adam", *device = "cpu";
    bool tf32 = false;
    double seconds = 1.0;
    int repeat = 5, threads = 0;
    int64_t batch = 32, svd_n = 0;
    struct bench_case cases[16];
    int n_cases = 0;
    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--model") == 0) {
            if (n_cases == 16)
                cli_die(2, o, "at most 16 models");
            cases[n_cases++] = (struct bench_case){v, 0};
        } else if (strcmp(o, "--batch") == 0) {
            batch = cli_int(o, v, 1, 1 << 20);
        } else if (strcmp(o, "--optim") == 0) {
            optim = v;
        } else if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--seconds") == 0) {
            seconds = cli_double(o, v, 0.01, 600);
        } else if (strcmp(o, "--repeat") == 0) {
            repeat = (int)cli_int(o, v, 1, 100);
        } else if (strcmp(o, "--threads") == 0) {
            threads = (int)cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--json") == 0) {
            json_path = v;
        } else if (strcmp(o, "--layers") == 0) {
            layers_mode = true;
        } else if (strcmp(o, "--kinds") == 0) {
            kinds_list = v;
        } else if (strcmp(o, "--device") == 0) {
            device = v;
        } else if (strcmp(o, "--svd") == 0) {
            svd_n = cli_int(o, v, 1, 8192);
        } else if (strcmp(o, "--tf32") == 0) {
            tf32 = true;
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    if (n_cases == 0) {
        cases[n_cases++] = (struct bench_case){"dense:64,relu,dense:32,relu,dense:10", 32};
        cases[n_cases++] = (struct bench_case){"dense:1024,relu,dense:1024,relu,dense:10", 256};
    } else {
        for (int i = 0; i < n_cases; i++)
            cases[i].batch = batch;
    }
    fnet_optim_kind kind;
    if (fnet_optim_kind_parse(optim, &kind) != FNET_OK)
        cli_die(2, "--optim", "unknown optimizer '%s'", optim);
    if (kinds_list && !layers_mode)
        cli_die(2, "--kinds", "picks the rows of --layers");
    check_kinds();

    fnet_ctx *ctx = cli_ctx(device, threads, tf32);
    if (svd_n > 0) {
        FILE *sj = cli_json_open(json_path);
        bench_svd(ctx, svd_n, repeat, sj);
        cli_json_close(sj, json_path);
        fnet_ctx_free(ctx);
        return 0;
    }
    if (layers_mode) {
        FILE *lj = cli_json_open(json_path);
        if (kind_wanted("tt"))
            bench_layers(ctx, seconds, repeat, lj);
        bench_factored_layers(ctx, seconds, repeat, lj);
        if (kind_wanted("sparse"))
            bench_sparse_layers(ctx, seconds, repeat, lj);
        cli_json_close(lj, json_path);
        fnet_ctx_free(ctx);
        return 0;
    }
    fnet_dataset *train = NULL;
    if (fnet_dataset_load_idx(ctx, data, FNET_SPLIT_TRAIN, &train) != FNET_OK) {
        // synthetic stand-in of the same shape: the timing does not depend on the values
        const int64_t n = 60000, d = 784;
        uint8_t *img = malloc((size_t)(n * d)), *lab = malloc((size_t)n);
        if (!img || !lab)
            cli_die(1, "synthetic data", "out of memory");
        fnet_rng rng;
        fnet_rng_seed(&rng, 7);
        for (int64_t i = 0; i < n * d; i++)
            img[i] = (uint8_t)(fnet_rng_next(&rng) >> 56);
        for (int64_t i = 0; i < n; i++)
            lab[i] = (uint8_t)(i % 10);
        cli_check(ctx, fnet_dataset_from_memory(ctx, img, lab, n, d, 10, &train), "synthetic data");
        free(img), free(lab);
        printf("(no data in %s: synthetic 60000 x 784)\n", data);
    }
    FILE *json = cli_json_open(json_path);
    int64_t n = fnet_dataset_size(train), d = fnet_dataset_dim(train);
    int spec_w = 44;
    for (int c = 0; c < n_cases; c++) { // every spec checked before anything is timed
        fnet_model *m;
        cli_check_usage(ctx, fnet_model_create_from_spec(ctx, cases[c].spec, d, 1, &m), "--model");
        fnet_model_free(m);
    }
    for (int c = 0; c < n_cases; c++)
        spec_w = (int)strlen(cases[c].spec) > spec_w ? (int)strlen(cases[c].spec) : spec_w;
    printf("%-*s %6s %12s %10s %10s %10s %8s\n", spec_w, "model", "batch", "samples/s", "GFLOP/s",
           "sgemm GF/s", "of sgemm", "RSS MB");
    for (int c = 0; c < n_cases; c++) {
        int64_t B = cases[c].batch;
        fnet_model *m;
        cli_check_usage(ctx, fnet_model_create_from_spec(ctx, cases[c].spec, d, 1, &m), "--model");
        fnet_optim_params op = fnet_optim_params_default(kind);
        fnet_optimizer *opt;
        cli_check(ctx, fnet_optimizer_create(ctx, &op, fnet_model_num_params(m), &opt), "optimizer");
        if (B > n)
            cli_die(2, "--batch", "%lld is more than the %lld samples", (long long)B, (long long)n);

        struct gemm_shape *shapes = malloc(sizeof(*shapes) * 6 * (size_t)fnet_model_num_layers(m));
        if (!shapes)
            cli_die(1, "benchmark", "out of memory");
        double step_flops;
        int n_shapes = model_gemms(m, B, shapes, &step_flops);
        size_t maxA = 0, maxB = 0, maxC = 0;
        for (int s = 0; s < n_shapes; s++) {
            size_t sa = (size_t)(shapes[s].M * shapes[s].K), sb = (size_t)(shapes[s].K * shapes[s].N),
                   sc = (size_t)(shapes[s].M * shapes[s].N);
            maxA = sa > maxA ? sa : maxA, maxB = sb > maxB ? sb : maxB, maxC = sc > maxC ? sc : maxC;
        }
        float *GA = backend_floats(ctx, maxA), *GB = backend_floats(ctx, maxB),
              *GC = backend_floats(ctx, maxC);
        // not zeros: a GPU multiplies zeros faster than data
        ctx->be->fill(ctx, (int64_t)maxA, 0.01f, GA);
        ctx->be->fill(ctx, (int64_t)maxB, 0.01f, GB);

        double *model_rate = malloc(sizeof(double) * (size_t)repeat);
        double *gemm_rate = malloc(sizeof(double) * (size_t)repeat);
        // the whole training step as the trainer runs it (on a GPU: replayed as a CUDA graph),
        // an epoch over the first `samples` samples per repeat, sized from the warm-up's rate to
        // take about `seconds`
        int64_t samples = (n / B < 20 ? n / B : 20) * B, replayed = 0;
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = B;
        tp.epochs = 1;
        for (int r = -1; r < repeat; r++) { // r = -1 warms up
            fnet_dataset *sub;
            cli_check(ctx, fnet_dataset_subset(train, samples, &sub), "a subset of the data");
            fnet_train_stats st;
            cli_check(ctx, fnet_train_with(m, opt, &op, &tp, sub, NULL, NULL, NULL, &st),
                      "training");
            fnet_dataset_free(sub);
            replayed = st.replayed_steps;
            if (r < 0 && st.samples_per_s > 0) {
                int64_t want = (int64_t)(seconds * st.samples_per_s) / B;
                want = want < 2 ? 2 : (want > n / B ? n / B : want);
                samples = want * B;
            }
            // in a job every rank trains the same epochs: rank 0's clock decides
            if (r < 0)
                cli_check(ctx, fnet_dist_broadcast(cli_job(), &samples, sizeof(samples)),
                          "mpirun");

            // the same GEMMs alone, on the same backend
            int64_t gsteps = 0;
            double g0 = fnet_now(), gt;
            do {
                for (int s = 0; s < n_shapes; s++) {
                    struct gemm_shape *sh = &shapes[s];
                    int64_t lda = sh->ta ? sh->M : sh->K, ldb = sh->tb ? sh->K : sh->N;
                    ctx->be->sgemm(ctx, sh->ta, sh->tb, sh->M, sh->N, sh->K, 1.0f, GA, lda, GB, ldb,
                                   0.0f, GC, sh->N);
                }
                gsteps++;
                cli_check(ctx, fnet_ctx_synchronize(ctx), "synchronize");
                gt = fnet_now() - g0;
            } while (gt < seconds);
            if (r >= 0) {
                model_rate[r] = st.samples_per_s;
                gemm_rate[r] = (double)(gsteps * B) / gt;
            }
        }
        double ms = cli_median(model_rate, repeat), gs = cli_median(gemm_rate, repeat);
        double gflops = ms / (double)B * step_flops * 1e-9, sgemm_gflops = gs / (double)B * step_flops * 1e-9;
        double rss = cli_peak_rss_mb();
        printf("%-*s %6lld %12.0f %10.1f %10.1f %9.1f%% %8.1f\n", spec_w, cases[c].spec,
               (long long)B, ms, gflops, sgemm_gflops, 100.0 * ms / gs, rss);
        fflush(stdout);
        if (json) {
            fputc('{', json);
            cli_json_string(json, "event", "bench", false);
            cli_json_string(json, "model", cases[c].spec, false);
            cli_json_number(json, "batch", (double)B, false);
            cli_json_number(json, "threads", fnet_ctx_threads(ctx), false);
            cli_json_number(json, "samples_per_s", ms, false);
            cli_json_number(json, "replayed_steps", (double)replayed, false);
            cli_json_number(json, "gflops", gflops, false);
            cli_json_number(json, "sgemm_gflops", sgemm_gflops, false);
            cli_json_number(json, "fraction_of_sgemm", ms / gs, false);
            cli_json_number(json, "peak_rss_mb", rss, true);
        }
        free(model_rate), free(gemm_rate), free(shapes);
        fnet_backend_free(ctx, GA), fnet_backend_free(ctx, GB), fnet_backend_free(ctx, GC);
        fnet_optimizer_free(opt);
        fnet_model_free(m);
    }
    cli_json_close(json, json_path);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
    return 0;
}
