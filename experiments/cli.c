/* Shared pieces of the fnet-* binaries: see cli.h. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog_name = "fnet";
static const char *usage_text = "";
static fnet_dist *job; // the job this process is a rank of (a job of one without a launcher)

// The library's warnings (a rollback after a NaN loss, ...) as "prog: warning: ..." on stderr;
// in a job, rank 0's alone (the others would repeat them), errors from any rank.
static void log_to_stderr(fnet_log_level level, const char *msg, void *user)
{
    if (level >= FNET_LOG_ERROR || (level >= FNET_LOG_WARN && cli_lead()))
        fprintf(stderr, "%s: %s: %s\n", prog_name, level >= FNET_LOG_ERROR ? "error" : "warning",
                msg);
}

static void leave_job(void)
{
    fnet_dist_finalize(job);
    job = NULL;
}

void cli_init(const char *prog, const char *usage)
{
    prog_name = prog;
    usage_text = usage;
    fnet_set_log_callback(log_to_stderr, NULL);
    // under mpirun or srun: join the job; rank 0 prints and writes the files
    fnet_status st = fnet_dist_init(NULL, NULL, &job);
    if (st == FNET_ERR_UNSUPPORTED)
        cli_die(2, "mpirun", "this build has no MPI (FNET_WITH_MPI=OFF): run one process, or "
                "rebuild with libopenmpi-dev installed");
    if (st != FNET_OK)
        cli_die(1, "mpirun", "cannot join the job: %s", fnet_status_str(st));
    atexit(leave_job);
    // FNET_BUCKET_MB: the gradient's all-reduce in buckets of this size during the backward pass
    // (rank 0's: fnet_dist_attach hands it to every rank, as mpirun passes the environment to
    // other machines' ranks only when told)
    const char *bucket = getenv("FNET_BUCKET_MB");
    if (bucket != NULL && *bucket != '\0')
        fnet_dist_set_bucket(job, (size_t)(cli_double("FNET_BUCKET_MB", bucket, 0.0, 1e6) *
                                           1048576.0));
    if (!cli_lead() && freopen("/dev/null", "w", stdout) == NULL)
        cli_die(1, "stdout", "rank %d cannot silence its output", fnet_dist_rank(job));
}

fnet_dist *cli_job(void)
{
    return job;
}

bool cli_lead(void)
{
    return fnet_dist_rank(job) == 0;
}

FILE *cli_fopen_out(const char *path, const char *mode)
{
    return fopen(cli_lead() ? path : "/dev/null", mode);
}

void cli_die(int code, const char *where, const char *fmt, ...)
{
    fflush(stdout);
    if (cli_is_tty())
        fputc('\n', stdout);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    // one line: newlines inside a message would break the contract
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    char rank[48] = ""; // which rank, in a job of several
    if (fnet_dist_size(job) > 1)
        snprintf(rank, sizeof(rank), "rank %d of %d: ", fnet_dist_rank(job), fnet_dist_size(job));
    if (where && *where)
        fprintf(stderr, "%s: error: %s%s (%s)\n", prog_name, rank, msg, where);
    else
        fprintf(stderr, "%s: error: %s%s\n", prog_name, rank, msg);
    // the other ranks may wait for this one in a collective: the whole job ends
    if (fnet_dist_size(job) > 1)
        fnet_dist_abort(job, code);
    exit(code);
}

void cli_warn(const char *fmt, ...)
{
    if (!cli_lead()) // in a job, rank 0's warnings stand for all
        return;
    fflush(stdout);
    if (cli_is_tty())
        fputc('\n', stdout);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: warning: %s\n", prog_name, msg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void cli_check_writable(const char *opt, const char *path)
{
    if (!cli_lead()) // rank 0 writes the files
        return;
    bool existed = access(path, F_OK) == 0;
    FILE *f = fopen(path, "a"); // never truncates
    if (f == NULL) {
        char where[1100];
        snprintf(where, sizeof(where), "%s %s", opt, path);
        cli_die(1, where, "cannot write there: %s", strerror(errno));
    }
    fclose(f);
    if (!existed)
        remove(path);
}

// The library's message in the user's words: its source location goes to the log (debug level)
// only (fnet_ctx_last_message).
static void check(fnet_ctx *ctx, fnet_status st, const char *where, int code)
{
    const char *msg = ctx ? fnet_ctx_last_message(ctx) : "";
    if (msg && *msg)
        cli_die(code, where, "%s: %s", fnet_status_str(st), msg);
    cli_die(code, where, "%s", fnet_status_str(st));
}

void cli_check(fnet_ctx *ctx, fnet_status st, const char *where)
{
    // a value the library refuses (a bad number that got past parsing) is bad usage
    if (st != FNET_OK)
        check(ctx, st, where, st == FNET_ERR_INVALID_ARG ? 2 : 1);
}

void cli_check_usage(fnet_ctx *ctx, fnet_status st, const char *where)
{
    if (st != FNET_OK)
        check(ctx, st, where,
              st == FNET_ERR_INVALID_ARG || st == FNET_ERR_FORMAT || st == FNET_ERR_UNSUPPORTED ? 2 : 1);
}

int64_t cli_int(const char *opt, const char *text, int64_t lo, int64_t hi)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        cli_die(2, opt, "expected an integer in [%lld, %lld], got '%s'", (long long)lo,
                (long long)hi, text);
    return (int64_t)v;
}

double cli_double(const char *opt, const char *text, double lo, double hi)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        cli_die(2, opt, "expected a number in [%g, %g], got '%s'", lo, hi, text);
    return v;
}

// --help and --version are every binary's: answered here, exit 0.
static void standard_option(const char *arg)
{
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(usage_text, stdout);
        exit(0);
    }
    if (strcmp(arg, "--version") == 0) {
        printf("%s %s\n", prog_name, fnet_version_string());
        exit(0);
    }
}

const char *cli_next(struct cli_args *a, bool (*takes_value)(const char *opt), const char **value)
{
    static char name[64];
    *value = NULL;
    if (a->i >= a->argc)
        return NULL;
    const char *arg = a->argv[a->i++];
    standard_option(arg);
    if (strncmp(arg, "--", 2) != 0 && strcmp(arg, "-h") != 0)
        cli_die(2, arg, "unexpected argument; options start with -- (see --help)");
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof(name))
        cli_die(2, arg, "unknown option (see --help)");
    memcpy(name, arg, len);
    name[len] = '\0';
    if (takes_value(name)) {
        if (eq)
            *value = eq + 1;
        else if (a->i < a->argc)
            *value = a->argv[a->i++];
        else
            cli_die(2, name, "option needs a value");
    } else if (eq) {
        cli_die(2, name, "option takes no value");
    }
    return name;
}

double cli_peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0; // KiB on Linux
}

static FILE *json_open(const char *path, const char *mode)
{
    if (path == NULL)
        return NULL;
    FILE *f = cli_fopen_out(path, mode);
    if (f == NULL)
        cli_die(1, path, "cannot open the JSON file: %s", strerror(errno));
    return f;
}

FILE *cli_json_append(const char *path)
{
    return json_open(path, "a");
}

FILE *cli_json_open(const char *path)
{
    return json_open(path, "w");
}

void cli_json_string(FILE *f, const char *key, const char *value, bool last)
{
    if (f == NULL)
        return;
    fprintf(f, "\"%s\":\"", key);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputs(last ? "\"}\n" : "\",", f);
}

void cli_json_close(FILE *f, const char *path)
{
    if (f == NULL)
        return;
    // lines are flushed as they go, so a write error shows in ferror, not only in fclose
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        cli_die(1, path, "cannot write the JSON file (disk full?)");
}

void cli_json_number(FILE *f, const char *key, double value, bool last)
{
    if (f == NULL)
        return;
    if (isfinite(value))
        fprintf(f, "\"%s\":%.10g%s", key, value, last ? "}\n" : ",");
    else
        fprintf(f, "\"%s\":null%s", key, last ? "}\n" : ",");
    if (last)
        fflush(f);
}

bool cli_is_tty(void)
{
    static int tty = -1;
    // mpirun hands its ranks a terminal even when its own output goes to a file: no bars in a job
    if (tty < 0)
        tty = isatty(STDOUT_FILENO) && fnet_dist_size(job) == 1 ? 1 : 0;
    return tty == 1;
}

double cli_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_progress_begin(struct cli_progress *p, const char *label, int epochs)
{
    snprintf(p->label, sizeof(p->label), "%s", label);
    p->epoch = 1;
    p->epochs = epochs;
    p->t0 = 0.0;
}

void cli_progress_epoch(struct cli_progress *p, int done, int epochs)
{
    if (p) {
        p->epoch = done + 1;
        p->epochs = epochs;
        p->t0 = 0.0;
    }
    cli_progress_clear();
}

void cli_progress_clear(void)
{
    if (cli_is_tty())
        printf("\r%110s\r", "");
}

int cli_on_epoch(const fnet_epoch_info *e, void *user)
{
    cli_progress_epoch(user, e->epoch, e->epochs);
    printf("  epoch %2d/%d  loss %.4f  %.1fs  %.0f samples/s\n", e->epoch, e->epochs,
           e->train_loss, e->seconds, e->samples_per_s);
    fflush(stdout);
    return 0;
}

void cli_load_data(fnet_ctx *ctx, const char *dir, int64_t limit, fnet_dataset **train,
                   fnet_dataset **test)
{
    char where[1100];
    snprintf(where, sizeof(where), "--data %s", dir);
    *train = *test = NULL;
    cli_check(ctx, fnet_dataset_load_idx(ctx, dir, FNET_SPLIT_TRAIN, train), where);
    cli_check(ctx, fnet_dataset_load_idx(ctx, dir, FNET_SPLIT_TEST, test), where);
    if (limit > 0 && limit < fnet_dataset_size(*train)) {
        fnet_dataset *sub = NULL;
        cli_check(ctx, fnet_dataset_subset(*train, limit, &sub), "--limit-train");
        fnet_dataset_free(*train);
        *train = sub;
    }
}

// "1:05:09", "4:07" or "12s"
static void format_eta(double s, char *out, size_t cap)
{
    long t = s > 0.0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
    else
        snprintf(out, cap, "%lds", t);
}

void cli_progress_line(const char *label, double fraction, double seconds_left)
{
    if (!cli_is_tty())
        return;
    const int width = 30;
    fraction = fraction < 0.0 ? 0.0 : fraction > 1.0 ? 1.0 : fraction;
    int fill = (int)(width * fraction);
    char eta[32] = "-";
    if (seconds_left >= 0.0)
        format_eta(seconds_left, eta, sizeof(eta));
    printf("\r  %s [%.*s%*s] %3d%%  left %s  ", label, fill, "##############################",
           width - fill, "", (int)(100.0 * fraction), eta);
    fflush(stdout);
}

void cli_progress(int64_t done, int64_t total, void *user)
{
    if (!cli_is_tty() || total < 1)
        return;
    struct cli_progress *p = user;
    double now = cli_seconds();
    if (p && (done == 1 || p->t0 == 0.0))
        p->t0 = now; // the first batch's time is in the rate from the second on
    // redraw about 100 times an epoch, not on every step
    int64_t every = total / 100 > 0 ? total / 100 : 1;
    if (done % every != 0 && done != total)
        return;
    if (p == NULL) {
        cli_progress_line("", (double)done / (double)total, -1.0);
        return;
    }
    double left = -1.0;
    if (done > 1) {
        double per_batch = (now - p->t0) / (double)(done - 1);
        int later = p->epochs > p->epoch ? p->epochs - p->epoch : 0;
        left = per_batch * (double)(total - done + (int64_t)later * total);
    }
    char label[96];
    snprintf(label, sizeof(label), "%s  epoch %d/%d", p->label, p->epoch, p->epochs);
    cli_progress_line(label, (double)done / (double)total, left);
}

fnet_ctx *cli_ctx(const char *device, int threads, bool tf32)
{
    fnet_ctx *ctx = NULL;
    fnet_status st;
    if (strcmp(device, "cpu") == 0) {
        st = fnet_ctx_create_cpu(&ctx);
    } else if (strcmp(device, "reference") == 0) {
        st = fnet_ctx_create_reference(&ctx);
    } else if (strcmp(device, "guarded") == 0) {
        st = fnet_ctx_create_guarded(&ctx);
    } else if (strncmp(device, "cuda", 4) == 0 && (device[4] == '\0' || device[4] == ':')) {
        // plain "cuda" in a job: one GPU per rank on each machine
        int dev = device[4] == ':' ? (int)cli_int("--device", device + 5, 0, 1024)
                                   : fnet_dist_local_rank(job);
        char why[256];
        // no CUDA in this build, no device, or no such device: the value cannot be honoured
        if (fnet_cuda_probe(dev, why, sizeof(why)) != FNET_OK)
            cli_die(2, "--device", "%s: %s", device, why);
        st = fnet_ctx_create_cuda(dev, &ctx);
    } else {
        cli_die(2, "--device", "expected cpu, reference, guarded or cuda[:K], got '%s'", device);
    }
    if (st != FNET_OK)
        cli_die(1, "--device", "cannot create the %s context: %s", device, fnet_status_str(st));
    // ranks that share a machine share its cores (a ctx starts with one thread a core)
    if (threads <= 0 && fnet_dist_local_size(job) > 1) {
        threads = fnet_ctx_threads(ctx) / fnet_dist_local_size(job);
        threads = threads > 0 ? threads : 1;
    }
    if (threads > 0)
        cli_check(ctx, fnet_ctx_set_threads(ctx, threads), "--threads");
    cli_check(ctx, fnet_dist_attach(job, ctx), "mpirun");
    if (tf32)
        cli_check_usage(ctx, fnet_ctx_set_tf32(ctx, true), "--tf32");
    return ctx;
}

const char *cli_default_data(void)
{
    const char *env = getenv("FNET_DATA");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

static volatile sig_atomic_t stop_signal; // the first SIGINT/SIGTERM received, 0 before

static void on_signal(int sig)
{
    if (stop_signal != 0) { // the second: at once, as if no handler were there
        fnet_checkpoint_abandon(); // a checkpoint half written: its temporary file goes
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

// What SIGINT and SIGTERM did before cli_signals_install (a script's background job starts with
// SIGINT ignored), for cli_signals_uninstall.
static struct sigaction old_int, old_term;
static bool installed;

void cli_signals_install(void)
{
    if (installed)
        return;
    installed = true;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; // a write of the checkpoint in progress goes on
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}

void cli_signals_uninstall(void)
{
    if (!installed)
        return;
    installed = false;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

const volatile sig_atomic_t *cli_stop_flag(void)
{
    return &stop_signal;
}

static int agreed_signal; // what cli_signal_received last answered

int cli_signal_received(void)
{
    int sig = stop_signal;
    if (fnet_dist_size(job) > 1) { // every rank answers alike: SIGTERM on any rank, else SIGINT
        int term = sig == SIGTERM, any = sig != 0;
        if (fnet_dist_any(job, &term) != FNET_OK || fnet_dist_any(job, &any) != FNET_OK)
            cli_die(1, "mpirun", "the ranks cannot agree on a signal");
        sig = term ? SIGTERM : any ? SIGINT : 0;
    }
    agreed_signal = sig;
    return sig;
}

void cli_check_train(fnet_ctx *ctx, fnet_status st, const char *where)
{
    cli_signals_uninstall(); // a signal from here on acts as it did before training
    int sig = cli_signal_received();
    if (st == FNET_OK && sig != 0) {
        char what[1200];
        snprintf(what, sizeof(what), "%s: after its last step", where);
        cli_exit_interrupted(what, NULL);
    }
    if (st == FNET_ERR_CANCELLED && sig != 0) {
        char what[1400];
        snprintf(what, sizeof(what), "%s: %s; the results printed so far are written", where,
                 fnet_ctx_last_message(ctx));
        cli_exit_interrupted(what, NULL);
    }
    cli_check(ctx, st, where);
}

void cli_exit_interrupted(const char *what, const char *resume_hint)
{
    // in a job: the signal the ranks agreed on (cli_signal_received), told by rank 0
    int sig = agreed_signal ? agreed_signal : stop_signal ? stop_signal : SIGINT;
    fflush(stdout);
    if (cli_is_tty())
        fputc('\n', stdout);
    if (cli_lead()) {
        fprintf(stderr, "%s: interrupted by %s: %s\n", prog_name,
                sig == SIGTERM ? "SIGTERM" : "SIGINT", what);
        if (resume_hint != NULL)
            fprintf(stderr, "%s: resume with: %s\n", prog_name, resume_hint);
    }
    exit(128 + sig);
}

double cli_model_flops(fnet_model *m, int64_t batch)
{
    double f = 0.0;
    for (int i = 0; i < fnet_model_num_layers(m); i++)
        f += fnet_layer_flops(fnet_model_layer(m, i), batch);
    return f / (double)batch;
}
