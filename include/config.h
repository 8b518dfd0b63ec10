/* config: sigfoxd configuration from defaults, a libconfig file and command-line flags.
 * Licence: MIT.
 *
 * One table (cfg_options()) describes every setting: its libconfig path (`radio.rate_sps`),
 * its long option (`--rate`), type, default, range and help text. The file loader, the flag
 * parser, `--help`, `--print-config` and the `config` command all walk that table, so a
 * setting added there is parsed, validated, documented and printed everywhere at once.
 *
 * Precedence: defaults < file < flags. Every rejected value gets a message that names the
 * file, the line and the key (or the flag), e.g.
 *   "sigfoxd.conf:12: radio.rate_sps: 5000000 is out of range 200000 .. 3200000"
 *
 * The prefix is cfg_ (not config_) because libconfig owns the config_* names and config_t.
 * Not thread-safe: build the configuration on one thread, then treat it as read-only.
 */
#ifndef SIGFOX_CONFIG_H
#define SIGFOX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "keys.h"

/* SIGFOXD_SYSCONFDIR comes from the Makefile (make SYSCONFDIR=...). */
#ifndef SIGFOXD_SYSCONFDIR
#define SIGFOXD_SYSCONFDIR "/etc"
#endif
#define CFG_DEFAULT_FILE SIGFOXD_SYSCONFDIR "/sigfoxd/sigfoxd.conf"
#define CFG_STR_MAX 256
#define CFG_PATH_MAX 1024
#define CFG_MAX_OPTIONS 96     /* capacity for table entries */
#define CFG_DL_PAYLOAD_BYTES 8 /* a downlink payload (spec §4.2) */

/* Exit codes of sigfoxd (STYLE.md "Errors and exit codes"). */
#define CFG_EXIT_OK 0
#define CFG_EXIT_RUNTIME 1
#define CFG_EXIT_USAGE 64

/* Negative return codes of the cfg_* functions. */
enum cfg_error {
    CFG_OK = 0,
    CFG_ERR_ARG = -1,   /* NULL argument */
    CFG_ERR_USAGE = -2, /* bad flag, bad value, bad file content: exit 64 */
    CFG_ERR_IO = -3,    /* file missing or unreadable: exit 64 */
    CFG_ERR_NOMEM = -4, /* allocation failed: exit 1 */
};

/* Per-device downlink mode (devices.list downlink_mode; the values of dlsched_mode_t). */
typedef enum {
    CFG_DL_MODE_DEFAULT = -1, /* downlink.default_mode */
    CFG_DL_MODE_CALLBACK = 0,
    CFG_DL_MODE_DIRECT = 1,
    CFG_DL_MODE_OFF = 2,
} cfg_dl_mode_t;

/* One device configured inline (devices.list). */
typedef struct {
    uint32_t ep_id;
    bool has_key; /* false: the key comes from the keys file */
    uint8_t key[KEYSTORE_KEY_BYTES];
    char name[64];         /* "" when not given */
    int daily_messages;    /* 0: receiver.daily_messages */
    cfg_dl_mode_t dl_mode; /* downlink_mode */
    bool has_dl_payload;   /* downlink_payload given (direct mode) */
    uint8_t dl_payload[CFG_DL_PAYLOAD_BYTES];
    int dl_quota; /* downlink_quota: 0 = downlink.daily_quota, -1 = no limit, 1..64 */
    int line;     /* line in the file, for messages */
} cfg_device_t;

