/* fuzz_softframe: a "softframe" event as a network core reads it from a station
 * (evjson_softframe_parse_text). An accepted event has 13..RX_SOFT_MAX finite soft values
 * within 127 quantization steps, 1..3 hypotheses that are known FTs of their own rank and
 * size, and builds again into an event that parses back to the same shape. Licence: MIT. */
#include <math.h>

#include "evjson.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    rx_softframe_t sf, again;
    if (evjson_softframe_parse_text((const char *)data, size, &sf, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(sf.nsoft >= UL_FT_BITS && sf.nsoft <= RX_SOFT_MAX);
    FUZZ_CHECK(sf.nhyp >= 1 && sf.nhyp <= RX_SOFT_FT_HYPS);
    FUZZ_CHECK(sf.baud == 100 || sf.baud == 600);
    FUZZ_CHECK(sf.ft_rx < 1u << UL_FT_BITS);
    for (size_t i = 0; i < sf.nsoft; i++)
        FUZZ_CHECK(isfinite(sf.soft[i]) && fabsf(sf.soft[i]) <= 0x1p20f * 127);
    for (size_t i = 0; i < sf.nhyp; i++) {
        const ul_ft_hyp_t *h = &sf.hyp[i];
        FUZZ_CHECK(ul_ft_value(h->container_bytes, h->control, h->rank) == h->ft);
        FUZZ_CHECK(h->distance >= 0 && h->distance <= UL_FT_BITS && isfinite(h->score));
    }
    json_object *o = evjson_softframe(&sf, NULL);
    FUZZ_CHECK(o != NULL);
    size_t len;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    FUZZ_CHECK(evjson_softframe_parse_text(text, len, &again, err, sizeof err) == 0);
    FUZZ_CHECK(again.nsoft == sf.nsoft && again.nhyp == sf.nhyp && again.ft_rx == sf.ft_rx &&
               again.baud == sf.baud && again.ft_readable == sf.ft_readable &&
               again.sample_idx == sf.sample_idx);
    for (size_t i = 0; i < sf.nhyp; i++)
        FUZZ_CHECK(again.hyp[i].ft == sf.hyp[i].ft && again.hyp[i].distance == sf.hyp[i].distance);
    json_object_put(o);
    return 0;
}
