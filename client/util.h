/* Small helpers of the client: wall-clock time, UTF-8 checks and printing
 * untrusted text to a terminal without letting it drive the terminal. */
#ifndef KOLLEGA_CLIENT_UTIL_H
#define KOLLEGA_CLIENT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Milliseconds since the Unix epoch (wall clock). */
uint64_t kl_now_ms(void);
/* "2026-11-23 10:02" in local time; out >= 32 bytes. */
void kl_format_time(uint64_t ms, char *out, size_t cap);

/* 1 if s[0..len) is well-formed UTF-8 without NUL bytes. */
int kl_utf8_valid(const char *s, size_t len);
/* A malloc'd NUL-terminated copy of s[0..len) with every ill-formed
 * sequence and NUL replaced by U+FFFD. KL_ENOMEM / KL_ETOOBIG. */
int kl_utf8_sanitize(const char *s, size_t len, char **out, size_t *outlen);
/* Read all of f up to its end (at most max + 3 bytes); a final line ending
 * ("\n" or "\r\n") is dropped. *out is malloc'd (max + 4 bytes; free()
 * or kl_free_wipe) and NUL-terminated; *len > max means the text was too
 * long. KL_ENOMEM, KL_EIO on a read error (*out NULL then). */
int kl_read_text(FILE *f, size_t max, char **out, size_t *len);
/* Write text for a human: control characters (including ESC, so no
 * terminal escape sequences) are shown as U+FFFD, a newline is followed by
 * indent so continuation lines stay visibly part of one message. */
void kl_print_safe(FILE *f, const char *s, size_t len, const char *indent);

#endif
