/* Tests of the model-spec parser (src/io/spec.c): every good form with its fields, every bad form
 * with FNET_ERR_FORMAT and a message naming the item, format→parse round trips, out-of-memory
 * injection, and a seeded garbage loop (run it under FNET_SANITIZE=ON). */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer_kind.h"

// Option values of a parsed item, by name (0 or empty when not given).
#define KIND(it) ((it).desc->kind)
#define RANK(it) fnet_spec_int(&(it), "rank", 0)
#define BLOCK(it) fnet_spec_int(&(it), "block", 0)
#define DENSITY(it) fnet_spec_real(&(it), "density", 0.0f)
#define NO_BIAS(it) (!fnet_spec_flag(&(it), "bias"))
#define N_RANKS(it) list_count(&(it), "ranks")
#define N_IN(it) list_count(&(it), "in")
#define N_OUT(it) list_count(&(it), "out")
#define RANKS(it, i) list_value(&(it), "ranks", (i))
#define IN(it, i) list_value(&(it), "in", (i))
#define OUT(it, i) list_value(&(it), "out", (i))

static int list_count(const struct fnet_spec_item *it, const char *name)
{
    int64_t v[FNET_SPEC_MAX_LIST];
    return fnet_spec_list(it, name, v);
}

static int64_t list_value(const struct fnet_spec_item *it, const char *name, int i)
{
    int64_t v[FNET_SPEC_MAX_LIST];
    int n = fnet_spec_list(it, name, v);
    assert_true(i < n);
    return v[i];
}

#define FUZZ_ROUNDS 2000
#define FUZZ_MAX_LEN 48

static int setup_ctx(void **state)
{
    fnet_ctx *ctx = NULL;
    if (fnet_ctx_create_reference(&ctx) != FNET_OK)
        return -1;
    *state = ctx;
    return 0;
}

static int teardown_ctx(void **state)
{
    fnet_ctx_free(*state);
    return 0;
}

// Parse spec, expecting success with `expect` items.
static struct fnet_spec_item *parse_ok(fnet_ctx *ctx, const char *spec, int expect)
{
    struct fnet_spec_item *items = NULL;
    int count = -1;
    fnet_status st = fnet_spec_parse(ctx, spec, &items, &count);
    if (st != FNET_OK)
        print_error("spec \"%s\"\n", spec);
    fnet_assert_ok(ctx, st);
    assert_non_null(items);
    assert_int_equal(count, expect);
    return items;
}

// Parse spec, expecting FNET_ERR_FORMAT, *items NULL, *count 0 and a message holding every one
// of the (up to two) given pieces.
static void check_parse_fails(fnet_ctx *ctx, const char *spec, const char *piece1, const char *piece2)
{
    struct fnet_spec_item *items = (struct fnet_spec_item *)&items; // not NULL before the call
    int count = 77;
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_spec_parse(ctx, spec, &items, &count);
    const char *msg = fnet_ctx_last_error(ctx);
    if (st != FNET_ERR_FORMAT || (piece1 && !strstr(msg, piece1)) ||
        (piece2 && !strstr(msg, piece2)))
        print_error("spec \"%.80s\": status %d, message \"%s\", wanted \"%s\" and \"%s\"\n", spec,
                    (int)st, msg, piece1 ? piece1 : "", piece2 ? piece2 : "");
    assert_int_equal(st, FNET_ERR_FORMAT);
    assert_int_equal(fnet_ctx_last_status(ctx), FNET_ERR_FORMAT);
    assert_null(items);
    assert_int_equal(count, 0);
    if (piece1)
        assert_non_null(strstr(msg, piece1));
    if (piece2)
        assert_non_null(strstr(msg, piece2));
}

// Same kind, argument and option values (a flag by its value, set or defaulted).
static void assert_items_equal(const struct fnet_spec_item *a, const struct fnet_spec_item *b)
{
    assert_ptr_equal(a->desc, b->desc);
    assert_int_equal(a->n, b->n);
    assert_true(a->p == b->p);
    for (int i = 0; i < a->desc->n_opts; i++) {
        const struct fnet_spec_opt *o = &a->desc->opts[i];
        if (o->type == FNET_SPEC_FLAG) {
            assert_int_equal(fnet_spec_flag(a, o->name), fnet_spec_flag(b, o->name));
            continue;
        }
        assert_int_equal(a->opt[i].set, b->opt[i].set);
        assert_int_equal(a->opt[i].count, b->opt[i].count);
        assert_true(a->opt[i].real == b->opt[i].real);
        for (int k = 0; k < a->opt[i].count; k++)
            assert_int_equal(a->opt[i].v[k], b->opt[i].v[k]);
    }
}

