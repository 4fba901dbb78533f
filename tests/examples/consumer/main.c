/* A user's program against an installed factornet: the header and the library agree on the
 * version, a ctx and a two-layer model can be made, sized, run once and freed. */
#include <factornet.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        if ((call) != FNET_OK) {                                                               \
            fprintf(stderr, "consumer: %s: %s\n", #call, fnet_ctx_last_error(ctx));            \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

int main(void)
{
    printf("factornet %s\n", fnet_version_string());
    if (strcmp(fnet_version_string(), FNET_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: library %s, header %s\n", fnet_version_string(),
                FNET_VERSION_STRING);
        return 1;
    }
    fnet_ctx *ctx;
    if (fnet_ctx_create_cpu(&ctx) != FNET_OK)
        return 1;
    fnet_model *m;
    CHECK(fnet_model_create(ctx, 784, &m));
    CHECK(fnet_model_add_dense(m, 64));
    CHECK(fnet_model_add_activation(m, FNET_LAYER_RELU));
    CHECK(fnet_model_add_dense(m, 10));
    CHECK(fnet_model_init(m, FNET_INIT_GLOROT_UNIFORM, 1));
    int64_t want = 784 * 64 + 64 + 64 * 10 + 10;
    if (fnet_model_num_params(m) != want) {
        fprintf(stderr, "consumer: %lld parameters, expected %lld\n",
                (long long)fnet_model_num_params(m), (long long)want);
        return 1;
    }
    // One loss-and-gradient call: the library's BLAS and other dependencies resolve at run time.
    static float x[2 * 784];
    const int32_t labels[2] = {3, 7};
    double loss = 0;
    CHECK(fnet_model_loss_grad(m, x, labels, 2, &loss, NULL));
    printf("model %s: %lld parameters, loss %.4f\n", fnet_model_spec(m), (long long)want, loss);
    fnet_model_free(m);
    fnet_ctx_free(ctx);
    printf("consumer: ok\n");
    return 0;
}
