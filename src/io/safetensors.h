/* safetensors files of named F32, I32 and U8 tensors with string metadata: a strict reader and an atomic
 * writer. Format (https://github.com/huggingface/safetensors): u64 little-endian header length N,
 * N bytes of JSON {"name": {"dtype","shape","data_offsets"}, "__metadata__": {..}}, the data. */
#ifndef FNET_IO_SAFETENSORS_H
#define FNET_IO_SAFETENSORS_H

#include "core/internal.h"

#define FNET_SAFETENSORS_MAX_DIMS 8
#define FNET_SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20) // bytes of JSON header we accept

/* Element types: float32 (parameters, optimizer state), int32 (a sparse layer's indices), uint8
 * (pruning masks). Zero is F32, so a zero-initialized tensor is a float one. */
enum fnet_st_dtype {
    FNET_ST_F32 = 0,
    FNET_ST_I32 = 1,
    FNET_ST_U8 = 2,
};
/* Bytes per element and the name in the header ("F32", "I32", "U8"). */
int fnet_st_dtype_size(enum fnet_st_dtype t);
const char *fnet_st_dtype_name(enum fnet_st_dtype t);

/* One tensor. Writer: name, dtype, ndim, shape, data (borrowed) and on_backend are read. Reader:
 * every field is filled; data points at the tensor's little-endian bytes inside the file's
 * buffer (not necessarily aligned: copy with memcpy), NULL when only the header was read. */
struct fnet_safetensors_tensor {
    const char *name;
    enum fnet_st_dtype dtype;
    int ndim;
    int64_t shape[FNET_SAFETENSORS_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; // byte range in the data buffer
    const void *data;
    bool on_backend;     // writer: data is backend memory of the ctx, downloaded a piece at a time
};

struct fnet_safetensors_meta {
    const char *key;
    const char *value;
};

/* A file read by fnet_safetensors_read(); every pointer is owned by it. */
struct fnet_safetensors {
    uint64_t header_len;                     // N
    uint64_t data_len;                       // bytes after the header
    size_t n_tensors;
    struct fnet_safetensors_tensor *tensors; // in header order
    bool has_metadata;                       // "__metadata__" present
    size_t n_meta;
    struct fnet_safetensors_meta *meta;      // in header order
    // private
    const struct fnet_safetensors_tensor **by_name; // sorted, for fnet_safetensors_find()
    const struct fnet_safetensors_meta **meta_by_key; // sorted, for fnet_safetensors_meta()
    struct fnet_json_doc *doc;
    unsigned char *buf;
};

/* Read and validate path: the header length (>= 8-byte file, N within the file and the limit),
 * the JSON, every tensor entry (dtype "F32", "I32" or "U8", shape of <= 8 non-negative
 * integers, data_offsets [b, e] with e - b = numel times the element size within the data), offsets neither overlapping nor
 * leaving gaps or trailing bytes, metadata values strings; and the checksums when the file has
 * any (metadata "checksum" = "crc32" and "crc32.<name>" = 8 lowercase hex digits for every
 * tensor): all present and well formed, and, with the data read, each the CRC-32 of its tensor's
 * bytes (a mismatch names the tensor and says the file is corrupt). Files without checksums
 * (written before them, or by another writer) are read as they are. With header_only the data is
 * not read (tensors' data is NULL) but still checked against the file's size.
 * @return FNET_OK, FNET_ERR_IO (open/read; the message has strerror), FNET_ERR_FORMAT (messages
 *         "<path>: tensor '<name>': <field> ..."), FNET_ERR_OUT_OF_MEMORY. Free with
 *         fnet_safetensors_free(). */
fnet_status fnet_safetensors_read(fnet_ctx *ctx, const char *path, bool header_only,
                                  struct fnet_safetensors **out);
void fnet_safetensors_free(struct fnet_safetensors *f);

/* The tensor called name, or NULL (O(log n)). */
const struct fnet_safetensors_tensor *fnet_safetensors_find(const struct fnet_safetensors *f,
                                                            const char *name);
/* The metadata value of key, or NULL. */
const char *fnet_safetensors_meta(const struct fnet_safetensors *f, const char *key);

/* Write a shape as "[2, 3]" into buf (size cap, truncated if needed); returns buf. */
const char *fnet_safetensors_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

/* Write tensors t[0..n) (unique names) in this order (data packed in the same order) and metadata
 * meta[0..n_meta) to path atomically (backend tensors pass through a 1 MB host buffer): a
 * temporary file "<path>.tmp.XXXXXX" in the same directory is written, flushed, fsynced and
 * renamed over path; on any failure it is removed and path is untouched.
 * The header is padded with spaces so that the data starts at a multiple of 8 bytes. The metadata
 * gets "checksum" = "crc32" and "crc32.<name>" = the CRC-32 (zlib's) of each tensor's bytes,
 * computed as the data is written (the header is written again over itself at the end, the same
 * length); callers may not use those keys. A new file gets mode 0644; an existing one keeps its
 * mode.
 * @return FNET_OK, FNET_ERR_INVALID_ARG (a name or value not UTF-8, NUL data, a bad shape),
 *         FNET_ERR_IO (with the path and strerror), FNET_ERR_OUT_OF_MEMORY. */
fnet_status fnet_safetensors_write(fnet_ctx *ctx, const char *path,
                                   const struct fnet_safetensors_tensor *t, size_t n,
                                   const struct fnet_safetensors_meta *meta, size_t n_meta);

/* Test hook: make the k-th next write-path operation of fnet_safetensors_write() on this thread
 * fail (k >= 1; 0 disables), as a full disk or an I/O error would: creating the temporary file,
 * opening it as a stream, each fwrite (length, header, tensors), the seek back and the header's
 * second fwrite, fflush, fsync, fclose and the rename, in that order.
 * fnet_debug_io_count() counts those operations of this thread. */
void fnet_debug_fail_io(long k);
long fnet_debug_io_count(void);

#endif
