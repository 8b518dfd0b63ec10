/* fuzz_dlframe: the downlink frame decoder (de-whitening, BCH, CRC8, DL-AUTH) on any
 * 15 DL-PHY-CONTENT bytes, with any ep_id and counter. Licence: MIT. */
#include "dlframe.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6 + DL_PHY_BYTES)
        return 0;
    uint32_t ep_id = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                     (uint32_t)data[2] << 8 | data[3];
    uint16_t mc = (uint16_t)(data[4] << 8 | data[5]); /* > 4095 must be refused */
    static const uint8_t key[DL_KEY_BYTES] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                              0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
    dl_decoded_t out;
    int rc = dl_frame_decode(ep_id, mc, (data[5] & 1) ? key : NULL, data + 6, &out);
    if (mc > 4095)
        FUZZ_CHECK(rc == DL_ERR_ARG);
    if (rc == 0)
        FUZZ_CHECK(out.crc_ok && out.corrected_bits >= 0 && out.corrected_bits <= 8);
    return 0;
}
