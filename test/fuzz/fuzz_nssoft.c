/* fuzz_nssoft: the network core's soft combining (nssoft.h) fed a stream of soft frames as
 * stations could send them after evjson_softframe_parse accepted them (any station, time,
 * carrier, baud, length and LLR values). Input: records of
 *   [station 0..255] [time step, 10 ms units, signed] [nsoft - 13] [bit 7: 600 baud,
 *   bits 0-6: carrier, 100 Hz units] then nsoft signed LLR bytes (x 0.5).
 * The chase decoder runs (a registry that knows every device, all with the zero key, so a
 * pattern that passes the CRC goes on to UL-AUTH).
 * Whatever the input: no crash, memory bounded by max_pending, every reported frame
 * CRC-valid with 1..8 members of distinct stations, the counters add up. Licence: MIT. */
#include <math.h>

#include "fuzzutil.h"
#include "nssoft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    int reports;
} sink_t;

static void on_decoded(const nssoft_result_t *r, void *user)
{
    sink_t *k = user;
    k->reports++;
    FUZZ_CHECK(r->frame.crc_ok);
    FUZZ_CHECK(r->frame.rank >= 0 && r->frame.rank <= 3);
    FUZZ_CHECK(r->nmembers >= 1 && r->nmembers <= NSSOFT_MAX_MEMBERS);
    FUZZ_CHECK(ul_crc16(r->frame.container, r->frame.container_len) == r->frame.crc);
    for (size_t i = 0; i < r->nmembers; i++) {
        FUZZ_CHECK(r->members[i].rank >= 1 && r->members[i].rank <= 3);
        FUZZ_CHECK(r->members[i].station_id[0] != '\0');
    }
}

static int any_device(uint32_t ep_id, uint8_t key[UL_KEY_BYTES], void *user)
{
    (void)ep_id;
    (void)user;
    memset(key, 0, UL_KEY_BYTES);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink_t k = {0};
    nssoft_config_t cfg = {.max_pending = 16, .key_of = any_device, .chase_trials = 64};
    nssoft_t *s = nssoft_create(&cfg, on_decoded, &k);
    FUZZ_CHECK(s != NULL);
    static rx_softframe_t sf;
    double t = 1.8e9;
    size_t pos = 0, pushed = 0;
    int decoded = 0;
    while (pos + 4 <= size) {
        char station[8];
        snprintf(station, sizeof station, "s%u", (unsigned)data[pos]);
        t += (int8_t)data[pos + 1] * 0.01;
        memset(&sf, 0, sizeof sf);
        sf.nsoft = UL_FT_BITS + data[pos + 2] % (RX_SOFT_MAX - UL_FT_BITS + 1);
        sf.baud = data[pos + 3] & 0x80 ? 600 : 100;
        sf.freq_hz = 868.1e6 + (data[pos + 3] & 0x7F) * 100.0;
        sf.snr_db = 3;
        sf.rssi_dbfs = -90;
        pos += 4;
        if (pos + sf.nsoft > size)
            break;
        for (size_t i = 0; i < sf.nsoft; i++)
            sf.soft[i] = (float)(int8_t)data[pos + i] * 0.5f;
        pos += sf.nsoft;
        int rc = nssoft_push(s, station, &sf, t, t);
        FUZZ_CHECK(rc == 0 || rc == 1);
        decoded += rc;
        pushed++;
    }
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    FUZZ_CHECK(st.softframes_in == pushed && st.softframes_bad == 0);
    FUZZ_CHECK(k.reports == decoded);
    FUZZ_CHECK(st.frames_decoded + (st.late_members ? 1 : 0) >= (uint64_t)(decoded ? 1 : 0));
    FUZZ_CHECK(st.frames_joint <= st.frames_decoded && st.groups_tried <= 9 * pushed);
    FUZZ_CHECK(st.frames_corrected <= st.frames_decoded);
    nssoft_destroy(s);
    return 0;
}
