/* fnet-compare's pieces: the variants (what is trained, and how), one run of a variant for one
 * seed (what it measured), and the reports (table, CSV, JSON lines, plot). Public API only. */
#ifndef FNET_EXP_COMPARE_H
#define FNET_EXP_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <factornet.h>

#define CMP_WIDE "dense:1024,relu,dense:1024,relu,dense:10"

/* The middle layers of the built-in variants that fnet-bench --layers also times against the
 * dense 1024x1024 layer (bench/fnet_bench.c): one place for both, with the legend's words. */
#define CMP_LOWRANK_LAYER "lowrank:1024:rank=32"
#define CMP_LOWRANK_ABOUT "middle layer low-rank U·V, rank 32"
#define CMP_CIRC_LAYER "circ:1024:block=64"
#define CMP_CIRC_ABOUT "middle layer block-circulant, 64x64 blocks"
#define CMP_TR_LAYER "tr:1024:rank=8:ring=2"
#define CMP_TR_ABOUT "middle layer a tensor ring, ring rank 2, inner ranks 8"
#define CMP_TUCKER_LAYER "tucker:1024:rank=10:in=32x32:out=32x32"
#define CMP_TUCKER_ABOUT "middle layer Tucker, modes 32x32 a side, every rank 10"
#define CMP_CP_LAYER "cp:1024:rank=128"
#define CMP_CP_ABOUT "middle layer CP, 128 rank-one terms on modes 32x32 a side"
#define CMP_MAX_VARIANTS 32

/* How a variant's model is trained beyond the plain loop. */
enum cmp_how {
    CMP_PLAIN = 0,  // train the spec
    CMP_PRUNED = 1, // train the spec (or reuse that run), then iterative magnitude pruning
    CMP_SPARSE = 2, // sparse layers whose pattern evolves while training (SET or RigL)
};

/* What to train and how: a name, a spec, and the settings that differ from the run's recipe. */
struct cmp_variant {
    char name[32];
    char spec[1024];
    char about[160];         // the legend's line ("" for a user's model: its spec says it)
    bool has_optim;          // optim below, else the recipe's
    fnet_optim_kind optim;
    float lr;                // 0: the recipe's --lr, else the optimizer's default
    int64_t batch;           // 0: the recipe's
    int epochs;              // 0: the recipe's
    int epochs_div;          // > 0: max(1, the recipe's epochs / this) (the solvers)
    int iters;               // lbfgs, cg: iterations per minibatch; 0 default
    enum cmp_how how;
    double sparsity;         // CMP_PRUNED: the fraction of weights removed
    int rounds, finetune;    // CMP_PRUNED: rounds, fine-tuning epochs per round
    fnet_sparse_update update; // CMP_SPARSE
};

/* The recipe every variant starts from (the command line). */
struct cmp_recipe {
    fnet_optim_kind optim;
    float lr;     // 0: the optimizer's default
    int64_t batch;
    int epochs;
    float fro_decay;
};

/* What one run of a variant with one seed measured. */
struct cmp_run {
    int variant;
    uint64_t seed;
    char spec[2048];          // the trained model's spec (TT modes and ranks, CSR nnz)
    const char *optim;
    int64_t batch;
    int epochs;               // epochs trained (pruning: the dense ones and the fine-tuning)
    int64_t params;           // stored parameters
    int64_t compressed;       // of the layers that are not plain dense
    int64_t as_dense;         // dense layers (with bias) of the same shapes instead
    double flops;             // forward, per sample, at batch 256
    double samples_per_s, train_seconds;
    double test_acc, test_loss;
    double us_batch1, us_batch256; // inference, per sample
    int64_t checkpoint_bytes;
    double speed, acc_diff;   // against the reference run of the same seed (NaN: none)
    char error[1024];         // why training stopped (NaN/Inf loss); empty when it did not
};

/* The built-in variants, in the order of the default run. */
int cmp_builtin_count(void);
const struct cmp_variant *cmp_builtin(int i);
/* The built-in variant of this name, or NULL. */
const struct cmp_variant *cmp_builtin_find(const char *name);
/* "dense, tt, ..." for messages. */
const char *cmp_builtin_names(void);

/* A user's variant from --model's value "SPEC[;key=value...]" (keys: name, optim, lr, batch,
 * epochs, iters, prune, rounds, finetune, sparse-update); default name "modelK". Dies (exit 2)
 * naming the key on bad input. */
void cmp_parse_model(const char *text, int k, struct cmp_variant *v);

/* The variant's settings on this recipe. */
fnet_optim_params cmp_optim_params(const struct cmp_variant *v, const struct cmp_recipe *r);
int64_t cmp_batch(const struct cmp_variant *v, const struct cmp_recipe *r);
int cmp_epochs(const struct cmp_variant *v, const struct cmp_recipe *r);
/* The variant's recipe in words ("adam lr 0.001, batch 256, 10 epochs"). */
void cmp_describe(const struct cmp_variant *v, const struct cmp_recipe *r, char *out, size_t cap);

/* Reports. runs holds n_variants × seeds runs, seed-major (run s·n_variants + v). */
void cmp_print_table(const struct cmp_variant *vars, int n_variants, const struct cmp_run *runs,
                     int seeds, const struct cmp_recipe *r);
void cmp_json_run(FILE *f, const struct cmp_variant *v, const struct cmp_run *run);
void cmp_csv_header(FILE *f);
void cmp_csv_run(FILE *f, const struct cmp_variant *v, const struct cmp_run *run);
/* The plot: test accuracy against parameters (log axis), error bars over seeds, the reference
 * marked, beside training throughput; PREFIX.dat/.gp, drawn to .png/.svg when gnuplot is here.
 * true when drawn. */
bool cmp_plot(const char *prefix, const struct cmp_variant *vars, int n_variants,
              const struct cmp_run *runs, int seeds, const char *title);

#endif
