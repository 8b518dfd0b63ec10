/* nsconf: sigfox-ns configuration from defaults and a libconfig file (conf/sigfox-ns.conf
 * shows every key). Command-line flags are applied by tools/sigfox-ns.c on top.
 * Licence: MIT. Errors name the file, the line and the key. */
#ifndef SIGFOX_NSCONF_H
#define SIGFOX_NSCONF_H

#include <stdbool.h>
#include <stddef.h>

#define NSCONF_DEFAULT_FILE "/etc/sigfox-ns/sigfox-ns.conf"
#define NSCONF_KEY_Z85_LEN 40 /* a CURVE key as Z85 text */
#define NSCONF_STR_MAX 256
#define NSCONF_PATH_MAX 1024
#define NSCONF_MAX_STATIONS 10000
#define NSCONF_MAX_CALLBACKS 64
#define NSCONF_MAX_HEADERS 16   /* = CALLBACK_MAX_HEADERS */
#define NSCONF_MAX_DEVICE_TYPES 64
#define NSCONF_NAME_MAX 64
#define NSCONF_TEMPLATE_MAX 16384 /* = CBTEMPLATE_MAX_TEXT */

/* A station the core accepts: its CURVE public key is bound to its id. */
typedef struct {
    char id[64];
    char public_key[NSCONF_KEY_Z85_LEN + 1];
} nsconf_station_t;

/* One HTTP callback (callbacks.list entry, docs/integrations.md). Texts are templates,
 * checked by sigfox-ns when it creates the callback (errors name line and key). */
typedef struct {
    char name[NSCONF_NAME_MAX];
    char device_type[NSCONF_NAME_MAX]; /* "" = every device */
    char type[8];                      /* DATA, SERVICE or ERROR */
    char media[8];                     /* simple or batch */
    char method[8];                    /* GET, POST or PUT */
    char content_type[NSCONF_STR_MAX];
    char *url;                         /* owned */
    char *body;                        /* owned, NULL: none */
    char *headers[NSCONF_MAX_HEADERS]; /* owned */
    size_t nheaders;
    bool downlink;
    int line;                          /* of the entry in the file, 0: not from a file */
} nsconf_callback_t;

/* A device type (device_types.list): payload grammar and communication-loss period. */
typedef struct {
    char name[NSCONF_NAME_MAX];
    char *grammar; /* owned, "" none */
    double period_s;
    int line;
} nsconf_device_type_t;

typedef struct {
    char instance[64];                    /* ns.instance: name in logs and the message log */
    char listen[NSCONF_STR_MAX];          /* ns.listen: ROUTER endpoint for stations */
    char secret_key_file[NSCONF_PATH_MAX]; /* ns.secret_key_file: the core's CURVE secret */
    char storage_url[NSCONF_PATH_MAX];    /* storage.url */
    int busy_timeout_ms;                  /* storage.busy_timeout_ms (SQLite) */
    char pub_endpoint[NSCONF_STR_MAX];    /* api.pub_endpoint */
    char cmd_endpoint[NSCONF_STR_MAX];    /* api.cmd_endpoint */
    double stats_interval_s;              /* api.stats_interval_s, 0: none */
    double dedup_window_s;                /* dedup.window_s */
    bool update_events;                   /* dedup.update_events */
    bool soft_enabled;                    /* soft.enabled: combining across stations */
    double soft_window_s;                 /* soft.window_s */
    double soft_time_tol_s;               /* soft.time_tolerance_s */
    double soft_freq_tol_hz;              /* soft.freq_tolerance_hz */
    double soft_max_per_station_s;        /* soft.max_per_station_s */
    int soft_chase_trials;                /* soft.chase_trials: chase decoder, 0 off */
    double registry_cache_s;              /* registry.cache_s */
    char keys_file[NSCONF_PATH_MAX];      /* registry.keys_file: imported at start */
    double dl_collect_s;                  /* downlink.collect_s */
    double dl_answer_timeout_s;           /* downlink.answer_timeout_s */
    double dl_pending_timeout_s;          /* downlink.pending_timeout_s */
    char log_level[16];                   /* log.level */
    /* integrations (docs/integrations.md) */
    char cb_queue_file[NSCONF_PATH_MAX];  /* callbacks.queue_file, "" = storage.url */
    double cb_timeout_s;                  /* callbacks.timeout_s (10, §7.1.3) */
    double cb_retry_delay_s;              /* callbacks.retry_delay_s (60, §7.1.3) */
    int cb_max_tries;                     /* callbacks.max_tries (10) */
    double cb_batch_interval_s;           /* callbacks.batch_interval_s (1) */
    int cb_max_in_flight;                 /* callbacks.max_in_flight (8) */
    nsconf_callback_t *callbacks;         /* callbacks.list (owned) */
    size_t ncallbacks;
    double types_check_s;                 /* device_types.check_interval_s (10) */
    nsconf_device_type_t *device_types;   /* device_types.list (owned) */
    size_t ndevice_types;
    bool mqtt_enabled;                    /* mqtt.enabled */
    char mqtt_host[NSCONF_STR_MAX];       /* mqtt.host */
    int mqtt_port;                        /* mqtt.port, 0: 1883 (8883 with TLS) */
    char mqtt_prefix[NSCONF_NAME_MAX];    /* mqtt.prefix */
    char mqtt_source[NSCONF_NAME_MAX];    /* mqtt.source */
    char mqtt_client_id[NSCONF_NAME_MAX]; /* mqtt.client_id, "" = sigfox-<source> */
    char mqtt_username[NSCONF_STR_MAX];   /* mqtt.username */
    char mqtt_password[NSCONF_STR_MAX];   /* mqtt.password */
    char mqtt_ca_file[NSCONF_PATH_MAX];   /* mqtt.ca_file: set = TLS */
    int mqtt_max_queue;                   /* mqtt.max_queue */
    int mqtt_reconnect_s;                 /* mqtt.reconnect_s */
    bool rest_enabled;                    /* rest.enabled */
    char rest_bind[64];                   /* rest.bind */
    int rest_port;                        /* rest.port */
    char rest_token[NSCONF_STR_MAX];      /* rest.token */
    nsconf_station_t *stations;           /* stations.list (owned) */
    size_t nstations;
    char config_file[NSCONF_PATH_MAX];    /* the file read, "" when none */
} nsconf_t;

void nsconf_defaults(nsconf_t *c);
/* Reads path over the current values. Returns 0, or -1 with "file:line: key: reason". */
int nsconf_load(nsconf_t *c, const char *path, char *err, size_t err_len);
/* Adds a station (id, Z85 public key). Returns 0 or -1 with the reason (bad key, duplicate
 * id or key, too many). */
int nsconf_add_station(nsconf_t *c, const char *id, const char *public_key, char *err,
                       size_t err_len);
void nsconf_free(nsconf_t *c);

/* The database of the callback retry queue: callbacks.queue_file (an nsdb URL), or by
 * default the core's own (storage.url). */
void nsconf_queue_file(const nsconf_t *c, char *out, size_t cap);

/* Reads a CURVE key file: the first line that is a valid Z85 key, alone or after
 * "secret" / "secret_key" / "public" / "public_key" and ':' or '='. Returns 0 or -1. */
int nsconf_read_key_file(const char *path, char out[NSCONF_KEY_Z85_LEN + 1], char *err,
                         size_t err_len);

#endif
