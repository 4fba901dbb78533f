/* safetensors reader and writer for F32, I32 and U8 tensors (https://github.com/huggingface/safetensors).
 * The reader trusts nothing in the file: every length, offset and product is checked before use,
 * and offsets must tile the data buffer exactly, as the reference implementation requires. The
 * writer never leaves a partial file at the destination (temporary file, fsync, rename). */
#include "io/safetensors.h"
#include "core/backend.h"
#include "io/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

// Tensor data is stored and written as the host's floats: only valid on little-endian IEEE hosts.
_Static_assert(sizeof(float) == 4, "safetensors F32 needs a 4-byte float");

int fnet_st_dtype_size(enum fnet_st_dtype t)
{
    return t == FNET_ST_U8 ? 1 : 4;
}

const char *fnet_st_dtype_name(enum fnet_st_dtype t)
{
    return t == FNET_ST_I32 ? "I32" : t == FNET_ST_U8 ? "U8" : "F32";
}
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c stores floats as they lie in memory: a little-endian host is required"
#endif
#endif

#define MAX_JSON_VALUES ((size_t)1 << 22) // ~300k tensors: far beyond any model of ours
#define NAME_SHOWN 120                    // characters of a file-controlled name in a message
// floats of a backend tensor downloaded per write: 1 MB of host memory whatever the model
#define STAGE_FLOATS ((size_t)1 << 18)
#define TMP_SUFFIX ".tmp.XXXXXX"
// Integrity: the writer stores the CRC-32 (zlib's, the gzip polynomial) of every tensor's bytes as
// metadata "crc32.<name>" = 8 lowercase hex digits, and "checksum" = "crc32"; the reader checks
// them whenever any is present. Plain metadata strings: other readers (PyTorch, NumPy) ignore them.
#define CRC_KEY "checksum"
#define CRC_ALG "crc32"
#define CRC_PREFIX "crc32."
#define CRC_META "metadata_crc32" // of the other metadata entries: key, NUL, value, NUL, by key

const char *fnet_safetensors_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = 0;
    int w = snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && w >= 0 && (k += (size_t)w) < cap; i++)
        w = snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (w >= 0 && (k += (size_t)w) < cap)
        snprintf(buf + k, cap - k, "]");
    return buf;
}

// ---------------------------------------------------------------- integrity

static uint32_t crc_update(uint32_t crc, const void *data, size_t n)
{
    return (uint32_t)crc32_z(crc, data, n);
}

// Whether a metadata key is one of the checksums' own (not covered by CRC_META).
static bool is_crc_key(const char *k)
{
    return strcmp(k, CRC_KEY) == 0 || strcmp(k, CRC_META) == 0 ||
           strncmp(k, CRC_PREFIX, strlen(CRC_PREFIX)) == 0;
}

static int by_key(const void *a, const void *b);

// The CRC of metadata entries (key, NUL, value, NUL each), the checksums' own left out, in the
// order of their keys (strcmp): a tool that writes the same metadata in another order (Python's
// safetensors does not keep it) keeps it valid. sorted: the entries in that order.
static uint32_t meta_crc(const struct fnet_safetensors_meta *const *sorted, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_crc_key(sorted[i]->key))
            continue;
        c = crc_update(c, sorted[i]->key, strlen(sorted[i]->key) + 1);
        c = crc_update(c, sorted[i]->value, strlen(sorted[i]->value) + 1);
    }
    return c;
}

