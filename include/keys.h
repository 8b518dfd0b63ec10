/* keys: device key store, read from a keys file. Licence: MIT.
 * File format: one device per line, `EPID KEY` in hex (8 and 32 digits), blank lines and
 * `#` comments allowed. The synthesizer writes it; sigfoxd and the tools read it. */
#ifndef SIGFOX_KEYS_H
#define SIGFOX_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct keystore keystore_t;

keystore_t *keystore_create(void);
/* Loads a file (adding to what is there). Returns the number of keys read, or -1 with a
 * message naming the file and line in err. */
int keystore_load(keystore_t *ks, const char *path, char *err, size_t err_len);
/* Adds or replaces one key. Returns 0 or -1 (no memory). */
int keystore_add(keystore_t *ks, uint32_t ep_id, const uint8_t key[16]);
/* The device's key, or NULL when unknown. */
const uint8_t *keystore_find(const keystore_t *ks, uint32_t ep_id);
size_t keystore_count(const keystore_t *ks);
/* Writes every key in the file format. Returns 0 or -1. */
int keystore_write(const keystore_t *ks, FILE *out);
void keystore_destroy(keystore_t *ks);

#endif
