/* The relay's static X25519 key in DIR/relay.key: exactly 32 raw bytes,
 * mode 0600. The private key lives only in guarded memory (kl_secure_alloc)
 * and is never logged or printed; the public key is what invite tokens and
 * `status` show. */
#ifndef KOLLEGA_RELAY_KEYFILE_H
#define KOLLEGA_RELAY_KEYFILE_H

#include <stdint.h>

#define KL_KEYFILE_NAME "relay.key"

/* Create a new key at path: written to a temporary file in the same
 * directory (mode 0600), fsync'd, renamed into place and the directory
 * fsync'd, so a crash leaves either no key or a whole one. pk gets the
 * public key. KL_EEXIST if path exists, KL_EIO on any file error. */
int kl_keyfile_create(const char *path, uint8_t pk[32]);

/* Load the key at path. *sk gets a kl_secure_alloc'd copy of the private
 * key (release with kl_secure_free), pk the public key.
 *   KL_ENOTFOUND  no such file
 *   KL_EREFUSED   the file is readable or writable by group or others (or
 *                 not a regular file): the relay refuses to use it
 *   KL_EPROTO     not 32 bytes
 *   KL_EIO        read error; KL_ENOMEM */
int kl_keyfile_load(const char *path, uint8_t **sk, uint8_t pk[32]);

#endif
