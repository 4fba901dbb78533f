/* IDX reader (the MNIST file format, http://yann.lecun.com/exdb/mnist/), gzip or raw through
 * zlib's gz* functions, which read uncompressed files transparently. Every header field is
 * checked, and the data must be exactly as long as the dimensions say: a truncated file, bytes
 * after the data, or a gzip stream that fails to inflate or its CRC check is FNET_ERR_FORMAT. */
#include "data/data_impl.h"
#include "core/backend.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_U8 0x08
#define IDX_CHUNK ((int64_t)1 << 24) // bytes per gzread call (its length is an unsigned int)
#define STAGE_BYTES ((int64_t)1 << 20) // bytes staged on the host per upload into backend memory
#define IDX_GZ_BUFFER (1u << 17)     // zlib's input buffer: fewer read() calls than its 8 KiB

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The one place zlib's errors become statuses: after a short or failed gzread, say why.
 * Returns FNET_OK when zlib reports no error (a clean end of file). zlib inflates ahead of what
 * was asked, so a corrupt stream may show on any read, even the header's. */
static fnet_status gz_check(fnet_ctx *ctx, gzFile gz, const char *path)
{
    int err = Z_OK;
    const char *msg = gzerror(gz, &err);
    if (err == Z_OK)
        return FNET_OK;
    // zlib prefixes its messages with the path it was given: drop it, ours has it already.
    size_t n = strlen(path);
    if (msg == NULL)
        msg = "unknown zlib error";
    else if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    switch (err) {
    case Z_ERRNO:
        return fnet_fail(ctx, FNET_ERR_IO, "%s: read error: %s", path, msg);
    case Z_BUF_ERROR: // inflate ran out of input before the end of the gzip stream
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: truncated gzip stream (unexpected end of file)",
                         path);
    case Z_MEM_ERROR:
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: zlib out of memory", path);
    default: // Z_DATA_ERROR (bad deflate data, CRC or length check), Z_STREAM_ERROR
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: corrupt gzip stream: %s", path, msg);
    }
}

/* Read up to n (<= IDX_CHUNK) bytes; returns how many were read, stopping early only at the end
 * of the file or on an error (which gz_check then reports). */
static int64_t gz_read_some(gzFile gz, uint8_t *dst, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        int k = gzread(gz, dst + got, (unsigned)(n - got));
        if (k <= 0)
            break;
        got += k;
    }
    return got;
}

