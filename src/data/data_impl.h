/* Private to src/data: the IDX file reader (idx.c) that dataset.c builds datasets from.
 * IDX (LeCun's MNIST format): magic 00 00 08 RANK, RANK big-endian uint32 dimensions, then
 * the product of the dimensions in uint8 bytes, gzip-compressed or raw. */
#ifndef FNET_DATA_IMPL_H
#define FNET_DATA_IMPL_H

#include "core/internal.h"

/* Largest data payload accepted from one IDX file, in bytes (2^31): anything bigger is
 * treated as a corrupt header rather than attempted. */
#define FNET_IDX_MAX_BYTES ((int64_t)1 << 31)

/* An open IDX file whose header has been read and checked. */
struct fnet_idx {
    void *gz;          // gzFile: zlib reads gzip and raw files alike (transparent mode)
    const char *path;  // borrowed, for messages
    int rank;          // number of dimensions, >= 1
    int64_t count;     // dims[0]: number of items (images or labels)
    int64_t item;      // product of dims[1..rank): bytes per item (1 for labels)
    int64_t bytes;     // count·item: the exact data length that must follow the header
};

/* Open path and read its header: the magic (00 00 08 = unsigned byte), the rank (in
 * [min_rank, max_rank]; `what` names the file's role in messages, e.g. "images") and the
 * dimensions (each nonzero, their product at most FNET_IDX_MAX_BYTES).
 * On failure nothing stays open and f->gz is NULL.
 * @return FNET_OK, FNET_ERR_IO (cannot open or read), FNET_ERR_FORMAT (bad header). */
fnet_status fnet_data_idx_open(fnet_ctx *ctx, const char *path, const char *what, int min_rank,
                               int max_rank, struct fnet_idx *f);

/* Read the data that follows the header: exactly f->bytes bytes into dst (f->bytes; host memory,
 * or backend memory of ctx when `backend`, then uploaded a piece at a time), in one pass, then
 * check that the file (and, for gzip, its CRC trailer) ends right there.
 * @return FNET_OK, FNET_ERR_IO, FNET_ERR_FORMAT (truncated, trailing bytes, corrupt gzip),
 *         FNET_ERR_OUT_OF_MEMORY (zlib's own buffers, the staging buffer). */
fnet_status fnet_data_idx_read(fnet_ctx *ctx, struct fnet_idx *f, uint8_t *dst, bool backend);

/* Close an IDX file; a closed or never-opened one (gz NULL) is a no-op. */
void fnet_data_idx_close(struct fnet_idx *f);

#endif
