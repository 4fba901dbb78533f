/* Plots of the fnet-* binaries: a gnuplot script PREFIX.gp beside its data PREFIX.dat, drawn to
 * PREFIX.png and PREFIX.svg. Without gnuplot the numbers and the script are still written and
 * one warning line says how to draw them later. */
#ifndef FNET_EXP_PLOT_H
#define FNET_EXP_PLOT_H

#include <stdbool.h>
#include <stdio.h>

/* PREFIX from --plot's value: a trailing .png or .svg is dropped ("out.png" -> "out"); dies
 * (exit 2) when the result would not fit in cap. */
void plot_prefix(const char *opt, const char *value, char *prefix, size_t cap);

/* PREFIX + ext ("out" + ".dat"), or die naming the option. */
void plot_path(const char *prefix, const char *ext, char *out, size_t cap);

/* Open PREFIX.gp and write the head of a script that draws the same plot twice, to PREFIX.png
 * (pngcairo where gnuplot has it, else png) and to PREFIX.svg, `width` x `height` pixels; the
 * caller writes the plot commands, then plot_script_close(). Dies (exit 1) naming the file. */
FILE *plot_script_open(const char *prefix, int width, int height);
void plot_script_close(FILE *f, const char *prefix);

/* Run gnuplot on PREFIX.gp: true when PREFIX.png and PREFIX.svg were drawn. Without gnuplot,
 * one line "prog: warning: ..." on stderr and false; a gnuplot that fails is a runtime error
 * (exit 1). */
bool plot_draw(const char *prefix);

#endif
