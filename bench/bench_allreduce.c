/* bench-allreduce: the data-parallel gradient all-reduce (fnet_dist_allreduce_grad, the MPI path
 * the trainer takes on the CPU) timed on the parameter counts of the study's networks, under
 * `mpirun -n P bench-allreduce`. Rank 0 prints one row per size: the median time of an
 * all-reduce, the bytes each rank sends by the ring all-reduce's count, 2·(P−1)/P·4·params
 * (docs/distributed.md), and the bandwidth that makes (the "bus bandwidth" of nccl-tests). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: mpirun -n P bench-allreduce [--repeat N] [--threads N]\n"
    "\n"
    "Time the all-reduce of a flat gradient across the job's ranks (fnet_dist_allreduce_grad:\n"
    "MPI on the CPU) for the networks of the study on 784 inputs: the seed network, the wide\n"
    "network with its middle layer a rank-8 TT, the wide network, and a 4096-wide one. Each\n"
    "time is the median of --repeat calls (default 30) after 3 unmeasured ones. Rank 0 prints:\n"
    "the network, its parameters, MB, ms, the bytes each rank sends by the ring all-reduce's\n"
    "count (2·(P−1)/P·4·params) and the bandwidth they make (GB/s). In a job of one there is\n"
    "nothing to reduce: the times are the bookkeeping alone.\n";

static bool takes_value(const char *opt)
{
    return strcmp(opt, "--repeat") == 0 || strcmp(opt, "--threads") == 0;
}

int main(int argc, char **argv)
{
    cli_init("bench-allreduce", usage);
    int repeat = 30, threads = 1;
    struct cli_args a = {.argc = argc, .argv = argv, .i = 1};
    const char *o, *v;
    while ((o = cli_next(&a, takes_value, &v)) != NULL) {
        if (strcmp(o, "--repeat") == 0)
            repeat = (int)cli_int(o, v, 1, 100000);
        else if (strcmp(o, "--threads") == 0)
            threads = (int)cli_int(o, v, 1, 1024);
        else
            cli_die(2, o, "unknown option (see --help)");
    }
    fnet_dist *job = cli_job();
    const int P = fnet_dist_size(job);
    // an unattached ctx: the all-reduce is the caller's call, not the trainer's
    fnet_ctx *ctx = NULL;
    if (fnet_ctx_create_cpu(&ctx) != FNET_OK)
        cli_die(1, "cpu", "cannot create the context");
    cli_check(ctx, fnet_ctx_set_threads(ctx, threads), "--threads");
    static const char *const nets[][2] = {
        {"seed", "dense:64,relu,dense:32,relu,dense:10"},
        {"wide-tt8", "dense:1024,relu,tt:1024:rank=8,relu,dense:10"},
        {"wide", "dense:1024,relu,dense:1024,relu,dense:10"},
        {"wide4096", "dense:4096,relu,dense:1024,relu,dense:10"}};
    printf("bench-allreduce: %d ranks, MPI all-reduce of the flat gradient (median of %d)\n", P,
           repeat);
    printf("%-10s %10s %8s %9s %13s %8s\n", "network", "params", "MB", "ms", "ring MB/rank",
           "GB/s");
    double *t = malloc(sizeof(double) * (size_t)repeat);
    if (t == NULL)
        cli_die(1, "--repeat", "out of memory");
    for (size_t s = 0; s < sizeof(nets) / sizeof(nets[0]); s++) {
        fnet_model *m = NULL;
        cli_check(ctx, fnet_model_create_from_spec(ctx, nets[s][1], 784, 1, &m), nets[s][1]);
        const int64_t n = fnet_model_num_params(m);
        for (int r = -3; r < repeat; r++) {
            double loss = 1.0, t0 = cli_seconds();
            cli_check(ctx, fnet_dist_allreduce_grad(job, m, 1, &loss), "all-reduce");
            if (r >= 0)
                t[r] = cli_seconds() - t0;
        }
        // rank 0's median, as every rank waits for the slowest
        double med = cli_median(t, repeat), mb = 4.0 * (double)n / 1e6;
        double ring = 2.0 * (double)(P - 1) / (double)P * mb;
        printf("%-10s %10lld %8.2f %9.3f %13.2f %8.2f\n", nets[s][0], (long long)n, mb,
               1e3 * med, ring, P > 1 && med > 0 ? ring / 1e3 / med : 0.0);
        fnet_model_free(m);
    }
    free(t);
    fnet_ctx_free(ctx);
    return 0;
}