// Format every item, parse the text back alone, and expect the same item.
static void assert_round_trip(fnet_ctx *ctx, const struct fnet_spec_item *items, int count)
{
    for (int i = 0; i < count; i++) {
        char buf[512];
        int len = fnet_spec_item_format(&items[i], buf, sizeof(buf));
        assert_true(len > 0 && (size_t)len < sizeof(buf));
        assert_int_equal(strlen(buf), len);
        struct fnet_spec_item *back = parse_ok(ctx, buf, 1);
        assert_items_equal(&items[i], back);
        fnet_free(back);
    }
}

static void test_spec_rejects_null_arguments(void **state)
{
    fnet_ctx *ctx = *state;
    struct fnet_spec_item *items = (struct fnet_spec_item *)&items;
    int count = 5;
    assert_int_equal(fnet_spec_parse(ctx, NULL, &items, &count), FNET_ERR_INVALID_ARG);
    assert_null(items);
    assert_int_equal(count, 0);
    assert_int_equal(fnet_spec_parse(ctx, "relu", NULL, &count), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_spec_parse(ctx, "relu", &items, NULL), FNET_ERR_INVALID_ARG);
    assert_null(items);
    // A NULL ctx is allowed: the status still comes back.
    assert_int_equal(fnet_spec_parse(NULL, NULL, &items, &count), FNET_ERR_INVALID_ARG);
    assert_int_equal(fnet_spec_parse(NULL, "dense:0", &items, &count), FNET_ERR_FORMAT);
    assert_null(items);
}

static void test_spec_parses_dense_and_activations(void **state)
{
    fnet_ctx *ctx = *state;
    struct fnet_spec_item *it = parse_ok(ctx, "dense:64,relu,tanh,sigmoid,dropout:0.5,dense:10,"
                                              "dropout:0", 7);
    assert_int_equal(KIND(it[0]), FNET_LAYER_DENSE);
    assert_int_equal(it[0].n, 64);
    assert_int_equal(RANK(it[0]), 0);
    assert_int_equal(KIND(it[1]), FNET_LAYER_RELU);
    assert_int_equal(it[1].n, 0);
    assert_int_equal(KIND(it[2]), FNET_LAYER_TANH);
    assert_int_equal(KIND(it[3]), FNET_LAYER_SIGMOID);
    assert_int_equal(KIND(it[4]), FNET_LAYER_DROPOUT);
    assert_true(it[4].p == 0.5f);
    assert_int_equal(it[4].n, 0);
    assert_int_equal(KIND(it[5]), FNET_LAYER_DENSE);
    assert_int_equal(it[5].n, 10);
    assert_int_equal(KIND(it[6]), FNET_LAYER_DROPOUT);
    assert_true(it[6].p == 0.0f);
    fnet_free(it);

    it = parse_ok(ctx, "dense:2147483647,dense:007,dropout:.25,dropout:2.5e-1,dropout:0.999", 5);
    assert_int_equal(it[0].n, INT64_C(2147483647));
    assert_int_equal(it[1].n, 7); // leading zeros are still decimal
    assert_true(it[2].p == 0.25f);
    assert_true(it[3].p == 0.25f);
    assert_true(it[4].p == 0.999f);
    fnet_free(it);
}

