/* Crash safety of checkpoints (docs/reliability.md): a child process saves checkpoints over one
 * path in a loop and is killed with SIGKILL at KILLS different moments (random delays spread over
 * a few save durations). After each kill the file at the path must load and hold exactly one
 * complete generation, the last one the child reported saved or the one it was saving (its
 * rename may have landed just before the kill): never a partial or mixed file. A SIGKILL can
 * leave the writer's temporary file ("<path>.tmp.XXXXXX") behind: it never sits at the path. */
#include "rel_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define KILLS 100
#define SPEC "dense:512,relu,dense:512" // 0.67M parameters: a 2.7 MB file
#define N_IN 784
#define MAX_SAVES 100000 // a child never saves more than this (it is always killed first)

// Generation g's parameters: w[0] = g, the rest a pattern that differs between generations.
static void fill(float *w, int64_t n, int64_t g)
{
    w[0] = (float)g;
    for (int64_t i = 1; i < n; i++)
        w[i] = (float)((i * 7 + g * 13) % 1009) * 0.001f + (float)g;
}

// The generation the file at path holds, or -1 when it does not load or is not a whole one.
static int64_t generation_of(fnet_ctx *ctx, const char *path, float *expect, int64_t n)
{
    fnet_model *m = NULL;
    fnet_status st = fnet_model_load(ctx, path, &m);
    if (st != FNET_OK) {
        print_error("%s: %s\n", path, fnet_ctx_last_error(ctx));
        return -1;
    }
    int64_t k;
    const float *w = fnet_model_params(m, &k);
    int64_t g = (int64_t)w[0];
    fill(expect, n, g);
    bool whole = k == n && memcmp(w, expect, (size_t)n * sizeof(float)) == 0;
    fnet_model_free(m);
    return whole ? g : -1;
}

#define READY (-1) // what the child reports before its first save

// The child: report READY, then save generations first, first + 1, ... and report each on fd
// once it is saved.
_Noreturn static void child_saves(fnet_model *m, const char *path, int64_t first, int fd)
{
    int64_t n, ready = READY;
    float *w = fnet_model_params(m, &n);
    if (write(fd, &ready, sizeof(ready)) != (ssize_t)sizeof(ready))
        _exit(3);
    for (int64_t g = first; g < first + MAX_SAVES; g++) {
        fill(w, n, g);
        if (fnet_model_save(m, NULL, path) != FNET_OK)
            _exit(2);
        if (write(fd, &g, sizeof(g)) != (ssize_t)sizeof(g))
            _exit(3);
    }
    _exit(4);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

// How long a save takes in a child (which may be slower than its parent, e.g. under a
// sanitizer): the mean of its first three saves (generations 1..3), after which it is killed.
static double child_save_seconds(fnet_model *m, const char *path)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_saves(m, path, 1, fds[1]);
    }
    close(fds[1]);
    int64_t g;
    assert_int_equal(read(fds[0], &g, sizeof(g)), (ssize_t)sizeof(g));
    double t0 = now_s();
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(read(fds[0], &g, sizeof(g)), (ssize_t)sizeof(g));
        assert_int_equal(g, i);
    }
    double t = (now_s() - t0) / 3;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    return t;
}

/* A SIGKILL during a save may leave the writer's temporary file behind (at most one: the child
 * saves one file at a time). Do what a user would: remove it and keep the checkpoint, which holds
 * generation g. Returns how many there were. */
static int remove_stale_temporaries(fnet_ctx *ctx, fnet_model *m, const char *dir,
                                    const char *path, int64_t g)
{
    int tmp = rel_count_tmp_files(dir);
    assert_true(tmp <= 1);
    if (tmp > 0) {
        int64_t n;
        float *w = fnet_model_params(m, &n);
        rel_remove_dir(dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        fill(w, n, g);
        fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    }
    return tmp;
}

static void test_checkpoint_survives_sigkill_at_any_moment_of_a_save(void **state)
{
    (void)state;
    fnet_ctx *ctx;
    fnet_assert_ok(NULL, fnet_ctx_create_reference(&ctx));
    fnet_model *m = NULL;
    fnet_assert_ok(ctx, fnet_model_create_from_spec(ctx, SPEC, N_IN, 1, &m));
    int64_t n;
    float *w = fnet_model_params(m, &n);
    float *expect = malloc((size_t)n * sizeof(float));
    assert_non_null(expect);
    char *dir = rel_tmpdir(), *path = rel_join(dir, "ck.safetensors");

    // generation 0
    fill(w, n, 0);
    fnet_assert_ok(ctx, fnet_model_save(m, NULL, path));
    double save_s = child_save_seconds(m, path);
    print_message("one save of %lld parameters takes %.1f ms in a child\n", (long long)n,
                  1e3 * save_s);

    // the generation the file holds now: 3, or a later one if the child went on saving before
    // the kill reached it (a slow parent on a loaded machine)
    int64_t last = generation_of(ctx, path, expect, n);
    assert_true(last >= 3);
    remove_stale_temporaries(ctx, m, dir, path, last); // the calibration child was killed too
    fnet_rng rng;
    fnet_rng_seed(&rng, 2024);
    int in_flight = 0, left_tmp = 0;
    for (int kill_no = 0; kill_no < KILLS; kill_no++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_saves(m, path, last + 1, fds[1]);
        }
        close(fds[1]);
        // from the child's start (fork costs differ, e.g. under a sanitizer): anywhere from
        // before the first save to the middle of the third
        int64_t g;
        assert_int_equal(read(fds[0], &g, sizeof(g)), (ssize_t)sizeof(g));
        assert_int_equal(g, READY);
        sleep_s(fnet_rng_uniform(&rng) * 2.5 * save_s);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL); // not an error exit of its own
        int64_t reported = last;
        while (read(fds[0], &g, sizeof(g)) == (ssize_t)sizeof(g))
            reported = g;
        close(fds[0]);

        int64_t now = generation_of(ctx, path, expect, n);
        if (now != reported && now != reported + 1)
            fail_msg("kill %d: the file holds generation %lld, the child had saved %lld",
                     kill_no, (long long)now, (long long)reported);
        in_flight += now == reported + 1;
        // a temporary file may be left by the kill; it is never at the path (checked above)
        left_tmp += remove_stale_temporaries(ctx, m, dir, path, now);
        last = now;
    }
    print_message("%d kills: the file always held a whole generation (the last %lld); %d times "
                  "the one in flight, %d temporary files left by kills\n",
                  KILLS, (long long)last, in_flight, left_tmp);
    assert_true(last > 0); // the children did save

    rel_remove_dir(dir);
    free(path);
    free(dir);
    free(expect);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_survives_sigkill_at_any_moment_of_a_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