// "0123abcd": exactly 8 lowercase hex digits.
static bool parse_crc(const char *s, uint32_t *v)
{
    uint32_t r = 0;
    int i = 0;
    for (; i < 8; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            r = r << 4 | (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            r = r << 4 | (uint32_t)(c - 'a' + 10);
        else
            return false;
    }
    *v = r;
    return s[i] == '\0';
}

// ---------------------------------------------------------------- reading

static fnet_status read_failure(fnet_ctx *ctx, const char *path, FILE *fp)
{
    if (ferror(fp))
        return fnet_fail(ctx, FNET_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    return fnet_fail(ctx, FNET_ERR_IO, "%s: file ended early (changed while being read?)", path);
}

// Read the 8-byte header length and then the header (header_only) or everything after it.
static fnet_status read_file(fnet_ctx *ctx, const char *path, bool header_only,
                             struct fnet_safetensors *f)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return fnet_fail(ctx, FNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fnet_status st = FNET_OK;
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out_close_fp;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: not a regular file", path);
        goto out_close_fp;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: file is %" PRIu64 " bytes, too short for the "
                       "8-byte header length of a safetensors file", path, size);
        goto out_close_fp;
    }
    unsigned char len8[8];
    if (fread(len8, 1, 8, fp) != 8) {
        st = read_failure(ctx, path, fp);
        goto out_close_fp;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n > size - 8) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %" PRIu64
                       " bytes that follow it (truncated or not a safetensors file)", path, n,
                       size - 8);
        goto out_close_fp;
    }
    if (n > FNET_SAFETENSORS_MAX_HEADER) {
        st = fnet_fail(ctx, FNET_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %"
                       PRIu64 " bytes", path, n, FNET_SAFETENSORS_MAX_HEADER);
        goto out_close_fp;
    }
    uint64_t want = header_only ? n : size - 8;
    if (want > SIZE_MAX) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: %" PRIu64 " bytes do not fit in memory",
                       path, want);
        goto out_close_fp;
    }
    f->buf = fnet_malloc((size_t)want);
    if (f->buf == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: %" PRIu64 " bytes for the file", path,
                       want);
        goto out_close_fp;
    }
    if (fread(f->buf, 1, (size_t)want, fp) != (size_t)want) {
        st = read_failure(ctx, path, fp);
        goto out_close_fp;
    }
    f->header_len = n;
    f->data_len = size - 8 - n;
out_close_fp:
    fclose(fp); // read-only: nothing to lose
    return st;
}

static bool key_is(const struct fnet_json *m, const char *key)
{
    size_t n = strlen(key);
    return m->key_len == n && memcmp(m->key, key, n) == 0;
}

static fnet_status parse_tensor(fnet_ctx *ctx, const char *path, const struct fnet_json *e,
                                uint64_t data_len, struct fnet_safetensors_tensor *t)
{
    const int ns = NAME_SHOWN;
    const char *name = e->key;
    t->name = name;
    if (strlen(name) != e->key_len)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': name holds a NUL character",
                         path, ns, name);
    if (e->type != FNET_JSON_OBJECT)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': entry is a JSON %s, not an "
                         "object", path, ns, name, fnet_json_type_name(e->type));
    const struct fnet_json *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const struct fnet_json *m = e->child; m != NULL; m = m->next) {
        if (key_is(m, "dtype"))
            dtype = m;
        else if (key_is(m, "shape"))
            shape = m;
        else if (key_is(m, "data_offsets"))
            offsets = m;
        else
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': unexpected field '%.*s'",
                             path, ns, name, ns, m->key);
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing != NULL)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': missing field '%s'", path, ns,
                         name, missing);

    if (dtype->type != FNET_JSON_STRING)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': dtype is a JSON %s, not a "
                         "string", path, ns, name, fnet_json_type_name(dtype->type));
    bool known = false;
    for (int k = FNET_ST_F32; k <= FNET_ST_U8 && !known; k++) {
        const char *dn = fnet_st_dtype_name((enum fnet_st_dtype)k);
        if (dtype->len == strlen(dn) && strcmp(dtype->str, dn) == 0) {
            t->dtype = (enum fnet_st_dtype)k;
            known = true;
        }
    }
    if (!known)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': dtype '%.*s' is not supported "
                         "(F32, I32, U8)", path, ns, name, ns, dtype->str);
    const uint64_t esize = (uint64_t)fnet_st_dtype_size(t->dtype);

    if (shape->type != FNET_JSON_ARRAY)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': shape is a JSON %s, not an "
                         "array", path, ns, name, fnet_json_type_name(shape->type));
    if (shape->len > FNET_SAFETENSORS_MAX_DIMS)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': shape has %zu dimensions, "
                         "more than %d", path, ns, name, shape->len, FNET_SAFETENSORS_MAX_DIMS);
    t->ndim = (int)shape->len;
    t->numel = 1;
    int d = 0;
    for (const struct fnet_json *v = shape->child; v != NULL; v = v->next, d++) {
        if (v->type != FNET_JSON_INT || v->integer < 0)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': shape[%d] is not a "
                             "non-negative integer", path, ns, name, d);
        t->shape[d] = v->integer;
        // numel·4 must fit in int64 (and so in uint64 offsets)
        if (v->integer != 0 && t->numel > INT64_MAX / 4 / v->integer)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': shape's element count "
                             "overflows", path, ns, name);
        t->numel *= v->integer;
    }
    char sh[160];
    fnet_safetensors_shape_str(sh, sizeof(sh), t->ndim, t->shape);

    const struct fnet_json *b = offsets->child, *en = b ? b->next : NULL;
    if (offsets->type != FNET_JSON_ARRAY || offsets->len != 2 || b->type != FNET_JSON_INT ||
        en->type != FNET_JSON_INT || b->integer < 0 || en->integer < 0)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': data_offsets is not [begin, "
                         "end] of two non-negative integers", path, ns, name);
    t->begin = (uint64_t)b->integer;
    t->end = (uint64_t)en->integer;
    if (t->begin > t->end)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': data_offsets [%" PRIu64 ", %"
                         PRIu64 "] begin after they end", path, ns, name, t->begin, t->end);
    if (t->end > data_len)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': data_offsets [%" PRIu64 ", %"
                         PRIu64 "] exceed the data buffer of %" PRIu64 " bytes (truncated "
                         "file?)", path, ns, name, t->begin, t->end, data_len);
    if (t->end - t->begin != esize * (uint64_t)t->numel)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': data_offsets [%" PRIu64 ", %"
                         PRIu64 "] hold %" PRIu64 " bytes but shape %s of %s needs %" PRIu64,
                         path, ns, name, t->begin, t->end, t->end - t->begin, sh,
                         fnet_st_dtype_name(t->dtype), esize * (uint64_t)t->numel);
    return FNET_OK;
}

