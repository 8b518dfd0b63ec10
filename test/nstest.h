/* nstest.h: a station's `frame` object for the network core's tests (the fields a
 * station sends, docs/ns.md "Wire protocol": container, ul_crc, ft, rank, radio fields).
 * Licence: MIT. */
#ifndef SIGFOX_TEST_NSTEST_H
#define SIGFOX_TEST_NSTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "hexutil.h"
#include "publisher.h"
#include "ulframe.h"

/* The frame object of a built container c[0..len) (its CRC and the FT of rank are
 * computed), heard at t (epoch s) with snr (dB) on freq_hz. */
static inline json_object *nstest_frame_of(const uint8_t *c, int len, int rank, double t,
                                           double snr, double freq_hz)
{
    char hex[64], crc[8], ft[8], utc[40];
    bytes_to_hex(c, (size_t)len, hex);
    snprintf(crc, sizeof crc, "%04X", ul_crc16(c, (size_t)len));
    snprintf(ft, sizeof ft, "%04X", ul_ft_value((size_t)len, false, rank));
    publisher_time_utc(t, utc, sizeof utc);
    json_object *f = json_object_new_object();
    json_object_object_add(f, "type", json_object_new_string("frame"));
    json_object_object_add(f, "container", json_object_new_string(hex));
    json_object_object_add(f, "ul_crc", json_object_new_string(crc));
    json_object_object_add(f, "ft", json_object_new_string(ft));
    json_object_object_add(f, "rank", json_object_new_int(rank));
    json_object_object_add(f, "snr_db", json_object_new_double(snr));
    json_object_object_add(f, "rssi_dbfs", json_object_new_double(snr - 60));
    json_object_object_add(f, "freq_hz", json_object_new_double(freq_hz));
    json_object_object_add(f, "time_utc", json_object_new_string(utc));
    json_object_object_add(f, "tx", json_object_new_boolean(true));
    return f;
}

/* Frame of message (ep, mc) with payload p[0..n), replica rank, heard at t (epoch s) with
 * snr (dB); NULL when the container cannot be built. */
static inline json_object *nstest_frame(uint32_t ep, const uint8_t key[16], uint16_t mc, bool bf,
                                        const uint8_t *p, size_t n, int rank, double t, double snr)
{
    ul_message_t m = {.ep_id = ep, .mc = mc, .bf = bf, .payload_len = n};
    memcpy(m.payload, p, n);
    uint8_t c[UL_MAX_CONTAINER_BYTES];
    int len = ul_container_build(&m, key, c, sizeof c);
    if (len <= 0)
        return NULL;
    return nstest_frame_of(c, len, rank, t, snr, 868130000.0);
}

#endif
