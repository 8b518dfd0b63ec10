/* nsreg: the network core's device registry and station list in the database (tables
 * ns_devices, ns_stations of nsdb). Licence: MIT.
 *
 * A device: ID, AES-128 key (UL-AUTH / DL-AUTH), name, device type, daily_messages (the
 * anti-replay window W = max(20, 3 x daily_messages), seeds/000 §9.1.1), downlink mode
 * (direct: the registry's payload; callback: the application's answer; off) and payload,
 * and a daily downlink quota (-1: no limit). The anti-replay state (last_mc, last_t) lives
 * in the same row and is written only by nscore's atomic accept.
 *
 * JSON form (commands `device_set` / `device_get` / `devices`):
 *   {"ep_id":"FEDCBA98","key":"0123...EF","name":"meter 1","device_type":"meter",
 *    "daily_messages":140,"downlink_mode":"direct","downlink_payload":"0102030405060708",
 *    "downlink_quota":4,"last_mc":12,"last_t":1764158400.25}
 * The key is printed only when asked (with_key). Functions return >= 0 or NSDB_ERR_*.
 */
#ifndef SIGFOX_NSREG_H
#define SIGFOX_NSREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "keys.h"
#include "nsdb.h"

#define NSREG_KEY_BYTES 16
#define NSREG_DL_PAYLOAD_BYTES 8 /* spec §4.2 */
#define NSREG_NAME_MAX 64
#define NSREG_DEFAULT_DAILY_MESSAGES 140
#define NSREG_DEFAULT_DL_QUOTA 4

typedef enum {
    NSREG_DL_CALLBACK = 0,
    NSREG_DL_DIRECT = 1,
    NSREG_DL_OFF = 2,
} nsreg_dl_mode_t;

/* "callback", "direct", "off". */
const char *nsreg_dl_mode_name(nsreg_dl_mode_t m);

typedef struct {
    uint32_t ep_id;
    uint8_t key[NSREG_KEY_BYTES];
    char name[NSREG_NAME_MAX];
    char device_type[NSREG_NAME_MAX];
    int daily_messages;
    nsreg_dl_mode_t dl_mode;
    bool has_dl_payload;
    uint8_t dl_payload[NSREG_DL_PAYLOAD_BYTES];
    int dl_quota; /* downlinks per 24 h, -1: no limit */
    /* anti-replay state (read only here) */
    bool has_last;
    uint16_t last_mc;
    double last_t;
} nsreg_device_t;

/* Defaults for a new device (140 messages/day, callback mode, quota 4). */
void nsreg_device_init(nsreg_device_t *d, uint32_t ep_id, const uint8_t key[NSREG_KEY_BYTES]);

/* 1 and *out filled when the device exists, 0 when not. */
int nsreg_device_get(nsdb_t *db, uint32_t ep_id, nsreg_device_t *out);
/* Creates or updates (everything but the anti-replay state). now: seconds since 1970. */
int nsreg_device_put(nsdb_t *db, const nsreg_device_t *d, double now);
/* 1 when removed, 0 when there was no such device. */
int nsreg_device_delete(nsdb_t *db, uint32_t ep_id);
/* Appends every device (ascending ID, at most limit, from ep_id > after) to arr. Returns
 * the number appended. */
int nsreg_device_list(nsdb_t *db, uint32_t after, int limit, bool with_key, json_object *arr);
/* Number of devices, or NSDB_ERR_*. */
int nsreg_device_count(nsdb_t *db);
/* Adds every key of a keys file (keys.h) as a device with defaults; an existing device
 * keeps its settings and gets the file's key. Returns the number imported. */
int nsreg_import_keys(nsdb_t *db, const keystore_t *ks, double now);

/* Adds the device's fields to obj (key only when with_key). Returns 0 or -1. */
int nsreg_device_to_json(const nsreg_device_t *d, bool with_key, json_object *obj);
/* Reads a device from a JSON object (ep_id and key required for a new device; fields not
 * given keep the value already in *d, so load the existing device first to update).
 * Returns 0, or -1 with a message naming the field in err. */
int nsreg_device_from_json(json_object *obj, nsreg_device_t *d, char *err, size_t err_len);

/* Station list: what a station said in its hello (lat/lng/alt NAN when not given). */
typedef struct {
    char station_id[NSREG_NAME_MAX];
    double lat, lng, alt;
    bool tx;
    char version[NSREG_NAME_MAX];
} nsreg_station_t;
int nsreg_station_seen(nsdb_t *db, const nsreg_station_t *s, const char *instance, double now);
/* Appends every station as JSON to arr. Returns the number appended. */
int nsreg_station_list(nsdb_t *db, json_object *arr);

#endif