static fnet_status parse_metadata(fnet_ctx *ctx, const char *path, const struct fnet_json *md,
                                  struct fnet_safetensors *f)
{
    const int ns = NAME_SHOWN;
    if (md->type != FNET_JSON_OBJECT)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: __metadata__ is a JSON %s, not an object",
                         path, fnet_json_type_name(md->type));
    size_t i = 0;
    for (const struct fnet_json *m = md->child; m != NULL; m = m->next, i++) {
        if (m->type != FNET_JSON_STRING)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%.*s' is a JSON %s, not a "
                             "string", path, ns, m->key, fnet_json_type_name(m->type));
        if (strlen(m->key) != m->key_len || strlen(m->str) != m->len)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%.*s' holds a NUL character",
                             path, ns, m->key);
        f->meta[i].key = m->key;
        f->meta[i].value = m->str;
    }
    f->n_meta = i;
    f->has_metadata = true;
    return FNET_OK;
}

static int by_offset(const void *a, const void *b)
{
    const struct fnet_safetensors_tensor *x = *(const struct fnet_safetensors_tensor *const *)a;
    const struct fnet_safetensors_tensor *y = *(const struct fnet_safetensors_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int by_key(const void *a, const void *b)
{
    const struct fnet_safetensors_meta *x = *(const struct fnet_safetensors_meta *const *)a;
    const struct fnet_safetensors_meta *y = *(const struct fnet_safetensors_meta *const *)b;
    return strcmp(x->key, y->key);
}

static int by_name(const void *a, const void *b)
{
    const struct fnet_safetensors_tensor *x = *(const struct fnet_safetensors_tensor *const *)a;
    const struct fnet_safetensors_tensor *y = *(const struct fnet_safetensors_tensor *const *)b;
    return strcmp(x->name, y->name);
}

// The tensors' byte ranges, sorted, must tile [0, data_len) exactly: no overlap (two tensors
// aliasing bytes), no gap and no tail (bytes that belong to nothing).
static fnet_status check_coverage(fnet_ctx *ctx, const char *path,
                                  const struct fnet_safetensors *f,
                                  const struct fnet_safetensors_tensor **sorted)
{
    const int ns = NAME_SHOWN;
    for (size_t i = 0; i < f->n_tensors; i++)
        sorted[i] = &f->tensors[i];
    qsort(sorted, f->n_tensors, sizeof(*sorted), by_offset);
    uint64_t expect = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const struct fnet_safetensors_tensor *t = sorted[i];
        if (t->begin < expect)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': data_offsets [%" PRIu64
                             ", %" PRIu64 "] overlap tensor '%.*s' ending at %" PRIu64, path, ns,
                             t->name, t->begin, t->end, ns, prev, expect);
        if (t->begin > expect)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': data_offsets [%" PRIu64
                             ", %" PRIu64 "] leave a gap of %" PRIu64 " bytes before them",
                             path, ns, t->name, t->begin, t->end, t->begin - expect);
        expect = t->end;
        prev = t->name;
    }
    if (expect != f->data_len)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: %" PRIu64 " bytes at the end of the data "
                         "belong to no tensor", path, f->data_len - expect);
    return FNET_OK;
}

