/* appevent: one event for the application integrations (HTTP callbacks, MQTT, status
 * page) as a small typed struct, filled from the event JSON of docs/api.md (a `message`
 * from sigfoxd or from the network core with its `stations`, downlink events, the core's
 * `comm_loss`), so that no integration re-parses JSON. Licence: MIT.
 *
 * Callback types of seeds/000 §7.1.3: DATA (uplink with user payload), SERVICE (device
 * status from a keep-alive, downlink acknowledgement), ERROR (communication loss).
 */
#ifndef SIGFOX_APPEVENT_H
#define SIGFOX_APPEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define APPEVENT_MAX_STATIONS 16
#define APPEVENT_STATION_ID_MAX 31
#define APPEVENT_MAX_DATA 12 /* uplink payload, seeds/002 Table 3-1 */

typedef enum {
    APPEVENT_DATA = 0,
    APPEVENT_SERVICE = 1,
    APPEVENT_ERROR = 2,
} appevent_type_t;

typedef enum {
    APPEVENT_SUB_UPLINK = 0,   /* DATA */
    APPEVENT_SUB_STATUS,       /* SERVICE: keep-alive (voltages, temperature) */
    APPEVENT_SUB_DOWNLINK_ACK, /* SERVICE: outcome of a downlink */
    APPEVENT_SUB_COMM_LOSS,    /* ERROR */
} appevent_subtype_t;

typedef struct {
    char id[APPEVENT_STATION_ID_MAX + 1];
    double rssi_dbm;  /* bs_rssi_dbm when known, else rssi_dbfs */
    double snr_db;
    double lat, lng;  /* station position (degrees), has_pos */
    bool has_pos;
    int nrep;         /* replicas this station received (1..3), 0 = unknown */
} appevent_station_t;

typedef struct {
    appevent_type_t type;
    appevent_subtype_t subtype;
    uint32_t ep_id;
    int64_t time_s;   /* epoch seconds (UTC) */
    int seq;          /* message counter (mc), -1 when none */
    bool ack;         /* DATA: the device waits for a downlink given by the callback */
    uint8_t data[APPEVENT_MAX_DATA];
    size_t data_len;
    size_t nstations; /* stations that heard it, stations[0] = the best (highest RSSI) */
    appevent_station_t stations[APPEVENT_MAX_STATIONS];
    json_object *decoded;     /* owned reference or NULL: custom grammar fields */
    char decoded_error[160];  /* "" or why decoding failed */
    /* SERVICE status (keep-alive) */
    bool has_status;
    int vdd_idle_mv, vdd_tx_mv;
    double temp_c;
    /* SERVICE downlink acknowledgement */
    bool dl_ok;               /* the device confirmed the downlink */
    char info[96];            /* status text: downlink event type, or the ERROR's reason */
    /* ERROR */
    int64_t last_seen_s;      /* epoch s of the last message, 0 = never */
    char device_type[64];     /* the device's type name, "" = none */
} appevent_t;

/* Zeroes ev (seq -1). */
void appevent_init(appevent_t *ev);
/* Releases ev->decoded and re-initialises. NULL-safe. */
void appevent_clear(appevent_t *ev);
/* Deep copy (takes a new reference on decoded). */
void appevent_copy(appevent_t *dst, const appevent_t *src);

/* Fills ev from one event object: `message` (kind app -> DATA, keepalive -> SERVICE
 * status; dl_confirmation is ignored: its downlink_ack event follows), `downlink_ack`,
 * `downlink_lost`, `downlink_failed`, `downlink_no_answer` (SERVICE downlink ack),
 * `comm_loss` (ERROR). Stations come from `stations` [{station_id, bs_rssi_dbm |
 * rssi_dbm | rssi_dbfs, snr_db, lat, lng, replicas | nframes}] (the core) or, without it, from the
 * event's own radio fields (a single station, `station_id` or "local"). `decoded` /
 * `decoded_error` are taken over when present. ack = bf unless `downlink_mode` says
 * otherwise than "callback". Returns 0, 1 when the event is of a type integrations do not
 * deliver (ev untouched), or -1 with err for a malformed event. */
int appevent_from_json(const json_object *obj, appevent_t *ev, char *err, size_t err_len);

/* The integration view of ev as a new JSON object (owned by the caller): type
 * ("data"/"service"/"error"), subtype, device, time, seqNumber, data (lowercase hex), ack,
 * stations [{id, rssi, snr, lat, lng, nbRep}], avgSnr, decoded, decoded_error and the
 * service/error fields. NULL on no memory. */
json_object *appevent_to_json(const appevent_t *ev);

/* A JSON number printed with exactly `decimals` decimals ("%.*f"; 0 when not finite), so
 * that no binary fraction (8.1300000000000008) reaches an application. */
json_object *appevent_json_fixed(double v, int decimals);
/* Mean SNR over the stations (0 when none). */
double appevent_avg_snr(const appevent_t *ev);
/* "data", "service", "error". */
const char *appevent_type_name(appevent_type_t t);


#endif
