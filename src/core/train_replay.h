/* Replayed training steps, for the step-wise trainer (src/core/train.c): see train_replay.c. */
#ifndef FNET_CORE_TRAIN_REPLAY_H
#define FNET_CORE_TRAIN_REPLAY_H

#include "core/replay.h"

struct fnet_replay {
    bool on;                  // steps may be replayed in this run
    fnet_model *m;
    fnet_optimizer *opt;
    const fnet_dataset *train;
    float *x;                 // the trainer's batch buffer (backend memory)
    int64_t B;                // the full batch replayed steps take
    void *host, *dev;         // the upload block (train_replay.c) on the host and the device
    double *acc;              // backend memory: Σ loss, the first non-finite step (or -1)
    struct fnet_graph *graph; // the segment's recorded step, NULL between segments
    int64_t first, done;      // the segment's first batch index and steps run
};

/* r->on when this run can replay (the backend records steps, or the test hook says so; no
 * on_step callback; a replayable model and optimizer), with its buffers made; else r->on false
 * and nothing made. FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_replay_open(struct fnet_replay *r, fnet_model *m, fnet_optimizer *opt,
                             const fnet_train_params *tp, const fnet_dataset *train, float *x,
                             int64_t B);
void fnet_replay_close(struct fnet_replay *r);

/* A segment from batch b on: the accumulator zeroed, the step recorded. A backend that cannot
 * record it turns r->on off (a note in the log) and returns FNET_OK: plain steps go on. */
fnet_status fnet_replay_begin(struct fnet_replay *r, int64_t b);
/* Batch b (positions idx[0..B)) replayed; the optimizer counts the step. */
void fnet_replay_step(struct fnet_replay *r, const int64_t *idx, int64_t b);
/* The segment's end: *loss_sum its summed loss, *bad the first batch index whose loss was not
 * finite (-1: none; the optimizer's count then leaves out that step and the ones after it,
 * which it skipped); the backend's kept failure, if any. */
fnet_status fnet_replay_end(struct fnet_replay *r, double *loss_sum, int64_t *bad);

#endif
