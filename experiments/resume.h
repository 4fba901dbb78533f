/* Resuming a run from the command line (fnet-train --resume FILE): the options a run was started
 * with are stored in its checkpoints as metadata "<prefix><option>" (e.g. "fnet-train.--lr") and
 * come first on the resumed command line, the options given again after them (the later wins).
 * An option that decides the run's course, given again with another value, is bad usage; the
 * `changeable` ones (output files, threads, the total of epochs) may change. Public API only. */
#ifndef FNET_EXP_RESUME_H
#define FNET_EXP_RESUME_H

#include <stdbool.h>
#include <factornet.h>

struct run_args {
    int argc;
    char **argv;        // argv[0], the stored options, the given ones
    const char *resume; // the --resume value, NULL without one
    fnet_meta *stored;  // the checkpoint's metadata (NULL without --resume)
    int n_stored;
};

/* Build a's command line from argv: with --resume FILE, FILE's metadata is read (exit 1 when it
 * cannot be, or holds no run to resume) and the stored options are checked against the given
 * ones (exit 2 naming the option on a conflict). changeable: NULL-terminated option names. */
void run_args_build(struct run_args *a, const char *prefix, int argc, char **argv,
                    bool (*takes_value)(const char *opt), const char *const *changeable);
void run_args_free(struct run_args *a);

/* The value of a stored entry ("run.epoch", "fnet-train.spec"), NULL when absent. */
const char *run_args_stored(const struct run_args *a, const char *key);

/* This run's options as metadata for its checkpoints: each as the parse loop sees it, the later
 * value of an option replacing the earlier. Keys and values are copied. */
struct run_record {
    fnet_meta *meta;
    int n, cap;
};
void run_record_add(struct run_record *r, const char *prefix, const char *opt, const char *value);
void run_record_free(struct run_record *r);

#endif