fnet_status fnet_data_idx_open(fnet_ctx *ctx, const char *path, const char *what, int min_rank,
                               int max_rank, struct fnet_idx *f)
{
    memset(f, 0, sizeof(*f));
    f->path = path;
    fnet_status st = FNET_OK;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL)
        return fnet_fail(ctx, FNET_ERR_IO, "%s: cannot open the %s file: %s", path, what,
                         errno ? strerror(errno) : "zlib could not allocate its state");
    gzbuffer(gz, IDX_GZ_BUFFER);

    uint8_t magic[4];
    int64_t got = gz_read_some(gz, magic, 4);
    if ((st = gz_check(ctx, gz, path)) != FNET_OK)
        goto out_close;
    if (ends_with(path, ".gz") && gzdirect(gz)) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: named .gz but is not a gzip stream", path);
        goto out_close;
    }
    if (got < 4) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: truncated: %lld of the 4 magic bytes", path,
                       (long long)got);
        goto out_close;
    }
    if (magic[0] != 0 || magic[1] != 0) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT,
                       "%s: bad magic %02x %02x %02x %02x: not an IDX file (expected 00 00 08 "
                       "RANK)",
                       path, magic[0], magic[1], magic[2], magic[3]);
        goto out_close;
    }
    if (magic[2] != IDX_TYPE_U8) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT,
                       "%s: IDX data type 0x%02x is not supported (expected 0x08, unsigned byte)",
                       path, magic[2]);
        goto out_close;
    }
    int rank = magic[3];
    if (rank < min_rank || rank > max_rank) {
        if (min_rank == max_rank)
            st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: rank %d, expected %d for the %s file", path,
                           rank, min_rank, what);
        else
            st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: rank %d, expected %d to %d for the %s file",
                           path, rank, min_rank, max_rank, what);
        goto out_close;
    }

    // Dimensions: big-endian uint32 each, nonzero, product capped so that it cannot overflow.
    int64_t bytes = 1, item = 1, count = 0;
    for (int k = 0; k < rank; k++) {
        uint8_t b[4];
        got = gz_read_some(gz, b, 4);
        if ((st = gz_check(ctx, gz, path)) != FNET_OK)
            goto out_close;
        if (got < 4) {
            st = fnet_fail(ctx, FNET_ERR_FORMAT,
                           "%s: truncated header: dimension %d of %d is missing", path, k, rank);
            goto out_close;
        }
        int64_t dim = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) |
                      (int64_t)b[3];
        if (dim == 0) {
            st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: dimension %d of %d is 0", path, k, rank);
            goto out_close;
        }
        // bytes <= 2^31 and dim < 2^32, so the product fits in int64 before the check.
        bytes *= dim;
        if (bytes > FNET_IDX_MAX_BYTES) {
            st = fnet_fail(ctx, FNET_ERR_FORMAT,
                           "%s: dimension %d of %d (= %lld) takes the data over the limit of "
                           "%lld bytes",
                           path, k, rank, (long long)dim, (long long)FNET_IDX_MAX_BYTES);
            goto out_close;
        }
        if (k == 0)
            count = dim;
        else
            item *= dim;
    }
    f->gz = gz;
    f->rank = rank;
    f->count = count;
    f->item = item;
    f->bytes = bytes;
    return FNET_OK;

out_close:
    gzclose(gz);
    return st;
}

fnet_status fnet_data_idx_read(fnet_ctx *ctx, struct fnet_idx *f, uint8_t *dst, bool backend)
{
    FNET_ASSERT(ctx, f->gz != NULL && dst != NULL);
    gzFile gz = f->gz;
    // backend memory is filled through a host staging buffer, one upload per piece
    int64_t piece = backend ? (f->bytes < STAGE_BYTES ? f->bytes : STAGE_BYTES) : IDX_CHUNK;
    uint8_t *stage = backend ? fnet_malloc((size_t)(piece > 0 ? piece : 1)) : NULL;
    if (backend && stage == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: staging buffer of %lld bytes", f->path,
                         (long long)piece);
    int64_t got = 0;
    while (got < f->bytes) {
        int64_t want = f->bytes - got < piece ? f->bytes - got : piece;
        int64_t k = gz_read_some(gz, backend ? stage : dst + got, want);
        if (backend && k > 0)
            ctx->be->upload(ctx, dst + got, stage, (size_t)k);
        got += k;
        if (k < want)
            break;
    }
    fnet_free(stage);
    fnet_status st = gz_check(ctx, gz, f->path);
    if (st != FNET_OK)
        return st;
    if (got < f->bytes)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: truncated: expected %lld data bytes, got %lld",
                         f->path, (long long)f->bytes, (long long)got);
    // One more read must hit the end of the file; for gzip this also runs the CRC and length
    // checks of the trailer, which a read that stops at the last data byte would skip.
    uint8_t extra[64];
    int64_t more = gz_read_some(gz, extra, (int64_t)sizeof(extra));
    if ((st = gz_check(ctx, gz, f->path)) != FNET_OK)
        return st;
    if (more > 0)
        return fnet_fail(ctx, FNET_ERR_FORMAT,
                         "%s: trailing bytes after the expected %lld data bytes", f->path,
                         (long long)f->bytes);
    return FNET_OK;
}

void fnet_data_idx_close(struct fnet_idx *f)
{
    if (f->gz != NULL)
        gzclose((gzFile)f->gz);
    f->gz = NULL;
}