static void test_spec_parses_every_tt_form(void **state)
{
    fnet_ctx *ctx = *state;
    struct fnet_spec_item *it = parse_ok(ctx, "tt:1024", 1);
    assert_int_equal(KIND(it[0]), FNET_LAYER_TT);
    assert_int_equal(it[0].n, 1024);
    assert_int_equal(RANK(it[0]), 0);
    assert_int_equal(N_RANKS(it[0]), 0);
    assert_int_equal(N_IN(it[0]), 0);
    assert_int_equal(N_OUT(it[0]), 0);
    fnet_free(it);

    it = parse_ok(ctx, "tt:1024:rank=8", 1);
    assert_int_equal(RANK(it[0]), 8);
    assert_int_equal(N_RANKS(it[0]), 0);
    fnet_free(it);

    it = parse_ok(ctx, "tt:1024:rank=8:in=4x8x8x4:out=4x8x8x4", 1);
    assert_int_equal(RANK(it[0]), 8);
    assert_int_equal(N_IN(it[0]), 4);
    assert_int_equal(N_OUT(it[0]), 4);
    const int64_t m[4] = {4, 8, 8, 4};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(IN(it[0], i), m[i]);
        assert_int_equal(OUT(it[0], i), m[i]);
    }
    fnet_free(it);

    // Options in any order; ranks has one value fewer than the modes.
    it = parse_ok(ctx, "tt:512:out=8x8x8:ranks=3x5:in=7x4x28", 1);
    assert_int_equal(it[0].n, 512);
    assert_int_equal(RANK(it[0]), 0);
    assert_int_equal(N_RANKS(it[0]), 2);
    assert_int_equal(RANKS(it[0], 0), 3);
    assert_int_equal(RANKS(it[0], 1), 5);
    assert_int_equal(N_IN(it[0]), 3);
    assert_int_equal(IN(it[0], 0), 7);
    assert_int_equal(IN(it[0], 1), 4);
    assert_int_equal(IN(it[0], 2), 28);
    assert_int_equal(N_OUT(it[0]), 3);
    assert_int_equal(OUT(it[0], 2), 8);
    fnet_free(it);

    // in alone (its product is the builder's business: the parser does not know n_in), ranks
    // alone, out alone, and the most modes allowed.
    it = parse_ok(ctx, "tt:10:in=16x49,tt:64:ranks=2x3x4,tt:256:out=2x2x2x2x2x2x2x2:rank=1", 3);
    assert_int_equal(N_IN(it[0]), 2);
    assert_int_equal(IN(it[0], 1), 49);
    assert_int_equal(N_OUT(it[0]), 0);
    assert_int_equal(N_RANKS(it[1]), 3);
    assert_int_equal(RANKS(it[1], 2), 4);
    assert_int_equal(N_OUT(it[2]), FNET_SPEC_MAX_LIST);
    assert_int_equal(OUT(it[2], 7), 2);
    assert_int_equal(RANK(it[2]), 1);
    fnet_free(it);

    // ranks with in modes only: the count follows the in modes.
    it = parse_ok(ctx, "tt:100:in=2x3x4:ranks=9x9", 1);
    assert_int_equal(N_RANKS(it[0]), 2);
    fnet_free(it);
}

static void test_spec_parses_lowrank_circ_sparse(void **state)
{
    fnet_ctx *ctx = *state;
    struct fnet_spec_item *it =
        parse_ok(ctx, "lowrank:256:rank=16,circ:1024:block=64,sparse:300:density=0.1,"
                      "sparse:5:density=1,circ:7:block=7,lowrank:1:rank=1",
                 6);
    assert_int_equal(KIND(it[0]), FNET_LAYER_LOWRANK);
    assert_int_equal(it[0].n, 256);
    assert_int_equal(RANK(it[0]), 16);
    assert_int_equal(KIND(it[1]), FNET_LAYER_CIRC);
    assert_int_equal(it[1].n, 1024);
    assert_int_equal(BLOCK(it[1]), 64);
    assert_int_equal(KIND(it[2]), FNET_LAYER_SPARSE);
    assert_int_equal(it[2].n, 300);
    assert_true(DENSITY(it[2]) == 0.1f);
    assert_true(DENSITY(it[3]) == 1.0f);
    assert_int_equal(BLOCK(it[4]), 7);
    assert_int_equal(RANK(it[5]), 1);
    fnet_free(it);
}

static void test_spec_tolerates_whitespace_around_tokens(void **state)
{
    fnet_ctx *ctx = *state;
    struct fnet_spec_item *a =
        parse_ok(ctx, "dense:1024,relu,tt:1024:rank=8:in=4x8x8x4:out=4x8x8x4,dropout:0.5,"
                      "sparse:10:density=0.5,relu",
                 6);
    struct fnet_spec_item *b =
        parse_ok(ctx, "  dense : 1024 ,\trelu , tt: 1024 : rank = 8 :in= 4 x 8x8 x4 : out=4x8x8x4"
                      " , dropout : 0.5,sparse:10:density = 0.5 ,relu\n",
                 6);
    for (int i = 0; i < 6; i++)
        assert_items_equal(&a[i], &b[i]);
    fnet_free(a);
    fnet_free(b);
    // Whitespace inside a number or a name is not tolerated.
    check_parse_fails(ctx, "dense:6 4", "spec item 1 'dense:6 4'", "got '6 4'");
    check_parse_fails(ctx, "re lu", "spec item 1 're lu'", "unknown layer kind 're lu'");
}