static fnet_status parse_header(fnet_ctx *ctx, const char *path, bool header_only,
                                struct fnet_safetensors *f)
{
    fnet_status st = fnet_json_parse(ctx, path, (const char *)f->buf, (size_t)f->header_len,
                                     MAX_JSON_VALUES, &f->doc);
    if (st != FNET_OK)
        return st;
    const struct fnet_json *root = fnet_json_root(f->doc);
    if (root->type != FNET_JSON_OBJECT)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: header is a JSON %s, not an object", path,
                         fnet_json_type_name(root->type));
    const struct fnet_json *md = fnet_json_get(root, "__metadata__");
    f->n_tensors = root->len - (md != NULL);
    f->tensors = fnet_calloc(f->n_tensors ? f->n_tensors : 1, sizeof(*f->tensors));
    // by_name, then the same number of slots for the offset sort
    f->by_name = fnet_malloc_array(2 * f->n_tensors + 1, sizeof(*f->by_name));
    size_t n_md = md != NULL && md->type == FNET_JSON_OBJECT ? md->len : 0;
    f->meta = fnet_calloc(n_md ? n_md : 1, sizeof(*f->meta));
    f->meta_by_key = fnet_malloc_array(n_md ? n_md : 1, sizeof(*f->meta_by_key));
    if (f->tensors == NULL || f->by_name == NULL || f->meta == NULL || f->meta_by_key == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: index of %zu tensors", path,
                         f->n_tensors);

    size_t i = 0;
    for (const struct fnet_json *m = root->child; m != NULL; m = m->next) {
        if (m == md)
            st = parse_metadata(ctx, path, m, f);
        else
            st = parse_tensor(ctx, path, m, f->data_len, &f->tensors[i++]);
        if (st != FNET_OK)
            return st;
    }
    st = check_coverage(ctx, path, f, f->by_name + f->n_tensors);
    if (st != FNET_OK)
        return st;
    for (i = 0; i < f->n_tensors; i++) {
        f->by_name[i] = &f->tensors[i];
        if (!header_only)
            f->tensors[i].data = f->buf + f->header_len + f->tensors[i].begin;
    }
    qsort(f->by_name, f->n_tensors, sizeof(*f->by_name), by_name);
    for (i = 0; i < f->n_meta; i++)
        f->meta_by_key[i] = &f->meta[i];
    qsort(f->meta_by_key, f->n_meta, sizeof(*f->meta_by_key), by_key);
    return FNET_OK;
}

