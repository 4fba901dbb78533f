/* make_tiny_idx: write a tiny, learnable Fashion-MNIST look-alike for the example tests: the four
 * standard gzip IDX files (28x28 uint8 images, 10 classes) in DIR. Class c is a bright band of
 * rows near 2c+4 (shifted by up to one row) over a noisy background; labels cycle 0..9.
 * Usage: make_tiny_idx DIR [N_TRAIN [N_TEST]]   (defaults 512 and 128) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ROWS 28
#define COLS 28
#define CLASSES 10

// splitmix64: a fixed, seeded stream, the same on every platform.
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

// Write header (hlen bytes) then data (n bytes) to dir/name as gzip; returns 0 or -1.
static int write_gz(const char *dir, const char *name, const uint8_t *header, unsigned hlen,
                    const uint8_t *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    gzFile gz = gzopen(path, "wb6");
    if (gz == NULL) {
        fprintf(stderr, "make_tiny_idx: cannot create %s\n", path);
        return -1;
    }
    int ok = gzwrite(gz, header, hlen) == (int)hlen;
    if (ok && n > 0)
        ok = gzwrite(gz, data, (unsigned)n) == (int)n;
    if (gzclose(gz) != Z_OK || !ok) {
        fprintf(stderr, "make_tiny_idx: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

// images (n, ROWS, COLS) and labels (n) of one split, drawn from the stream s.
static int write_split(const char *dir, const char *prefix, uint32_t n, uint64_t *s)
{
    uint8_t *img = malloc((size_t)n * ROWS * COLS), *lab = malloc(n > 0 ? n : 1);
    if (img == NULL || lab == NULL) {
        fprintf(stderr, "make_tiny_idx: out of memory\n");
        free(img);
        free(lab);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        int c = (int)(i % CLASSES);
        int top = 2 * c + 4 + (int)(next_u64(s) % 3) - 1; // the band's first row, jittered
        lab[i] = (uint8_t)c;
        for (int r = 0; r < ROWS; r++)
            for (int k = 0; k < COLS; k++) {
                int band = r >= top && r < top + 3 && k >= 4 && k < COLS - 4;
                uint64_t u = next_u64(s);
                img[(size_t)i * ROWS * COLS + (size_t)r * COLS + (size_t)k] =
                    (uint8_t)(band ? 160 + u % 96 : u % 64);
            }
    }
    uint8_t hi[16], hl[8];
    put_be32(hi, 0x00000803); // uint8, rank 3
    put_be32(hi + 4, n);
    put_be32(hi + 8, ROWS);
    put_be32(hi + 12, COLS);
    put_be32(hl, 0x00000801); // uint8, rank 1
    put_be32(hl + 4, n);
    char name[64];
    int rc = 0;
    snprintf(name, sizeof(name), "%s-images-idx3-ubyte.gz", prefix);
    rc |= write_gz(dir, name, hi, sizeof(hi), img, (size_t)n * ROWS * COLS);
    snprintf(name, sizeof(name), "%s-labels-idx1-ubyte.gz", prefix);
    rc |= write_gz(dir, name, hl, sizeof(hl), lab, n);
    free(img);
    free(lab);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: make_tiny_idx DIR [N_TRAIN [N_TEST]]\n");
        return 2;
    }
    long n_train = argc > 2 ? strtol(argv[2], NULL, 10) : 512;
    long n_test = argc > 3 ? strtol(argv[3], NULL, 10) : 128;
    if (n_train < 1 || n_test < 1 || n_train > 1000000 || n_test > 1000000) {
        fprintf(stderr, "make_tiny_idx: sizes must be in [1, 1000000]\n");
        return 2;
    }
    uint64_t s = 20240601;
    if (write_split(argv[1], "train", (uint32_t)n_train, &s) != 0 ||
        write_split(argv[1], "t10k", (uint32_t)n_test, &s) != 0)
        return 1;
    return 0;
}
