/* Shared pieces of the fnet-* binaries: option parsing, the error contract (exit 2 on bad usage,
 * 1 on a runtime error, one line "fnet-X: error: what (where)"), JSON lines, progress. Public
 * API only. */
#ifndef FNET_EXP_CLI_H
#define FNET_EXP_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <factornet.h>

/* The program name used in messages and by --version, and the text --help prints. */
void cli_init(const char *prog, const char *usage);

/* Print "prog: error: what (where)" and exit with code (2 usage, 1 runtime). */
void cli_die(int code, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
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

/* Peak resident memory of this process in MB. */
double cli_peak_rss_mb(void);

/* A JSON-lines file; NULL path means none. Strings are escaped. */
FILE *cli_json_open(const char *path);
/* Close f (NULL: nothing); a write error on the way (disk full) dies naming path, exit 1. */
void cli_json_close(FILE *f, const char *path);
void cli_json_string(FILE *f, const char *key, const char *value, bool last);
void cli_json_number(FILE *f, const char *key, double value, bool last);

/* Progress bar on stdout when it is a terminal (no-op otherwise). */
bool cli_is_tty(void);
void cli_progress(int64_t done, int64_t total, void *user);

/* Parse a --device value: "cpu", "reference", "guarded" or "cuda[:K]"; creates the ctx. */
fnet_ctx *cli_ctx(const char *device, int threads);

/* Default data directory: $FNET_DATA, then /usr/share/datasets/fashion-mnist. */
const char *cli_default_data(void);

#endif