/* Effective configuration. Strings are NUL-terminated, "" = not set. */
typedef struct {
    /* radio */
    char device[CFG_STR_MAX]; /* SoapySDR args, "driver=rtlsdr" */
    double rate_sps;
    double center_freq_hz;  /* capture (tuner) centre; 0: the channel centre */
    double channel_freq_hz; /* macro-channel centre; 0: the RC's uplink centre */
    char rc[8];             /* "RC1" .. "RC7" */
    char gain[CFG_STR_MAX]; /* "auto", "40", "LNA=32,VGA=20" */
    double ppm;
    char antenna[64];
    double bandwidth_hz;        /* 0: driver default */
    char settings[CFG_STR_MAX]; /* "key=value,key=value" passed to the driver */
    bool lossless;              /* wait for the DSP instead of dropping (file drivers) */
    double watchdog_s;          /* reopen after this long without samples; 0: never */
    /* receiver */
    double threshold_db;     /* 0: the receiver's default */
    double channel_width_hz; /* 0: 192 kHz plus margin */
    bool report_bad_frames;
    int chase_trials; /* rx_config_t.chase_trials; 0 here: off */
    double rssi_offset_db;
    bool publish_unauthenticated;
    bool publish_soft;            /* softframe events of undecoded bursts */
    double publish_soft_max_per_s; /* at most this many per second; 0: no limit */
    int daily_messages; /* anti-replay window W = max(20, 3 x this) */
    /* api */
    char pub_endpoint[CFG_STR_MAX];
    char cmd_endpoint[CFG_STR_MAX];
    double stats_interval_s; /* 0: no periodic stats */
    /* devices */
    char keys_file[CFG_PATH_MAX];
    cfg_device_t *devices; /* owned; cfg_free() releases */
    size_t ndevices;
    /* log */
    char log_level[16];
    char log_prefix[8]; /* "auto", "on", "off" */
    /* state */
    char state_dir[CFG_PATH_MAX]; /* "": in memory only */
    double state_flush_interval_s;
    /* station identity (docs/ns.md) */
    char station_id[64]; /* "": not set */
    double station_lat, station_lng, station_alt_m; /* cfg_station_has_position() */
    /* core: the link to the network core sigfox-ns (docs/ns.md "Station side") */
    char core_endpoint[CFG_STR_MAX]; /* "": no core; comma-separated = fail-over list */
    char core_public_key[48];        /* Z85, 40 characters */
    char core_secret_key_file[CFG_PATH_MAX];
    char core_spool_dir[CFG_PATH_MAX];
    int core_spool_max_frames;
    double core_shutdown_wait_s;
    /* downlink (docs/downlink-scheduler.md) */
    bool dl_enabled;
    char dl_default_mode[16]; /* "callback" or "off" */
    double dl_window_margin_s, dl_tx_lead_s, dl_answer_timeout_s;
    double dl_duty_cycle, dl_duty_window_s, dl_duty_band_lo_hz, dl_duty_band_hi_hz;
    int dl_daily_quota; /* -1: no limit */
    double dl_conf_tolerance_s, dl_rx_latency_s;
    char tx_file[CFG_PATH_MAX];  /* file sink directory */
    char tx_device[CFG_STR_MAX]; /* SoapySDR TX args; "": the receiver's device */
    int tx_channel;
    double tx_rate_sps;       /* 0: file 240 kS/s, SoapySDR radio.rate_sps */
    double tx_center_freq_hz; /* 0: the RC's downlink centre */
    char tx_gain[CFG_STR_MAX];
    char tx_antenna[64];
    char tx_settings[CFG_STR_MAX];
    double tx_ppm;
    double tx_amplitude;
    /* recordings of the live input (recorder.h, docs/iq-formats.md) */
    char record_dir[CFG_PATH_MAX]; /* "": no recording */
    int record_max_mb;             /* sample data per file, MiB */
    int record_max_files;          /* recordings kept, the oldest deleted */
    char snippet_dir[CFG_PATH_MAX]; /* "": no snippets of undecoded bursts */
    int snippet_max_files;
    double snippet_min_interval_s;
    double snippet_margin_s;
    /* monarch (seeds/001; no defaults: the seed has no RC table) */
    bool monarch_enabled;
    double monarch_freq_hz, monarch_df1_hz, monarch_df2_hz;
    /* replay (flags only) */
    char replay_file[CFG_PATH_MAX];
    char replay_format[16];
    bool realtime;
    double replay_speed; /* --replay-speed: pace a replay at this many times real time; 0: no
                            pacing (--realtime = 1) */
    /* where it came from */
    char config_file[CFG_PATH_MAX];         /* file read, "" when none */
    unsigned char sources[CFG_MAX_OPTIONS]; /* cfg_source_t per table entry */
} cfg_t;

typedef enum {
    CFG_TYPE_ACTION = 0, /* a flag that asks sigfoxd to do something (no value stored) */
    CFG_TYPE_STRING,
    CFG_TYPE_INT,
    CFG_TYPE_DOUBLE, /* accepts SI suffixes k, M, G: "868.13M", "1024k" */
    CFG_TYPE_BOOL,   /* flag alone = true; "--x=no" = false */
} cfg_type_t;

typedef enum {
    CFG_SRC_DEFAULT = 0,
    CFG_SRC_FILE,
    CFG_SRC_FLAG,
} cfg_source_t;

typedef struct cfg_option cfg_option_t;
/* Extra validation of a stored value (may normalise it in place, e.g. "rc1" -> "RC1").
 * Returns 0, or -1 with a reason (without the key name) in err. */
typedef int (*cfg_check_fn)(void *value, char *err, size_t err_len);