// The checksums, when the file has any: "checksum" is "crc32", every tensor has its well-formed
// "crc32.<name>" and every such key names a tensor; with the data read, each matches its bytes.
static fnet_status check_checksums(fnet_ctx *ctx, const char *path, bool header_only,
                                   const struct fnet_safetensors *f)
{
    const int ns = NAME_SHOWN;
    const char *alg = fnet_safetensors_meta(f, CRC_KEY);
    size_t keys = 0;
    for (size_t i = 0; i < f->n_meta; i++) {
        const char *k = f->meta[i].key;
        if (strncmp(k, CRC_PREFIX, strlen(CRC_PREFIX)) != 0)
            continue;
        keys++;
        uint32_t v;
        if (fnet_safetensors_find(f, k + strlen(CRC_PREFIX)) == NULL)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%.*s' is the checksum of a "
                             "tensor the file does not have", path, ns, k);
        if (!parse_crc(f->meta[i].value, &v))
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '%.*s' is '%.20s', not a CRC-32 "
                             "(8 lowercase hex digits)", path, ns, k, f->meta[i].value);
    }
    const char *mc = fnet_safetensors_meta(f, CRC_META);
    if (alg == NULL && keys == 0 && mc == NULL)
        return FNET_OK; // written before checksums (or by another writer)
    if (alg != NULL && strcmp(alg, CRC_ALG) != 0)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '" CRC_KEY "' is '%.40s'; this "
                         "library checks '" CRC_ALG "'", path, alg);
    uint32_t want_meta;
    if (mc == NULL || !parse_crc(mc, &want_meta))
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: metadata '" CRC_META "' is missing or not a "
                         "CRC-32, but the file has checksums", path);
    uint32_t got_meta = meta_crc(f->meta_by_key, f->n_meta);
    if (got_meta != want_meta)
        return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: the metadata does not match its CRC-32 "
                         "(stored %08" PRIx32 ", computed %08" PRIx32 "): the file is corrupt",
                         path, want_meta, got_meta);
    char key[sizeof(CRC_PREFIX) + 1024];
    for (size_t i = 0; i < f->n_tensors; i++) {
        const struct fnet_safetensors_tensor *t = &f->tensors[i];
        int k = snprintf(key, sizeof(key), CRC_PREFIX "%s", t->name);
        const char *v = k > 0 && (size_t)k < sizeof(key) ? fnet_safetensors_meta(f, key) : NULL;
        uint32_t want;
        if (v == NULL || !parse_crc(v, &want))
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s' has no checksum, but the "
                             "file's other tensors have (metadata '" CRC_PREFIX "%.*s')", path, ns,
                             t->name, ns, t->name);
        if (header_only)
            continue;
        uint32_t got = crc_update(0, t->data, (size_t)(t->end - t->begin));
        if (got != want)
            return fnet_fail(ctx, FNET_ERR_FORMAT, "%s: tensor '%.*s': its bytes do not match "
                             "their CRC-32 (stored %08" PRIx32 ", computed %08" PRIx32 "): the "
                             "file is corrupt", path, ns, t->name, want, got);
    }
    return FNET_OK;
}

fnet_status fnet_safetensors_read(fnet_ctx *ctx, const char *path, bool header_only,
                                  struct fnet_safetensors **out)
{
    *out = NULL;
    if (path == NULL)
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "NULL path");
    struct fnet_safetensors *f = fnet_calloc(1, sizeof(*f));
    if (f == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: safetensors reader", path);
    fnet_status st = read_file(ctx, path, header_only, f);
    if (st == FNET_OK)
        st = parse_header(ctx, path, header_only, f);
    if (st == FNET_OK)
        st = check_checksums(ctx, path, header_only, f);
    if (st != FNET_OK)
        goto out_free_f;
    *out = f;
    return FNET_OK;
out_free_f:
    fnet_safetensors_free(f);
    return st;
}

void fnet_safetensors_free(struct fnet_safetensors *f)
{
    if (f == NULL)
        return;
    fnet_free(f->meta);
    fnet_free(f->meta_by_key);
    fnet_free(f->by_name);
    fnet_free(f->tensors);
    fnet_json_free(f->doc);
    fnet_free(f->buf);
    fnet_free(f);
}

const struct fnet_safetensors_tensor *fnet_safetensors_find(const struct fnet_safetensors *f,
                                                            const char *name)
{
    struct fnet_safetensors_tensor key = {.name = name};
    const struct fnet_safetensors_tensor *kp = &key;
    const struct fnet_safetensors_tensor *const *hit =
        bsearch(&kp, f->by_name, f->n_tensors, sizeof(*f->by_name), by_name);
    return hit ? *hit : NULL;
}

const char *fnet_safetensors_meta(const struct fnet_safetensors *f, const char *key)
{
    struct fnet_safetensors_meta k = {.key = key};
    const struct fnet_safetensors_meta *kp = &k;
    const struct fnet_safetensors_meta *const *hit =
        bsearch(&kp, f->meta_by_key, f->n_meta, sizeof(*f->meta_by_key), by_key);
    return hit ? (*hit)->value : NULL;
}

// ---------------------------------------------------------------- writing

// A string builder that only counts while p is NULL (the sizing pass).
struct sbuf {
    char *p;
    size_t len;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
    if (b->p != NULL)
        memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_s(struct sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

// s escaped for a JSON string, without the quotes
static void put_json_chars(struct sbuf *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            put(b, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)*c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)c, 1);
        }
    }
}