static void test_spec_rejects_bad_sizes(void **state)
{
    fnet_ctx *ctx = *state;
    check_parse_fails(ctx, "relu,relu,dense:0", "spec item 3 'dense:0'",
              "size must be a positive integer, got '0'");
    check_parse_fails(ctx, "dense:-3", "spec item 1 'dense:-3'", "got '-3'");
    check_parse_fails(ctx, "dense:+3", "spec item 1 'dense:+3'", "got '+3'");
    check_parse_fails(ctx, "dense:1e3", "spec item 1 'dense:1e3'", "got '1e3'");
    check_parse_fails(ctx, "dense:12abc", "spec item 1 'dense:12abc'", "got '12abc'");
    check_parse_fails(ctx, "dense:0x10", "spec item 1 'dense:0x10'", "got '0x10'");
    check_parse_fails(ctx, "dense:3.0", "spec item 1 'dense:3.0'", "got '3.0'");
    check_parse_fails(ctx, "relu,dense:", "spec item 2 'dense:'", "got ''");
    check_parse_fails(ctx, "dense", "spec item 1 'dense'", "missing size: write dense:N");
    check_parse_fails(ctx, "dense:2147483648", "spec item 1 'dense:2147483648'",
              "size must be at most 2147483647");
    check_parse_fails(ctx, "dense:99999999999999999999999999", "spec item 1", "must be at most 2147483647");
    check_parse_fails(ctx, "tt:rank=8", "spec item 1 'tt:rank=8'", "size must be a positive integer");
    check_parse_fails(ctx, "lowrank:0:rank=2", "spec item 1 'lowrank:0:rank=2'", "size must be");
    check_parse_fails(ctx, "circ:-8:block=2", "spec item 1 'circ:-8:block=2'", "size must be");
    check_parse_fails(ctx, "sparse::density=0.5", "spec item 1 'sparse::density=0.5'", "got ''");
}

static void test_spec_rejects_empty_spec_and_items(void **state)
{
    fnet_ctx *ctx = *state;
    check_parse_fails(ctx, "", "spec is empty", NULL);
    check_parse_fails(ctx, "   \t ", "spec is empty", NULL);
    check_parse_fails(ctx, "dense:64,,relu", "spec item 2 ''", "empty item");
    check_parse_fails(ctx, "dense:64,relu,", "spec item 3 ''", "empty item");
    check_parse_fails(ctx, ",relu", "spec item 1 ''", "empty item");
    check_parse_fails(ctx, "relu, ,relu", "spec item 2 ''", "empty item");
    check_parse_fails(ctx, ",", "spec item 1 ''", "empty item");
}

static void test_spec_rejects_unknown_kinds(void **state)
{
    fnet_ctx *ctx = *state;
    check_parse_fails(ctx, "dense:64,relux", "spec item 2 'relux'",
              "unknown layer kind 'relux' (expected dense, tt, tr, tucker, cp, lowrank, circ, "
              "sparse, relu, tanh, "
              "sigmoid, dropout)");
    check_parse_fails(ctx, "Dense:64", "spec item 1 'Dense:64'", "unknown layer kind 'Dense'");
    check_parse_fails(ctx, "RELU", "spec item 1 'RELU'", "unknown layer kind 'RELU'");
    check_parse_fails(ctx, "conv:3", "spec item 1 'conv:3'", "unknown layer kind 'conv'");
    check_parse_fails(ctx, ":64", "spec item 1 ':64'", "unknown layer kind ''");
    check_parse_fails(ctx, "relu;dense:3", "spec item 1 'relu;dense:3'", "unknown layer kind");
}

