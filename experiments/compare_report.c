/* fnet-compare's reports: the table (mean ± standard deviation over seeds), CSV and JSON lines
 * (one record per variant and seed) and the plot. */
#define _POSIX_C_SOURCE 200809L
#include "compare.h"

#include "cli.h"
#include "plot.h"

#include <math.h>
#include <string.h>

// Mean and sample standard deviation of a field over the seeds of variant v; false when a run
// of it diverged.
struct stat2 {
    double mean, sd;
};

static bool over_seeds(const struct cmp_run *runs, int n_variants, int seeds, int v,
                       double (*field)(const struct cmp_run *), struct stat2 *out)
{
    double sum = 0.0, sq = 0.0;
    out->mean = out->sd = NAN;
    for (int s = 0; s < seeds; s++) {
        const struct cmp_run *r = &runs[s * n_variants + v];
        if (r->error[0])
            return false;
        sum += field(r);
    }
    out->mean = sum / seeds;
    for (int s = 0; s < seeds; s++) {
        double d = field(&runs[s * n_variants + v]) - out->mean;
        sq += d * d;
    }
    out->sd = seeds > 1 ? sqrt(sq / (seeds - 1)) : 0.0;
    return true;
}

static double f_acc(const struct cmp_run *r) { return r->test_acc; }
static double f_sps(const struct cmp_run *r) { return r->samples_per_s; }
static double f_time(const struct cmp_run *r) { return r->train_seconds; }
static double f_speed(const struct cmp_run *r) { return r->speed; }
static double f_diff(const struct cmp_run *r) { return 100.0 * r->acc_diff; }
static double f_us1(const struct cmp_run *r) { return r->us_batch1; }
static double f_us256(const struct cmp_run *r) { return r->us_batch256; }
static double f_params(const struct cmp_run *r) { return (double)r->params; }

