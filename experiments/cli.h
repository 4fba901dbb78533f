/* Shared pieces of the fnet-* binaries: option parsing, the error contract (exit 2 on bad usage,
 * 1 on a runtime error, one line "fnet-X: error: what (where)"), JSON lines, progress. Public
 * API only. */
#ifndef FNET_EXP_CLI_H
#define FNET_EXP_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <factornet.h>

/* The program name used in messages and by --version, and the text --help prints. Joins the
 * job when a launcher (mpirun, srun) started this process as one of several
 * (docs/distributed.md): rank 0 prints and writes the files, the other ranks' stdout goes to
 * /dev/null, and cli_ctx attaches the job to the ctx. */
void cli_init(const char *prog, const char *usage);
/* The job (a job of one without a launcher), and whether this process is its rank 0, which
 * writes the run's files (checkpoints, JSON, CSV, plots). */
fnet_dist *cli_job(void);
bool cli_lead(void);
/* fopen for an output file of the run: path on rank 0, /dev/null on the other ranks. */
FILE *cli_fopen_out(const char *path, const char *mode);

/* Print "prog: error: what (where)" and exit with code (2 usage, 1 runtime); in a job of
 * several ranks "prog: error: rank R of P: what (where)", and every rank ends (MPI_Abort). */
void cli_die(int code, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
/* One line "prog: warning: ..." on stderr (stdout flushed first). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Die (exit 1, naming opt and path) unless path can be written: checked before hours of work
 * are spent. An existing file is left as it is; one made for the check is removed. */
void cli_check_writable(const char *opt, const char *path);

/* Die with the ctx's last error when st is not FNET_OK. */
void cli_check(fnet_ctx *ctx, fnet_status st, const char *where);

/* As cli_check, but a spec or value the library refuses as malformed or not built is bad usage:
 * exit 2 for FNET_ERR_INVALID_ARG, FNET_ERR_FORMAT and FNET_ERR_UNSUPPORTED, 1 otherwise. */
void cli_check_usage(fnet_ctx *ctx, fnet_status st, const char *where);

/* Option values: exit 2 with a message naming the option when the text is not a number in
 * range. */
int64_t cli_int(const char *opt, const char *text, int64_t lo, int64_t hi);
double cli_double(const char *opt, const char *text, double lo, double hi);

/* Iterate over argv: returns the next option name ("--lr") and sets *value to its argument when
 * `takes_value` says it has one (--lr 0.1 or --lr=0.1); NULL at the end. Bare words are usage
 * errors. --help (-h) and --version are answered here (cli_init's usage and name), exit 0. */
struct cli_args {
    int argc, i;
    char **argv;
    const char *pending; // value after '='
};
const char *cli_next(struct cli_args *a, bool (*takes_value)(const char *opt), const char **value);

/* The median of v (n >= 1 values; sorted in place). */
double cli_median(double *v, int n);

/* Peak resident memory of this process in MB. */
double cli_peak_rss_mb(void);

/* A JSON-lines file; NULL path means none. Strings are escaped. */
FILE *cli_json_open(const char *path);
/* The same, appending to what path holds (a resumed run's log goes on). */
FILE *cli_json_append(const char *path);
/* Close f (NULL: nothing); a write error on the way (disk full) dies naming path, exit 1. */
void cli_json_close(FILE *f, const char *path);
void cli_json_string(FILE *f, const char *key, const char *value, bool last);
void cli_json_number(FILE *f, const char *key, double value, bool last);

/* Progress bar on stdout when it is a terminal (no-op otherwise): the trainer's on_batch. With
 * user NULL a bar of the epoch; with a struct cli_progress the model's label, its epoch and an
 * estimate of the time left in the whole run of that model (from this epoch's rate). */
bool cli_is_tty(void);
struct cli_progress {
    char label[48];    // what is training ("tt, seed 2"); shown before the bar
    int epoch, epochs; // the epoch running (1-based) and the run's total
    double t0;         // when the epoch's first batch began (cli_seconds)
};
void cli_progress(int64_t done, int64_t total, void *user);
/* A model's run of `epochs` epochs begins: label and counters set. */
void cli_progress_begin(struct cli_progress *p, const char *label, int epochs);
/* From the epoch callback: epoch `done` of `epochs` is over, the next one begins; the line is
 * cleared for the epoch's own report. */
void cli_progress_epoch(struct cli_progress *p, int done, int epochs);
/* One redraw of a bar for work measured otherwise (a time budget): label, the fraction done,
 * the estimated seconds left (negative: unknown). No-op when stdout is not a terminal. */
void cli_progress_line(const char *label, double fraction, double seconds_left);
/* The epoch callback of the experiment binaries (user: a struct cli_progress, or NULL): the bar
 * moves on and one line "  epoch E/N  loss L  Ts  S samples/s" is printed. */
int cli_on_epoch(const fnet_epoch_info *e, void *user);

/* The training and test splits of an IDX directory, the training set cut to its first `limit`
 * samples when limit > 0; dies naming --data or --limit-train. */
void cli_load_data(fnet_ctx *ctx, const char *dir, int64_t limit, fnet_dataset **train,
                   fnet_dataset **test);

/* Clear the bar's line (a terminal only), for a line of text. */
void cli_progress_clear(void);
/* Monotonic seconds. */
double cli_seconds(void);

/* SIGINT and SIGTERM while training: the first sets the flag cli_stop_flag() points at (the
 * trainer's fnet_train_params.stop: it finishes the step, writes its checkpoint and returns
 * FNET_ERR_CANCELLED); a second one ends the process at once by the signal's default action
 * (the last checkpoint, written atomically, stays whole). */
void cli_signals_install(void);
const volatile sig_atomic_t *cli_stop_flag(void);
/* After training: SIGINT and SIGTERM act again as they did before cli_signals_install() (which
 * keeps what they did: a no-op when installed already). */
void cli_signals_uninstall(void);
/* The signal received (SIGINT, SIGTERM), 0 when none. In a job it is collective (every rank
 * calls it at the same place) and answers alike on every rank: SIGTERM when any rank got one,
 * else SIGINT when any got that. */
int cli_signal_received(void);
/* After training stopped by a signal: "prog: interrupted by SIGINT: <what>", the resume hint
 * when there is a checkpoint (resume_hint not NULL), exit 128 + the signal (130, 143); in a job
 * rank 0 prints, every rank exits so. */
void cli_exit_interrupted(const char *what, const char *resume_hint) __attribute__((noreturn));

/* cli_check for a training call whose tp.stop was cli_stop_flag(): the signal handlers are
 * uninstalled, and a run stopped by a signal (or that ended as one came) exits as
 * cli_exit_interrupted says (nothing of this run saved: these binaries do not resume). */
void cli_check_train(fnet_ctx *ctx, fnet_status st, const char *where);

/* Parse a --device value: "cpu", "reference", "guarded" or "cuda[:K]"; creates the ctx (a CUDA
 * device that cannot be used: exit 2 with fnet_cuda_probe's reason) and attaches the job to it.
 * threads > 0 sets the ctx's threads (0: the cores, divided among the job's ranks on this
 * machine); tf32 turns on TF32 GEMMs (--tf32: exit 2 on a backend without them). Plain "cuda"
 * in a job is GPU <local rank>: one per rank. */
fnet_ctx *cli_ctx(const char *device, int threads, bool tf32);

/* Floating-point operations of one sample's forward pass at this batch size (the layers'
 * fnet_layer_flops); a training step does about 3 times as many (the backward pass's two
 * products per forward one), which is how the binaries' TFLOP/s count. */
double cli_model_flops(fnet_model *m, int64_t batch);

/* Default data directory: $FNET_DATA, then /usr/share/datasets/fashion-mnist. */
const char *cli_default_data(void);

#endif
