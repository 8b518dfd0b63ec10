/* keys: device key store, read from a keys file. Licence: MIT.
 *
 * File format: one device per line, `EPID KEY` in hex (8 and 32 digits, optional 0x,
 * separated by blanks), blank lines and `#` comments (whole line or after the key)
 * allowed:
 *
 *   # ep_id  key (AES-128, UL-AUTH and DL-AUTH)
 *   FEDCBA98 0123456789ABCDEF0123456789ABCDEF
 *
 * The synthesizer writes it (keystore_write); sigfoxd and the tools read it. Not
 * thread-safe for writers; concurrent keystore_find calls on an unchanging store are fine.
 */
#ifndef SIGFOX_KEYS_H
#define SIGFOX_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KEYSTORE_KEY_BYTES 16

typedef struct keystore keystore_t;

/* Empty store, or NULL when out of memory. */
keystore_t *keystore_create(void);
/* Loads a file (adding to what is there; an ID already in the store gets the file's key).
 * Returns the number of keys read, or -1 with a message naming the file and line in err
 * (err may be NULL). A device listed twice in one file is an error. On error the store
 * keeps the lines read before the bad one. */
int keystore_load(keystore_t *ks, const char *path, char *err, size_t err_len);
/* Parses one line of the file format into ep_id/key. Returns 1 for an entry, 0 for a
 * blank or comment line, -1 with a reason in err (without file/line) for a bad line. */
int keystore_parse_line(const char *line, uint32_t *ep_id, uint8_t key[KEYSTORE_KEY_BYTES],
                        char *err, size_t err_len);
/* Adds or replaces one key. Returns 0 or -1 (NULL argument, no memory). */
int keystore_add(keystore_t *ks, uint32_t ep_id, const uint8_t key[KEYSTORE_KEY_BYTES]);
/* The device's key (valid until the store changes), or NULL when unknown or ks is NULL. */
const uint8_t *keystore_find(const keystore_t *ks, uint32_t ep_id);
size_t keystore_count(const keystore_t *ks);
/* The i-th device ID in ascending order (i < keystore_count), for listing devices. */
uint32_t keystore_ep_id_at(const keystore_t *ks, size_t i);
/* Exchanges the contents of two stores, so a reloaded set of keys (removals included)
 * can replace the one another module holds a pointer to. */
void keystore_swap(keystore_t *a, keystore_t *b);
/* Writes every key in the file format, sorted by ID. Returns 0 or -1. */
int keystore_write(const keystore_t *ks, FILE *out);
/* Frees the store and wipes the keys. NULL-safe. */
void keystore_destroy(keystore_t *ks);

#endif
