/* fuzz_ulframe: the uplink frame decoders (hard bits with and without preamble, soft
 * values, a container body) on any bytes. Licence: MIT. */
#include <math.h>

#include "fuzzutil.h"
#include "antireplay.h"
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
    /* A body of container + CRC bytes for each container size. */
    static const size_t sizes[] = {8, 9, 12, 16, 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (size >= sizes[i] + 2)
            ul_frame_parse_body(data, sizes[i], mode & 8, &f);
    return 0;
}
