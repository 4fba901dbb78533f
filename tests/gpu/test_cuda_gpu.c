/* The CUDA backend's own checks beside the backend tests it runs as <name>_cuda: seeded training
 * runs whose losses follow the cpu backend's step by step, devices that do not exist, a model
 * larger than the device, the TF32 switch. Each runs on the backend FNET_TEST_GPU_BACKEND names:
 * "cuda" (the default: device 0) or "cuda:K", skipped (exit 77, the probe's reason printed) where
 * fnet_cuda_probe refuses it; or "guarded", where the same comparisons run without a GPU
 * (test_cuda_gpu_on_guarded, label unit) on memory that faults when host code touches it. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

// The backend under test: its name and, for cuda, the device
static const char *gpu_name = "cuda";
static int gpu_device;
static bool on_cuda;

static fnet_ctx *gpu_ctx(void)
{
    fnet_ctx *ctx = NULL;
    if (on_cuda)
        fnet_assert_ok(NULL, fnet_ctx_create_cuda(gpu_device, &ctx));
    else
        fnet_assert_ok(NULL, fnet_ctx_create_guarded(&ctx));
    return ctx;
}

static fnet_ctx *cpu_ctx(void)
{
    fnet_ctx *ctx = NULL;
    fnet_assert_ok(NULL, fnet_ctx_create_cpu(&ctx));
    return ctx;
}

// ---- seeded training runs: the backend under test against the cpu backend ----

#define TRAIN_DIM 784   // the seed network's input, as Fashion-MNIST's
#define TRAIN_CLASSES 10
#define TRAIN_BATCH 32
#define TRAIN_STEPS 50
#define TRAIN_SEED 20240611
// Each step's mean minibatch loss within this of the cpu run's, relative: the two runs differ
// in float GEMM sums (cuBLAS or the reference's double ones against OpenBLAS's) from the first
// step on, ~1e-7 relative, which 50 Adam steps must not grow past 1e-4.
#define LOSS_RTOL 1e-4
// The final parameters within this of the cpu run's, in the 2-norm relative to theirs
#define PARAMS_RTOL 1e-3

// ‖a − b‖₂ / ‖b‖₂ over n floats
static double rel_l2(const float *a, const float *b, int64_t n)
{
    double d = 0.0, r = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / r);
}

// TRAIN_STEPS steps of Adam (learning rate lr) on consecutive batches of TRAIN_BATCH samples of
// synthetic 784-pixel, 10-class data (the same on every ctx: same seed), from the model of
// `spec` made with TRAIN_SEED, dropout in training mode: loss[s] is step s's loss; *init and
// *final (host copies, freed by the caller) the first and the last parameters.
static void train_steps(fnet_ctx *ctx, const char *spec, float lr, double *loss, float **init,
                        float **final, int64_t *n_params)
{
    fnet_dataset *d = fnet_test_class_data(ctx, TRAIN_BATCH * TRAIN_STEPS, TRAIN_DIM,
                                           TRAIN_CLASSES, 150, 40, 60, 7);
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, TRAIN_DIM, TRAIN_SEED, &m));
    fnet_model_set_training(m, true);
    *n_params = fnet_model_num_params(m);
    *init = fnet_test_model_params(m);
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = lr;
    fnet_optimizer *opt = NULL;
    fnet_assert_ok(ctx, fnet_optimizer_create(ctx, &op, *n_params, &opt));
    float *x = fnet_test_upload(ctx, NULL, TRAIN_BATCH * TRAIN_DIM);
    int32_t labels[TRAIN_BATCH];
    for (int s = 0; s < TRAIN_STEPS; s++) {
        fnet_assert_ok(ctx, fnet_dataset_batch(d, NULL, (int64_t)s * TRAIN_BATCH, TRAIN_BATCH, x,
                                               labels));
        fnet_assert_ok(ctx, fnet_model_loss_grad(m, x, labels, TRAIN_BATCH, &loss[s], NULL));
        int64_t n = 0;
        float *w = fnet_model_params(m, &n), *g = fnet_model_grads(m, &n);
        fnet_assert_ok(ctx, fnet_optimizer_step(opt, w, g));
    }
    fnet_assert_ok(ctx, fnet_ctx_synchronize(ctx));
    *final = fnet_test_model_params(m);
    fnet_backend_free(ctx, x);
    fnet_optimizer_free(opt);
    fnet_model_free(m);
    fnet_dataset_free(d);
}

// The same run on the cpu backend and on the backend under test: the same initial parameters
// bit for bit (drawn on the host from the seed), every step's loss within LOSS_RTOL, the loss
// lowered (the last 5 steps' mean below 3/4 of the first 5's), the final parameters close.
static void check_training_matches_cpu(const char *spec, float lr)
{
    double want[TRAIN_STEPS], got[TRAIN_STEPS];
    float *init_c, *init_g, *final_c, *final_g;
    int64_t n_c, n_g;
    fnet_ctx *cpu = cpu_ctx(), *gpu = gpu_ctx();
    train_steps(cpu, spec, lr, want, &init_c, &final_c, &n_c);
    train_steps(gpu, spec, lr, got, &init_g, &final_g, &n_g);
    assert_int_equal(n_g, n_c);
    if (memcmp(init_g, init_c, sizeof(float) * (size_t)n_c) != 0)
        fail_msg("%s: the initial parameters on %s differ from the cpu backend's", spec,
                 fnet_ctx_backend_name(gpu));
    double worst = 0.0;
    for (int s = 0; s < TRAIN_STEPS; s++) {
        double rel = fabs(got[s] - want[s]) / fabs(want[s]);
        worst = rel > worst ? rel : worst;
        if (!(rel <= LOSS_RTOL))
            fail_msg("%s: step %d: loss %.9g on %s, %.9g on cpu (relative %.3g > %g)", spec, s,
                     got[s], fnet_ctx_backend_name(gpu), want[s], rel, LOSS_RTOL);
    }
    double first = 0.0, last = 0.0;
    for (int s = 0; s < 5; s++) {
        first += want[s] / 5;
        last += want[TRAIN_STEPS - 1 - s] / 5;
    }
    if (!(last < 0.75 * first))
        fail_msg("%s: the loss went from %g to %g in %d steps", spec, first, last, TRAIN_STEPS);
    // Adam moves a weight by up to lr a step even where its gradient is a cancelling sum whose
    // sign the two backends' roundings may disagree on, so weights are compared as a whole
    double moved = rel_l2(final_g, final_c, n_c);
    if (!(moved <= PARAMS_RTOL))
        fail_msg("%s: the final parameters on %s are %.3g from the cpu run's (relative 2-norm)",
                 spec, fnet_ctx_backend_name(gpu), moved);
    print_message("%s on %s: %d steps, loss %.4f -> %.4f, largest relative difference from the "
                  "cpu run %.2e, final parameters %.2e\n", spec, fnet_ctx_backend_name(gpu),
                  TRAIN_STEPS, first, last, worst, moved);
    free(final_g), free(final_c), free(init_g), free(init_c);
    fnet_ctx_free(gpu);
    fnet_ctx_free(cpu);
}

// The seed network of the original study (`make seed`)
static void test_seed_network_trains_as_on_cpu(void **state)
{
    (void)state;
    check_training_matches_cpu("dense:64,relu,dense:32,relu,dense:10", 1e-3f);
}

// A TT layer: its sweep's GEMMs, permutations and core gradients
static void test_tt_network_trains_as_on_cpu(void **state)
{
    (void)state;
    check_training_matches_cpu("tt:64:rank=4,relu,dense:10", 5e-3f);
}

// Dropout: the same counter-based masks on both backends, step after step
static void test_dropout_network_trains_as_on_cpu(void **state)
{
    (void)state;
    check_training_matches_cpu("dense:64,relu,dropout:0.25,dense:32,tanh,dense:10", 1e-3f);
}

// ---- devices that do not exist ----

// Device 4096 and device -1: fnet_cuda_probe and fnet_ctx_create_cuda both FNET_ERR_UNSUPPORTED
// (ctx.h: "a device index that does not exist"; the registry passes any index to the probe),
// *out NULL, a reason; on a machine with a CUDA device the reason names the index. Without one
// (the guarded run) the probe refuses every index, and says why.
static void test_devices_that_do_not_exist_are_refused(void **state)
{
    (void)state;
    static const int devices[] = {4096, -1};
    for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
        char why[256], index[16];
        memset(why, 'x', sizeof(why));
        assert_int_equal(fnet_cuda_probe(devices[i], why, sizeof(why)), FNET_ERR_UNSUPPORTED);
        assert_non_null(memchr(why, '\0', sizeof(why)));
        assert_true(strlen(why) > 10);
        snprintf(index, sizeof(index), "%d", devices[i]);
        if (on_cuda && strstr(why, index) == NULL)
            fail_msg("fnet_cuda_probe(%d) says '%s', which does not name the device", devices[i],
                     why);
        fnet_ctx *ctx = (fnet_ctx *)why; // must become NULL
        assert_int_equal(fnet_ctx_create_cuda(devices[i], &ctx), FNET_ERR_UNSUPPORTED);
        assert_null(ctx);
        print_message("device %d: %s\n", devices[i], why);
    }
    assert_int_equal(fnet_ctx_create_cuda(0, NULL), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_cuda_probe(4096, NULL, 0), FNET_ERR_UNSUPPORTED);
}

// ---- a model larger than the device ----

// The log's warnings: the guarded backend reports allocations still live when its ctx is freed
static char warnings[1024];

static void keep_warnings(fnet_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= FNET_LOG_WARN && strlen(warnings) + strlen(msg) + 2 < sizeof(warnings)) {
        strcat(warnings, msg);
        strcat(warnings, "\n");
    }
}

// Train "dense:16,relu,dense:3" on ctx for 4 epochs: the loss must fall to half
static void check_ctx_trains(fnet_ctx *ctx)
{
    fnet_dataset *d = fnet_test_class_data(ctx, 256, 16, 3, 150, 40, 60, 3);
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:16,relu,dense:3", 16, 1, &m));
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    op.lr = 1e-2f;
    fnet_train_params tp = fnet_train_params_default();
    tp.epochs = 4;
    tp.batch = 16;
    double first = NAN;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &(double){0.0}, &first));
    fnet_train_stats st;
    fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, &st));
    double acc = 0.0, loss = NAN;
    fnet_assert_ok(ctx, fnet_model_evaluate(m, d, &acc, &loss));
    if (!(loss < 0.5 * first) || !(acc > 0.9))
        fail_msg("after the failed model: loss %g -> %g, accuracy %g", first, loss, acc);
    fnet_model_free(m);
    fnet_dataset_free(d);
}

// Bytes of address space the process has mapped (VmSize), 0 when unknown
static double mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0.0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmSize: %lf kB", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib * 1024.0;
}

// The guarded backend's memory is address space, mapped without backing until an op touches
// it (then a failure aborts: a test instrument), so there the "device" is the process's address
// space, limited to what it has mapped plus 4 GiB while the model is tried: its mapping fails
// as cudaMallocAsync does on a GPU.
static void limit_address_space(struct rlimit *saved)
{
    assert_int_equal(getrlimit(RLIMIT_AS, saved), 0);
    double mapped = mapped_bytes();
    assert_true(mapped > 0.0);
    struct rlimit r = *saved;
    r.rlim_cur = (rlim_t)(mapped + 4294967296.0);
    if (saved->rlim_max != RLIM_INFINITY && r.rlim_cur > saved->rlim_max)
        r.rlim_cur = saved->rlim_max;
    assert_int_equal(setrlimit(RLIMIT_AS, &r), 0);
}

// A model whose parameters need more memory than the device has: a small first layer, then one
// of 2^37 floats (512 GiB, over the 80 to 141 GiB of an H100 or H200). fnet_model_create_from_spec
// returns FNET_ERR_OUT_OF_MEMORY with a message and no model, keeps nothing (the guarded backend
// warns of allocations still live when the ctx is freed), and the ctx trains a model afterwards.
static void test_model_larger_than_the_device(void **state)
{
    (void)state;
    const int64_t n_in = 4096, hidden = 256, n_out = (int64_t)1 << 29; // 2^8 · 2^29 weights
    char spec[96];
    snprintf(spec, sizeof(spec), "dense:%lld,relu,dense:%lld", (long long)hidden,
             (long long)n_out);

    warnings[0] = '\0';
    fnet_set_log_callback(keep_warnings, NULL);
    fnet_ctx *ctx = gpu_ctx();
    struct rlimit saved;
    if (!on_cuda)
        limit_address_space(&saved);
    // twice: the first attempt left nothing behind; checked once the limit is lifted again
    fnet_status st[2], last[2];
    bool no_model[2];
    char msg[2][256];
    for (int i = 0; i < 2; i++) {
        fnet_model *m = (fnet_model *)spec; // must become NULL
        st[i] = fnet_model_create_from_spec(ctx, spec, n_in, 1, &m);
        no_model[i] = m == NULL;
        last[i] = fnet_ctx_last_status(ctx);
        snprintf(msg[i], sizeof(msg[i]), "%s", fnet_ctx_last_error(ctx));
        fnet_ctx_clear_error(ctx);
        if (m != NULL && m != (fnet_model *)spec)
            fnet_model_free(m);
    }
    if (!on_cuda)
        assert_int_equal(setrlimit(RLIMIT_AS, &saved), 0);
    for (int i = 0; i < 2; i++) {
        if (st[i] != FNET_ERR_OUT_OF_MEMORY)
            fail_msg("%s on %s: %s (%s), not out of memory", spec, fnet_ctx_backend_name(ctx),
                     fnet_status_str(st[i]), msg[i]);
        assert_true(no_model[i]);
        assert_int_equal(last[i], FNET_ERR_OUT_OF_MEMORY);
        assert_true(strlen(msg[i]) > 0);
        print_message("%s (%.0f GiB of parameters) on %s: %s\n", spec,
                      (double)(n_in * hidden + hidden + hidden * n_out + n_out) * 4.0 /
                          1073741824.0,
                      fnet_ctx_backend_name(ctx), msg[i]);
    }
    fnet_assert_ok(ctx, fnet_ctx_synchronize(ctx)); // no failure kept from the attempts
    check_ctx_trains(ctx);
    fnet_ctx_free(ctx);
    fnet_set_log_callback(NULL, NULL);
    if (warnings[0] != '\0')
        fail_msg("the log warned: %s", warnings);
}

// ---- TF32 ----

#define TF32_BATCH 256
#define TF32_WIDTH 1024
// A forward of three 1024-wide GEMMs with TF32 on within 1e-2 of the same with it off, in the
// 2-norm relative to the output's: inputs rounded to 10-bit mantissas move each product by
// ~1e-3, and the sums of 1024 of them far less (the errors are not aligned).
#define TF32_FORWARD_RTOL 1e-2

// y (host, TF32_BATCH × 256) = m's forward of x
static float *forward_of(fnet_model *m, const float *x)
{
    float *y = malloc(sizeof(float) * TF32_BATCH * 256);
    assert_non_null(y);
    fnet_assert_ok(fnet_model_ctx(m), fnet_model_forward(m, x, TF32_BATCH, y));
    return y;
}

// fnet_ctx_set_tf32: on cuda FNET_OK both ways; TF32 on gives a forward that differs from the
// TF32-off one (tensor cores in use: cuBLAS picks them for these 256×1024×1024 GEMMs) by less
// than TF32_FORWARD_RTOL, and off again gives the TF32-off bits back. Elsewhere (and on the cpu
// backend always) FNET_ERR_UNSUPPORTED naming TF32, with the ctx unchanged: the same forward.
static void test_tf32_switch(void **state)
{
    (void)state;
    fnet_ctx *cpu = cpu_ctx();
    assert_int_equal(fnet_ctx_set_tf32(cpu, true), FNET_ERR_UNSUPPORTED);
    assert_non_null(strstr(fnet_ctx_last_message(cpu), "TF32"));
    assert_int_equal(fnet_ctx_set_tf32(NULL, true), FNET_ERR_INVALID_ARG);
    fnet_ctx_free(cpu);

    fnet_ctx *ctx = gpu_ctx();
    fnet_model *m = NULL;
    const char *spec = "dense:1024,relu,dense:1024,relu,dense:256";
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, spec, TF32_WIDTH, 11, &m));
    float *xh = malloc(sizeof(float) * TF32_BATCH * TF32_WIDTH);
    assert_non_null(xh);
    fnet_test_fill_uniform(xh, TF32_BATCH * TF32_WIDTH, -1.0f, 1.0f, 12);
    float *x = fnet_test_upload(ctx, xh, TF32_BATCH * TF32_WIDTH);
    const int64_t n = TF32_BATCH * 256;
    float *off = forward_of(m, x);
    if (on_cuda) {
        fnet_assert_ok(ctx, fnet_ctx_set_tf32(ctx, true));
        float *on = forward_of(m, x);
        double rel = rel_l2(on, off, n);
        if (!(rel <= TF32_FORWARD_RTOL))
            fail_msg("TF32 on: the forward is %.3g from the TF32-off one (relative), over %g", rel,
                     TF32_FORWARD_RTOL);
        if (memcmp(on, off, sizeof(float) * (size_t)n) == 0)
            fail_msg("TF32 on: the forward has the TF32-off bits: TF32 is not in use");
        fnet_assert_ok(ctx, fnet_ctx_set_tf32(ctx, false));
        float *again = forward_of(m, x);
        assert_memory_equal(again, off, sizeof(float) * (size_t)n);
        print_message("TF32 on: forward within %.2e of TF32 off (relative 2-norm)\n", rel);
        free(again);
        free(on);
    } else {
        for (int on = 1; on >= 0; on--) {
            assert_int_equal(fnet_ctx_set_tf32(ctx, on), FNET_ERR_UNSUPPORTED);
            assert_non_null(strstr(fnet_ctx_last_message(ctx), "TF32"));
        }
        float *again = forward_of(m, x);
        assert_memory_equal(again, off, sizeof(float) * (size_t)n);
        free(again);
    }
    free(off);
    fnet_backend_free(ctx, x);
    free(xh);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const char *name = getenv("FNET_TEST_GPU_BACKEND");
    if (name != NULL && *name != '\0')
        gpu_name = name;
    if (fnet_test_cuda_name(gpu_name, &gpu_device)) {
        on_cuda = true;
        fnet_test_skip_without_device("FNET_TEST_GPU_BACKEND", "cuda"); // exits without one
    } else if (strcmp(gpu_name, "guarded") != 0) {
        fprintf(stderr, "FNET_TEST_GPU_BACKEND is '%s', which this test does not run on: use cuda, "
                "cuda:K (device K) or guarded\n", gpu_name);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_network_trains_as_on_cpu),
        cmocka_unit_test(test_tt_network_trains_as_on_cpu),
        cmocka_unit_test(test_dropout_network_trains_as_on_cpu),
        cmocka_unit_test(test_devices_that_do_not_exist_are_refused),
        cmocka_unit_test(test_model_larger_than_the_device),
        cmocka_unit_test(test_tf32_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