static void put_json_string(struct sbuf *b, const char *s)
{
    put(b, "\"", 1);
    put_json_chars(b, s);
    put(b, "\"", 1);
}

// The header JSON without padding; tensors' data packed in the given order; the checksums last
// in the metadata, each 8 hex digits (crcs NULL: zeros, the same length).
static void build_header(struct sbuf *b, const struct fnet_safetensors_tensor *t, size_t n,
                         const struct fnet_safetensors_meta *meta, size_t n_meta,
                         uint32_t meta_sum, const uint32_t *crcs)
{
    char num[64];
    uint64_t off = 0;
    put_s(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            put_s(b, ",");
        put_json_string(b, t[i].name);
        put_s(b, ":{\"dtype\":\"");
        put_s(b, fnet_st_dtype_name(t[i].dtype));
        put_s(b, "\",\"shape\":[");
        uint64_t bytes = (uint64_t)fnet_st_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof(num), "%s%" PRId64, d ? "," : "", t[i].shape[d]);
            put_s(b, num);
            bytes *= (uint64_t)t[i].shape[d];
        }
        snprintf(num, sizeof(num), "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off,
                 off + bytes);
        put_s(b, num);
        off += bytes;
    }
    put_s(b, n > 0 ? ",\"__metadata__\":{" : "\"__metadata__\":{");
    for (size_t i = 0; i < n_meta; i++) {
        put_json_string(b, meta[i].key);
        put_s(b, ":");
        put_json_string(b, meta[i].value);
        put_s(b, ",");
    }
    put_s(b, "\"" CRC_KEY "\":\"" CRC_ALG "\"");
    snprintf(num, sizeof(num), ",\"" CRC_META "\":\"%08" PRIx32 "\"", meta_sum);
    put_s(b, num);
    for (size_t i = 0; i < n; i++) {
        put_s(b, ",\"" CRC_PREFIX);
        put_json_chars(b, t[i].name);
        snprintf(num, sizeof(num), "\":\"%08" PRIx32 "\"", crcs ? crcs[i] : 0u);
        put_s(b, num);
    }
    put_s(b, "}}");
}

static fnet_status check_write_args(fnet_ctx *ctx, const char *path,
                                    const struct fnet_safetensors_tensor *t, size_t n,
                                    const struct fnet_safetensors_meta *meta, size_t n_meta)
{
    if (path == NULL || (t == NULL && n > 0) || (meta == NULL && n_meta > 0))
        return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "NULL path, tensors or metadata");
    for (size_t i = 0; i < n; i++) {
        const char *name = t[i].name;
        if (name == NULL || !fnet_json_utf8_valid(name, strlen(name)) ||
            strcmp(name, "__metadata__") == 0)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: tensor %zu: name missing, reserved "
                             "or not UTF-8", path, i);
        if ((int)t[i].dtype < FNET_ST_F32 || (int)t[i].dtype > FNET_ST_U8)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: tensor '%s': unknown dtype %d", path,
                             name, (int)t[i].dtype);
        if (t[i].ndim < 0 || t[i].ndim > FNET_SAFETENSORS_MAX_DIMS)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: tensor '%s': %d dimensions", path,
                             name, t[i].ndim);
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            int64_t s = t[i].shape[d];
            if (s < 0 || (s != 0 && numel > INT64_MAX / 4 / s))
                return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: tensor '%s': bad shape", path,
                                 name);
            numel *= s;
        }
        if (numel > 0 && t[i].data == NULL)
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: tensor '%s': NULL data", path, name);
    }
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (k == NULL || v == NULL || !fnet_json_utf8_valid(k, strlen(k)) ||
            !fnet_json_utf8_valid(v, strlen(v)))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: metadata %zu: missing or not UTF-8",
                             path, i);
        if (is_crc_key(k))
            return fnet_fail(ctx, FNET_ERR_INVALID_ARG, "%s: metadata key '%.*s' is the writer's "
                             "own (checksums)", path, NAME_SHOWN, k);
    }
    return FNET_OK;
}

// Test hook (safetensors.h): the k-th next write-path operation of this thread fails.
static _Thread_local long io_fail_countdown; // 0: off
static _Thread_local long io_op_count;

