/* A tiny, strict JSON reader for the test vectors in tests/vectors/
 * (*.json; tests/vectors/README.md says where each comes from). It understands objects, arrays, strings
 * (with escapes, \uXXXX encoded as UTF-8), integers, true, false and null;
 * anything else (fractions, exponents, trailing commas, comments, trailing
 * garbage) is a parse error. Only for tests: it favours strictness and
 * clear failure over speed. */
#ifndef KOLLEGA_TEST_VECTORS_H
#define KOLLEGA_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum kl_vec_type {
    KL_VEC_NULL,
    KL_VEC_BOOL,
    KL_VEC_INT,
    KL_VEC_STR,
    KL_VEC_ARR,
    KL_VEC_OBJ,
} kl_vec_type_t;

typedef struct kl_vec kl_vec_t;
struct kl_vec {
    kl_vec_type_t type;
    long long i;        /* KL_VEC_INT value, KL_VEC_BOOL 0/1 */
    char *s;            /* KL_VEC_STR value (NUL-terminated) */
    size_t slen;        /* its length (may contain NUL via \u0000) */
    size_t n;           /* children of an array or object */
    kl_vec_t *items;    /* n children */
    char **keys;        /* n member names (objects only) */
};

/* Parse a JSON document of len bytes. NULL on any syntax error (a message
 * naming the offset goes to stderr) or allocation failure. */
kl_vec_t *kl_vec_parse(const char *text, size_t len);
/* Read and parse filename from the directory in env KL_VECTORS_DIR, falling
 * back to ../vectors relative to this source file (tests/vectors). NULL (with
 * a message on stderr) if it cannot be read or parsed. */
kl_vec_t *kl_vec_load(const char *filename);
void kl_vec_free(kl_vec_t *v);

/* Accessors. All accept NULL and return NULL/0 when the value has the wrong
 * type or the key/index does not exist. */
const kl_vec_t *kl_vec_get(const kl_vec_t *obj, const char *key);
const kl_vec_t *kl_vec_at(const kl_vec_t *arr, size_t i);
size_t kl_vec_len(const kl_vec_t *arr);
const char *kl_vec_strval(const kl_vec_t *v);
/* Member key of obj as a string, or NULL. */
const char *kl_vec_str(const kl_vec_t *obj, const char *key);
/* Member key of obj as an integer; *ok (may be NULL) is 1 if it was one. */
long long kl_vec_int(const kl_vec_t *obj, const char *key, int *ok);
/* Hex-decode a string value into a malloc'd buffer (at least 1 byte is
 * allocated, so "" gives a non-NULL buffer with *len 0). NULL if the value
 * is missing, not a string, or not even-length lower/upper-case hex. */
uint8_t *kl_vec_hexval(const kl_vec_t *v, size_t *len);
/* Same for member key of obj. */
uint8_t *kl_vec_hex(const kl_vec_t *obj, const char *key, size_t *len);
/* Hex-decode member key into out, which must be exactly want bytes long.
 * 0 on success, -1 otherwise. */
int kl_vec_hex_exact(const kl_vec_t *obj, const char *key, uint8_t *out, size_t want);

#endif
