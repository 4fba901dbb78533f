/* fnet-mkidx: writes a tiny synthetic IDX dataset (the four MNIST-style files, gzip or raw) for
 * the command-line tests, and on request damages one of its files: truncated, bad magic, a count
 * that disagrees with the other file of the split, bytes after the data, a broken gzip CRC.
 * Each class is a fixed random binary S x S pattern; a sample is its class's pattern with a few
 * pixels flipped and some grey noise, so a small dense network learns it in a few epochs. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_CLASSES 256
#define MAX_SIDE 64
#define FLIP_PER_MILLE 60 // pixels of a sample that disagree with its class's pattern

static const char usage[] =
    "usage: fnet-mkidx [options] DIR\n"
    "\n"
    "Write {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] into DIR (created if missing).\n"
    "\n"
    "  --train N       training samples (default 1000)\n"
    "  --test N        test samples (default 200)\n"
    "  --side S        images are S x S pixels (default 8)\n"
    "  --classes K     2..256 (default 5)\n"
    "  --seed N        seed of the class patterns and the samples (default 1)\n"
    "  --raw           write raw files (default: gzip, with the .gz suffix)\n"
    "  --corrupt WHAT  damage one file: truncate (cut the file on disk in half), magic (the\n"
    "                  IDX magic starts 50 4b, not 00 00), count (one sample fewer than the\n"
    "                  other file of the split, consistently written), trailing (16 bytes\n"
    "                  after the data), crc (flip a byte of the gzip trailer; gzip only)\n"
    "  --file NAME     the file to damage: train-images (default), train-labels, t10k-images,\n"
    "                  t10k-labels\n"
    "\n"
    "Exit status: 0 success, 1 I/O error, 2 bad usage.\n";

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fnet-mkidx: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static long long parse_int(const char *opt, const char *text, long long lo, long long hi)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        die(2, "%s: expected an integer in [%lld, %lld], got '%s'", opt, lo, hi, text);
    return v;
}

// splitmix64: small, seedable, the same sequence on every platform.
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned next_below(uint64_t *s, unsigned n)
{
    return (unsigned)(next_u64(s) % n);
}

enum corrupt { C_NONE, C_TRUNCATE, C_MAGIC, C_COUNT, C_TRAILING, C_CRC };

struct file_spec {
    const char *name;     // "train-images-idx3-ubyte"
    bool images;          // else labels
    long long count;      // samples written in the header and the data
    enum corrupt corrupt; // what to do to it
};

// One IDX file: header (magic 00 00 08 rank, big-endian dims) then data, gzip or raw.
static void write_idx(const char *path, bool gz, const uint8_t *header, size_t header_len,
                      const uint8_t *data, size_t data_len, size_t trailing)
{
    static const uint8_t junk[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    if (gz) {
        gzFile f = gzopen(path, "wb9");
        if (f == NULL)
            die(1, "%s: cannot create: %s", path, strerror(errno));
        bool ok = gzwrite(f, header, (unsigned)header_len) == (int)header_len;
        ok = ok && (data_len == 0 || gzwrite(f, data, (unsigned)data_len) == (int)data_len);
        ok = ok && (trailing == 0 || gzwrite(f, junk, (unsigned)trailing) == (int)trailing);
        if (gzclose(f) != Z_OK || !ok)
            die(1, "%s: cannot write the gzip stream", path);
    } else {
        FILE *f = fopen(path, "wb");
        if (f == NULL)
            die(1, "%s: cannot create: %s", path, strerror(errno));
        bool ok = fwrite(header, 1, header_len, f) == header_len;
        ok = ok && fwrite(data, 1, data_len, f) == data_len;
        ok = ok && fwrite(junk, 1, trailing, f) == trailing;
        if (fclose(f) != 0 || !ok)
            die(1, "%s: cannot write: %s", path, strerror(errno));
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

// Damage applied to the file on disk after it is written (truncate, crc).
static void damage_on_disk(const char *path, enum corrupt c)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        die(1, "%s: %s", path, strerror(errno));
    if (c == C_TRUNCATE) {
        if (truncate(path, sb.st_size / 2) != 0)
            die(1, "%s: cannot truncate: %s", path, strerror(errno));
        return;
    }
    FILE *f = fopen(path, "r+b");
    if (f == NULL)
        die(1, "%s: cannot reopen: %s", path, strerror(errno));
    long at = (long)sb.st_size - 8; // C_CRC: the gzip trailer is CRC32, then ISIZE
    int byte = 0;
    if (fseek(f, at, SEEK_SET) != 0 || (byte = fgetc(f)) == EOF || fseek(f, at, SEEK_SET) != 0)
        die(1, "%s: cannot read back byte %ld", path, at);
    if (fputc(byte ^ 0xff, f) == EOF)
        die(1, "%s: cannot flip byte %ld", path, at);
    if (fclose(f) != 0)
        die(1, "%s: cannot write: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
    long long n_train = 1000, n_test = 200, side = 8, classes = 5, seed = 1;
    bool gz = true;
    enum corrupt corrupt = C_NONE;
    const char *target = "train-images", *dir = NULL;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool has_value = true;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(o, "--raw") == 0) {
            gz = false;
            has_value = false;
        } else if (strncmp(o, "--", 2) != 0) {
            if (dir != NULL)
                die(2, "more than one directory: '%s' and '%s'", dir, o);
            dir = o;
            has_value = false;
        } else if (v == NULL) {
            die(2, "%s: option needs a value (see --help)", o);
        } else if (strcmp(o, "--train") == 0) {
            n_train = parse_int(o, v, 2, 1000000);
        } else if (strcmp(o, "--test") == 0) {
            n_test = parse_int(o, v, 2, 1000000);
        } else if (strcmp(o, "--side") == 0) {
            side = parse_int(o, v, 1, MAX_SIDE);
        } else if (strcmp(o, "--classes") == 0) {
            classes = parse_int(o, v, 2, MAX_CLASSES);
        } else if (strcmp(o, "--seed") == 0) {
            seed = parse_int(o, v, 0, INT64_MAX);
        } else if (strcmp(o, "--corrupt") == 0) {
            if (strcmp(v, "truncate") == 0)
                corrupt = C_TRUNCATE;
            else if (strcmp(v, "magic") == 0)
                corrupt = C_MAGIC;
            else if (strcmp(v, "count") == 0)
                corrupt = C_COUNT;
            else if (strcmp(v, "trailing") == 0)
                corrupt = C_TRAILING;
            else if (strcmp(v, "crc") == 0)
                corrupt = C_CRC;
            else
                die(2, "--corrupt: expected truncate, magic, count, trailing or crc, got '%s'", v);
        } else if (strcmp(o, "--file") == 0) {
            target = v;
        } else {
            die(2, "%s: unknown option (see --help)", o);
        }
        if (has_value)
            i++;
    }
    if (dir == NULL)
        die(2, "no output directory (see --help)");
    if (corrupt == C_CRC && !gz)
        die(2, "--corrupt crc needs a gzip file (drop --raw)");

    struct file_spec files[4] = {
        {"train-images-idx3-ubyte", true, n_train, C_NONE},
        {"train-labels-idx1-ubyte", false, n_train, C_NONE},
        {"t10k-images-idx3-ubyte", true, n_test, C_NONE},
        {"t10k-labels-idx1-ubyte", false, n_test, C_NONE},
    };
    static const char *const targets[4] = {"train-images", "train-labels", "t10k-images",
                                           "t10k-labels"};
    int t = -1;
    for (int k = 0; k < 4; k++)
        if (strcmp(target, targets[k]) == 0)
            t = k;
    if (t < 0)
        die(2, "--file: expected train-images, train-labels, t10k-images or t10k-labels, got '%s'",
            target);
    files[t].corrupt = corrupt;
    if (corrupt == C_COUNT)
        files[t].count -= 1;

    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die(1, "%s: cannot create the directory: %s", dir, strerror(errno));

    // Class patterns: each pixel on (200..255) or off (0..40), half of them on.
    size_t dim = (size_t)(side * side);
    uint64_t rng = (uint64_t)seed;
    uint8_t *pattern = malloc((size_t)classes * dim);
    if (pattern == NULL)
        die(1, "out of memory");
    for (size_t k = 0; k < (size_t)classes * dim; k++)
        pattern[k] = next_below(&rng, 2) != 0;

    for (int s = 0; s < 2; s++) {
        struct file_spec *fi = &files[2 * s], *fl = &files[2 * s + 1];
        long long n = fi->count > fl->count ? fi->count : fl->count;
        uint8_t *images = malloc((size_t)n * dim), *labels = malloc((size_t)n);
        if (images == NULL || labels == NULL)
            die(1, "out of memory");
        // Every class appears (labels cycle), so the largest label is classes - 1 in both splits.
        for (long long i = 0; i < n; i++) {
            int c = (int)(i % classes);
            labels[i] = (uint8_t)c;
            for (size_t p = 0; p < dim; p++) {
                bool on = pattern[(size_t)c * dim + p] != 0;
                if (next_below(&rng, 1000) < FLIP_PER_MILLE)
                    on = !on;
                images[(size_t)i * dim + p] =
                    (uint8_t)(on ? 200 + next_below(&rng, 56) : next_below(&rng, 41));
            }
        }
        for (int k = 0; k < 2; k++) {
            struct file_spec *f = &files[2 * s + k];
            uint8_t header[16];
            size_t header_len;
            put_be32(header + 4, (uint32_t)f->count);
            if (f->images) {
                header[0] = 0, header[1] = 0, header[2] = 0x08, header[3] = 3;
                put_be32(header + 8, (uint32_t)side);
                put_be32(header + 12, (uint32_t)side);
                header_len = 16;
            } else {
                header[0] = 0, header[1] = 0, header[2] = 0x08, header[3] = 1;
                header_len = 8;
            }
            if (f->corrupt == C_MAGIC) // "PK": how a zip archive starts, a plausible wrong file
                header[0] = 0x50, header[1] = 0x4b;
            char path[4096];
            int len = snprintf(path, sizeof(path), "%s/%s%s", dir, f->name, gz ? ".gz" : "");
            if (len < 0 || (size_t)len >= sizeof(path))
                die(2, "%s: directory path too long", dir);
            const uint8_t *data = f->images ? images : labels;
            size_t data_len = (size_t)f->count * (f->images ? dim : 1);
            write_idx(path, gz, header, header_len, data, data_len, f->corrupt == C_TRAILING ? 16 : 0);
            if (f->corrupt == C_TRUNCATE || f->corrupt == C_CRC)
                damage_on_disk(path, f->corrupt);
        }
        free(images);
        free(labels);
    }
    free(pattern);
    return 0;
}