void fnet_debug_fail_io(long k)
{
    io_fail_countdown = k > 0 ? k : 0;
}

long fnet_debug_io_count(void)
{
    return io_op_count;
}

// Count one write-path operation; true (with errno = err) when the hook says it fails.
static bool io_injected(int err)
{
    io_op_count++;
    if (io_fail_countdown > 0 && --io_fail_countdown == 0) {
        errno = err;
        return true;
    }
    return false;
}

// The temporary file of a write in progress, for fnet_checkpoint_abandon() (a signal handler
// about to end the process). One slot for the process: a write claims it (free -> naming), fills
// in the name and publishes it (-> ready); the handler unlinks a ready name. Writes on other
// threads meanwhile are not tracked (a kill then leaves their temporary file, as it would
// without this). Lock-free atomics: safe in a signal handler and between threads.
enum { SLOT_FREE, SLOT_NAMING, SLOT_READY };
static _Atomic int pending_state = SLOT_FREE;
static char pending_tmp[4096];

void fnet_checkpoint_abandon(void)
{
    if (atomic_load(&pending_state) == SLOT_READY)
        unlink(pending_tmp); // async-signal-safe
}

// Track tmp for fnet_checkpoint_abandon(); true when this write holds the slot.
static bool pending_claim(const char *tmp)
{
    size_t len = strlen(tmp);
    int expect = SLOT_FREE;
    if (len >= sizeof(pending_tmp) ||
        !atomic_compare_exchange_strong(&pending_state, &expect, SLOT_NAMING))
        return false;
    memcpy(pending_tmp, tmp, len + 1);
    atomic_store(&pending_state, SLOT_READY);
    return true;
}

static void pending_release(bool held)
{
    if (held)
        atomic_store(&pending_state, SLOT_FREE);
}