// 1234567 -> "1,234,567"
static void thousands(int64_t v, char *out, size_t cap)
{
    char digits[32];
    snprintf(digits, sizeof(digits), "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(digits), k = 0;
    if (v < 0 && k + 1 < cap)
        out[k++] = '-';
    for (size_t i = 0; i < n && k + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

void cmp_print_table(const struct cmp_variant *vars, int n_variants, const struct cmp_run *runs,
                     int seeds, const struct cmp_recipe *recipe)
{
    int w = 7;
    for (int i = 0; i < n_variants; i++)
        w = (int)strlen(vars[i].name) > w ? (int)strlen(vars[i].name) : w;
    const bool many = seeds > 1;
    printf("\n%-*s %10s %10s %7s %6s %*s %7s %7s %*s %6s %7s %7s %8s\n", w, "variant", "params",
           "layers", "compr", "MFLOP", many ? 13 : 9, "samples/s", "speed", "train_s",
           many ? 15 : 8, "test_acc", "d_acc", "us@1", "us@256", "ckpt_kB");
    for (int i = 0; i < n_variants; i++) {
        const struct cmp_run *r = &runs[i]; // the first seed's: shapes and sizes are the same
        char params[32], layers[32] = "-", ratio[32] = "-";
        thousands(r->params, params, sizeof(params));
        if (r->compressed > 0) {
            thousands(r->compressed, layers, sizeof(layers));
            snprintf(ratio, sizeof(ratio), "%.1fx", (double)r->as_dense / (double)r->compressed);
        }
        printf("%-*s %10s %10s %7s %6.2f ", w, vars[i].name, params, layers, ratio, r->flops / 1e6);
        struct stat2 acc, sps, t, speed, diff, us1, us256;
        if (!over_seeds(runs, n_variants, seeds, i, f_acc, &acc)) {
            printf("%*s\n", many ? 13 : 9, "diverged");
            continue;
        }
        over_seeds(runs, n_variants, seeds, i, f_sps, &sps);
        over_seeds(runs, n_variants, seeds, i, f_time, &t);
        over_seeds(runs, n_variants, seeds, i, f_us1, &us1);
        over_seeds(runs, n_variants, seeds, i, f_us256, &us256);
        char s_sps[40], s_acc[40], s_speed[16] = "-", s_diff[16] = "-";
        if (many) {
            snprintf(s_sps, sizeof(s_sps), "%.0f±%.0f", sps.mean, sps.sd);
            snprintf(s_acc, sizeof(s_acc), "%.4f±%.4f", acc.mean, acc.sd);
        } else {
            snprintf(s_sps, sizeof(s_sps), "%.0f", sps.mean);
            snprintf(s_acc, sizeof(s_acc), "%.4f", acc.mean);
        }
        if (over_seeds(runs, n_variants, seeds, i, f_speed, &speed) && isfinite(speed.mean))
            snprintf(s_speed, sizeof(s_speed), "%.2fx", speed.mean);
        if (i > 0 && over_seeds(runs, n_variants, seeds, i, f_diff, &diff) && isfinite(diff.mean))
            snprintf(s_diff, sizeof(s_diff), "%+.2f", diff.mean);
        // "±" is two bytes but one column: pad by hand
        printf("%*s %7s %7.1f %*s %6s %7.0f %7.1f %8.0f\n", many ? 14 : 9, s_sps, s_speed, t.mean,
               many ? 16 : 8, s_acc, s_diff, us1.mean, us256.mean,
               (double)r->checkpoint_bytes / 1e3);
    }
    printf("\nparams: stored parameters; layers, compr: those of the layers that are not plain "
           "dense, and\nhow many times fewer than dense layers of the same shapes; MFLOP: "
           "forward, per sample;\nsamples/s, train_s: training (whole epochs), speed: samples/s "
           "over %s's of the same seed;\nd_acc: test accuracy minus %s's, in points; us@1, "
           "us@256: inference per sample at batch\n1 and 256; ckpt_kB: the safetensors "
           "checkpoint.%s\n\n", vars[0].name, vars[0].name,
           many ? " ±: sample standard deviation over the seeds." : "");
    for (int i = 0; i < n_variants; i++) {
        char how[256];
        cmp_describe(&vars[i], recipe, how, sizeof(how));
        printf("%-*s %s%s%s\n%-*s   %s\n", w, vars[i].name, vars[i].about,
               vars[i].about[0] ? "; " : "", how, w, "", runs[i].spec);
    }
    fflush(stdout);
}

static void json_or_csv_fields(FILE *f, bool json, const struct cmp_variant *v,
                               const struct cmp_run *r)
{
    struct {
        const char *key;
        double value;
    } nums[] = {
        {"seed", (double)r->seed},
        {"batch", (double)r->batch},
        {"epochs", (double)r->epochs},
        {"params", (double)r->params},
        {"compressed_params", (double)r->compressed},
        {"as_dense_params", (double)r->as_dense},
        {"compression", r->compressed > 0 ? (double)r->as_dense / (double)r->compressed : NAN},
        {"flops_per_sample", r->flops},
        {"samples_per_s", r->samples_per_s},
        {"tflops", 3.0 * r->flops * r->samples_per_s / 1e12}, // cli_model_flops' convention
        {"speed", r->speed},
        {"train_seconds", r->train_seconds},
        {"test_acc", r->test_acc},
        {"test_loss", r->test_loss},
        {"acc_diff", r->acc_diff},
        {"infer_us_batch1", r->us_batch1},
        {"infer_us_batch256", r->us_batch256},
        {"checkpoint_bytes", r->error[0] ? NAN : (double)r->checkpoint_bytes},
        {"peak_rss_mb", cli_peak_rss_mb()},
    };
    const size_t n = sizeof(nums) / sizeof(nums[0]);
    if (json) {
        fputc('{', f);
        cli_json_string(f, "event", "variant", false);
        cli_json_string(f, "variant", v->name, false);
        cli_json_string(f, "model", r->spec, false);
        cli_json_string(f, "optim", r->optim, false);
        if (r->error[0])
            cli_json_string(f, "error", r->error, false);
        for (size_t i = 0; i < n; i++)
            cli_json_number(f, nums[i].key, nums[i].value, i + 1 == n);
        return;
    }
    // CSV: the spec has commas, so it is quoted (RFC 4180); an empty field for NaN
    fprintf(f, "%s,\"%s\",%s,", v->name, r->spec, r->optim);
    for (size_t i = 0; i < n; i++) {
        if (isfinite(nums[i].value))
            fprintf(f, "%.10g", nums[i].value);
        fputc(',', f);
    }
    fputs("\"", f);
    for (const char *p = r->error; *p; p++)
        fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, f);
    fputs("\"\n", f);
    fflush(f);
}

void cmp_json_run(FILE *f, const struct cmp_variant *v, const struct cmp_run *r)
{
    if (f)
        json_or_csv_fields(f, true, v, r);
}

void cmp_csv_header(FILE *f)
{
    fputs("variant,model,optim,seed,batch,epochs,params,compressed_params,as_dense_params,"
          "compression,flops_per_sample,samples_per_s,tflops,speed,train_seconds,test_acc,"
          "test_loss,acc_diff,infer_us_batch1,infer_us_batch256,checkpoint_bytes,peak_rss_mb,error\n", f);
}

void cmp_csv_run(FILE *f, const struct cmp_variant *v, const struct cmp_run *r)
{
    if (f)
        json_or_csv_fields(f, false, v, r);
}

bool cmp_plot(const char *prefix, const struct cmp_variant *vars, int n_variants,
              const struct cmp_run *runs, int seeds, const char *title)
{
    char dat[1100];
    plot_path(prefix, ".dat", dat, sizeof(dat));
    FILE *f = cli_fopen_out(dat, "w");
    if (f == NULL)
        cli_die(1, dat, "cannot write the plot data");
    // blocks 0..n-1: one variant each (the accuracy panel's points); block n: every variant
    // (the throughput bars). Columns: index, name, params, accuracy mean and standard
    // deviation, samples/s mean and standard deviation; diverged variants are left out.
    fprintf(f, "# %s\n# index name params test_acc test_acc_sd samples_per_s samples_per_s_sd\n",
            title);
    double ref_acc = NAN;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_variants; i++) {
            struct stat2 acc, sps, params;
            if (!over_seeds(runs, n_variants, seeds, i, f_acc, &acc))
                acc.mean = acc.sd = NAN;
            over_seeds(runs, n_variants, seeds, i, f_sps, &sps);
            over_seeds(runs, n_variants, seeds, i, f_params, &params);
            if (i == 0)
                ref_acc = acc.mean;
            // a diverged variant keeps its block (and the indices after it) with a row of
            // NaN, which gnuplot skips: a comment and blank lines alone would merge blocks
            if (isfinite(acc.mean))
                fprintf(f, "%d %s %.0f %.6f %.6f %.3f %.3f\n", i, vars[i].name, params.mean,
                        acc.mean, acc.sd, sps.mean, sps.sd);
            else
                fprintf(f, "%d %s NaN NaN NaN NaN NaN\n", i, vars[i].name);
            if (pass == 0)
                fputs("\n\n", f);
        }
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        cli_die(1, dat, "cannot write the plot data (disk full?)");

    FILE *g = plot_script_open(prefix, 1500, 650);
    fprintf(g, "  # %s; data %s\n", title, dat);
    fprintf(g, "  names = \"");
    for (int i = 0; i < n_variants; i++)
        fprintf(g, "%s%s", i ? " " : "", vars[i].name);
    fprintf(g, "\"\n  n = %d\n", n_variants);
    // the reference black and larger, the others from a palette without light colours
    fprintf(g, "  colors = \"#000000 #d62728 #1f77b4 #2ca02c #9467bd #ff7f0e #8c564b #e377c2 "
               "#17becf #7f7f7f #bcbd22\"\n");
    fprintf(g,
            "  set multiplot layout 1,2 title \"%s%s\"\n"
            "  set grid\n"
            "  set key outside right top vertical box\n"
            "  set logscale x\n"
            "  set format x \"%%.0s%%c\"\n"
            "  set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08\n"
            "  set xlabel \"stored parameters (log scale)\"\n"
            "  set ylabel \"test accuracy\"\n"
            "  set title \"test accuracy against size%s\"\n",
            title, seeds > 1 ? " (mean ± sd over seeds)" : "",
            seeds > 1 ? " (error bars: ±1 sd)" : "");
    if (isfinite(ref_acc))
        fprintf(g, "  ref = %.6f\n"
                   "  set arrow 1 from graph 0, first ref to graph 1, first ref nohead dt 2 lw 1.5 "
                   "lc rgb \"black\"\n", ref_acc);
    fprintf(g,
            "  plot for [i=0:n-1] \"%s\" index i using 3:4:5 with yerrorbars "
            "lc rgb word(colors, i == 0 ? 1 : 2 + (i - 1) %% 10) pt (i == 0 ? 7 : 4 + i %% 10) "
            "ps (i == 0 ? 2.2 : 1.6) lw 2 "
            "title (i == 0 ? word(names, 1).\" (reference)\" : word(names, i+1))%s\n",
            dat, isfinite(ref_acc) ? ", NaN with lines dt 2 lw 1.5 lc rgb \"black\" "
                                     "title \"reference accuracy\"" : "");
    fprintf(g,
            "  unset arrow 1\n"
            "  unset logscale x\n"
            "  set format x \"%%g\"\n"
            "  set format y \"%%.0s%%c\"\n"
            "  set offsets 0, 0, graph 0.1, 0\n"
            "  set key inside top right nobox\n"
            "  set title \"training throughput\"\n"
            "  set xlabel \"\"\n"
            "  set ylabel \"training samples/s\"\n"
            "  set yrange [0:*]\n"
            "  set xrange [-0.6:n-0.4]\n"
            "  set xtics rotate by 30 right\n"
            "  set style fill solid 0.7 border -1\n"
            "  set boxwidth 0.6\n"
            "  set errorbars 2\n"
            "  plot \"%s\" index %d using 1:($1 == 0 ? $6 : 1/0):7:xtic(2) with boxerrorbars "
            "lc rgb \"#404040\" title \"reference\", "
            "\"\" index %d using 1:($1 == 0 ? 1/0 : $6):7:xtic(2) with boxerrorbars "
            "lc rgb \"#4878c8\" title \"variants\"\n"
            "  unset multiplot\n",
            dat, n_variants, n_variants);
    plot_script_close(g, prefix);
    return plot_draw(prefix);
}
