/* Plots of the fnet-* binaries: see plot.h. */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

void plot_prefix(const char *opt, const char *value, char *prefix, size_t cap)
{
    size_t n = strlen(value);
    if (n >= 4 && (strcmp(value + n - 4, ".png") == 0 || strcmp(value + n - 4, ".svg") == 0))
        n -= 4;
    if (n == 0)
        cli_die(2, opt, "expected a file name, got '%s'", value);
    if (n + 8 > cap)
        cli_die(2, opt, "the path is too long");
    memcpy(prefix, value, n);
    prefix[n] = '\0';
}

void plot_path(const char *prefix, const char *ext, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s%s", prefix, ext) >= cap)
        cli_die(2, prefix, "the plot's path is too long");
}

FILE *plot_script_open(const char *prefix, int width, int height)
{
    char gp[1100];
    plot_path(prefix, ".gp", gp, sizeof(gp));
    FILE *f = cli_fopen_out(gp, "w");
    if (f == NULL)
        cli_die(1, gp, "cannot write the gnuplot script: %s", strerror(errno));
    // the file names in the script are relative to nothing: gnuplot runs where we run
    fprintf(f,
            "do for [t=1:2] {\n"
            "  if (t == 1) {\n"
            "    if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
            "      set terminal pngcairo noenhanced size %d,%d font \",11\"\n"
            "    } else {\n"
            "      set terminal png noenhanced size %d,%d\n"
            "    }\n"
            "    set output \"%s.png\"\n"
            "  } else {\n"
            "    set terminal svg noenhanced size %d,%d dynamic font \",11\"\n"
            "    set output \"%s.svg\"\n"
            "  }\n"
            "  reset\n",
            width, height, width, height, prefix, width, height, prefix);
    return f;
}

void plot_script_close(FILE *f, const char *prefix)
{
    fputs("  set output\n}\n", f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        cli_die(1, prefix, "cannot write the gnuplot script (disk full?)");
}

// Run gnuplot with these arguments, its output to /dev/null and its errors to err (NULL:
// /dev/null); its exit status, or -1 when it cannot be started (not installed).
static int run_gnuplot(char *const argv[], const char *err)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err ? err : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status))
        return 128;
    // posix_spawnp may also report a missing program through the child's exit 127
    return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
}

// The last non-empty line of a file (gnuplot's error), or "" when there is none.
static void last_line(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[strspn(line, " \t^")] != '\0')
            snprintf(out, cap, "%s", line + strspn(line, " \t"));
    }
    fclose(f);
}

bool plot_draw(const char *prefix)
{
    if (!cli_lead()) // rank 0 draws
        return true;
    char gp[1100];
    plot_path(prefix, ".gp", gp, sizeof(gp));
    char *version[] = {"gnuplot", "--version", NULL};
    if (run_gnuplot(version, NULL) != 0) {
        cli_warn("gnuplot is not installed, the plot is skipped (Debian: apt-get install "
                 "gnuplot-nox; then `gnuplot %s` draws it)", gp);
        return false;
    }
    char *draw[] = {"gnuplot", gp, NULL}, err[1100], why[512];
    plot_path(prefix, ".gp.log", err, sizeof(err));
    int rc = run_gnuplot(draw, err);
    last_line(err, why, sizeof(why));
    remove(err);
    if (rc != 0)
        cli_die(1, gp, "gnuplot failed on the plot script%s%s", why[0] ? ": " : "", why);
    return true;
}