static void test_spec_rejects_bad_options(void **state)
{
    fnet_ctx *ctx = *state;
    // Unknown, duplicated, valueless and empty options.
    check_parse_fails(ctx, "relu,tt:64:foo=3", "spec item 2 'tt:64:foo=3'",
              "unknown option 'foo' for tt (expected rank, ranks, in, out, bias)");
    check_parse_fails(ctx, "lowrank:64:rank=2:block=4", "spec item 1 'lowrank:64:rank=2:block=4'",
              "unknown option 'block' for lowrank (expected rank, bias)");
    check_parse_fails(ctx, "circ:64:block=4:Block=4", "spec item 1", "unknown option 'Block' for circ");
    check_parse_fails(ctx, "dense:64:rank=3", "spec item 1 'dense:64:rank=3'",
              "unknown option 'rank' for dense (expected bias)");
    check_parse_fails(ctx, "relu:bias=0", "spec item 1 'relu:bias=0'", "relu takes no arguments");
    check_parse_fails(ctx, "dense:64:bias=2", "spec item 1 'dense:64:bias=2'", "bias must be 0 or 1, got '2'");
    check_parse_fails(ctx, "dense:64:bias=0:bias=0", "spec item 1", "option 'bias' given twice");
    check_parse_fails(ctx, "tt:64:rank=2:rank=2", "spec item 1 'tt:64:rank=2:rank=2'",
              "option 'rank' given twice");
    check_parse_fails(ctx, "tt:64:in=8x8:in=8x8", "spec item 1", "option 'in' given twice");
    check_parse_fails(ctx, "sparse:9:density=0.5:density=0.5", "spec item 1",
              "option 'density' given twice");
    check_parse_fails(ctx, "tt:64:rank", "spec item 1 'tt:64:rank'", "option 'rank' needs a value");
    check_parse_fails(ctx, "tt:64:rank=", "spec item 1 'tt:64:rank='", "rank must be a positive integer");
    check_parse_fails(ctx, "tt:64:", "spec item 1 'tt:64:'", "empty option");
    check_parse_fails(ctx, "tt:64::rank=2", "spec item 1", "empty option");
    // Required options.
    check_parse_fails(ctx, "lowrank:64", "spec item 1 'lowrank:64'",
              "missing required option rank: write lowrank:N:rank=R[:bias=0]");
    check_parse_fails(ctx, "relu,circ:64", "spec item 2 'circ:64'", "missing required option block");
    check_parse_fails(ctx, "sparse:64", "spec item 1 'sparse:64'", "give density=D or nnz=K");
    check_parse_fails(ctx, "sparse:64:density=0.5:nnz=9", "spec item 1", "give density=D or nnz=K");
    check_parse_fails(ctx, "sparse:64:nnz=0", "spec item 1", "got '0'");
    // Option values.
    check_parse_fails(ctx, "lowrank:64:rank=0", "spec item 1 'lowrank:64:rank=0'",
              "rank must be a positive integer, got '0'");
    check_parse_fails(ctx, "tt:64:rank=-1", "spec item 1", "rank must be a positive integer, got '-1'");
    check_parse_fails(ctx, "circ:64:block=0", "spec item 1 'circ:64:block=0'",
              "block must be a positive integer, got '0'");
    check_parse_fails(ctx, "circ:64:block=3", "spec item 1 'circ:64:block=3'",
              "block 3 does not divide the size 64");
    check_parse_fails(ctx, "circ:64:block=128", "spec item 1", "block 128 does not divide the size 64");
    check_parse_fails(ctx, "sparse:64:density=0", "spec item 1 'sparse:64:density=0'",
              "density must be a number in (0, 1], got '0'");
    check_parse_fails(ctx, "sparse:64:density=1.5", "spec item 1", "got '1.5'");
    check_parse_fails(ctx, "sparse:64:density=-0.5", "spec item 1", "got '-0.5'");
    check_parse_fails(ctx, "sparse:64:density=nan", "spec item 1", "got 'nan'");
    check_parse_fails(ctx, "sparse:64:density=inf", "spec item 1", "got 'inf'");
    check_parse_fails(ctx, "sparse:64:density=0.5x", "spec item 1", "got '0.5x'");
    check_parse_fails(ctx, "sparse:64:density=1e-60", "spec item 1", "got '1e-60'"); // 0 as a float
    check_parse_fails(ctx, "sparse:64:density=", "spec item 1", "got ''");
}

