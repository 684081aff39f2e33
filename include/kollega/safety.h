/* Safety numbers as docs/DESIGN.md "Identities and addresses" specifies (60
 * digits, shown in 12 groups of 5). */
#ifndef KOLLEGA_SAFETY_H
#define KOLLEGA_SAFETY_H

#include <stdint.h>

#define KL_SAFETY_DIGITS 60
#define KL_SAFETY_DISPLAY 72 /* 60 digits + 11 spaces + NUL */

/* The 30-digit half for one party (identity key ik, address) into out (31
 * bytes incl. NUL); the 60-digit number for two parties into out (61),
 * the same whichever order. KL_EINVAL for a NULL argument or an empty
 * address. */
int kl_safety_half(const uint8_t ik[32], const char *address, char out[31]);
int kl_safety_number(const uint8_t ik_a[32], const char *addr_a, const uint8_t ik_b[32],
                     const char *addr_b, char out[KL_SAFETY_DIGITS + 1]);
/* "12345 67890 ..." (12 groups of 5) from the 60 digits into out.
 * KL_EINVAL unless number is exactly 60 decimal digits. */
int kl_safety_display(const char *number, char out[KL_SAFETY_DISPLAY]);

#endif
