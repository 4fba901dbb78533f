/* The fuzz targets of tests/fuzz, built with the normal compiler and replayed on every seed of
 * tests/fuzz/corpus/<target>/ and every input that once crashed a target,
 * tests/fuzz/regressions/<target>/: so `make test` (Release, then ASan + UBSan) keeps each fixed
 * crash fixed without clang or libFuzzer. A target's property failing aborts the test. Also the
 * regression tests of the bugs the fuzzers found, spelled out. */
#include "rel_util.h"

#include <dirent.h>

#define FUZZ_DIR FNET_TEST_DATA_DIR "/../fuzz"

// Each target's two entry points, renamed so that the four can live in one program.
int fuzz_json_one(const uint8_t *data, size_t size);
int fuzz_json_init(int *argc, char ***argv);
int fuzz_spec_one(const uint8_t *data, size_t size);
int fuzz_spec_init(int *argc, char ***argv);
int fuzz_idx_one(const uint8_t *data, size_t size);
int fuzz_idx_init(int *argc, char ***argv);
int fuzz_checkpoint_one(const uint8_t *data, size_t size);
int fuzz_checkpoint_init(int *argc, char ***argv);

#define LLVMFuzzerTestOneInput fuzz_json_one
#define LLVMFuzzerInitialize fuzz_json_init
#include "../fuzz/fuzz_json.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_spec_one
#define LLVMFuzzerInitialize fuzz_spec_init
#include "../fuzz/fuzz_spec.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_idx_one
#define LLVMFuzzerInitialize fuzz_idx_init
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_checkpoint_one
#define LLVMFuzzerInitialize fuzz_checkpoint_init
#include "../fuzz/fuzz_checkpoint.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Feed every file of dir (sorted by name) to one; returns how many. A missing dir is empty.
static int replay_dir(const char *dir, int (*one)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    char *names[512];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 512)
        if (e->d_name[0] != '.')
            names[n++] = rel_join(dir, e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), by_name_cmp);
    for (int i = 0; i < n; i++) {
        struct rel_bytes b = rel_read_file(names[i]);
        assert_non_null(b.p);
        print_message("%s (%zu bytes)\n", names[i], b.n);
        one(b.p, b.n);
        free(b.p);
        free(names[i]);
    }
    return n;
}

static void replay(const char *target, int (*init)(int *, char ***),
                   int (*one)(const uint8_t *, size_t))
{
    init(NULL, NULL);
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/corpus/%s", FUZZ_DIR, target);
    assert_true(replay_dir(dir, one) >= 4); // the seeds are there
    snprintf(dir, sizeof(dir), "%s/regressions/%s", FUZZ_DIR, target);
    replay_dir(dir, one);
}

static void test_fuzz_json_replays_its_corpus(void **state)
{
    (void)state;
    replay("json", fuzz_json_init, fuzz_json_one);
}

static void test_fuzz_spec_replays_its_corpus_and_regressions(void **state)
{
    (void)state;
    replay("spec", fuzz_spec_init, fuzz_spec_one);
}

static void test_fuzz_idx_replays_its_corpus(void **state)
{
    (void)state;
    replay("idx", fuzz_idx_init, fuzz_idx_one);
}

static void test_fuzz_checkpoint_replays_its_corpus_and_regressions(void **state)
{
    (void)state;
    replay("checkpoint", fuzz_checkpoint_init, fuzz_checkpoint_one);
    fnet_optimizer_free(adam);
    fnet_model_free(model);
    adam = NULL;
    model = NULL;
}

// Found by fuzz_checkpoint: a 136-byte file whose metadata claims a model of billions of
// parameters made fnet_model_load allocate (and zero) it before finding the tensors missing.
// The spec's size is now checked against the file's data first: no model is built at all.
static void test_checkpoint_load_refuses_a_spec_bigger_than_its_data(void **state)
{
    (void)state;
    fnet_ctx *ctx = fuzz_ctx();
    const char *files[] = {FUZZ_DIR "/regressions/checkpoint/huge-input-small-file",
                           FUZZ_DIR "/regressions/checkpoint/huge-layer-small-file"};
    for (int i = 0; i < 2; i++) {
        fnet_model *m = (fnet_model *)&m;
        long allocs = fnet_debug_alloc_count();
        assert_int_equal(fnet_model_load(ctx, files[i], &m), FNET_ERR_FORMAT);
        assert_null(m);
        assert_true(fnet_debug_alloc_count() - allocs < 16); // the reader's, no model's
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "needs at least"));
        assert_non_null(strstr(fnet_ctx_last_error(ctx), "bytes of tensor data"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_json_replays_its_corpus),
        cmocka_unit_test(test_fuzz_spec_replays_its_corpus_and_regressions),
        cmocka_unit_test(test_fuzz_idx_replays_its_corpus),
        cmocka_unit_test(test_fuzz_checkpoint_replays_its_corpus_and_regressions),
        cmocka_unit_test(test_checkpoint_load_refuses_a_spec_bigger_than_its_data),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fnet_ctx_free(fuzz_ctx());
    return rc;
}