static void test_spec_rejects_bad_tt_structure(void **state)
{
    fnet_ctx *ctx = *state;
    check_parse_fails(ctx, "tt:64:rank=2:ranks=2x2", "spec item 1 'tt:64:rank=2:ranks=2x2'",
              "rank and ranks are exclusive");
    check_parse_fails(ctx, "tt:64:ranks=2x2:in=4x4x4:out=4x4x4:rank=3", "spec item 1",
              "rank and ranks are exclusive");
    check_parse_fails(ctx, "tt:64:ranks=2x2x2:out=4x4x4", "spec item 1 'tt:64:ranks=2x2x2:out=4x4x4'",
              "ranks has 3 values but 3 modes need 2");
    check_parse_fails(ctx, "tt:64:ranks=2:in=8x8x1", "spec item 1",
              "ranks has 1 values but 3 modes need 2");
    check_parse_fails(ctx, "tt:64:ranks=2:in=64", "spec item 1", "ranks has 1 values but 1 modes need 0");
    check_parse_fails(ctx, "tt:64:in=4x4x4:out=8x8", "spec item 1 'tt:64:in=4x4x4:out=8x8'",
              "in has 3 modes but out has 2");
    check_parse_fails(ctx, "tt:64:out=4x4x2", "spec item 1 'tt:64:out=4x4x2'",
              "out modes multiply to 32, not the size 64");
    check_parse_fails(ctx, "tt:64:out=4x4x8", "spec item 1", "out modes multiply to 128, not the size 64");
    check_parse_fails(ctx, "tt:64:out=2147483647x2147483647x2147483647x2147483647x2147483647",
              "spec item 1",
              "out modes multiply past 2^63, not the size 64");
    check_parse_fails(ctx, "tt:512:out=2x2x2x2x2x2x2x2x2", "spec item 1", "out has more than 8 values");
    check_parse_fails(ctx, "tt:512:in=2x2x2x2x2x2x2x2x2", "spec item 1", "in has more than 8 values");
    check_parse_fails(ctx, "tt:512:ranks=2x2x2x2x2x2x2x2", "spec item 1", "ranks has more than 7 values");
    check_parse_fails(ctx, "tt:64:in=4xx16", "spec item 1 'tt:64:in=4xx16'",
              "in value 2 must be a positive integer, got ''");
    check_parse_fails(ctx, "tt:64:in=4x16x", "spec item 1", "in value 3 must be a positive integer");
    check_parse_fails(ctx, "tt:64:out=x64", "spec item 1", "out value 1 must be a positive integer");
    check_parse_fails(ctx, "tt:64:out=8x0x8", "spec item 1",
              "out value 2 must be a positive integer, got '0'");
    check_parse_fails(ctx, "tt:64:ranks=2x-2", "spec item 1", "ranks value 2 must be a positive integer");
    check_parse_fails(ctx, "tt:64:in=", "spec item 1 'tt:64:in='", "in needs a list");
    check_parse_fails(ctx, "tt:64:in=4X16", "spec item 1", "got '4X16'"); // 'x' is case-sensitive too
    check_parse_fails(ctx, "tt:64:in=4x9999999999", "spec item 1", "in value 2 must be at most 2147483647");
}

static void test_spec_rejects_bad_activations_and_dropout(void **state)
{
    fnet_ctx *ctx = *state;
    check_parse_fails(ctx, "dense:8,relu:3", "spec item 2 'relu:3'", "relu takes no arguments, got '3'");
    check_parse_fails(ctx, "tanh:", "spec item 1 'tanh:'", "tanh takes no arguments");
    check_parse_fails(ctx, "sigmoid:x=1", "spec item 1 'sigmoid:x=1'", "sigmoid takes no arguments");
    check_parse_fails(ctx, "dropout", "spec item 1 'dropout'", "missing probability");
    check_parse_fails(ctx, "dropout:1", "spec item 1 'dropout:1'",
              "dropout probability must be a number in [0, 1), got '1'");
    check_parse_fails(ctx, "dropout:1.5", "spec item 1", "got '1.5'");
    check_parse_fails(ctx, "dropout:-0.1", "spec item 1", "got '-0.1'");
    check_parse_fails(ctx, "dropout:0.99999999", "spec item 1", "got '0.99999999'"); // 1.0f as a float
    check_parse_fails(ctx, "dropout:", "spec item 1 'dropout:'", "got ''");
    check_parse_fails(ctx, "dropout:half", "spec item 1", "got 'half'");
    check_parse_fails(ctx, "dropout:0.5.5", "spec item 1", "got '0.5.5'");
    check_parse_fails(ctx, "dropout:nan", "spec item 1", "got 'nan'");
    check_parse_fails(ctx, "dropout:0.5:0.5", "spec item 1 'dropout:0.5:0.5'",
              "dropout takes one argument, got extra '0.5'");
}

static void test_spec_enforces_length_and_item_limits(void **state)
{
    fnet_ctx *ctx = *state;
    // 1024 items parse; 1025 do not.
    size_t cap = 1025 * 5 + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (int i = 0; i < 1024; i++)
        strcat(s, i ? ",relu" : "relu");
    struct fnet_spec_item *it = parse_ok(ctx, s, 1024);
    assert_int_equal(KIND(it[1023]), FNET_LAYER_RELU);
    fnet_free(it);
    strcat(s, ",relu");
    check_parse_fails(ctx, s, "spec has 1025 items, at most 1024", NULL);
    free(s);

    // 64 KiB of text parse (one item padded with spaces); one byte more does not.
    size_t max = 64 * 1024;
    s = malloc(max + 2);
    assert_non_null(s);
    memset(s, ' ', max + 1);
    memcpy(s, "dense:5", 7);
    s[max] = '\0';
    it = parse_ok(ctx, s, 1);
    assert_int_equal(it[0].n, 5);
    fnet_free(it);
    s[max] = ' ';
    s[max + 1] = '\0';
    check_parse_fails(ctx, s, "spec is longer than 65536 bytes", NULL);
    free(s);
}

