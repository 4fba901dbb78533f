/* A small strict JSON (RFC 8259) parser for safetensors headers and similar documents: iterative
 * with a fixed depth limit (no recursion), UTF-8 validated, duplicate keys and trailing garbage
 * rejected, integers kept exact in int64. */
#ifndef FNET_IO_JSON_H
#define FNET_IO_JSON_H

#include "core/internal.h"

#define FNET_JSON_MAX_DEPTH 64     // arrays and objects nested deeper are rejected
#define FNET_JSON_MAX_NUMBER 1023  // characters in one number token

enum fnet_json_type {
    FNET_JSON_NULL = 0,
    FNET_JSON_BOOL,
    FNET_JSON_INT,    // written without fraction or exponent and within int64: `integer` is exact
    FNET_JSON_NUMBER, // any other number: only `number` (±HUGE_VAL when out of double's range)
    FNET_JSON_STRING,
    FNET_JSON_ARRAY,
    FNET_JSON_OBJECT,
};

/* One value of a parsed document; all of it is owned by the document. */
struct fnet_json {
    enum fnet_json_type type;
    bool boolean;                  // BOOL
    int64_t integer;               // INT
    double number;                 // INT and NUMBER
    const char *str;               // STRING: decoded UTF-8, NUL-terminated; may hold a NUL
    size_t len;                    // STRING: bytes of str; ARRAY, OBJECT: number of members
    const char *key;               // member of an OBJECT: its decoded key (NUL-terminated), else NULL
    size_t key_len;
    const struct fnet_json *child; // ARRAY, OBJECT: first member, in document order
    const struct fnet_json *next;  // the next member of the enclosing ARRAY or OBJECT
    size_t pos;                    // byte offset of the value in the text, for messages
};

struct fnet_json_doc;

/* Parse text (len bytes, need not be NUL-terminated) holding exactly one JSON value with at most
 * max_nodes values in all. On failure returns FNET_ERR_FORMAT with "<what>: invalid JSON at byte
 * P: <reason>", or FNET_ERR_OUT_OF_MEMORY; *out is then NULL. Free with fnet_json_free(). */
fnet_status fnet_json_parse(fnet_ctx *ctx, const char *what, const char *text, size_t len,
                            size_t max_nodes, struct fnet_json_doc **out);
void fnet_json_free(struct fnet_json_doc *doc);
const struct fnet_json *fnet_json_root(const struct fnet_json_doc *doc);

/* The member of object obj named key, or NULL (also when obj is not an object). */
const struct fnet_json *fnet_json_get(const struct fnet_json *obj, const char *key);

/* "null", "boolean", "integer", "number", "string", "array", "object". */
const char *fnet_json_type_name(enum fnet_json_type type);

/* Whether s (len bytes) is well-formed UTF-8 (no overlong forms, surrogates or values > U+10FFFF). */
bool fnet_json_utf8_valid(const char *s, size_t len);

#endif
