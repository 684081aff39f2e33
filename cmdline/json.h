/* A small JSON writer into a growable buffer, for the --json output of the
 * CLIs. Values are written in order; the writer inserts commas. key is the
 * member name inside an object and NULL inside an array or at the top.
 * Strings are escaped per RFC 8259 (control characters as \u00XX; bytes
 * >= 0x80 are passed through, callers give UTF-8). Allocation failure is
 * sticky: kl_json_str then returns NULL. */
#ifndef KOLLEGA_CMDLINE_JSON_H
#define KOLLEGA_CMDLINE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define KL_JSON_DEPTH 16

typedef struct kl_json {
    char *buf;
    size_t len;
    size_t cap;
    int failed;
    int depth;
    int count[KL_JSON_DEPTH]; /* values written at each depth */
} kl_json_t;

/* An empty document in the caller's *j (allocates nothing); kl_json_free
 * frees its buffer and leaves it empty again. Neither can fail. */
void kl_json_init(kl_json_t *j);
void kl_json_free(kl_json_t *j);
/* Open an object or array (member key, or NULL), and close the innermost
 * one. Nesting deeper than KL_JSON_DEPTH - 1 fails the document like an
 * allocation failure; nothing is returned (see kl_json_cstr). */
void kl_json_obj_begin(kl_json_t *j, const char *key);
void kl_json_obj_end(kl_json_t *j);
void kl_json_arr_begin(kl_json_t *j, const char *key);
void kl_json_arr_end(kl_json_t *j);
/* One value (member key, or NULL): a string (v NULL writes null), n bytes
 * of a string, an integer, true/false, null. The strings are copied
 * (escaped); an allocation failure is sticky (kl_json_cstr). */
void kl_json_str(kl_json_t *j, const char *key, const char *v);
void kl_json_strn(kl_json_t *j, const char *key, const char *v, size_t n);
void kl_json_int(kl_json_t *j, const char *key, long long v);
void kl_json_uint(kl_json_t *j, const char *key, unsigned long long v);
void kl_json_bool(kl_json_t *j, const char *key, int v);
void kl_json_null(kl_json_t *j, const char *key);
/* The document so far (NUL-terminated, owned by j: valid until the next
 * write or kl_json_free), or NULL after an allocation failure. */
const char *kl_json_cstr(const kl_json_t *j);

#endif