static void test_spec_clips_long_item_text_in_messages(void **state)
{
    fnet_ctx *ctx = *state;
    char s[2100];
    memcpy(s, "relu,dense:", 11);
    memset(s + 11, '7', 2000);
    s[2011] = 'z';
    s[2012] = '\0';
    check_parse_fails(ctx, s, "spec item 2 'dense:7777", "...'");
    assert_true(strlen(fnet_ctx_last_error(ctx)) < 400);
}

static void test_spec_formats_canonical_text(void **state)
{
    fnet_ctx *ctx = *state;
    const char *spec = " dense : 64 ,relu,tanh,sigmoid,dropout:0.50,"
                       "tt:1024:out=4x8x8x4:rank=8:in=4x8x8x4,tt:64:ranks=3x5:out=4x4x4,tt:1024,"
                       "lowrank:256:rank=016,circ:1024:block=64,sparse:300:density=.1";
    const char *want[] = {"dense:64",
                          "relu",
                          "tanh",
                          "sigmoid",
                          "dropout:0.5",
                          "tt:1024:rank=8:in=4x8x8x4:out=4x8x8x4",
                          "tt:64:ranks=3x5:out=4x4x4",
                          "tt:1024",
                          "lowrank:256:rank=16",
                          "circ:1024:block=64",
                          "sparse:300:density=0.1"};
    int n = (int)(sizeof(want) / sizeof(want[0]));
    struct fnet_spec_item *it = parse_ok(ctx, spec, n);
    for (int i = 0; i < n; i++) {
        char buf[256];
        int len = fnet_spec_item_format(&it[i], buf, sizeof(buf));
        assert_string_equal(buf, want[i]);
        assert_int_equal(len, strlen(want[i]));
    }

    // snprintf-like: a short buffer gets a NUL-terminated prefix and the full length back.
    char small[8];
    assert_int_equal(fnet_spec_item_format(&it[5], small, sizeof(small)), strlen(want[5]));
    assert_string_equal(small, "tt:1024");
    assert_int_equal(fnet_spec_item_format(&it[5], NULL, 0), strlen(want[5]));
    fnet_free(it);

    assert_int_equal(fnet_spec_item_format(NULL, small, sizeof(small)), -1);
    assert_string_equal(small, "");
    struct fnet_spec_item bad = {.desc = NULL};
    assert_int_equal(fnet_spec_item_format(&bad, small, sizeof(small)), -1);
}

static void test_spec_round_trips_format_then_parse(void **state)
{
    fnet_ctx *ctx = *state;
    const char *specs[] = {
        "dense:64,relu,dense:32,relu,dense:10",
        "dense:1024,relu,dense:1024,relu,dense:10",
        "dense:1024,relu,tt:1024:rank=8,relu,dense:10",
        "tt:1024:ranks=2x3x4:in=4x7x7x4:out=4x8x8x4,tanh",
        "tt:256:in=2x2x2x2x2x2x2x2:out=2x2x2x2x2x2x2x2:ranks=1x2x3x4x5x6x7",
        "tt:9:in=3x3,tt:9:out=3x3,tt:9:in=3x3:rank=2147483647",
        "lowrank:300:rank=17,circ:96:block=32,sparse:50:density=0.037,sigmoid",
        "dropout:0,dropout:0.1,dropout:0.123456789,dropout:0.99999,dropout:1e-7",
        "sparse:1:density=1,sparse:1:density=0.3333333333,sparse:2:density=1e-30",
    };
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct fnet_spec_item *items = NULL;
        int count = 0;
        fnet_assert_ok(ctx, fnet_spec_parse(ctx, specs[s], &items, &count));
        int commas = 0;
        for (const char *c = specs[s]; *c; c++)
            commas += *c == ',';
        assert_int_equal(count, commas + 1);
        assert_round_trip(ctx, items, count);
        fnet_free(items);
    }
    // A float that %g cannot carry still comes back exactly.
    struct fnet_spec_item *it = parse_ok(ctx, "dropout:0.123456789", 1);
    char buf[64];
    fnet_spec_item_format(&it[0], buf, sizeof(buf));
    assert_string_not_equal(buf, "dropout:0.123457");
    fnet_free(it);
}