struct cfg_option {
    const char *path; /* libconfig path "group.key"; NULL: flag only */
    const char *flag; /* long option without "--"; NULL: file only */
    int short_flag;   /* 0: none */
    cfg_type_t type;
    size_t offset;   /* into cfg_t */
    size_t size;     /* of the field (string capacity) */
    const char *def; /* default as text (parsed like a flag value); NULL for actions */
    double min, max; /* range for INT and DOUBLE (inclusive) */
    const char *arg; /* argument name for --help ("SPS"); NULL: none */
    const char *help;
    cfg_check_fn check; /* extra validation, may be NULL */
};

/* The table and its length. Static storage. */
const cfg_option_t *cfg_options(size_t *count);
/* Entry by configuration path ("radio.rate_sps"); NULL when unknown. */
const cfg_option_t *cfg_find_path(const char *path);

/* Parses a number with an optional SI suffix (k, M, G; "868.13M", "1024k", "-2.5",
 * "1.024e6"). Returns 0, or -1 when text is not such a number. */
int cfg_parse_number(const char *text, double *value);

/* Sets every field to its default. Returns 0 or CFG_ERR_*. */
int cfg_defaults(cfg_t *cfg);
/* Frees what cfg owns (devices) and zeroes it. NULL-safe. */
void cfg_free(cfg_t *cfg);

/* Reads a libconfig file over cfg: present keys replace the current values. Unknown keys
 * and groups are warned about (logged) and ignored. Returns 0, CFG_ERR_IO (missing or
 * unreadable) or CFG_ERR_USAGE (syntax, type, range), with the message in err. */
int cfg_load_file(cfg_t *cfg, const char *path, char *err, size_t err_len);

/* Where the current value of opt came from. */
cfg_source_t cfg_source(const cfg_t *cfg, const cfg_option_t *opt);

/* What the command line asked for besides settings. */
typedef struct {
    bool help, version, check_config, print_config;
    bool no_config;
} cfg_actions_t;

/* The whole command line: defaults, then the config file (--config FILE, or
 * CFG_DEFAULT_FILE when it exists, or none with --no-config / "--config 0"), then the
 * flags. default_file overrides CFG_DEFAULT_FILE (tests); NULL = CFG_DEFAULT_FILE.
 * On success cfg owns its devices (cfg_free()). Returns 0 or CFG_ERR_* with err set; on
 * error cfg holds nothing to free. Uses getopt_long (resets optind). */
int cfg_from_args(cfg_t *cfg, cfg_actions_t *actions, int argc, char *const argv[],
                  const char *default_file, char *err, size_t err_len);

/* Cross-checks after all sources: RC vs rates, duplicate devices, replay format.
 * Returns 0 or CFG_ERR_USAGE. (cfg_from_args() calls it.) */
int cfg_validate(const cfg_t *cfg, char *err, size_t err_len);

/* Writes --help text (usage line, then every flag with argument, default and help). */
void cfg_print_help(FILE *out, const char *prog);
/* Writes the effective configuration in libconfig syntax, with a comment giving each
 * key's flag and source. Keys are redacted. */
void cfg_print(const cfg_t *cfg, FILE *out);
/* The effective configuration as a JSON object {"radio": {...}, ...}, keys redacted.
 * Returns a new reference (caller puts it) or NULL on allocation failure. */
json_object *cfg_to_json(const cfg_t *cfg);

/* Builds the key store: devices.list keys, then the keys file (which may override them).
 * Warns when the keys file is readable or writable by others. Returns a new store (caller
 * destroys) or NULL with a message in err. */
keystore_t *cfg_load_keys(const cfg_t *cfg, char *err, size_t err_len);

/* Anti-replay daily message count for a device (its own or receiver.daily_messages). */
int cfg_daily_messages(const cfg_t *cfg, uint32_t ep_id);

/* Whether the station's position is known: latitude and longitude not both 0 (0, 0 lies
 * in the Gulf of Guinea: the "not set" value). */
bool cfg_station_has_position(const cfg_t *cfg);
/* Splits core.endpoint (comma-separated, spaces ignored) into at most max endpoints in
 * bufs[i] (each CFG_STR_MAX bytes). Returns the count (0 when no core is configured). */
size_t cfg_core_endpoints(const cfg_t *cfg, char (*bufs)[CFG_STR_MAX], size_t max);


/* Sample rate of the downlink transmitter: downlink.tx_rate_sps, else 240 kS/s for the file
 * sink (downlink.tx_file) and radio.rate_sps for a SoapySDR transmitter. */
double cfg_tx_rate(const cfg_t *cfg);
/* Whether the downlink scheduler runs: downlink.enabled, or --tx-file / --tx-device given on
 * the command line (they ask for it). */
bool cfg_downlink_wanted(const cfg_t *cfg);

#endif
