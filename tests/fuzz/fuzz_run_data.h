/* Shared by fuzz_checkpoint.c and make_corpus.c (tests/fuzz). */
#ifndef FNET_FUZZ_RUN_DATA_H
#define FNET_FUZZ_RUN_DATA_H

#include <stdint.h>
#include <stdlib.h>

#include <factornet.h>

/* The training set of the run checkpoints: fuzz_checkpoint resumes them on it, make_corpus.c
 * writes its seeds from runs on it (their data checksum must match). 12 samples of 5 pixels, 3
 * classes; made once per process. */
#define FUZZ_RUN_BATCH 4
#define FUZZ_RUN_ITERS 2 // L-BFGS iterations per batch
static inline fnet_dataset *fuzz_run_data(fnet_ctx *ctx)
{
    static fnet_dataset *d;
    if (d == NULL) {
        uint8_t images[12 * 5], labels[12];
        for (int i = 0; i < 12 * 5; i++)
            images[i] = (uint8_t)(i * 37 % 251);
        for (int i = 0; i < 12; i++)
            labels[i] = (uint8_t)(i % 3);
        if (fnet_dataset_from_memory(ctx, images, labels, 12, 5, 3, &d) != FNET_OK)
            abort();
    }
    return d;
}

#endif