static void test_spec_reports_out_of_memory_without_leaking(void **state)
{
    fnet_ctx *ctx = *state;
    const char *spec = "dense:1024,relu,tt:1024:rank=8:in=4x7x7x4:out=4x8x8x4,dropout:0.2,dense:10";
    int failures = 0;
    for (long k = 1; k < 100; k++) {
        struct fnet_spec_item *items = (struct fnet_spec_item *)&items;
        int count = 9;
        fnet_debug_fail_alloc(k);
        fnet_status st = fnet_spec_parse(ctx, spec, &items, &count);
        fnet_debug_fail_alloc(0);
        if (st == FNET_OK) {
            assert_int_equal(count, 5);
            assert_int_equal(KIND(items[2]), FNET_LAYER_TT);
            assert_int_equal(OUT(items[2], 1), 8);
            fnet_free(items);
            break;
        }
        assert_int_equal(st, FNET_ERR_OUT_OF_MEMORY);
        assert_null(items);
        assert_int_equal(count, 0);
        failures++;
    }
    assert_true(failures >= 1); // at least the item array was refused once
    // A bad spec is a format error even when memory would run out: it is checked first.
    struct fnet_spec_item *items = NULL;
    int count = 0;
    fnet_debug_fail_alloc(1);
    fnet_status st = fnet_spec_parse(ctx, "dense:0", &items, &count);
    fnet_debug_fail_alloc(0);
    assert_int_equal(st, FNET_ERR_FORMAT);
    assert_null(items);
}

static uint64_t fuzz_next(uint64_t *s)
{
    // xorshift64*: fixed seed, deterministic.
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void test_spec_survives_random_garbage(void **state)
{
    fnet_ctx *ctx = *state;
    static const char alphabet[] = "dense:tt,relu=x0123456789.-rankinoutblock";
    const char *seeds[] = {"dense:", "tt:", "relu", "rank=", "in=", "out=", "x", ",", ":"};
    uint64_t rng = UINT64_C(0x5eed5eed12345678);
    int ok = 0, bad = 0;
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        char s[FUZZ_MAX_LEN * 4 + 1];
        size_t len = 0, target = (size_t)(fuzz_next(&rng) % FUZZ_MAX_LEN);
        while (len < target) {
            uint64_t r = fuzz_next(&rng);
            if (r % 4 == 0) { // a keyword-ish piece makes deeper paths reachable
                const char *piece = seeds[(r >> 8) % (sizeof(seeds) / sizeof(seeds[0]))];
                size_t n = strlen(piece);
                memcpy(s + len, piece, n);
                len += n;
            } else {
                s[len++] = alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
            }
        }
        s[len] = '\0';
        struct fnet_spec_item *items = NULL;
        int count = -1;
        fnet_status st = fnet_spec_parse(ctx, s, &items, &count);
        if (st == FNET_OK) {
            assert_non_null(items);
            assert_true(count >= 1);
            assert_round_trip(ctx, items, count);
            fnet_free(items);
            ok++;
        } else {
            if (st != FNET_ERR_FORMAT)
                print_error("spec \"%s\": status %d\n", s, (int)st);
            assert_int_equal(st, FNET_ERR_FORMAT);
            assert_null(items);
            assert_int_equal(count, 0);
            assert_true(strlen(fnet_ctx_last_error(ctx)) > 0);
            bad++;
        }
    }
    assert_int_equal(ok + bad, FUZZ_ROUNDS);
    assert_true(ok > 0); // the generator does reach valid specs ("relu", "tt:5", ...)
    assert_true(bad > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_rejects_null_arguments),
        cmocka_unit_test(test_spec_parses_dense_and_activations),
        cmocka_unit_test(test_spec_parses_every_tt_form),
        cmocka_unit_test(test_spec_parses_lowrank_circ_sparse),
        cmocka_unit_test(test_spec_tolerates_whitespace_around_tokens),
        cmocka_unit_test(test_spec_rejects_bad_sizes),
        cmocka_unit_test(test_spec_rejects_empty_spec_and_items),
        cmocka_unit_test(test_spec_rejects_unknown_kinds),
        cmocka_unit_test(test_spec_rejects_bad_options),
        cmocka_unit_test(test_spec_rejects_bad_tt_structure),
        cmocka_unit_test(test_spec_rejects_bad_activations_and_dropout),
        cmocka_unit_test(test_spec_enforces_length_and_item_limits),
        cmocka_unit_test(test_spec_clips_long_item_text_in_messages),
        cmocka_unit_test(test_spec_formats_canonical_text),
        cmocka_unit_test(test_spec_round_trips_format_then_parse),
        cmocka_unit_test(test_spec_reports_out_of_memory_without_leaking),
        cmocka_unit_test(test_spec_survives_random_garbage),
    };
    return cmocka_run_group_tests(tests, setup_ctx, teardown_ctx);
}
