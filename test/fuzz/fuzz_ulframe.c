/* fuzz_ulframe: the uplink frame decoders (hard bits with and without preamble, soft
 * values, a container body, the chase decoder) on any bytes. Licence: MIT. */
#include <math.h>

#include "fuzzutil.h"
#include "antireplay.h"
#include "keys.h"
#include "uldecode.h"
#include "ulframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    ul_frame_t f;
    int max_dist = mode & 3;
    int rc = ul_frame_decode(data, size * 8, mode & 4, max_dist, &f);
    if (rc == 0) {
        FUZZ_CHECK(f.crc_ok);
        FUZZ_CHECK(f.auth_len <= UL_MAX_AUTH_BYTES);
        FUZZ_CHECK(f.msg.mc < UL_MC_MODULO);
    }
    /* The same bytes as soft values (one per bit, +-1 scaled by a per-input gain). */
    size_t nbits = size * 8;
    if (nbits > 0 && nbits <= 8 * 64) {
        float soft[8 * 64];
        float gain = (float)((mode >> 3) + 1) * 0.5f;
        for (size_t i = 0; i < nbits; i++)
            soft[i] = (data[i / 8] >> (7 - i % 8) & 1) ? gain : -gain;
        ul_frame_decode_soft(soft, nbits, max_dist, &f);
    }
    /* The chase decoder on soft values of every confidence (each byte a signed LLR), with
       a key store holding the device the bytes' first word names, so that a pattern that
       passes the CRC goes on to the UL-AUTH check. */
    if (size <= 300) {
        float sv[300];
        for (size_t i = 0; i < size; i++)
            sv[i] = (float)(int8_t)data[i] / 16.0f;
        uldecode_result_t r;
        uldecode_frame(sv, size, max_dist, &r);
        keystore_t *ks = keystore_create();
        if (ks && r.status == ULDEC_REJECT_CRC && size >= 4) {
            uint8_t key[16] = {0};
            uint32_t id = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                          (uint32_t)data[2] << 8 | data[3];
            keystore_add(ks, id, key);
            keystore_add(ks, r.frame.msg.ep_id, key);
            int n = uldecode_chase(&r, ks, 1 + (mode >> 2) % ULDECODE_CHASE_MAX_TRIALS);
            FUZZ_CHECK(n >= 0 && n <= 4);
            FUZZ_CHECK(n == 0 || (r.status == ULDEC_OK && r.frame.crc_ok && r.corrected_bits == n));
        }
        keystore_destroy(ks);
    }
    /* A body of container + CRC bytes for each container size. */
    static const size_t sizes[] = {8, 9, 12, 16, 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (size >= sizes[i] + 2)
            ul_frame_parse_body(data, sizes[i], mode & 8, &f);
    return 0;
}
