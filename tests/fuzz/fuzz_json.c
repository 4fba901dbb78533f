/* libFuzzer target: the strict JSON parser of safetensors headers (src/io/json.c). Any byte string
 * must either parse, into a tree whose every invariant below holds, or fail with FNET_ERR_FORMAT
 * and a message; never crash, leak, read out of bounds or recurse without limit. */
#include "fuzz_util.h"
#include "io/json.h"

#define MAX_NODES ((size_t)1 << 16)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_ctx();
    return 0;
}

// Check v and its members (depth-limited by the parser, so recursion is bounded); returns the
// number of values in the subtree.
static size_t check_value(const struct fnet_json *v, int depth, size_t text_len)
{
    FUZZ_CHECK(depth <= FNET_JSON_MAX_DEPTH + 1);
    FUZZ_CHECK(v->pos < text_len);
    size_t count = 1;
    switch (v->type) {
    case FNET_JSON_NULL:
    case FNET_JSON_BOOL:
        break;
    case FNET_JSON_INT:
        FUZZ_CHECK(v->number == (double)v->integer);
        break;
    case FNET_JSON_NUMBER:
        FUZZ_CHECK(v->number == v->number); // JSON has no NaN
        break;
    case FNET_JSON_STRING:
        FUZZ_CHECK(v->str != NULL && v->str[v->len] == '\0');
        FUZZ_CHECK(fnet_json_utf8_valid(v->str, v->len));
        break;
    case FNET_JSON_ARRAY:
    case FNET_JSON_OBJECT: {
        size_t n = 0;
        for (const struct fnet_json *m = v->child; m != NULL; m = m->next, n++) {
            if (v->type == FNET_JSON_OBJECT) {
                FUZZ_CHECK(m->key != NULL && m->key[m->key_len] == '\0');
                FUZZ_CHECK(fnet_json_utf8_valid(m->key, m->key_len));
                // keys are unique, so a lookup by a NUL-free key finds this very member
                if (strlen(m->key) == m->key_len)
                    FUZZ_CHECK(fnet_json_get(v, m->key) == m);
            } else {
                FUZZ_CHECK(m->key == NULL);
            }
            count += check_value(m, depth + 1, text_len);
        }
        FUZZ_CHECK(n == v->len);
        break;
    }
    default:
        FUZZ_CHECK(!"unknown JSON type");
    }
    FUZZ_CHECK(strcmp(fnet_json_type_name(v->type), "") != 0);
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fnet_ctx *ctx = fuzz_ctx();
    // a copy of exactly `size` bytes, so that ASan catches any read past the end
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    struct fnet_json_doc *doc = (struct fnet_json_doc *)text; // must be reset to NULL on failure
    fnet_ctx_clear_error(ctx);
    fnet_status st = fnet_json_parse(ctx, "fuzz", text, size, MAX_NODES, &doc);
    if (st == FNET_OK) {
        const struct fnet_json *root = fnet_json_root(doc);
        FUZZ_CHECK(root != NULL && root->key == NULL && root->next == NULL);
        FUZZ_CHECK(check_value(root, 0, size) <= MAX_NODES);
        FUZZ_CHECK(fnet_json_get(root, "no such key \x01") == NULL);
        fnet_json_free(doc);
    } else {
        fuzz_check_error(ctx, st);
        FUZZ_CHECK(st == FNET_ERR_FORMAT || st == FNET_ERR_OUT_OF_MEMORY);
        FUZZ_CHECK(doc == NULL);
    }
    // the same text through the UTF-8 validator on its own
    (void)fnet_json_utf8_valid(text, size);
    free(text);
    return 0;
}
