/* The table of layer kinds (src/core/layer_kinds.c): every kind once, its descriptor whole, its
 * name the one fnet_layer_kind_name gives, and every built kind builds a layer from the item of
 * its usage line with sizes filled in. */
#include "test_util.h"
#include "core/layer_impl.h"

#include <stdio.h>
#include <string.h>

static void test_every_kind_is_in_the_table_once(void **state)
{
    int n = fnet_layer_kind_count();
    assert_true(n >= 9);
    for (int i = 0; i < n; i++) {
        const struct fnet_layer_desc *d = fnet_layer_kind_at(i);
        assert_non_null(d);
        assert_non_null(d->name);
        assert_ptr_equal(fnet_layer_kind_desc(d->kind), d);
        assert_string_equal(fnet_layer_kind_name(d->kind), d->name);
        // the usage line starts with the name, as a message tells a user to write it
        assert_int_equal(strncmp(d->usage, d->name, strlen(d->name)), 0);
        assert_true(d->n_opts >= 0 && d->n_opts <= FNET_SPEC_MAX_OPTS);
        for (int o = 0; o < d->n_opts; o++) {
            assert_non_null(strstr(d->usage, d->opts[o].name));
            for (int p = 0; p < o; p++)
                assert_string_not_equal(d->opts[o].name, d->opts[p].name);
            if (d->opts[o].type == FNET_SPEC_LIST)
                assert_true(d->opts[o].max_count >= 1 && d->opts[o].max_count <= FNET_SPEC_MAX_LIST);
        }
        if (d->arg == FNET_SPEC_ARG_REAL)
            assert_true(d->arg_name != NULL && d->arg_symbol != NULL && d->n_opts == 0);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(d->name, fnet_layer_kind_at(j)->name);
            assert_int_not_equal(d->kind, fnet_layer_kind_at(j)->kind);
        }
    }
    assert_null(fnet_layer_kind_at(n));
    assert_null(fnet_layer_kind_at(-1));
    assert_string_equal(fnet_layer_kind_name((fnet_layer_kind)99), "unknown");
}

// A spec of each built kind: its layer's own description parses back to the same text, and the
// parameter count the descriptor implies is the layer's.
static void test_built_kinds_describe_themselves_and_count_their_parameters(void **state)
{
    fnet_ctx *ctx = fnet_test_ctx(FNET_BACKEND_REFERENCE);
    const char *specs[] = {"dense:6", "dense:6:bias=0", "relu", "tanh", "sigmoid", "dropout:0.25",
                           "tt:16:ranks=2x3:in=2x2x2:out=4x2x2", "tt:16:rank=3:bias=0",
                           "lowrank:6:rank=3", "lowrank:5:rank=2:bias=0", "circ:12:block=4",
                           "circ:4:block=4:bias=0", "tr:16:rank=2:in=2x4:out=4x4",
                           "tr:16:ranks=2x2:ring=2:in=2x2x2:out=4x2x2:bias=0", "tr:16:rank=2",
                           "tucker:6:ranks=2x3", "tucker:16:rank=2:in=2x4:out=4x2x2:bias=0",
                           "cp:6:rank=3", "cp:16:rank=2:in=8:out=2x2x4:bias=0"};
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct fnet_spec_item *items = NULL;
        int count = 0;
        fnet_assert_ok(ctx, fnet_spec_parse(ctx, specs[s], &items, &count));
        assert_int_equal(count, 1);
        const struct fnet_layer_desc *d = items[0].desc;
        assert_non_null(d->create);
        fnet_layer *l = NULL;
        fnet_assert_ok(ctx, d->create(ctx, &items[0], 8, &l));
        assert_int_equal(fnet_layer_kind_of(l), d->kind);
        // the layer's own item (every size named) parses and builds the same layer again
        struct fnet_spec_item mine, *again = NULL;
        char text[256], text2[256];
        l->ops->describe(l, &mine);
        assert_true(fnet_spec_item_format(&mine, text, sizeof(text)) > 0);
        fnet_assert_ok(ctx, fnet_spec_parse(ctx, text, &again, &count));
        fnet_layer *l2 = NULL;
        fnet_assert_ok(ctx, d->create(ctx, &again[0], 8, &l2));
        assert_int_equal(fnet_layer_num_params(l2), fnet_layer_num_params(l));
        l2->ops->describe(l2, &mine);
        fnet_spec_item_format(&mine, text2, sizeof(text2));
        assert_string_equal(text, text2);
        fnet_layer_free(l2);
        fnet_free(again);
        int64_t implied = d->min_params ? d->min_params(&items[0], 8) : 0;
        // exact but for a TT or TR item that does not name every rank (its modes are the
        // planner's); the bias at least then
        if ((d->kind != FNET_LAYER_TT && d->kind != FNET_LAYER_TR) ||
            strstr(specs[s], "ranks=") != NULL)
            assert_int_equal(implied, fnet_layer_num_params(l));
        else
            assert_true(implied >= 0 && implied <= fnet_layer_num_params(l));
        fnet_layer_free(l);
        fnet_free(items);
    }
    fnet_ctx_free(ctx);
}

// Every kind in the table is built now; a descriptor without `create` (a kind whose grammar
// lands before its layer) is refused by fnet_model_create_from_spec before anything is built.
static void test_every_kind_is_built(void **state)
{
    char built[160];
    fnet_spec_built_kinds(built, sizeof(built));
    assert_string_equal(built, "dense, tt, tr, tucker, cp, lowrank, circ, sparse, relu, tanh, "
                               "sigmoid, dropout");
    for (int i = 0; i < fnet_layer_kind_count(); i++)
        assert_non_null(fnet_layer_kind_at(i)->create);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_is_in_the_table_once),
        cmocka_unit_test(test_built_kinds_describe_themselves_and_count_their_parameters),
        cmocka_unit_test(test_every_kind_is_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
