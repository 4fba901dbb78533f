/* fnet-compress: compress a trained model and fine-tune it. Loads a checkpoint, replaces the
 * chosen dense layers by their TT-SVD, TR-SVD, Tucker (HOSVD, HOOI), CP-ALS or truncated SVD
 * (docs/tn.md, docs/lowrank.md), or prunes the weights by magnitude, or stores pruned layers as
 * CSR; reports test accuracy before, right after and after fine-tuning, and saves the result.
 * --sweep does it for a range of ranks or sparsities and plots accuracy against compression.
 * Public API only. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// --help: three literals (C caps one at 4095 characters), joined in main
static const char usage_head[] =
    "usage: fnet-compress --load FILE --to KIND [options]\n"
    "\n"
    "Under mpirun -np P (or srun) it runs data-parallel: each batch split across the ranks,\n"
    "rank 0 printing and writing the files (docs/distributed.md).\n"
    "\n"
    "Compress a trained model: test accuracy before, right after compressing and after\n"
    "fine-tuning, and the compressed model saved.\n"
    "\n"
    "  --load FILE         the trained model (a factornet checkpoint, e.g. from fnet-train --save)\n"
    "  --to KIND           tt: TT-SVD of each chosen dense layer (Oseledets 2011)\n"
    "                      tr: its TR-SVD, a tensor ring (Zhao et al. 2016)\n"
    "                      tucker: its truncated HOSVD and HOOI sweeps (De Lathauwer et al.\n"
    "                      2000)\n"
    "                      cp: its CP-ALS, a sum of rank-one terms (Kolda & Bader 2009)\n"
    "                      lowrank: its truncated SVD, W = U·V (Eckart-Young)\n"
    "                      prune: magnitude pruning of the weights of every layer\n"
    "                      csr: store the dense layers more than half zero (pruned) as CSR\n"
    "  --layers LIST       tt, tr, tucker, cp, lowrank: the layers to compress, by position in\n"
    "                      the spec from 0 (activations count, as in the checkpoint's\n"
    "                      layers.<i>), comma-separated; default: the dense layers between the\n"
    "                      first and the last\n"
    "  --rank R            tt: the rank of every bond, or its cap with --eps (default 16;\n"
    "                      with --eps no cap); tr: the cap of every inner rank, each also capped\n"
    "                      so that it fits its bond beside the ring rank (default 8; with --eps\n"
    "                      no cap); tucker: every rank, capped at its mode's size (default 16);\n"
    "                      cp: the number of rank-one terms (default 32); lowrank: the rank, or\n"
    "                      its cap with --energy (default 32; with --energy no cap)\n"
    "  --ring R0           tr: the ring rank r_0 = r_d (default: --rank; needed with --eps\n"
    "                      when --rank is not given)\n"
    "  --ranks T1x..       tucker: one rank per mode, the output modes first (instead of --rank)\n"
    "  --eps X             tt: the smallest ranks with ‖W − TT‖_F <= X·‖W‖_F; tr: the same for\n"
    "                      the ranks after the first bond (the ring rank and r_1 as asked)\n"
    "  --modes IN:OUT      the input and output modes, sizes joined by x. tt, tr: as many of\n"
    "                      each, 2 to 8, e.g. 4x8x8x4:4x8x8x4 (default tt: the planner's\n"
    "                      factorization, the largest modes in the middle; tr: the ring's own\n"
    "                      choice, the planner's); tucker, cp: 1 to 8 a side, 8 in all, e.g.\n"
    "                      32x32:32x32 (default tucker: one a side, Tucker-2; cp: two a side)\n"
    "  --hooi-iters N      tucker: HOOI sweeps after the HOSVD (default 2; 0: the HOSVD alone);\n"
    "                      each layer's relative error ‖W − Tucker‖_F/‖W‖_F is printed\n"
    "  --als-iters N       cp: CP-ALS sweeps at most (default 100); each layer's fit\n"
    "                      1 − ‖W − CP‖_F/‖W‖_F is printed, with a warning below 0.5\n";
static const char usage_mid[] =
    "  --energy F          lowrank: the smallest rank keeping the fraction F of Σσ²\n"
    "  --sparsity S        prune: the fraction of the weights removed (default 0.9)\n"
    "  --prune-scope NAME  prune: global (default: one threshold) or layer\n"
    "  --rounds K          prune: K rounds, each removing the same fraction of what is left and\n"
    "                      followed by the fine-tuning (default 1: one shot); \"right after\" is\n"
    "                      then the loaded model pruned to S in one shot, not fine-tuned\n"
    "  --csr               prune: store the layers more than half zero as CSR at the end\n"
    "  --finetune-epochs E epochs of fine-tuning after compressing (default 2; 0: none)\n";
static const char usage_tail[] =
    "  --optim NAME        fine-tuning: adam (default), adamw, sgd, momentum, nesterov, rmsprop\n"
    "  --lr X              fine-tuning rate (default 3e-4 for adam/adamw/rmsprop, 3e-3 others:\n"
    "                      0.3 times the training default, as Han et al. retrain)\n"
    "  --batch N           fine-tuning minibatch (default 256)\n"
    "  --schedule NAME     fine-tuning rate schedule: constant (default) or cosine (per epoch)\n"
    "  --sweep LIST        compress the loaded model once per value, comma-separated: ranks\n"
    "                      (tt, tr, tucker, cp, lowrank) or sparsities (prune); a table and\n"
    "                      --plot of accuracy against compression\n"
    "  --plot FILE         with --sweep: FILE.png and FILE.svg (gnuplot), FILE.dat, FILE.gp\n"
    "  --save FILE         the compressed, fine-tuned model (not with --sweep)\n"
    "  --json FILE         JSON lines: one object per compression\n"
    "  --data DIR          IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "                      (default $FNET_DATA, then /usr/share/datasets/fashion-mnist)\n"
    "  --limit-train N     fine-tune on the first N training samples only\n"
    "  --seed N            seed of the fine-tuning's shuffling and of CP-ALS's random start\n"
    "                      (default 1)\n"
    "  --threads N         threads (default: the number of cores)\n"
    "  --device DEV        cpu (default), reference, guarded, cuda[:K]\n"
    "  --help, --version\n"
    "\n"
    "compression: the parameters of the compressed layers before over after (pruning: all\n"
    "parameters over those not pruned).\n"
    "Exit status: 0 success, 1 runtime error, 2 bad usage.\n";

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {
        "--load", "--to", "--layers", "--rank", "--eps", "--energy", "--sparsity",
        "--prune-scope", "--rounds", "--finetune-epochs", "--optim", "--lr", "--batch", "--sweep",
        "--schedule", "--modes", "--ring", "--ranks", "--hooi-iters", "--als-iters",
        "--plot", "--save", "--json", "--data", "--limit-train", "--seed", "--threads",
        "--device"};
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(opt, with_value[i]) == 0)
            return true;
    return false;
}

enum kind { TO_TT, TO_TR, TO_TUCKER, TO_CP, TO_LOWRANK, TO_PRUNE, TO_CSR, N_KINDS };
static const char *const kind_names[N_KINDS] = {"tt", "tr", "tucker", "cp", "lowrank", "prune",
                                                "csr"};
// What --to does to a layer (or the model), for the messages and the plot's title.
static const char *const kind_methods[N_KINDS] = {
    "TT-SVD", "TR-SVD", "truncated HOSVD", "CP-ALS", "truncated SVD", "magnitude pruning",
    "CSR"};

// The kinds that replace chosen dense layers by a decomposition of their W (--layers, --rank).
static bool factors(enum kind k)
{
    return k == TO_TT || k == TO_TR || k == TO_TUCKER || k == TO_CP || k == TO_LOWRANK;
}

#define MAX_LAYERS 64
#define MAX_SWEEP 32

struct config {
    const char *load, *save, *json_path, *plot_arg;
    enum kind to;
    int layers[MAX_LAYERS], n_layers;
    int64_t rank;
    int n_in_modes, n_out_modes; // --modes IN:OUT (tt, tr, tucker, cp), 0: the default
    int64_t in_modes[8], out_modes[8];
    bool rank_set;
    int64_t ring;                // --ring (tr), 0: the rank
    int n_ranks;                 // --ranks (tucker), 0: --rank for every mode
    int64_t ranks[FNET_TN_MAX_MODES];
    int hooi_iters, als_iters;   // tucker, cp
    double eps, energy, sparsity;
    fnet_prune_scope scope;
    int rounds, finetune;
    bool csr;
    fnet_optim_params op;
    int64_t batch;
    uint64_t seed;
    double sweep[MAX_SWEEP];
    int n_sweep;
};

// What one compression measured.
struct result {
    double value;              // the rank or sparsity
    char spec[2048];
    int64_t params, before, after; // the model's; the compressed layers' before and after
    double fit, rel_err;       // cp: the smallest fit of its layers; tucker: the largest error
    double acc_before, acc_after, acc_final, loss_final;
    double train_seconds, samples_per_s;
};

static double evaluate(fnet_ctx *ctx, fnet_model *m, const fnet_dataset *test, double *loss)
{
    double acc, l;
    cli_check(ctx, fnet_model_evaluate(m, test, &acc, &l), "evaluating on the test set");
    if (loss)
        *loss = l;
    return acc;
}

static fnet_model *load(fnet_ctx *ctx, const char *path, const fnet_dataset *test)
{
    fnet_model *m = NULL;
    char where[1100];
    snprintf(where, sizeof(where), "--load %s", path);
    cli_check(ctx, fnet_model_load(ctx, path, &m), where);
    if (fnet_model_n_in(m) != fnet_dataset_dim(test))
        cli_die(1, where, "the model takes %lld inputs but the data has %lld",
                (long long)fnet_model_n_in(m), (long long)fnet_dataset_dim(test));
    if (fnet_dataset_classes(test) > fnet_model_n_out(m))
        cli_die(1, where, "the data has %lld classes but the model has %lld outputs",
                (long long)fnet_dataset_classes(test), (long long)fnet_model_n_out(m));
    return m;
}

// The default layers: the dense layers between the first and the last dense layer.
static void default_layers(fnet_model *m, struct config *c)
{
    int dense[MAX_LAYERS], n = 0;
    for (int i = 0; i < fnet_model_num_layers(m) && n < MAX_LAYERS; i++)
        if (fnet_layer_kind_of(fnet_model_layer(m, i)) == FNET_LAYER_DENSE)
            dense[n++] = i;
    for (int k = 1; k + 1 < n; k++)
        c->layers[c->n_layers++] = dense[k];
    if (c->n_layers == 0)
        cli_die(2, "--layers", "the model %s has no dense layer between its first and last: "
                "name the layers to compress", fnet_model_spec(m));
}

static void check_layers(fnet_model *m, const struct config *c)
{
    for (int k = 0; k < c->n_layers; k++) {
        int i = c->layers[k];
        char where[64];
        snprintf(where, sizeof(where), "--layers %d", i);
        if (i >= fnet_model_num_layers(m))
            cli_die(2, where, "the model %s has layers 0 to %d", fnet_model_spec(m),
                    fnet_model_num_layers(m) - 1);
        fnet_layer_kind kind = fnet_layer_kind_of(fnet_model_layer(m, i));
        if (kind != FNET_LAYER_DENSE)
            cli_die(2, where, "layer %d of %s is %s, not a dense layer", i, fnet_model_spec(m),
                    fnet_layer_kind_name(kind));
    }
}

// Pruning never gives weights back: a checkpoint without prunable weights, or pruned beyond a
// sparsity asked for, would be reported at a sparsity it does not have.
static void check_prunable(fnet_ctx *ctx, fnet_model *m, const struct config *c, bool sweep)
{
    char where[1100];
    snprintf(where, sizeof(where), "--load %s", c->load);
    int64_t pruned, prunable;
    cli_check(ctx, fnet_model_pruned(m, &pruned, &prunable), where);
    if (prunable == 0)
        cli_die(1, where, "the model %s has no weights to prune", fnet_model_spec(m));
    for (int i = 0; i < (sweep ? c->n_sweep : 1); i++) {
        double s = sweep ? c->sweep[i] : c->sparsity;
        if (pruned > llround(s * (double)prunable))
            cli_die(2, sweep ? "--sweep" : "--sparsity", "%s has %.4g of its weights pruned "
                    "already, more than %g", c->load, (double)pruned / (double)prunable, s);
    }
}

// The tensor named `name` of a layer, or NULL.
static bool find_tensor(const fnet_layer *l, const char *name, fnet_tensor_info *info)
{
    for (int t = 0; t < fnet_layer_num_tensors(l); t++)
        if (fnet_layer_tensor(l, t, info) == FNET_OK && strcmp(info->name, name) == 0)
            return true;
    return false;
}

// Sizes sorted, the smallest at the two ends and the largest in the middle: {4,4,8,8} ->
// 4,8,8,4.
static void middle_heavy(int64_t *m, int d)
{
    int64_t s[8];
    memcpy(s, m, (size_t)d * sizeof(*m));
    for (int i = 1; i < d; i++) // insertion sort, d <= 8
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            int64_t t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    for (int k = 0, lo = 0, hi = d - 1; k < d; k++)
        m[k % 2 == 0 ? lo++ : hi--] = s[k];
}

// The modes for TT-SVD: the planner's factorization of each size (its order is for speed), each
// side arranged middle-heavy, where the bonds are widest: at a given rank this keeps more of a
// trained W and gives fine-tuning more parameters (1024 -> 4x8x8x4 both ways; the planner's
// 4x4x8x8 in, 8x8x4x4 out lost 0.3-1.0 points more after 2 epochs, README "fnet-compress").
static void balanced_modes(fnet_ctx *ctx, int64_t n_in, int64_t n_out, fnet_tt_params *p,
                           const char *where)
{
    fnet_tt_params q = fnet_tt_params_default();
    q.rank = 1;
    fnet_layer *tmp = NULL;
    cli_check_usage(ctx, fnet_tt_create(ctx, n_in, n_out, &q, &tmp), where);
    fnet_tt_info info;
    cli_check(ctx, fnet_tt_layer_info(tmp, 1, &info), where);
    fnet_layer_free(tmp);
    p->n_in_modes = p->n_out_modes = info.d;
    memcpy(p->in_modes, info.in_modes, (size_t)info.d * sizeof(int64_t));
    memcpy(p->out_modes, info.out_modes, (size_t)info.d * sizeof(int64_t));
    middle_heavy(p->in_modes, info.d);
    middle_heavy(p->out_modes, info.d);
}

// "10x10": the ranks of a Tucker layer, read from its factors' shapes (dims_k, ranks_k).
static void tucker_ranks(const fnet_layer *l, char *out, size_t cap)
{
    out[0] = '\0';
    for (int t = 0; t < fnet_layer_num_tensors(l); t++) {
        fnet_tensor_info info;
        if (fnet_layer_tensor(l, t, &info) != FNET_OK || strncmp(info.name, "factor", 6) != 0)
            continue;
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%lld", n ? "x" : "", (long long)info.shape[1]);
    }
}

// Replace dense layer i by its decomposition (c->to) at this rank, the bias kept; what a Tucker
// layer's error and a CP layer's fit were goes into r (the worst of the layers).
static void factorize_layer(fnet_ctx *ctx, fnet_model *m, int i, const struct config *c,
                            int64_t rank, struct result *r)
{
    fnet_layer *l = fnet_model_layer(m, i);
    const int64_t n_in = fnet_layer_n_in(l), n_out = fnet_layer_n_out(l);
    char where[160];
    snprintf(where, sizeof(where), "layer %d (%lld -> %lld), --to %s", i, (long long)n_in,
             (long long)n_out, kind_names[c->to]);
    if (c->to == TO_TR) // the library's messages call it r0
        snprintf(where + strlen(where), sizeof(where) - strlen(where), ", ring rank r0 = %s = %lld",
                 c->ring ? "--ring" : "--rank", (long long)(c->ring ? c->ring : rank));
    float *W = malloc((size_t)(n_in * n_out) * sizeof(float));
    float *old = malloc((size_t)fnet_layer_num_params(l) * sizeof(float));
    if (W == NULL || old == NULL)
        cli_die(1, where, "out of memory");
    cli_check(ctx, fnet_layer_to_dense(l, W), where);
    cli_check(ctx, fnet_layer_get_params(l, old), where);
    fnet_layer *nl = NULL;
    fnet_tensor_info ob, nb;
    const bool bias = find_tensor(l, "bias", &ob); // a layer without one gets none
    if (c->to == TO_TT || c->to == TO_TR) {
        fnet_tt_params p = fnet_tt_params_default();
        p.rank = rank;
        p.eps = c->eps;
        p.bias = bias;
        p.n_in_modes = c->n_in_modes;
        p.n_out_modes = c->n_out_modes;
        memcpy(p.in_modes, c->in_modes, sizeof(c->in_modes));
        memcpy(p.out_modes, c->out_modes, sizeof(c->out_modes));
        if (c->to == TO_TT) {
            if (c->n_in_modes == 0)
                balanced_modes(ctx, n_in, n_out, &p, where);
            cli_check_usage(ctx, fnet_tt_from_dense(ctx, W, n_out, n_in, &p, &nl), where);
        } else {
            // a ring keeps the layer's own modes: the planner's balance each core's m_k·n_k,
            // and bond 1 must carry R·r_1 (middle-heavy modes would cap it at the end pair's)
            p.ring = c->ring;
            cli_check_usage(ctx, fnet_tr_from_dense(ctx, W, n_out, n_in, &p, &nl), where);
        }
    } else if (c->to == TO_TUCKER) {
        fnet_tucker_params p = fnet_tucker_params_default();
        p.rank = rank;
        p.n_ranks = c->n_ranks;
        memcpy(p.ranks, c->ranks, sizeof(c->ranks));
        p.n_in_modes = c->n_in_modes;
        p.n_out_modes = c->n_out_modes;
        memcpy(p.in_modes, c->in_modes, sizeof(c->in_modes));
        memcpy(p.out_modes, c->out_modes, sizeof(c->out_modes));
        p.bias = bias;
        p.hooi_iters = c->hooi_iters;
        double err = NAN;
        cli_check_usage(ctx, fnet_tucker_from_dense(ctx, W, n_out, n_in, &p, &nl, &err), where);
        char ranks[128];
        tucker_ranks(nl, ranks, sizeof(ranks));
        printf("layer %d (%lld -> %lld): Tucker ranks %s, relative error %.4f (HOSVD, %d HOOI "
               "sweep%s)\n", i, (long long)n_in, (long long)n_out, ranks, err, c->hooi_iters,
               c->hooi_iters == 1 ? "" : "s");
        r->rel_err = isnan(r->rel_err) || err > r->rel_err ? err : r->rel_err;
    } else if (c->to == TO_CP) {
        fnet_cp_params p = fnet_cp_params_default();
        p.rank = rank;
        p.n_in_modes = c->n_in_modes;
        p.n_out_modes = c->n_out_modes;
        memcpy(p.in_modes, c->in_modes, sizeof(c->in_modes));
        memcpy(p.out_modes, c->out_modes, sizeof(c->out_modes));
        p.bias = bias;
        p.als_iters = c->als_iters;
        p.seed = c->seed;
        double fit = NAN;
        cli_check_usage(ctx, fnet_cp_from_dense(ctx, W, n_out, n_in, &p, &nl, &fit), where);
        printf("layer %d (%lld -> %lld): CP rank %lld, fit %.4f (CP-ALS, at most %d sweeps)\n",
               i, (long long)n_in, (long long)n_out, (long long)rank, fit, c->als_iters);
        // a local optimum, and the best rank-R CP may not exist: said, not hidden (docs/tn.md)
        if (!(fit >= 0.5))
            cli_warn("%s rank %lld: CP-ALS fit %.2f is poor (below 0.5): the rank is too small "
                     "for this matrix, or raise --als-iters", where, (long long)rank, fit);
        r->fit = isnan(r->fit) || fit < r->fit ? fit : r->fit;
    } else {
        fnet_lowrank_params p = fnet_lowrank_params_default();
        p.rank = rank;
        p.energy = c->energy;
        p.bias = bias;
        cli_check_usage(ctx, fnet_lowrank_from_dense(ctx, W, n_out, n_in, &p, &nl), where);
    }
    if (bias) {
        if (!find_tensor(nl, "bias", &nb) || nb.numel != ob.numel)
            cli_die(1, where, "internal: the new layer has no bias of %lld", (long long)ob.numel);
        float *w = malloc((size_t)fnet_layer_num_params(nl) * sizeof(float));
        if (w == NULL)
            cli_die(1, where, "out of memory");
        cli_check(ctx, fnet_layer_get_params(nl, w), where);
        memcpy(w + nb.offset, old + ob.offset, (size_t)ob.numel * sizeof(float));
        cli_check(ctx, fnet_layer_set_params(nl, w), where);
        free(w);
    }
    cli_check(ctx, fnet_model_replace_layer(m, i, nl), where);
    free(old);
    free(W);
}

// Fine-tune m (the mask, if any, keeps pruned weights at zero).
static void finetune(fnet_ctx *ctx, fnet_model *m, const struct config *c,
                     const fnet_dataset *train, const char *label, struct result *r)
{
    r->train_seconds = 0.0;
    r->samples_per_s = NAN;
    if (c->finetune == 0)
        return;
    struct cli_progress w;
    cli_progress_begin(&w, label, c->finetune);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = c->batch;
    tp.epochs = c->finetune;
    tp.seed = c->seed;
    tp.on_batch = cli_is_tty() ? cli_progress : NULL;
    tp.stop = cli_stop_flag();
    cli_signals_install();
    fnet_optimizer *opt = NULL;
    cli_check(ctx, fnet_optimizer_create(ctx, &c->op, fnet_model_num_params(m), &opt), "--optim");
    fnet_train_stats st;
    cli_check_train(ctx, fnet_train_with(m, opt, &c->op, &tp, train, NULL, cli_on_epoch, &w, &st),
                    "fine-tuning");
    fnet_optimizer_free(opt);
    r->train_seconds = st.train_seconds;
    r->samples_per_s = st.samples_per_s;
}

// Prune m to the sparsity: one shot, or rounds each followed by the fine-tuning (then the
// accuracy "right after" is that of a one-shot prune of the loaded model, without fine-tuning).
static void prune(fnet_ctx *ctx, fnet_model **mp, const struct config *c, double sparsity,
                  const fnet_dataset *train, const fnet_dataset *test, const char *label,
                  struct result *r)
{
    char where[64];
    snprintf(where, sizeof(where), "--to prune, sparsity %g", sparsity);
    int64_t pruned, prunable;
    if (c->rounds <= 1) {
        cli_check(ctx, fnet_prune_magnitude(*mp, sparsity, c->scope, NULL), where);
        r->acc_after = evaluate(ctx, *mp, test, NULL);
        finetune(ctx, *mp, c, train, label, r);
    } else {
        fnet_model *once = load(ctx, c->load, test);
        cli_check(ctx, fnet_prune_magnitude(once, sparsity, c->scope, NULL), where);
        r->acc_after = evaluate(ctx, once, test, NULL);
        fnet_model_free(once);
        fnet_prune_params pp = fnet_prune_params_default();
        pp.sparsity = sparsity;
        pp.scope = c->scope;
        pp.schedule = FNET_PRUNE_ITERATIVE;
        pp.rounds = c->rounds;
        pp.finetune_epochs = c->finetune;
        pp.finetune_lr_scale = 1.0f; // --lr is the fine-tuning rate already
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = c->batch;
        tp.epochs = 0; // trained before: the rounds only
        tp.seed = c->seed;
        tp.on_batch = cli_is_tty() ? cli_progress : NULL;
        tp.stop = cli_stop_flag();
        cli_signals_install();
        struct cli_progress w;
        cli_progress_begin(&w, label, c->rounds * c->finetune);
        fnet_train_stats st;
        cli_check_train(ctx, fnet_train_pruned(mp, &c->op, &tp, &pp, train, NULL, cli_on_epoch,
                                               &w, &st),
                        where);
        r->train_seconds = st.train_seconds;
        r->samples_per_s = st.samples_per_s;
    }
    cli_check(ctx, fnet_model_pruned(*mp, &pruned, &prunable), where);
    r->before = fnet_model_num_params(*mp);
    r->after = r->before - pruned;
}

static void compressed_params(fnet_model *m, const struct config *c, int64_t *params)
{
    *params = 0;
    for (int k = 0; k < c->n_layers; k++)
        *params += fnet_layer_num_params(fnet_model_layer(m, c->layers[k]));
}

// Compress the loaded model at one value (a rank or a sparsity), fine-tune, evaluate.
static fnet_model *compress(fnet_ctx *ctx, const struct config *c, double value, double acc_before,
                            const fnet_dataset *train, const fnet_dataset *test, struct result *r)
{
    fnet_model *m = load(ctx, c->load, test);
    *r = (struct result){.value = value, .acc_before = acc_before, .fit = NAN, .rel_err = NAN};
    char label[64];
    snprintf(label, sizeof(label), "%s %g", kind_names[c->to], value);
    if (factors(c->to)) {
        compressed_params(m, c, &r->before);
        for (int k = 0; k < c->n_layers; k++)
            factorize_layer(ctx, m, c->layers[k], c, (int64_t)value, r);
        compressed_params(m, c, &r->after);
        r->acc_after = evaluate(ctx, m, test, NULL);
        finetune(ctx, m, c, train, label, r);
    } else if (c->to == TO_PRUNE) {
        prune(ctx, &m, c, value, train, test, label, r);
    } else {
        int64_t before = fnet_model_num_params(m);
        int converted = 0;
        cli_check(ctx, fnet_model_sparsify(m, 0.5, &converted), "--to csr");
        if (converted == 0)
            cli_die(1, "--to csr", "no dense layer of %s is more than half zero: prune it first "
                    "(--to prune)", fnet_model_spec(m));
        r->before = before;
        r->after = fnet_model_num_params(m);
        r->acc_after = evaluate(ctx, m, test, NULL);
        finetune(ctx, m, c, train, label, r);
    }
    if (c->csr && c->to == TO_PRUNE) {
        int converted = 0;
        cli_check(ctx, fnet_model_sparsify(m, 0.5, &converted), "--csr");
        if (converted == 0)
            cli_warn("--csr: no layer is more than half zero, so none is stored as CSR (CSR "
                     "takes 8 bytes a weight against dense's 4)");
    }
    r->acc_final = evaluate(ctx, m, test, &r->loss_final);
    // stored parameters: a pruned dense layer's zeros are not (they are not in its CSR form)
    int64_t pruned, prunable;
    cli_check(ctx, fnet_model_pruned(m, &pruned, &prunable), "counting the pruned weights");
    r->params = fnet_model_num_params(m) - pruned;
    snprintf(r->spec, sizeof(r->spec), "%s", fnet_model_spec(m));
    return m;
}

static void json_result(FILE *f, const struct config *c, const struct result *r)
{
    if (f == NULL)
        return;
    fputc('{', f);
    cli_json_string(f, "event", "compress", false);
    cli_json_string(f, "to", kind_names[c->to], false);
    cli_json_string(f, "model", r->spec, false);
    char layers[256] = "";
    for (int k = 0; k < c->n_layers; k++) {
        size_t n = strlen(layers);
        snprintf(layers + n, sizeof(layers) - n, "%s%d", k ? "," : "", c->layers[k]);
    }
    cli_json_string(f, "layers", layers, false);
    cli_json_string(f, "optim", fnet_optim_kind_name(c->op.kind), false);
    if (c->to == TO_TUCKER && c->n_ranks > 0) { // one per mode, as --ranks gave them
        char ranks[128] = "";
        for (int k = 0; k < c->n_ranks; k++) {
            size_t n = strlen(ranks);
            snprintf(ranks + n, sizeof(ranks) - n, "%s%lld", k ? "x" : "", (long long)c->ranks[k]);
        }
        cli_json_string(f, "ranks", ranks, false);
    } else if (c->to != TO_CSR) { // csr converts what is pruned: no rank, no sparsity of its own
        cli_json_number(f, c->to == TO_PRUNE ? "sparsity" : "rank", r->value, false);
    }
    if (c->to == TO_TR)
        cli_json_number(f, "ring", (double)(c->ring ? c->ring : (int64_t)r->value), false);
    if (c->to == TO_TUCKER)
        cli_json_number(f, "rel_err", r->rel_err, false);
    if (c->to == TO_CP)
        cli_json_number(f, "fit", r->fit, false);
    cli_json_number(f, "params", (double)r->params, false);
    cli_json_number(f, "params_before", (double)r->before, false);
    cli_json_number(f, "params_after", (double)r->after, false);
    cli_json_number(f, "compression", (double)r->before / (double)r->after, false);
    cli_json_number(f, "dense_test_acc", r->acc_before, false);
    cli_json_number(f, "test_acc_after_compression", r->acc_after, false);
    cli_json_number(f, "finetune_epochs", c->finetune, false);
    cli_json_number(f, "test_acc", r->acc_final, false);
    cli_json_number(f, "test_loss", r->loss_final, false);
    cli_json_number(f, "train_seconds", r->train_seconds, false);
    cli_json_number(f, "samples_per_s", r->samples_per_s, false);
    cli_json_number(f, "peak_rss_mb", cli_peak_rss_mb(), true);
}

static void sweep_plot(const char *prefix, const struct config *c, const struct result *r, int n)
{
    char dat[1100];
    plot_path(prefix, ".dat", dat, sizeof(dat));
    FILE *f = cli_fopen_out(dat, "w");
    if (f == NULL)
        cli_die(1, dat, "cannot write the plot data");
    fprintf(f, "# fnet-compress --to %s of %s\n# %s compression acc_after acc_finetuned\n",
            kind_names[c->to], c->load, c->to == TO_PRUNE ? "sparsity" : "rank");
    for (int i = 0; i < n; i++)
        fprintf(f, "%g %.6f %.6f %.6f\n", r[i].value, (double)r[i].before / (double)r[i].after,
                r[i].acc_after, r[i].acc_final);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        cli_die(1, dat, "cannot write the plot data (disk full?)");
    double lo = INFINITY, hi = 0.0;
    for (int i = 0; i < n; i++) {
        double x = (double)r[i].before / (double)r[i].after;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    FILE *g = plot_script_open(prefix, 1100, 650);
    const char *what = kind_methods[c->to];
    const char *base = strrchr(c->load, '/') ? strrchr(c->load, '/') + 1 : c->load;
    char layers[128] = "";
    for (int k = 0; k < c->n_layers; k++) {
        size_t len = strlen(layers);
        snprintf(layers + len, sizeof(layers) - len, "%s%d", k ? "," : " of layer ",
                 c->layers[k]);
    }
    fprintf(g,
            "  set title \"fnet-compress: %s%s of %s\"\n"
            "  set grid\n"
            "  set key outside right top vertical box\n"
            "  set logscale x\n"
            "  set xrange [%g:%g]\n"
            "  set xtics (",
            what, layers, base, lo / 1.3, hi * 1.3);
    for (int i = 0; i < n; i++) // a tic at every point, its compression
        fprintf(g, "%s\"%.3gx\" %.6g", i ? ", " : "", (double)r[i].before / (double)r[i].after,
                (double)r[i].before / (double)r[i].after);
    fprintf(g,
            ")\n"
            "  set xlabel \"compression of the compressed layers (times fewer parameters, log "
            "scale)\"\n"
            "  set ylabel \"test accuracy\"\n"
            "  set offsets 0, 0, graph 0.05, graph 0.05\n"
            "  dense = %.6f\n"
            "  set arrow 1 from graph 0, first dense to graph 1, first dense nohead dt 2 lw 1.5 "
            "lc rgb \"black\"\n"
            "  plot \"%s\" using 2:3 with linespoints pt 6 ps 1.5 lw 2 lc rgb \"#d62728\" "
            "title \"right after compression\", "
            "\"\" using 2:4 with linespoints pt 7 ps 1.5 lw 2 lc rgb \"#1f77b4\" "
            "title \"after %d fine-tuning epoch%s\", "
            "NaN with lines dt 2 lw 1.5 lc rgb \"black\" title \"dense (before)\"\n",
            r[0].acc_before, dat, c->finetune, c->finetune == 1 ? "" : "s");
    plot_script_close(g, prefix);
    if (plot_draw(prefix))
        printf("plot: %s.png, %s.svg\n", prefix, prefix);
}

static void parse_layers(const char *text, struct config *c)
{
    char buf[512];
    if (strlen(text) >= sizeof(buf) || *text == '\0')
        cli_die(2, "--layers", "expected layer positions separated by commas");
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (c->n_layers == MAX_LAYERS)
            cli_die(2, "--layers", "at most %d layers", MAX_LAYERS);
        int v = (int)cli_int("--layers", t, 0, 1 << 20);
        for (int k = 0; k < c->n_layers; k++)
            if (c->layers[k] == v)
                cli_die(2, "--layers", "layer %d is named twice", v);
        c->layers[c->n_layers++] = v;
    }
}

// "4x8x8x4:4x8x8x4": the input modes, then the output modes. tt and tr pair them in cores: as
// many of each, 2 to 8; tucker and cp take 1 to 8 a side, at most FNET_TN_MAX_MODES in all.
static void parse_modes(const char *text, struct config *c)
{
    const bool paired = c->to == TO_TT || c->to == TO_TR;
    const char *eg = paired ? "4x8x8x4:4x8x8x4" : "32x32:32x32";
    int64_t *dst[2] = {c->in_modes, c->out_modes};
    int *n[2] = {&c->n_in_modes, &c->n_out_modes};
    const char *p = text;
    for (int side = 0; side < 2; side++) {
        *n[side] = 0;
        for (;;) {
            char *end = NULL;
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 1 || v > (1 << 20) || *n[side] == 8)
                cli_die(2, "--modes", "expected IN:OUT, each %s sizes joined by x (e.g. %s), got "
                        "'%s'", paired ? "2 to 8" : "1 to 8", eg, text);
            dst[side][(*n[side])++] = v;
            p = end;
            if (*p != 'x')
                break;
            p++;
        }
        if (side == 0 && *p++ != ':')
            cli_die(2, "--modes", "expected IN:OUT (e.g. %s), got '%s'", eg, text);
    }
    if (*p != '\0')
        cli_die(2, "--modes", "expected IN:OUT (e.g. %s), got '%s'", eg, text);
    if (paired && (c->n_in_modes != c->n_out_modes || c->n_in_modes < 2))
        cli_die(2, "--modes", "expected as many input as output modes, 2 to 8 each, got '%s'",
                text);
    if (!paired && c->n_in_modes + c->n_out_modes > FNET_TN_MAX_MODES)
        cli_die(2, "--modes", "--to %s takes at most %d modes in all, got %d in '%s'",
                kind_names[c->to], FNET_TN_MAX_MODES, c->n_in_modes + c->n_out_modes, text);
}

// "10x8": the Tucker ranks, one per mode, the output modes first (the layer checks the count).
static void parse_ranks(const char *text, struct config *c)
{
    const char *p = text;
    c->n_ranks = 0;
    for (;;) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > (1 << 20) || c->n_ranks == FNET_TN_MAX_MODES)
            cli_die(2, "--ranks", "expected 1 to %d ranks >= 1 joined by x, one per mode, the "
                    "output modes first (e.g. 10x10), got '%s'", FNET_TN_MAX_MODES, text);
        c->ranks[c->n_ranks++] = v;
        p = end;
        if (*p != 'x')
            break;
        p++;
    }
    if (*p != '\0')
        cli_die(2, "--ranks", "expected ranks joined by x (e.g. 10x10), got '%s'", text);
}

static void parse_sweep(const char *text, struct config *c)
{
    char buf[512];
    if (strlen(text) >= sizeof(buf) || *text == '\0')
        cli_die(2, "--sweep", "expected values separated by commas");
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (c->n_sweep == MAX_SWEEP)
            cli_die(2, "--sweep", "at most %d values", MAX_SWEEP);
        c->sweep[c->n_sweep++] = c->to == TO_PRUNE ? cli_double("--sweep", t, 0.0, 0.9999)
                                                   : (double)cli_int("--sweep", t, 1, 1 << 20);
    }
}

int main(int argc, char **argv)
{
    static char usage[sizeof(usage_head) + sizeof(usage_mid) + sizeof(usage_tail)];
    snprintf(usage, sizeof(usage), "%s%s%s", usage_head, usage_mid, usage_tail);
    cli_init("fnet-compress", usage);
    struct config c = {.sparsity = 0.9, .scope = FNET_PRUNE_GLOBAL, .rounds = 1, .finetune = 2,
                       .batch = 256, .seed = 1, .to = (enum kind) - 1,
                       .hooi_iters = fnet_tucker_params_default().hooi_iters,
                       .als_iters = fnet_cp_params_default().als_iters};
    const char *data = cli_default_data(), *optim = "adam", *lr_s = NULL, *layers_s = NULL;
    const char *sweep_s = NULL, *device = "cpu", *schedule_s = NULL, *modes_s = NULL;
    const char *ranks_s = NULL;
    int64_t limit = 0, threads = 0;
    bool eps_set = false, energy_set = false, sparsity_set = false, rounds_set = false;
    bool scope_set = false, hooi_set = false, als_set = false;
    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--load") == 0) {
            c.load = v;
        } else if (strcmp(o, "--to") == 0) {
            int k = 0;
            while (k < N_KINDS && strcmp(v, kind_names[k]) != 0)
                k++;
            if (k == N_KINDS)
                cli_die(2, o, "expected tt, tr, tucker, cp, lowrank, prune or csr, got '%s'", v);
            c.to = (enum kind)k;
        } else if (strcmp(o, "--layers") == 0) {
            layers_s = v;
        } else if (strcmp(o, "--rank") == 0) {
            c.rank = cli_int(o, v, 1, 1 << 20);
            c.rank_set = true;
        } else if (strcmp(o, "--eps") == 0) {
            c.eps = cli_double(o, v, 1e-12, 1.0);
            eps_set = true;
        } else if (strcmp(o, "--energy") == 0) {
            c.energy = cli_double(o, v, 1e-12, 1.0);
            energy_set = true;
        } else if (strcmp(o, "--sparsity") == 0) {
            c.sparsity = cli_double(o, v, 0.0, 0.9999);
            sparsity_set = true;
        } else if (strcmp(o, "--prune-scope") == 0) {
            if (fnet_prune_scope_parse(v, &c.scope) != FNET_OK)
                cli_die(2, o, "expected global or layer, got '%s'", v);
            scope_set = true;
        } else if (strcmp(o, "--rounds") == 0) {
            c.rounds = (int)cli_int(o, v, 1, 1000);
            rounds_set = true;
        } else if (strcmp(o, "--csr") == 0) {
            c.csr = true;
        } else if (strcmp(o, "--finetune-epochs") == 0) {
            c.finetune = (int)cli_int(o, v, 0, 1000000);
        } else if (strcmp(o, "--optim") == 0) {
            optim = v;
        } else if (strcmp(o, "--lr") == 0) {
            lr_s = v;
        } else if (strcmp(o, "--batch") == 0) {
            c.batch = cli_int(o, v, 1, (int64_t)1 << 31);
        } else if (strcmp(o, "--modes") == 0) {
            modes_s = v;
        } else if (strcmp(o, "--ring") == 0) {
            c.ring = cli_int(o, v, 1, 1 << 20);
        } else if (strcmp(o, "--ranks") == 0) {
            ranks_s = v;
        } else if (strcmp(o, "--hooi-iters") == 0) {
            c.hooi_iters = (int)cli_int(o, v, 0, 1000000);
            hooi_set = true;
        } else if (strcmp(o, "--als-iters") == 0) {
            c.als_iters = (int)cli_int(o, v, 1, 1000000);
            als_set = true;
        } else if (strcmp(o, "--schedule") == 0) {
            schedule_s = v;
        } else if (strcmp(o, "--sweep") == 0) {
            sweep_s = v;
        } else if (strcmp(o, "--plot") == 0) {
            c.plot_arg = v;
        } else if (strcmp(o, "--save") == 0) {
            c.save = v;
        } else if (strcmp(o, "--json") == 0) {
            c.json_path = v;
        } else if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--limit-train") == 0) {
            limit = cli_int(o, v, 1, INT64_MAX);
        } else if (strcmp(o, "--seed") == 0) {
            c.seed = (uint64_t)cli_int(o, v, 0, INT64_MAX);
        } else if (strcmp(o, "--threads") == 0) {
            threads = cli_int(o, v, 1, 1024);
        } else if (strcmp(o, "--device") == 0) {
            device = v;
        } else {
            cli_die(2, o, "unknown option (see --help)");
        }
    }
    // the combinations, before anything is loaded
    if (c.load == NULL)
        cli_die(2, "--load", "the trained model to compress is required");
    if ((int)c.to < 0)
        cli_die(2, "--to", "what to compress to is required: tt, tr, tucker, cp, lowrank, prune "
                "or csr");
    const bool factor = factors(c.to);
    if (layers_s && !factor)
        cli_die(2, "--layers", "is for --to tt, tr, tucker, cp and lowrank; --to %s acts on every "
                "layer's weights", kind_names[c.to]);
    if ((c.rank_set || eps_set || energy_set) && !factor)
        cli_die(2, "--rank", "--rank, --eps and --energy are for --to tt, tr, tucker, cp and "
                "lowrank");
    if (modes_s && !(factor && c.to != TO_LOWRANK))
        cli_die(2, "--modes", "is for --to tt, tr, tucker and cp");
    if (eps_set && c.to != TO_TT && c.to != TO_TR)
        cli_die(2, "--eps", "is for --to tt and tr (lowrank: --energy)");
    if (energy_set && c.to != TO_LOWRANK)
        cli_die(2, "--energy", "is for --to lowrank (tt, tr: --eps)");
    if (c.ring && c.to != TO_TR)
        cli_die(2, "--ring", "is for --to tr");
    if (ranks_s && c.to != TO_TUCKER)
        cli_die(2, "--ranks", "is for --to tucker (the others: --rank)");
    if (hooi_set && c.to != TO_TUCKER)
        cli_die(2, "--hooi-iters", "is for --to tucker");
    if (als_set && c.to != TO_CP)
        cli_die(2, "--als-iters", "is for --to cp");
    if (ranks_s && c.rank_set)
        cli_die(2, "--ranks", "gives every rank: not with --rank");
    if (c.to == TO_TR && eps_set && !c.rank_set && !c.ring)
        cli_die(2, "--eps", "--to tr --eps without --rank needs --ring: the ring rank is not "
                "chosen by the accuracy");
    if ((sparsity_set || rounds_set || scope_set || c.csr) && c.to != TO_PRUNE)
        cli_die(2, "--sparsity", "--sparsity, --rounds, --prune-scope and --csr are for --to prune");
    if (c.rounds > 1 && c.finetune == 0)
        cli_die(2, "--rounds", "rounds of pruning need fine-tuning epochs between them");
    if (sweep_s && c.to == TO_CSR)
        cli_die(2, "--sweep", "--to csr has nothing to sweep");
    if (sweep_s && (c.rank_set || sparsity_set || ranks_s))
        cli_die(2, "--sweep", "gives the ranks or sparsities: not with --rank, --ranks or "
                "--sparsity");
    if (sweep_s && (eps_set || energy_set))
        cli_die(2, "--sweep", "sweeps ranks: not with --eps or --energy");
    if (sweep_s && c.save)
        cli_die(2, "--save", "not with --sweep (each value starts from the loaded model again)");
    if (c.plot_arg && !sweep_s)
        cli_die(2, "--plot", "plots a --sweep");
    if (sweep_s)
        parse_sweep(sweep_s, &c);
    if (layers_s)
        parse_layers(layers_s, &c);
    if (modes_s)
        parse_modes(modes_s, &c);
    if (ranks_s)
        parse_ranks(ranks_s, &c);
    fnet_optim_kind kind;
    if (fnet_optim_kind_parse(optim, &kind) != FNET_OK || kind == FNET_OPTIM_LBFGS ||
        kind == FNET_OPTIM_CG)
        cli_die(2, "--optim", "expected adam, adamw, sgd, momentum, nesterov or rmsprop, got '%s'",
                optim);
    c.op = fnet_optim_params_default(kind);
    c.op.lr = lr_s ? (float)cli_double("--lr", lr_s, 1e-30, 1e6) : 0.3f * c.op.lr;
    if (schedule_s && strcmp(schedule_s, "cosine") == 0)
        c.op.schedule = FNET_SCHEDULE_COSINE;
    else if (schedule_s && strcmp(schedule_s, "constant") != 0)
        cli_die(2, "--schedule", "expected constant or cosine, got '%s'", schedule_s);
    if (!c.rank_set) { // with --eps or --energy the accuracy alone chooses: no cap
        static const int64_t default_rank[N_KINDS] = {16, 8, 16, 32, 32, 0, 0};
        c.rank = eps_set || energy_set ? (int64_t)1 << 20 : default_rank[c.to];
    }
    char prefix[1024];
    if (c.plot_arg)
        plot_prefix("--plot", c.plot_arg, prefix, sizeof(prefix));

    fnet_ctx *ctx = cli_ctx(device, (int)threads, false);
    char where[1100];
    fnet_dataset *train = NULL, *test = NULL;
    cli_load_data(ctx, data, limit, &train, &test);
    fnet_model *m = load(ctx, c.load, test);
    if (factor) {
        if (c.n_layers == 0)
            default_layers(m, &c);
        check_layers(m, &c);
    }
    if (c.to == TO_PRUNE)
        check_prunable(ctx, m, &c, sweep_s != NULL);
    // outputs checked before the work
    if (c.save)
        cli_check_writable("--save", c.save);
    char dat_path[1100];
    if (c.plot_arg) {
        plot_path(prefix, ".dat", dat_path, sizeof(dat_path));
        cli_check_writable("--plot", dat_path);
    }
    // opened at the first record: a run that fails before it leaves an earlier file alone
    if (c.json_path)
        cli_check_writable("--json", c.json_path);
    FILE *json = NULL;
    double acc_before = evaluate(ctx, m, test, NULL);
    printf("%s: %s, %lld parameters, test accuracy %.4f\n", c.load, fnet_model_spec(m),
           (long long)fnet_model_num_params(m), acc_before);
    fnet_model_free(m);
    if (factor) {
        printf("compressing layer%s", c.n_layers > 1 ? "s" : "");
        for (int k = 0; k < c.n_layers; k++)
            printf("%s%d", k ? ", " : " ", c.layers[k]);
        if (c.to == TO_TUCKER)
            printf(" to Tucker: truncated HOSVD, %d HOOI sweep%s\n", c.hooi_iters,
                   c.hooi_iters == 1 ? "" : "s");
        else if (c.to == TO_CP)
            printf(" to CP: CP-ALS, at most %d sweeps, seed %llu\n", c.als_iters,
                   (unsigned long long)c.seed);
        else
            printf(" to %s\n", kind_methods[c.to]);
    }
    printf("fine-tuning: %s lr %g, batch %lld, %d epoch%s; %lld training samples, %s, %d threads\n\n",
           fnet_optim_kind_name(c.op.kind), (double)c.op.lr, (long long)c.batch, c.finetune,
           c.finetune == 1 ? "" : "s", (long long)fnet_dataset_size(train),
           fnet_ctx_backend_name(ctx), fnet_ctx_threads(ctx));
    fflush(stdout);

    int n = sweep_s ? c.n_sweep : 1;
    double one = c.to == TO_PRUNE ? c.sparsity : (double)c.rank;
    struct result *r = calloc((size_t)n, sizeof(*r));
    if (r == NULL)
        cli_die(1, NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        fnet_model *cm = compress(ctx, &c, sweep_s ? c.sweep[i] : one, acc_before, train, test,
                                  &r[i]);
        char tuned[64];
        if (c.to == TO_PRUNE && c.rounds > 1)
            snprintf(tuned, sizeof(tuned), "%d rounds of pruning and %d fine-tuning epoch%s",
                     c.rounds, c.finetune, c.finetune == 1 ? "" : "s");
        else
            snprintf(tuned, sizeof(tuned), "%d epoch%s of fine-tuning", c.finetune,
                     c.finetune == 1 ? "" : "s");
        printf("%s: %lld parameters; compression %.1fx; test accuracy %.4f before, %.4f right "
               "after, %.4f after %s\n\n",
               r[i].spec, (long long)r[i].params, (double)r[i].before / (double)r[i].after,
               r[i].acc_before, r[i].acc_after, r[i].acc_final, tuned);
        fflush(stdout);
        if (json == NULL)
            json = cli_json_open(c.json_path);
        json_result(json, &c, &r[i]);
        if (c.save) {
            snprintf(where, sizeof(where), "--save %s", c.save);
            if (cli_lead())
                cli_check(ctx, fnet_model_save(cm, NULL, c.save), where);
            printf("saved %s\n", c.save);
        }
        fnet_model_free(cm);
    }
    if (sweep_s) {
        printf("%10s %10s %12s %11s %11s %11s\n", c.to == TO_PRUNE ? "sparsity" : "rank",
               "params", "compression", "acc_before", "acc_after", "acc_tuned");
        for (int i = 0; i < n; i++)
            printf("%10g %10lld %11.1fx %11.4f %11.4f %11.4f\n", r[i].value, (long long)r[i].params,
                   (double)r[i].before / (double)r[i].after, r[i].acc_before, r[i].acc_after,
                   r[i].acc_final);
        if (c.plot_arg)
            sweep_plot(prefix, &c, r, n);
    }
    cli_json_close(json, c.json_path);
    free(r);
    fnet_dataset_free(train);
    fnet_dataset_free(test);
    fnet_ctx_free(ctx);
    return 0;
}
