/* train_mlp: train a 784-128-10 network on Fashion-MNIST, save it, reload it, then take one
 * plain SGD step by hand through the loss-and-gradient oracle.
 * Usage: train_mlp [DATA_DIR] [EPOCHS] [CHECKPOINT]   (needs only <factornet.h>) */
#include <factornet.h>
#include <stdio.h>
#include <stdlib.h>

// Every factornet call returns a status; on failure the ctx says what went wrong.
#define CHECK(call)                                                                            \
    do {                                                                                       \
        if ((call) != FNET_OK) {                                                               \
            fprintf(stderr, "train_mlp: %s: %s\n", #call, fnet_ctx_last_message(ctx));         \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static int on_epoch(const fnet_epoch_info *e, void *user)
{
    (void)user;
    printf("epoch %d/%d: train loss %.4f, test accuracy %.4f (%.0f samples/s)\n", e->epoch,
           e->epochs, e->train_loss, e->val_acc, e->samples_per_s);
    return 0; // nonzero stops training early
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 2;
    const char *path = argc > 3 ? argv[3] : "mlp.safetensors";

    fnet_ctx *ctx; // one per thread: it owns the backend and the last error
    fnet_status st = fnet_ctx_create_cpu(&ctx);
    if (st != FNET_OK) {
        fprintf(stderr, "train_mlp: no CPU context: %s\n", fnet_status_str(st));
        return 1;
    }
    fnet_dataset *train, *test;
    CHECK(fnet_dataset_load_idx(ctx, dir, FNET_SPLIT_TRAIN, &train));
    CHECK(fnet_dataset_load_idx(ctx, dir, FNET_SPLIT_TEST, &test));
    int64_t dim = fnet_dataset_dim(train);

    // The model, layer by layer: dim -> dense 128 -> relu -> dense (one output per class).
    fnet_model *m;
    CHECK(fnet_model_create(ctx, dim, &m));
    CHECK(fnet_model_add_dense(m, 128));
    CHECK(fnet_model_add_activation(m, FNET_LAYER_RELU));
    CHECK(fnet_model_add_dense(m, fnet_dataset_classes(train)));
    CHECK(fnet_model_init(m, FNET_INIT_GLOROT_UNIFORM, 42));
    printf("model %s: %lld parameters\n", fnet_model_spec(m), (long long)fnet_model_num_params(m));

    // The high-level face: Adam, minibatches of 64, the test set checked after every epoch.
    fnet_optim_params op = fnet_optim_params_default(FNET_OPTIM_ADAM);
    fnet_train_params tp = fnet_train_params_default();
    tp.batch = 64;
    tp.epochs = epochs;
    CHECK(fnet_train(m, &op, &tp, train, test, on_epoch, NULL, NULL));
    double acc, loss, acc2, loss2;
    CHECK(fnet_model_evaluate(m, test, &acc, &loss));
    printf("test accuracy %.4f, test loss %.4f\n", acc, loss);

    // A checkpoint (safetensors) and back: the reloaded model must score the same.
    fnet_model *m2;
    CHECK(fnet_model_save(m, NULL, path));
    CHECK(fnet_model_load(ctx, path, &m2));
    CHECK(fnet_model_evaluate(m2, test, &acc2, &loss2));
    printf("reloaded %s: test accuracy %.4f\n", path, acc2);
    if (acc2 != acc) {
        fprintf(stderr, "train_mlp: the reloaded model scores %.4f, not %.4f\n", acc2, acc);
        exit(1);
    }

    // The low-level face: loss and gradient of one batch over the flat parameter vector, and one
    // plain SGD step by hand, as any optimizer of your own would. The batch x is backend memory
    // (where the model reads its input); w and g are host copies of the model's vectors, so this
    // runs on any backend (on the CPU, fnet_model_params() is the vector itself).
    int64_t n = fnet_model_num_params(m), b = 64;
    float *w = malloc((size_t)n * sizeof(float));
    float *g = malloc((size_t)n * sizeof(float));
    int32_t *y = malloc((size_t)b * sizeof(int32_t));
    void *x;
    if (w == NULL || g == NULL || y == NULL) {
        fprintf(stderr, "train_mlp: out of memory\n");
        exit(1);
    }
    CHECK(fnet_backend_alloc(ctx, (size_t)(b * dim) * sizeof(float), &x));
    double before, after;
    CHECK(fnet_dataset_batch(train, NULL, 0, b, x, y));
    CHECK(fnet_model_loss_grad(m, x, y, b, &before, NULL));
    CHECK(fnet_model_get_params(m, w));
    CHECK(fnet_model_get_grads(m, g));
    for (int64_t i = 0; i < n; i++)
        w[i] -= 0.01f * g[i];
    CHECK(fnet_model_set_params(m, w));
    CHECK(fnet_model_loss_grad(m, x, y, b, &after, NULL));
    printf("one SGD step on a batch of %lld: loss %.4f -> %.4f\n", (long long)b, before, after);

    fnet_backend_free(ctx, x);
    free(y);
    free(g);
    free(w);
    fnet_model_free(m2);
    fnet_model_free(m);
    fnet_dataset_free(test);
    fnet_dataset_free(train);
    fnet_ctx_free(ctx);
    return 0;
}