// The directory entry of a rename is durable only once the directory is synced. Best effort:
// some filesystems refuse fsync on a directory, and the file itself is already safe.
static void sync_parent_dir(char *tmp_path)
{
    char *slash = strrchr(tmp_path, '/');
    const char *dir = ".";
    if (slash == tmp_path) {
        dir = "/";
    } else if (slash != NULL) {
        *slash = '\0';
        dir = tmp_path;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

fnet_status fnet_safetensors_write(fnet_ctx *ctx, const char *path,
                                   const struct fnet_safetensors_tensor *t, size_t n,
                                   const struct fnet_safetensors_meta *meta, size_t n_meta)
{
    fnet_status st = check_write_args(ctx, path, t, n, meta, n_meta);
    if (st != FNET_OK)
        return st;

    // the metadata's checksum, over its entries in key order
    const struct fnet_safetensors_meta **sorted =
        fnet_malloc_array(n_meta ? n_meta : 1, sizeof(*sorted));
    if (sorted == NULL)
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: index of %zu metadata entries", path,
                         n_meta);
    for (size_t i = 0; i < n_meta; i++)
        sorted[i] = &meta[i];
    qsort(sorted, n_meta, sizeof(*sorted), by_key);
    const uint32_t meta_sum = meta_crc(sorted, n_meta);
    fnet_free(sorted);
    struct sbuf hb = {0};
    build_header(&hb, t, n, meta, n_meta, meta_sum, NULL);
    size_t pad = (8 - (8 + hb.len) % 8) % 8; // the data then starts 8-byte aligned
    size_t header_len = hb.len + pad;
    char *header = fnet_malloc(header_len);
    uint32_t *crcs = fnet_calloc(n ? n : 1, sizeof(uint32_t));
    if (header == NULL || crcs == NULL) {
        fnet_free(crcs);
        fnet_free(header);
        return fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: %zu-byte header", path, header_len);
    }
    // the checksums are known once the data is written: the header goes out with zeros in their
    // place, then again over itself, the same length
    hb.p = header;
    hb.len = 0;
    build_header(&hb, t, n, meta, n_meta, meta_sum, NULL);
    memset(header + hb.len, ' ', pad);
    bool any_backend = false;
    for (size_t i = 0; i < n; i++)
        any_backend = any_backend || t[i].on_backend;
    float *stage = any_backend ? fnet_malloc_array(STAGE_FLOATS, sizeof(float)) : NULL;
    if (any_backend && stage == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: staging buffer", path);
        goto out_free_header;
    }

    // rename() would replace whatever stands at path: refuse anything but a regular file there
    // (saving "over" /dev/null as root would otherwise replace the device)
    struct stat target;
    if (stat(path, &target) == 0 && !S_ISREG(target.st_mode)) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: exists and is not a regular file", path);
        goto out_free_header;
    }
    size_t plen = strlen(path);
    char *tmp = fnet_malloc(plen + sizeof(TMP_SUFFIX));
    if (tmp == NULL) {
        st = fnet_fail(ctx, FNET_ERR_OUT_OF_MEMORY, "%s: temporary file name", path);
        goto out_free_header;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, TMP_SUFFIX, sizeof(TMP_SUFFIX));

    int fd = io_injected(EACCES) ? -1 : mkstemp(tmp);
    bool held = fd >= 0 && pending_claim(tmp);
    if (fd < 0) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                       path, strerror(errno));
        goto out_free_tmp;
    }
    // mkstemp makes the file 0600; give it what the file it replaces had, or 0644. Best effort:
    // a filesystem without modes refuses, and the checkpoint is still good.
    struct stat sb;
    (void)fchmod(fd, stat(path, &sb) == 0 ? (sb.st_mode & 07777) : 0644);
    FILE *fp = io_injected(ENOMEM) ? NULL : fdopen(fd, "wb");
    if (fp == NULL) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: cannot open %s for writing: %s", path, tmp,
                       strerror(errno));
        close(fd);
        goto out_unlink_tmp;
    }

    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    bool ok = !io_injected(ENOSPC) && fwrite(len8, 1, 8, fp) == 8 && !io_injected(ENOSPC) &&
              fwrite(header, 1, header_len, fp) == header_len;
    for (size_t i = 0; i < n && ok; i++) {
        size_t bytes = (size_t)fnet_st_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            bytes *= (size_t)t[i].shape[d];
        if (!t[i].on_backend) {
            ok = bytes == 0 ||
                 (!io_injected(ENOSPC) && fwrite(t[i].data, 1, bytes, fp) == bytes);
            crcs[i] = crc_update(0, t[i].data, bytes);
            continue;
        }
        // backend memory: downloaded into the host stage, one piece per fwrite
        const unsigned char *src = t[i].data;
        const size_t stage_bytes = STAGE_FLOATS * sizeof(float);
        for (size_t done = 0; done < bytes && ok; done += stage_bytes) {
            size_t k = bytes - done < stage_bytes ? bytes - done : stage_bytes;
            ctx->be->download(ctx, stage, src + done, k);
            ok = !io_injected(ENOSPC) && fwrite(stage, 1, k, fp) == k;
            crcs[i] = crc_update(crcs[i], stage, k);
        }
    }
    if (ok) {
        hb.len = 0;
        build_header(&hb, t, n, meta, n_meta, meta_sum, crcs);
        ok = !io_injected(EIO) && fseek(fp, 8, SEEK_SET) == 0 && !io_injected(ENOSPC) &&
             fwrite(header, 1, header_len, fp) == header_len;
    }
    if (!ok || io_injected(ENOSPC) || fflush(fp) != 0 || io_injected(EIO) ||
        fsync(fileno(fp)) != 0) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        fclose(fp);
        goto out_unlink_tmp;
    }
    bool close_fails = io_injected(EIO); // the file is closed either way
    if (fclose(fp) != 0 || close_fails) {
        if (close_fails)
            errno = EIO;
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
        goto out_unlink_tmp;
    }
    if (io_injected(EXDEV) || rename(tmp, path) != 0) {
        st = fnet_fail(ctx, FNET_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp,
                       strerror(errno));
        goto out_unlink_tmp;
    }
    pending_release(held);
    sync_parent_dir(tmp);
    fnet_free(tmp);
    fnet_free(stage);
    fnet_free(crcs);
    fnet_free(header);
    return FNET_OK;

out_unlink_tmp:
    pending_release(held);
    unlink(tmp);
out_free_tmp:
    fnet_free(tmp);
out_free_header: // and the stage (NULL until it is allocated)
    fnet_free(stage);
    fnet_free(crcs);
    fnet_free(header);
    return st;
}
