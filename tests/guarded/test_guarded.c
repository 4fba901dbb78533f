/* The guarded test backend (src/guarded/): it gives the reference's numbers, its memory faults
 * when host code touches it, and an op handed host memory where it expects backend memory stops
 * the program with a message naming the op and the argument. The faults are provoked in child
 * processes. */
#include "test_util.h"
#include "core/backend.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_SEGV 77 // a child's exit status when its SIGSEGV handler ran

static void on_segv(int sig)
{
    (void)sig;
    _exit(CHILD_SEGV);
}

// Run fn in a child with its stderr captured into err (cap); returns the wait status. The child
// turns SIGSEGV into exit(CHILD_SEGV), so the check holds under the sanitizers too.
static int in_child(void (*fn)(void), char *err, size_t cap)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        fn();
        _exit(0);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < cap && (k = read(fd[0], err + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    err[len] = '\0';
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void assert_faulted(int status)
{
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_SEGV);
}

static fnet_ctx *guarded(void)
{
    fnet_ctx *ctx = NULL;
    fnet_assert_ok(NULL, fnet_ctx_create_guarded(&ctx));
    return ctx;
}

static void write_backend_memory(void)
{
    fnet_ctx *ctx = guarded();
    float *p = fnet_test_upload(ctx, NULL, 16);
    p[3] = 1.0f; // a host write: must fault here
    fprintf(stderr, "the write went through\n");
}

static void read_model_params(void)
{
    fnet_ctx *ctx = guarded();
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:4,relu,dense:3", 5, 1, &m));
    volatile float w = fnet_model_params(m, NULL)[0]; // a host read: must fault here
    fprintf(stderr, "the read went through: %g\n", (double)w);
}

static void pass_host_input(void)
{
    fnet_ctx *ctx = guarded();
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, "dense:4,relu,dense:3", 5, 1, &m));
    float x[2 * 5] = {0};
    int32_t labels[2] = {0, 1};
    double loss;
    fnet_model_loss_grad(m, x, labels, 2, &loss, NULL); // x is host memory: the op must stop
    fprintf(stderr, "the op ran on host memory\n");
}

static void gemm_over_its_input(void)
{
    fnet_ctx *ctx = guarded();
    float *a = fnet_test_upload(ctx, NULL, 16), *b = fnet_test_upload(ctx, NULL, 16);
    ctx->be->fill(ctx, 16, 1.0f, a);
    ctx->be->fill(ctx, 16, 1.0f, b);
    // C over A: the op's contract forbids it (backend.h), the guard must say so
    ctx->be->sgemm(ctx, false, false, 4, 4, 4, 1.0f, a, 4, b, 4, 0.0f, a, 4);
    fprintf(stderr, "the op ran over its input\n");
}

static void test_guarded_memory_faults_on_host_write(void **state)
{
    char err[1024];
    assert_faulted(in_child(write_backend_memory, err, sizeof(err)));
    assert_null(strstr(err, "went through"));
}

static void test_guarded_memory_faults_on_host_read(void **state)
{
    char err[1024];
    assert_faulted(in_child(read_model_params, err, sizeof(err)));
    assert_null(strstr(err, "went through"));
}

static void test_guarded_op_stops_on_host_memory(void **state)
{
    char err[4096];
    int status = in_child(pass_host_input, err, sizeof(err));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(err, "fnet guarded backend: sgemm: A"));
    assert_null(strstr(err, "ran on host memory"));
}

static void test_guarded_op_stops_on_forbidden_aliasing(void **state)
{
    char err[4096];
    int status = in_child(gemm_over_its_input, err, sizeof(err));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(err, "fnet guarded backend: sgemm: C overlaps A"));
    assert_null(strstr(err, "ran over its input"));
}

// The same training on the guarded and the reference backend: the same ops, the same bits.
static void test_guarded_trains_like_the_reference(void **state)
{
    fnet_ctx *g = guarded(), *r = NULL;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&r));
    fnet_ctx *ctxs[2] = {g, r};
    float *w[2];
    int64_t np = 0;
    for (int k = 0; k < 2; k++) {
        fnet_ctx *ctx = ctxs[k];
        fnet_dataset *d = fnet_test_class_data(ctx, 64, 12, 3, 150, 50, 60, 5);
        fnet_model *m = NULL;
        fnet_assert_ok(ctx, fnet_model_create_from_spec(
                                ctx, "dense:16,tanh,dropout:0.25,tt:16:rank=2,relu,dense:3", 12, 9,
                                &m));
        fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
        fnet_train_params tp = fnet_train_params_default();
        tp.batch = 16;
        tp.epochs = 2;
        fnet_assert_ok(ctx, fnet_train(m, &op, &tp, d, NULL, NULL, NULL, NULL));
        np = fnet_model_num_params(m);
        w[k] = fnet_test_model_params(m);
        fnet_model_free(m);
        fnet_dataset_free(d);
    }
    assert_memory_equal(w[0], w[1], (size_t)np * sizeof(float));
    free(w[0]), free(w[1]);
    fnet_ctx_free(g);
    fnet_ctx_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guarded_memory_faults_on_host_write),
        cmocka_unit_test(test_guarded_memory_faults_on_host_read),
        cmocka_unit_test(test_guarded_op_stops_on_host_memory),
        cmocka_unit_test(test_guarded_op_stops_on_forbidden_aliasing),
        cmocka_unit_test(test_guarded_trains_like_the_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
