/* config: table-driven configuration from defaults, a libconfig file and flags.
 * Licence: MIT. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "framejson.h"
#include "hexutil.h"
#include "infile.h"
#include "log.h"
#include "monarch.h"
#include "rc.h"

/* ---- validators (the table refers to them) ---------------------------------------- */

static int check_rc(void *value, char *err, size_t err_len)
{
    char *s = value;
    const rc_params_t *rc = rc_lookup(s);
    if (!rc) {
        snprintf(err, err_len, "unknown radio configuration '%s' (expected RC1 .. RC7)", s);
        return -1;
    }
    strcpy(s, rc->name); /* canonical spelling; "RC1" fits every field that held "rc1" */
    return 0;
}

static int check_log_level(void *value, char *err, size_t err_len)
{
    if (log_level_from_name(value) < 0) {
        snprintf(err, err_len,
                 "unknown log level '%s' (expected error, warning, notice, info, debug, "
                 "trace)",
                 (const char *)value);
        return -1;
    }
    return 0;
}

static int check_log_prefix(void *value, char *err, size_t err_len)
{
    const char *s = value;
    if (strcmp(s, "auto") && strcmp(s, "on") && strcmp(s, "off")) {
        snprintf(err, err_len, "'%s' is not one of auto, on, off", s);
        return -1;
    }
    return 0;
}

/* ZeroMQ endpoints: "" disables the socket; otherwise ipc:// or tcp:// (STYLE.md: bind
 * under ipc:///run/sigfoxd/, tcp only when configured). */
static int check_endpoint(void *value, char *err, size_t err_len)
{
    const char *s = value;
    if (!s[0])
        return 0;
    if (strncmp(s, "ipc://", 6) == 0 && s[6])
        return 0;
    if (strncmp(s, "tcp://", 6) == 0) {
        /* The port: 1..65535 in digits (ZeroMQ would bind tcp://host:99999 to a random
         * port and the log would name a port nobody listens on). */
        const char *colon = strrchr(s + 6, ':');
        const char *port = colon ? colon + 1 : "";
        size_t nd = strspn(port, "0123456789");
        long v = nd > 0 && nd <= 5 && !port[nd] ? strtol(port, NULL, 10) : 0;
        if (colon && colon > s + 6 && v >= 1 && v <= 65535)
            return 0;
        if (colon && colon > s + 6) {
            snprintf(err, err_len, "'%s': the port must be a number 1..65535", s);
            return -1;
        }
    }
    snprintf(err, err_len, "'%s' is not an ipc://PATH or tcp://HOST:PORT endpoint", s);
    return -1;
}

/* station.id: letters, digits, '-', '_', '.', at most 63 (the names sigfox-ns accepts
 * for its station list; it goes into JSON and log lines unescaped). */
static int check_station_id(void *value, char *err, size_t err_len)
{
    const char *s = value;
    if (strlen(s) > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789-_.") != strlen(s)) {
        snprintf(err, err_len, "'%s': at most 63 letters, digits, '-', '_' or '.'", s);
        return -1;
    }
    return 0;
}

/* core.endpoint: "" or tcp://HOST:PORT (or ipc://) entries separated by commas. */
static int check_core_endpoints(void *value, char *err, size_t err_len)
{
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", (const char *)value);
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (check_endpoint(tok, err, err_len) != 0)
            return -1;
        if (++n > 8) {
            snprintf(err, err_len, "at most 8 endpoints");
            return -1;
        }
    }
    return 0;
}

/* A CURVE key as Z85 text: 40 characters of the Z85 alphabet ("" = not set). */
static int check_z85_key(void *value, char *err, size_t err_len)
{
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    const char *s = value;
    if (!s[0])
        return 0;
    if (strlen(s) != 40 || strspn(s, z85) != 40) {
        snprintf(err, err_len, "expected a 40-character Z85 key (sigfox-ns keygen prints it)");
        return -1;
    }
    return 0;
}

/* True when s is "key=value" pairs separated by commas (values numbers when numeric). */
static bool is_pair_list(const char *s, bool numeric)
{
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    double v;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || (numeric && cfg_parse_number(eq + 1, &v) != 0))
            return false;
    }
    return true;
}

/* Gain: "auto" (AGC), an overall gain in dB, or per-element "LNA=32,VGA=20". */
static int check_gain(void *value, char *err, size_t err_len)
{
    const char *s = value;
    double v;
    if (strcmp(s, "auto") == 0 || cfg_parse_number(s, &v) == 0 || is_pair_list(s, true))
        return 0;
    snprintf(err, err_len,
             "'%s' is not \"auto\", a gain in dB or NAME=dB pairs like \"LNA=32,VGA=20\"", s);
    return -1;
}

/* Driver settings: "key=value" pairs separated by commas. */
static int check_settings(void *value, char *err, size_t err_len)
{
    const char *s = value;
    if (!s[0] || is_pair_list(s, false))
        return 0;
    snprintf(err, err_len, "'%s' is not a list of key=value pairs", s);
    return -1;
}

/* TX gain: "" (driver default), an overall gain in dB, or per element "VGA=20,AMP=0". */
static int check_tx_gain(void *value, char *err, size_t err_len)
{
    const char *s = value;
    double v;
    if (!s[0] || cfg_parse_number(s, &v) == 0 || is_pair_list(s, true))
        return 0;
    snprintf(err, err_len, "'%s' is not a gain in dB or NAME=dB pairs like \"VGA=20,AMP=0\"", s);
    return -1;
}

/* Mode of devices without their own: callback (ask the application) or off. */
static int check_default_mode(void *value, char *err, size_t err_len)
{
    char *s = value;
    if (strcasecmp(s, "callback") == 0 || strcasecmp(s, "off") == 0) {
        for (; *s; s++)
            *s = (char)tolower((unsigned char)*s);
        return 0;
    }
    snprintf(err, err_len,
             "'%s' is not callback or off (direct needs a payload: set it per device in "
             "devices.list)",
             s);
    return -1;
}

/* Per-device quota limits of the scheduler (dlsched.h): -1 = none, 1 .. 64. */
static int check_quota(void *value, char *err, size_t err_len)
{
    if (*(int *)value == 0) {
        snprintf(err, err_len,
                 "0 is not a quota: -1 = no limit, 1 .. 64 downlinks per day "
                 "(downlink.enabled = false turns the downlink off)");
        return -1;
    }
    return 0;
}

/* Monarch spacing: 0 (not set) or one of the three of seeds/001. */
static int check_monarch_df(void *value, char *err, size_t err_len)
{
    double v = *(double *)value;
    if (v == 0 || monarch_df_valid(v))
        return 0;
    snprintf(err, err_len, "%.10g Hz is not a Monarch spacing (1024, 1260.3 or 1489.4)", v);
    return -1;
}

/* ---- the table ---------------------------------------------------------------------- */

#define FIELD(f) offsetof(cfg_t, f), sizeof(((cfg_t *)0)->f)
#define NOFIELD 0, 0

/* Ordered by group so that --print-config and --help read like the example file. */
static const cfg_option_t options[] = {
    {NULL, "help", 'h', CFG_TYPE_ACTION, NOFIELD, NULL, 0, 0, NULL, "show this help and exit",
     NULL},
    {NULL, "version", 'V', CFG_TYPE_ACTION, NOFIELD, NULL, 0, 0, NULL, "show the version and exit",
     NULL},
    {NULL, "config", 'c', CFG_TYPE_ACTION, NOFIELD, NULL, 0, 0, "FILE",
     "read FILE (default " CFG_DEFAULT_FILE " when it exists; \"0\" reads none)", NULL},
    {NULL, "no-config", 0, CFG_TYPE_ACTION, NOFIELD, NULL, 0, 0, NULL,
     "read no configuration file (reproducible runs)", NULL},
    {NULL, "check-config", 0, CFG_TYPE_ACTION, NOFIELD, NULL, 0, 0, NULL,
     "validate the configuration (and keys) and exit", NULL},
    {NULL, "print-config", 0, CFG_TYPE_ACTION, NOFIELD, NULL, 0, 0, NULL,
     "print the effective configuration (libconfig syntax) and exit", NULL},

    {"radio.device", "device", 'd', CFG_TYPE_STRING, FIELD(device), "", 0, 0, "ARGS",
     "SoapySDR device args, e.g. driver=rtlsdr or driver=hackrf,serial=...", NULL},
    {"radio.rate_sps", "rate", 's', CFG_TYPE_DOUBLE, FIELD(rate_sps), "1024k", 200e3, 3.2e6, "SPS",
     "sample rate (accepts 1024k, 2.4M)", NULL},
    {"radio.center_freq_hz", "center-freq", 'f', CFG_TYPE_DOUBLE, FIELD(center_freq_hz), "0", 0,
     6e9, "HZ", "tuner centre frequency; 0: the macro-channel centre", NULL},
    {"radio.channel_freq_hz", "channel-freq", 0, CFG_TYPE_DOUBLE, FIELD(channel_freq_hz), "0", 0,
     6e9, "HZ", "macro-channel centre; 0: the RC's uplink centre", NULL},
    {"radio.rc", "rc", 0, CFG_TYPE_STRING, FIELD(rc), "RC1", 0, 0, "RCn",
     "radio configuration RC1 .. RC7 (centre frequencies, baud rates)", check_rc},
    {"radio.gain", "gain", 'g', CFG_TYPE_STRING, FIELD(gain), "auto", 0, 0, "GAIN",
     "\"auto\", overall dB, or per element \"LNA=32,VGA=20\"", check_gain},
    {"radio.ppm", "ppm", 'p', CFG_TYPE_DOUBLE, FIELD(ppm), "0", -500, 500, "PPM",
     "frequency correction of the radio's oscillator", NULL},
    {"radio.antenna", "antenna", 0, CFG_TYPE_STRING, FIELD(antenna), "", 0, 0, "NAME",
     "antenna port; \"\": driver default", NULL},
    {"radio.bandwidth_hz", "bandwidth", 0, CFG_TYPE_DOUBLE, FIELD(bandwidth_hz), "0", 0, 100e6,
     "HZ", "analogue filter bandwidth; 0: driver default", NULL},
    {"radio.settings", "settings", 0, CFG_TYPE_STRING, FIELD(settings), "", 0, 0, "K=V,...",
     "driver settings passed through, e.g. biastee=true", check_settings},
    {"radio.lossless", "lossless", 0, CFG_TYPE_BOOL, FIELD(lossless), "false", 0, 0, NULL,
     "never drop samples: wait for the receiver (file-backed drivers such as driver=iqfile, "
     "throttle=0; a real radio would overflow instead)",
     NULL},
    {"radio.watchdog_s", "watchdog", 0, CFG_TYPE_DOUBLE, FIELD(watchdog_s), "5", 0, 3600, "S",
     "reopen the radio when no samples arrive for this long; 0: never", NULL},

    {NULL, "replay", 'r', CFG_TYPE_STRING, FIELD(replay_file), "", 0, 0, "FILE",
     "decode a recording and print JSON lines to stdout instead of running the radio", NULL},
    {NULL, "format", 0, CFG_TYPE_STRING, FIELD(replay_format), "", 0, 0, "FMT",
     "recording format cu8 cs8 cs16 cf32 wav wavf32 sigmf; \"\": from the name", NULL},
    {NULL, "realtime", 0, CFG_TYPE_BOOL, FIELD(realtime), "false", 0, 0, NULL,
     "pace a replay in real time instead of as fast as possible", NULL},
    {NULL, "replay-speed", 0, CFG_TYPE_DOUBLE, FIELD(replay_speed), "0", 0, 1000, "X",
     "pace a replay at X times real time (a network of replaying stations whose core answers "
     "downlinks in wall-clock time); 0: as fast as possible, or real time with --realtime",
     NULL},

    {"receiver.threshold_db", "threshold", 0, CFG_TYPE_DOUBLE, FIELD(threshold_db), "0", 0, 60,
     "DB", "burst detection threshold over the noise floor; 0: receiver default", NULL},
    {"receiver.channel_width_hz", "channel-width", 0, CFG_TYPE_DOUBLE, FIELD(channel_width_hz), "0",
     0, 3.2e6, "HZ", "band searched for bursts; 0: 192 kHz plus margin", NULL},
    {"receiver.report_bad_frames", "report-bad-frames", 0, CFG_TYPE_BOOL, FIELD(report_bad_frames),
     "false", 0, 0, NULL, "also publish bursts with a readable FT whose CRC failed", NULL},
    {"receiver.chase_trials", "chase-trials", 0, CFG_TYPE_INT, FIELD(chase_trials), "256", 0, 528,
     "N",
     "test patterns of the chase decoder per frame whose CRC failed (only with keys_file: a "
     "correction must carry a stored device's valid UL-AUTH); 0: off. Each trial adds 2^-32 "
     "to the chance that a real frame is miscorrected (docs/receiver.md)",
     NULL},
    {"receiver.rssi_offset_db", "rssi-offset", 0, CFG_TYPE_DOUBLE, FIELD(rssi_offset_db), "0", -200,
     200, "DB", "calibration: dBm = dBFS + offset", NULL},
    {"receiver.publish_unauthenticated", "publish-unauthenticated", 0, CFG_TYPE_BOOL,
     FIELD(publish_unauthenticated), "true", 0, 0, NULL,
     "publish frames and messages whose auth is not ok (bad, unknown-device, unchecked)", NULL},
    {"receiver.publish_soft", "publish-soft", 0, CFG_TYPE_BOOL, FIELD(publish_soft), "false", 0, 0,
     NULL,
     "publish the soft values of bursts whose preamble and FT matched but whose frame did not "
     "decode (topic softframe), for a network core's joint decoding",
     NULL},
    {"receiver.publish_soft_max_per_s", "publish-soft-max", 0, CFG_TYPE_DOUBLE,
     FIELD(publish_soft_max_per_s), "10", 0, 1000, "N",
     "softframe events per second of signal at most (the rest are counted); 0: no limit", NULL},
    {"receiver.daily_messages", "daily-messages", 0, CFG_TYPE_INT, FIELD(daily_messages), "140", 1,
     100000, "N", "messages per day a device may send: anti-replay window max(20, 3 x N)", NULL},

    {"api.pub_endpoint", "pub", 0, CFG_TYPE_STRING, FIELD(pub_endpoint),
     "ipc:///run/sigfoxd/events", 0, 0, "ENDPOINT", "ZeroMQ PUB endpoint for events; \"\": none",
     check_endpoint},
    {"api.cmd_endpoint", "cmd", 0, CFG_TYPE_STRING, FIELD(cmd_endpoint),
     "ipc:///run/sigfoxd/commands", 0, 0, "ENDPOINT",
     "ZeroMQ REP endpoint for commands; \"\": none", check_endpoint},
    {"api.stats_interval_s", "stats-interval", 0, CFG_TYPE_DOUBLE, FIELD(stats_interval_s), "60", 0,
     86400, "S", "seconds between stats events; 0: none", NULL},

    {"devices.keys_file", "keys", 'k', CFG_TYPE_STRING, FIELD(keys_file), "", 0, 0, "FILE",
     "device keys, one \"EPID KEY\" (hex) per line", NULL},

    {"log.level", "log-level", 'l', CFG_TYPE_STRING, FIELD(log_level), "info", 0, 0, "LEVEL",
     "error, warning, notice, info, debug, trace", check_log_level},
    {"log.prefix", "log-prefix", 0, CFG_TYPE_STRING, FIELD(log_prefix), "auto", 0, 0, "WHEN",
     "syslog priority prefixes <N> on stderr: auto (under journald), on, off", check_log_prefix},

    {"state.dir", "state-dir", 0, CFG_TYPE_STRING, FIELD(state_dir), "/var/lib/sigfoxd", 0, 0,
     "DIR", "per-device anti-replay state; \"\": in memory only", NULL},
    {"state.flush_interval_s", "state-flush-interval", 0, CFG_TYPE_DOUBLE,
     FIELD(state_flush_interval_s), "1", 0, 3600, "S",
     "write other state changes at most this often (accepted messages: before publishing)",
     NULL},

    {"station.id", "station-id", 0, CFG_TYPE_STRING, FIELD(station_id), "", 0, 0, "NAME",
     "this station's name, in every event as station_id; required with core.endpoint",
     check_station_id},
    {"station.latitude", "station-lat", 0, CFG_TYPE_DOUBLE, FIELD(station_lat), "0", -90, 90, "DEG",
     "station position for the core, WGS84 degrees north (0 and 0: unknown)", NULL},
    {"station.longitude", "station-lng", 0, CFG_TYPE_DOUBLE, FIELD(station_lng), "0", -180, 180,
     "DEG", "station position (WGS84 degrees east)", NULL},
    {"station.altitude_m", "station-alt", 0, CFG_TYPE_DOUBLE, FIELD(station_alt_m), "0", -500, 10000,
     "M", "antenna altitude above sea level", NULL},

    {"core.endpoint", "core", 0, CFG_TYPE_STRING, FIELD(core_endpoint), "", 0, 0, "ENDPOINTS",
     "network core (sigfox-ns) to send frames to, tcp://HOST:PORT; several comma-separated are "
     "a fail-over list; \"\": no core",
     check_core_endpoints},
    {"core.public_key", "core-key", 0, CFG_TYPE_STRING, FIELD(core_public_key), "", 0, 0, "Z85",
     "the core's CURVE public key (40 Z85 characters)", check_z85_key},
    {"core.secret_key_file", "core-secret-key-file", 0, CFG_TYPE_STRING,
     FIELD(core_secret_key_file), "/etc/sigfoxd/station.key", 0, 0, "FILE",
     "this station's CURVE secret key (sigfox-ns keygen; mode 0600)", NULL},
    {"core.spool_dir", "spool-dir", 0, CFG_TYPE_STRING, FIELD(core_spool_dir),
     "/var/lib/sigfoxd/spool", 0, 0, "DIR",
     "batches wait here (fsync'd) until the core acknowledges them", NULL},
    {"core.spool_max_frames", "spool-max-frames", 0, CFG_TYPE_INT, FIELD(core_spool_max_frames),
     "100000", 100, 10000000, "N",
     "spool bound; when full the oldest batches are dropped (logged, counted)", NULL},
    {"core.shutdown_wait_s", NULL, 0, CFG_TYPE_DOUBLE, FIELD(core_shutdown_wait_s), "2", 0, 60, "S",
     "at stop, wait this long for the core's acks (the rest is sent at the next start)", NULL},

    {"downlink.enabled", "downlink", 0, CFG_TYPE_BOOL, FIELD(dl_enabled), "false", 0, 0, NULL,
     "answer B-procedures (BF=1) with downlinks; --tx-file/--tx-device imply it", NULL},
    {"downlink.default_mode", "dl-default-mode", 0, CFG_TYPE_STRING, FIELD(dl_default_mode),
     "callback", 0, 0, "MODE",
     "devices without downlink_mode: callback (downlink_request event) or off", check_default_mode},
    {"downlink.window_margin_s", "dl-margin", 0, CFG_TYPE_DOUBLE, FIELD(dl_window_margin_s), "1",
     0.01, 9, "S", "distance of the DL from both edges of the device's receive window", NULL},
    {"downlink.tx_lead_s", "dl-lead", 0, CFG_TYPE_DOUBLE, FIELD(dl_tx_lead_s), "2", 0.1, 14, "S",
     "build the frame and hand it to the transmitter this long before it starts", NULL},
    {"downlink.answer_timeout_s", "dl-answer-timeout", 0, CFG_TYPE_DOUBLE,
     FIELD(dl_answer_timeout_s), "10", 0, 600, "S",
     "callback mode: answers later than this after the request are refused (0: until the "
     "window's own deadline)",
     NULL},
    {"downlink.duty_cycle", "dl-duty-cycle", 0, CFG_TYPE_DOUBLE, FIELD(dl_duty_cycle), "0.1",
     0.0001, 1, "FRACTION", "on-air share allowed in the duty band (1: no budget)", NULL},
    {"downlink.duty_window_s", NULL, 0, CFG_TYPE_DOUBLE, FIELD(dl_duty_window_s), "3600", 1, 604800,
     "S", "sliding window of the duty-cycle budget", NULL},
    {"downlink.duty_band_lo_hz", NULL, 0, CFG_TYPE_DOUBLE, FIELD(dl_duty_band_lo_hz), "0", 0, 6e9,
     "HZ", "duty band; both 0: RC1 869.40-869.65 MHz, other RCs the DL macro-channel", NULL},
    {"downlink.duty_band_hi_hz", NULL, 0, CFG_TYPE_DOUBLE, FIELD(dl_duty_band_hi_hz), "0", 0, 6e9,
     "HZ", "upper edge of the duty band", NULL},
    {"downlink.daily_quota", "dl-quota", 0, CFG_TYPE_INT, FIELD(dl_daily_quota), "4", -1, 64, "N",
     "downlinks per device per 24 h (-1: no limit; per device: downlink_quota)", check_quota},
    {"downlink.conf_tolerance_s", NULL, 0, CFG_TYPE_DOUBLE, FIELD(dl_conf_tolerance_s), "0.5", 0.01,
     10, "S", "slack on T_CONF when matching the device's confirmation", NULL},
    {"downlink.rx_latency_s", NULL, 0, CFG_TYPE_DOUBLE, FIELD(dl_rx_latency_s), "3", 0.1, 60, "S",
     "how long after a frame the receiver reports it (the lost verdict waits for it)", NULL},
    {"downlink.tx_file", "tx-file", 0, CFG_TYPE_STRING, FIELD(tx_file), "", 0, 0, "DIR",
     "write every transmitted burst to DIR as cf32 + JSON sidecar instead of a radio", NULL},
    {"downlink.tx_device", "tx-device", 0, CFG_TYPE_STRING, FIELD(tx_device), "", 0, 0, "ARGS",
     "SoapySDR transmitter args, e.g. driver=hackrf; \"\": the receiver's device", NULL},
    {"downlink.tx_channel", NULL, 0, CFG_TYPE_INT, FIELD(tx_channel), "0", 0, 15, "N",
     "TX channel of the transmitter", NULL},
    {"downlink.tx_rate_sps", "tx-rate", 0, CFG_TYPE_DOUBLE, FIELD(tx_rate_sps), "0", 0, 100e6,
     "SPS", "TX sample rate; 0: 240k for the file sink, radio.rate_sps for a radio", NULL},
    {"downlink.tx_center_freq_hz", "tx-center-freq", 0, CFG_TYPE_DOUBLE, FIELD(tx_center_freq_hz),
     "0", 0, 6e9, "HZ", "TX centre (the carrier is placed digitally); 0: the RC's DL centre", NULL},
    {"downlink.tx_gain", "tx-gain", 0, CFG_TYPE_STRING, FIELD(tx_gain), "", 0, 0, "GAIN",
     "TX gain: overall dB or per element \"VGA=20,AMP=0\"; \"\": driver default", check_tx_gain},
    {"downlink.tx_antenna", NULL, 0, CFG_TYPE_STRING, FIELD(tx_antenna), "", 0, 0, "NAME",
     "TX antenna port; \"\": driver default", NULL},
    {"downlink.tx_settings", NULL, 0, CFG_TYPE_STRING, FIELD(tx_settings), "", 0, 0, "K=V,...",
     "TX driver settings passed through", check_settings},
    {"downlink.tx_ppm", "tx-ppm", 0, CFG_TYPE_DOUBLE, FIELD(tx_ppm), "0", -100, 100, "PPM",
     "frequency error of the transmitter's reference (corrected digitally)", NULL},
    {"downlink.tx_amplitude", NULL, 0, CFG_TYPE_DOUBLE, FIELD(tx_amplitude), "0.7", 0.01, 1,
     "FRACTION", "peak amplitude of a burst, of the DAC's full scale", NULL},

    {"record.dir", "record", 0, CFG_TYPE_STRING, FIELD(record_dir), "", 0, 0, "DIR",
     "live: record the raw input as SigMF in DIR (rotating files, every decoded frame "
     "annotated); \"\": no recording",
     NULL},
    {"record.max_mb", "record-max-mb", 0, CFG_TYPE_INT, FIELD(record_max_mb), "1024", 1, 1048576,
     "MB", "sample data per recording file (MiB); then a new file starts", NULL},
    {"record.max_files", "record-max-files", 0, CFG_TYPE_INT, FIELD(record_max_files), "10", 1,
     100000, "N", "recordings kept in record.dir; the oldest are deleted", NULL},
    {"snippets.dir", "snippets", 0, CFG_TYPE_STRING, FIELD(snippet_dir), "", 0, 0, "DIR",
     "live: a short SigMF file in DIR for every burst detected but not decoded; \"\": none",
     NULL},
    {"snippets.max_files", "snippets-max", 0, CFG_TYPE_INT, FIELD(snippet_max_files), "1000", 1,
     1000000, "N", "snippets in snippets.dir at most; then none are written (counted)", NULL},
    {"snippets.min_interval_s", "snippets-interval", 0, CFG_TYPE_DOUBLE,
     FIELD(snippet_min_interval_s), "1", 0, 86400, "S",
     "at least this much stream time between two snippets (the rest are counted)", NULL},
    {"snippets.margin_s", "snippets-margin", 0, CFG_TYPE_DOUBLE, FIELD(snippet_margin_s), "0.5", 0,
     2, "S", "input kept before and after the detected burst", NULL},

    {"monarch.enabled", "monarch", 0, CFG_TYPE_BOOL, FIELD(monarch_enabled), "false", 0, 0, NULL,
     "transmit Monarch beacons every 5 min (+ up to 10 s); needs freq_hz, df1_hz, df2_hz", NULL},
    {"monarch.freq_hz", "monarch-freq", 0, CFG_TYPE_DOUBLE, FIELD(monarch_freq_hz), "0", 0, 6e9,
     "HZ", "beacon frequency (no default: the seed has no RC table)", NULL},
    {"monarch.df1_hz", "monarch-df1", 0, CFG_TYPE_DOUBLE, FIELD(monarch_df1_hz), "0", 0, 2000, "HZ",
     "carrier spacing of the 362 ms pattern: 1024, 1260.3 or 1489.4", check_monarch_df},
    {"monarch.df2_hz", "monarch-df2", 0, CFG_TYPE_DOUBLE, FIELD(monarch_df2_hz), "0", 0, 2000, "HZ",
     "carrier spacing of the 38 ms pattern: 1024, 1260.3 or 1489.4", check_monarch_df},
};

#define NOPTIONS (sizeof options / sizeof options[0])
_Static_assert(NOPTIONS <= CFG_MAX_OPTIONS, "raise CFG_MAX_OPTIONS");

/* Groups a file may hold. */
static const char *const groups[] = {"radio",   "receiver", "api",    "devices",
                                     "log",     "state",    "station", "core",
                                     "downlink", "record",  "snippets", "monarch"};

const cfg_option_t *cfg_options(size_t *count)
{
    if (count)
        *count = NOPTIONS;
    return options;
}

const cfg_option_t *cfg_find_path(const char *path)
{
    for (size_t i = 0; path && i < NOPTIONS; i++)
        if (options[i].path && strcmp(options[i].path, path) == 0)
            return &options[i];
    return NULL;
}

static size_t option_index(const cfg_option_t *opt)
{
    return (size_t)(opt - options);
}

cfg_source_t cfg_source(const cfg_t *cfg, const cfg_option_t *opt)
{
    if (!cfg || !opt || opt < options || opt >= options + NOPTIONS)
        return CFG_SRC_DEFAULT;
    return (cfg_source_t)cfg->sources[option_index(opt)];
}

/* ---- values ------------------------------------------------------------------------- */

int cfg_parse_number(const char *text, double *value)
{
    if (!text || !value)
        return -1;
    while (isspace((unsigned char)*text))
        text++;
    if (!*text)
        return -1;
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (end == text || errno == ERANGE || !isfinite(v))
        return -1;
    /* strtod accepts "inf"/"nan" and hex floats; isfinite() rejects the former, and a
     * hex float is harmless. */
    switch (*end) {
    case 'k':
    case 'K':
        v *= 1e3;
        end++;
        break;
    case 'M':
        v *= 1e6;
        end++;
        break;
    case 'G':
        v *= 1e9;
        end++;
        break;
    default:
        break;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *value = v;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Stores text into opt's field after parsing and validation. `where` names the source
 * for messages ("--rate" or "sigfoxd.conf:12: radio.rate_sps"). */
static int set_value(cfg_t *cfg, const cfg_option_t *opt, const char *text, const char *where,
                     char *err, size_t err_len)
{
    char *field = (char *)cfg + opt->offset;
    char reason[256] = "";
    switch (opt->type) {
    case CFG_TYPE_ACTION:
        return 0;
    case CFG_TYPE_STRING: {
        size_t len = strlen(text);
        if (len >= opt->size) {
            snprintf(err, err_len, "%s: value is too long (%zu characters, at most %zu)", where,
                     len, opt->size - 1);
            return CFG_ERR_USAGE;
        }
        /* Control characters have no place in a path, a name or an endpoint, and would
         * reach the log and the config command's reply. */
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7F) {
                snprintf(err, err_len, "%s: control character (0x%02X) in the value", where,
                         (unsigned)(unsigned char)text[i]);
                return CFG_ERR_USAGE;
            }
        char tmp[CFG_PATH_MAX];
        memcpy(tmp, text, len + 1);
        if (opt->check && opt->check(tmp, reason, sizeof reason) != 0) {
            snprintf(err, err_len, "%s: %s", where, reason);
            return CFG_ERR_USAGE;
        }
        memcpy(field, tmp, strlen(tmp) + 1);
        return 0;
    }
    case CFG_TYPE_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(text, &end, 10);
        while (end != text && isspace((unsigned char)*end))
            end++;
        if (end == text || *end || errno == ERANGE) {
            snprintf(err, err_len, "%s: '%s' is not an integer", where, text);
            return CFG_ERR_USAGE;
        }
        if ((double)v < opt->min || (double)v > opt->max) {
            snprintf(err, err_len, "%s: %lld is out of range %.0f .. %.0f", where, v, opt->min,
                     opt->max);
            return CFG_ERR_USAGE;
        }
        int iv = (int)v;
        if (opt->check && opt->check(&iv, reason, sizeof reason) != 0) {
            snprintf(err, err_len, "%s: %s", where, reason);
            return CFG_ERR_USAGE;
        }
        *(int *)field = iv;
        return 0;
    }
    case CFG_TYPE_DOUBLE: {
        double v;
        if (cfg_parse_number(text, &v) != 0) {
            snprintf(err, err_len, "%s: '%s' is not a number (examples: 868.13M, 1024k, 2.5)",
                     where, text);
            return CFG_ERR_USAGE;
        }
        if (v < opt->min || v > opt->max) {
            snprintf(err, err_len, "%s: %.10g is out of range %.10g .. %.10g", where, v, opt->min,
                     opt->max);
            return CFG_ERR_USAGE;
        }
        if (opt->check && opt->check(&v, reason, sizeof reason) != 0) {
            snprintf(err, err_len, "%s: %s", where, reason);
            return CFG_ERR_USAGE;
        }
        *(double *)field = v;
        return 0;
    }
    case CFG_TYPE_BOOL: {
        bool v;
        if (parse_bool(text, &v) != 0) {
            snprintf(err, err_len, "%s: '%s' is not a boolean (true/false, yes/no, on/off)", where,
                     text);
            return CFG_ERR_USAGE;
        }
        *(bool *)field = v;
        return 0;
    }
    }
    snprintf(err, err_len, "%s: internal error: unknown option type", where);
    return CFG_ERR_ARG;
}

static int cfg_set(cfg_t *cfg, const cfg_option_t *opt, const char *value, char *err, size_t err_len)
{
    if (!cfg || !opt || opt < options || opt >= options + NOPTIONS)
        return CFG_ERR_ARG;
    char where[64];
    snprintf(where, sizeof where, "--%s", opt->flag ? opt->flag : opt->path);
    if (!value) {
        if (opt->type != CFG_TYPE_BOOL && opt->type != CFG_TYPE_ACTION) {
            snprintf(err, err_len, "%s: needs a value", where);
            return CFG_ERR_USAGE;
        }
        value = "true";
    }
    int rc = set_value(cfg, opt, value, where, err, err_len);
    if (rc == 0)
        cfg->sources[option_index(opt)] = CFG_SRC_FLAG;
    return rc;
}

int cfg_defaults(cfg_t *cfg)
{
    if (!cfg)
        return CFG_ERR_ARG;
    memset(cfg, 0, sizeof *cfg);
    char err[256];
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (options[i].type == CFG_TYPE_ACTION)
            continue;
        /* A default that fails its own validation is a bug in the table: say so loudly. */
        if (set_value(cfg, &options[i], options[i].def,
                      options[i].flag ? options[i].flag : options[i].path, err, sizeof err) != 0) {
            log_error("Configuration table has an invalid default, %s", err);
            return CFG_ERR_ARG;
        }
        cfg->sources[i] = CFG_SRC_DEFAULT;
    }
    return 0;
}

void cfg_free(cfg_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->devices);
    memset(cfg, 0, sizeof *cfg);
}

static int cfg_copy(cfg_t *dst, const cfg_t *src)
{
    if (!dst || !src)
        return CFG_ERR_ARG;
    *dst = *src;
    dst->devices = NULL;
    if (src->ndevices) {
        dst->devices = malloc(src->ndevices * sizeof *dst->devices);
        if (!dst->devices) {
            dst->ndevices = 0;
            return CFG_ERR_NOMEM;
        }
        memcpy(dst->devices, src->devices, src->ndevices * sizeof *dst->devices);
    }
    return 0;
}

/* ---- file --------------------------------------------------------------------------- */

static const char *setting_type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a floating-point number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "an unknown type";
    }
}

/* "file:line: path" for messages. */
static void setting_where(const config_setting_t *s, const char *path, const char *file, char *out,
                          size_t len)
{
    snprintf(out, len, "%s:%u: %s", file, config_setting_source_line(s), path);
}

/* Converts a scalar setting to the text a flag would carry, checking the libconfig type
 * against the option type. */
static int setting_text(const config_setting_t *s, const cfg_option_t *opt, const char *where,
                        char *text, size_t text_len, char *err, size_t err_len)
{
    int t = config_setting_type(s);
    const char *expected = NULL;
    switch (opt->type) {
    case CFG_TYPE_STRING:
        if (t == CONFIG_TYPE_STRING) {
            const char *v = config_setting_get_string(s);
            if (strlen(v) >= text_len) {
                snprintf(err, err_len, "%s: value is too long", where);
                return CFG_ERR_USAGE;
            }
            snprintf(text, text_len, "%s", v);
            return 0;
        }
        expected = "a string (in double quotes)";
        break;
    case CFG_TYPE_INT:
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
            snprintf(text, text_len, "%lld", config_setting_get_int64(s));
            return 0;
        }
        expected = "an integer";
        break;
    case CFG_TYPE_DOUBLE:
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
            snprintf(text, text_len, "%lld", config_setting_get_int64(s));
            return 0;
        }
        if (t == CONFIG_TYPE_FLOAT) {
            snprintf(text, text_len, "%.17g", config_setting_get_float(s));
            return 0;
        }
        if (t == CONFIG_TYPE_STRING) { /* "868.13M" */
            snprintf(text, text_len, "%s", config_setting_get_string(s));
            return 0;
        }
        expected = "a number (or a string like \"868.13M\")";
        break;
    case CFG_TYPE_BOOL:
        if (t == CONFIG_TYPE_BOOL) {
            snprintf(text, text_len, "%s", config_setting_get_bool(s) ? "true" : "false");
            return 0;
        }
        expected = "a boolean (true or false)";
        break;
    case CFG_TYPE_ACTION:
        break;
    }
    snprintf(err, err_len, "%s: expected %s, got %s", where, expected ? expected : "nothing",
             setting_type_name(t));
    return CFG_ERR_USAGE;
}

/* Warns about an unknown key; suggests the group a misplaced key belongs to. */
static void warn_unknown(const config_setting_t *s, const char *path, const char *file)
{
    const char *name = config_setting_name(s);
    const char *hint = NULL;
    for (size_t i = 0; name && i < NOPTIONS; i++) {
        const char *p = options[i].path;
        const char *dot = p ? strchr(p, '.') : NULL;
        if (dot && strcmp(dot + 1, name) == 0 && strcmp(p, path) != 0) {
            hint = p;
            break;
        }
    }
    if (hint)
        log_warn("%s:%u: unknown key %s ignored (did you mean %s?)", file,
                 config_setting_source_line(s), path, hint);
    else
        log_warn("%s:%u: unknown key %s ignored", file, config_setting_source_line(s), path);
}

static int parse_device(const config_setting_t *g, const char *file, cfg_device_t *d, char *err,
                        size_t err_len)
{
    char where[CFG_PATH_MAX + 64];
    unsigned line = config_setting_source_line(g);
    memset(d, 0, sizeof *d);
    d->line = (int)line;
    d->dl_mode = CFG_DL_MODE_DEFAULT;
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        snprintf(err, err_len,
                 "%s:%u: devices.list: each device must be a group { ep_id = \"...\"; key = "
                 "\"...\"; }, got %s",
                 file, line, setting_type_name(config_setting_type(g)));
        return CFG_ERR_USAGE;
    }
    bool have_id = false, have_key = false, have_dl = false;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        snprintf(where, sizeof where, "%s:%u: devices.list.%s", file, config_setting_source_line(m),
                 name);
        int t = config_setting_type(m);
        if (strcmp(name, "ep_id") == 0) {
            if (t == CONFIG_TYPE_STRING) {
                if (hex_to_ep_id(config_setting_get_string(m), &d->ep_id) != 0) {
                    snprintf(err, err_len, "%s: '%s' is not 8 hex digits", where,
                             config_setting_get_string(m));
                    return CFG_ERR_USAGE;
                }
            } else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
                long long v = config_setting_get_int64(m);
                if (v < 0 || v > 0xFFFFFFFFLL) {
                    snprintf(err, err_len, "%s: %lld does not fit in 32 bits", where, v);
                    return CFG_ERR_USAGE;
                }
                d->ep_id = (uint32_t)v;
            } else {
                snprintf(err, err_len, "%s: expected a string of 8 hex digits, got %s", where,
                         setting_type_name(t));
                return CFG_ERR_USAGE;
            }
            have_id = true;
        } else if (strcmp(name, "key") == 0) {
            if (t != CONFIG_TYPE_STRING || hex_to_bytes(config_setting_get_string(m), d->key,
                                                        sizeof d->key) != KEYSTORE_KEY_BYTES) {
                snprintf(err, err_len, "%s: expected a string of 32 hex digits (AES-128 key)",
                         where);
                return CFG_ERR_USAGE;
            }
            have_key = true;
        } else if (strcmp(name, "name") == 0) {
            if (t != CONFIG_TYPE_STRING || strlen(config_setting_get_string(m)) >= sizeof d->name) {
                snprintf(err, err_len, "%s: expected a string of at most %zu characters", where,
                         sizeof d->name - 1);
                return CFG_ERR_USAGE;
            }
            const char *nm = config_setting_get_string(m);
            for (const char *c = nm; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7F) {
                    snprintf(err, err_len, "%s: control character (0x%02X) in the name", where,
                             (unsigned)(unsigned char)*c);
                    return CFG_ERR_USAGE;
                }
            snprintf(d->name, sizeof d->name, "%s", nm);
        } else if (strcmp(name, "daily_messages") == 0) {
            const cfg_option_t *o = cfg_find_path("receiver.daily_messages");
            long long v = config_setting_get_int64(m);
            if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < o->min || v > o->max) {
                snprintf(err, err_len, "%s: expected an integer %.0f .. %.0f", where, o->min,
                         o->max);
                return CFG_ERR_USAGE;
            }
            d->daily_messages = (int)v;
        } else if (strcmp(name, "downlink_mode") == 0) {
            const char *v = t == CONFIG_TYPE_STRING ? config_setting_get_string(m) : "";
            if (strcasecmp(v, "callback") == 0)
                d->dl_mode = CFG_DL_MODE_CALLBACK;
            else if (strcasecmp(v, "direct") == 0)
                d->dl_mode = CFG_DL_MODE_DIRECT;
            else if (strcasecmp(v, "off") == 0)
                d->dl_mode = CFG_DL_MODE_OFF;
            else {
                snprintf(err, err_len, "%s: expected \"direct\", \"callback\" or \"off\"", where);
                return CFG_ERR_USAGE;
            }
            have_dl = true;
        } else if (strcmp(name, "downlink_payload") == 0) {
            const char *v = t == CONFIG_TYPE_STRING ? config_setting_get_string(m) : "";
            size_t len = strlen(v);
            bool hex = len == 2 * CFG_DL_PAYLOAD_BYTES;
            for (size_t k = 0; hex && k < len; k++)
                hex = isxdigit((unsigned char)v[k]) != 0;
            if (!hex ||
                hex_to_bytes(v, d->dl_payload, sizeof d->dl_payload) != CFG_DL_PAYLOAD_BYTES) {
                snprintf(err, err_len,
                         "%s: expected a string of exactly 16 hex digits (the 8-byte downlink "
                         "payload)",
                         where);
                return CFG_ERR_USAGE;
            }
            d->has_dl_payload = true;
            have_dl = true;
        } else if (strcmp(name, "downlink_quota") == 0) {
            long long v = config_setting_get_int64(m);
            if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < -1 || v == 0 || v > 64) {
                snprintf(err, err_len, "%s: expected -1 (no limit) or an integer 1 .. 64", where);
                return CFG_ERR_USAGE;
            }
            d->dl_quota = (int)v;
            have_dl = true;
        } else {
            log_warn("%s:%u: unknown key devices.list.%s ignored", file,
                     config_setting_source_line(m), name);
        }
    }
    if (!have_id || (!have_key && !have_dl)) {
        snprintf(err, err_len, "%s:%u: devices.list: a device needs %s", file, line,
                 !have_id ? "an ep_id"
                          : "a key (or downlink settings, its key being in the keys file)");
        return CFG_ERR_USAGE;
    }
    d->has_key = have_key;
    /* A payload makes a device direct unless it says otherwise; direct needs one. */
    if (d->has_dl_payload && d->dl_mode == CFG_DL_MODE_DEFAULT)
        d->dl_mode = CFG_DL_MODE_DIRECT;
    if (d->dl_mode == CFG_DL_MODE_DIRECT && !d->has_dl_payload) {
        snprintf(err, err_len,
                 "%s:%u: devices.list: downlink_mode \"direct\" needs downlink_payload (16 hex "
                 "digits)",
                 file, line);
        return CFG_ERR_USAGE;
    }
    return 0;
}

static int parse_devices(cfg_t *cfg, const config_setting_t *list, const char *file, char *err,
                         size_t err_len)
{
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
        snprintf(err, err_len, "%s:%u: devices.list: expected a list ( {...}, {...} ), got %s",
                 file, config_setting_source_line(list), setting_type_name(t));
        return CFG_ERR_USAGE;
    }
    int n = config_setting_length(list);
    cfg_device_t *devs = n ? calloc((size_t)n, sizeof *devs) : NULL;
    if (n && !devs) {
        snprintf(err, err_len, "out of memory reading devices.list");
        return CFG_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        int rc =
            parse_device(config_setting_get_elem(list, (unsigned)i), file, &devs[i], err, err_len);
        if (rc != 0) {
            free(devs);
            return rc;
        }
    }
    free(cfg->devices);
    cfg->devices = devs;
    cfg->ndevices = (size_t)n;
    return 0;
}

int cfg_load_file(cfg_t *cfg, const char *path, char *err, size_t err_len)
{
    if (!cfg || !path)
        return CFG_ERR_ARG;
    /* Read it ourselves: a regular file of bounded size (a FIFO or /dev/zero must not hang
     * or grow the daemon), and libconfig reports only "file I/O error". */
    char *text_all = NULL, why[512];
    size_t text_len = 0;
    if (infile_read_all(path, "configuration file", INFILE_MAX_CONFIG_BYTES, &text_all,
                        &text_len, why, sizeof why) != 0) {
        snprintf(err, err_len, "cannot read %s", why);
        return CFG_ERR_IO;
    }
    if (strlen(text_all) != text_len) {
        snprintf(err, err_len, "%s: NUL byte in the configuration file", path);
        free(text_all);
        return CFG_ERR_USAGE;
    }
    config_t cf;
    config_init(&cf);
    config_set_options(&cf, 0); /* no auto-conversion: a wrong type is an error */
    /* libconfig 1.5 (Debian) leaks a string token on some syntax errors (a file of only
     * ""): hyperrealm/libconfig#142, fixed upstream by PR #155 (1.7.3). Suppressed for
     * the leak checkers in scripts/lsan.supp and scripts/valgrind.supp; it costs a few
     * bytes once, on a start that fails anyway. */
    int ok = config_read_string(&cf, text_all);
    free(text_all);
    if (!ok) {
        snprintf(err, err_len, "%s:%d: syntax error: %s", path, config_error_line(&cf),
                 config_error_text(&cf));
        config_destroy(&cf);
        return CFG_ERR_USAGE;
    }

    /* Work on a copy so that a failure leaves cfg as it was. */
    cfg_t tmp;
    int rc = cfg_copy(&tmp, cfg);
    if (rc != 0) {
        snprintf(err, err_len, "out of memory reading %s", path);
        config_destroy(&cf);
        return rc;
    }
    config_setting_t *root = config_root_setting(&cf);
    char where[CFG_PATH_MAX + 128];
    char text[CFG_PATH_MAX];
    for (int gi = 0; rc == 0 && gi < config_setting_length(root); gi++) {
        config_setting_t *g = config_setting_get_elem(root, (unsigned)gi);
        const char *gname = config_setting_name(g);
        bool known = false;
        for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++)
            known = known || strcmp(gname, groups[k]) == 0;
        if (!known || config_setting_type(g) != CONFIG_TYPE_GROUP) {
            if (known) {
                snprintf(err, err_len, "%s:%u: %s: expected a group { ... }, got %s", path,
                         config_setting_source_line(g), gname,
                         setting_type_name(config_setting_type(g)));
                rc = CFG_ERR_USAGE;
            } else {
                warn_unknown(g, gname, path);
            }
            continue;
        }
        for (int ki = 0; rc == 0 && ki < config_setting_length(g); ki++) {
            config_setting_t *s = config_setting_get_elem(g, (unsigned)ki);
            char key[256];
            snprintf(key, sizeof key, "%s.%s", gname, config_setting_name(s));
            setting_where(s, key, path, where, sizeof where);
            const cfg_option_t *opt = cfg_find_path(key);
            if (opt) {
                rc = setting_text(s, opt, where, text, sizeof text, err, err_len);
                if (rc == 0)
                    rc = set_value(&tmp, opt, text, where, err, err_len);
                if (rc == 0)
                    tmp.sources[option_index(opt)] = CFG_SRC_FILE;
            } else if (strcmp(key, "devices.list") == 0) {
                rc = parse_devices(&tmp, s, path, err, err_len);
            } else {
                warn_unknown(s, key, path);
            }
        }
    }
    config_destroy(&cf);
    if (rc != 0) {
        cfg_free(&tmp);
        return rc;
    }
    snprintf(tmp.config_file, sizeof tmp.config_file, "%s", path);
    free(cfg->devices);
    *cfg = tmp;
    return 0;
}

/* ---- command line ------------------------------------------------------------------- */

typedef struct {
    const cfg_option_t *opt;
    const char *value;
} pending_t;

int cfg_from_args(cfg_t *cfg, cfg_actions_t *actions, int argc, char *const argv[],
                  const char *default_file, char *err, size_t err_len)
{
    if (!cfg || !actions || argc < 1 || !argv)
        return CFG_ERR_ARG;
    memset(actions, 0, sizeof *actions);
    memset(cfg, 0, sizeof *cfg);

    struct option longopts[NOPTIONS + 1];
    char shortopts[3 * NOPTIONS + 2];
    size_t nl = 0, ns = 0;
    shortopts[ns++] = ':'; /* report a missing argument as ':' */
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!options[i].flag)
            continue;
        int has_arg = options[i].arg                     ? required_argument
                      : options[i].type == CFG_TYPE_BOOL ? optional_argument
                                                         : no_argument;
        longopts[nl++] = (struct option){options[i].flag, has_arg, NULL, 1000 + (int)i};
        if (options[i].short_flag) {
            shortopts[ns++] = (char)options[i].short_flag;
            if (has_arg == required_argument)
                shortopts[ns++] = ':';
        }
    }
    longopts[nl] = (struct option){NULL, 0, NULL, 0};
    shortopts[ns] = '\0';

    pending_t *pending = calloc((size_t)argc, sizeof *pending);
    if (!pending) {
        snprintf(err, err_len, "out of memory");
        return CFG_ERR_NOMEM;
    }
    size_t npending = 0;
    const char *config_file = NULL;
    int rc = 0;
    optind = 0; /* GNU: full re-initialisation, so that tests can call this repeatedly */
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (c == -1)
            break;
        if (c == '?' || c == ':') {
            const char *arg = argv[optind - 1];
            if (c == ':')
                snprintf(err, err_len, "option %s needs a value (see --help)", arg);
            else if (optopt && !(arg[0] == '-' && arg[1] == '-'))
                snprintf(err, err_len, "unknown option -%c (see --help)", optopt);
            else
                snprintf(err, err_len, "unknown or ambiguous option %s (see --help)", arg);
            rc = CFG_ERR_USAGE;
            break;
        }
        const cfg_option_t *opt = NULL;
        if (c >= 1000)
            opt = &options[c - 1000];
        else
            for (size_t i = 0; i < NOPTIONS && !opt; i++)
                if (options[i].short_flag == c)
                    opt = &options[i];
        if (!opt) {
            snprintf(err, err_len, "internal error parsing options");
            rc = CFG_ERR_ARG;
            break;
        }
        if (opt->type == CFG_TYPE_ACTION) {
            if (strcmp(opt->flag, "help") == 0)
                actions->help = true;
            else if (strcmp(opt->flag, "version") == 0)
                actions->version = true;
            else if (strcmp(opt->flag, "check-config") == 0)
                actions->check_config = true;
            else if (strcmp(opt->flag, "print-config") == 0)
                actions->print_config = true;
            else if (strcmp(opt->flag, "no-config") == 0)
                actions->no_config = true;
            else if (strcmp(opt->flag, "config") == 0) {
                if (strcmp(optarg, "0") == 0)
                    actions->no_config = true;
                else
                    config_file = optarg;
            }
            continue;
        }
        pending[npending++] = (pending_t){opt, optarg};
    }
    if (rc == 0 && optind < argc) {
        snprintf(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
        rc = CFG_ERR_USAGE;
    }
    if (rc == 0 && actions->no_config && config_file) {
        snprintf(err, err_len, "--config %s and --no-config contradict each other", config_file);
        rc = CFG_ERR_USAGE;
    }
    if (rc != 0 || actions->help || actions->version) {
        free(pending);
        if (rc == 0)
            rc = cfg_defaults(cfg);
        return rc;
    }

    rc = cfg_defaults(cfg);
    if (rc == 0 && !actions->no_config) {
        if (!default_file)
            default_file = CFG_DEFAULT_FILE;
        if (config_file) {
            rc = cfg_load_file(cfg, config_file, err, err_len);
        } else if (access(default_file, F_OK) == 0) {
            rc = cfg_load_file(cfg, default_file, err, err_len);
        }
    }
    for (size_t i = 0; rc == 0 && i < npending; i++)
        rc = cfg_set(cfg, pending[i].opt, pending[i].value, err, err_len);
    free(pending);
    /* One transmitter: --tx-file on the command line replaces a configured tx_device (a
     * replay of the station's own configuration into files), and --tx-device a
     * configured tx_file. */
    const cfg_option_t *tf = cfg_find_path("downlink.tx_file");
    const cfg_option_t *td = cfg_find_path("downlink.tx_device");
    if (rc == 0 && cfg_source(cfg, tf) == CFG_SRC_FLAG && cfg_source(cfg, td) == CFG_SRC_FILE)
        cfg->tx_device[0] = '\0';
    if (rc == 0 && cfg_source(cfg, td) == CFG_SRC_FLAG && cfg_source(cfg, tf) == CFG_SRC_FILE)
        cfg->tx_file[0] = '\0';
    if (rc == 0)
        rc = cfg_validate(cfg, err, err_len);
    if (rc != 0)
        cfg_free(cfg);
    return rc;
}

bool cfg_downlink_wanted(const cfg_t *cfg)
{
    if (!cfg)
        return false;
    return cfg->dl_enabled || cfg_source(cfg, cfg_find_path("downlink.tx_file")) == CFG_SRC_FLAG ||
           cfg_source(cfg, cfg_find_path("downlink.tx_device")) == CFG_SRC_FLAG;
}

double cfg_tx_rate(const cfg_t *cfg)
{
    if (!cfg)
        return 0;
    if (cfg->tx_rate_sps > 0)
        return cfg->tx_rate_sps;
    return cfg->tx_file[0] ? 240e3 : cfg->rate_sps;
}

/* Downlink and Monarch cross-checks: sink choice, the transmitter's band against the RC's
 * DL macro-channel and the beacon, Monarch's three explicit values. */
static int validate_downlink(const cfg_t *cfg, const rc_params_t *rc, char *err, size_t err_len)
{
    bool lo0 = cfg->dl_duty_band_lo_hz == 0, hi0 = cfg->dl_duty_band_hi_hz == 0;
    if (lo0 != hi0 || (!lo0 && cfg->dl_duty_band_lo_hz >= cfg->dl_duty_band_hi_hz)) {
        snprintf(err, err_len,
                 "downlink.duty_band_lo_hz / duty_band_hi_hz: give both (lo < hi) or neither "
                 "(got %.0f .. %.0f Hz)",
                 cfg->dl_duty_band_lo_hz, cfg->dl_duty_band_hi_hz);
        return CFG_ERR_USAGE;
    }
    if (cfg->monarch_enabled &&
        (cfg->monarch_freq_hz == 0 || cfg->monarch_df1_hz == 0 || cfg->monarch_df2_hz == 0)) {
        snprintf(err, err_len,
                 "monarch.enabled needs monarch.freq_hz, monarch.df1_hz and monarch.df2_hz "
                 "(the seed gives no RC -> frequency/dF table, so sigfoxd has no defaults; "
                 "docs/downlink.md)");
        return CFG_ERR_USAGE;
    }
    bool dl = cfg_downlink_wanted(cfg);
    if (!dl && !cfg->monarch_enabled)
        return 0;
    if (cfg->tx_file[0] && cfg->tx_device[0]) {
        snprintf(err, err_len,
                 "downlink.tx_file and downlink.tx_device are both set: give one transmitter");
        return CFG_ERR_USAGE;
    }
    double rate = cfg_tx_rate(cfg);
    double center = cfg->tx_center_freq_hz ? cfg->tx_center_freq_hz : rc->dl_center_hz;
    /* gfskmod/txsink: a carrier needs |offset| + 2 kHz inside rate / 2. */
    double need = fabs(rc->dl_center_hz - center) + RC_MACRO_CHANNEL_HZ / 2 + 2000.0;
    if (dl && need > rate / 2) {
        snprintf(err, err_len,
                 "downlink.tx_rate_sps / tx_center_freq_hz: the transmitter covers %.6f MHz +/- "
                 "%.0f kHz, not the %s downlink macro-channel %.6f MHz +/- %.0f kHz",
                 center / 1e6, rate / 2e3, rc->name, rc->dl_center_hz / 1e6,
                 RC_MACRO_CHANNEL_HZ / 2e3);
        return CFG_ERR_USAGE;
    }
    if (cfg->monarch_enabled) {
        double half = 6 * fmax(cfg->monarch_df1_hz, cfg->monarch_df2_hz) + 1000.0;
        if (fabs(cfg->monarch_freq_hz - center) + half > rate / 2) {
            snprintf(err, err_len,
                     "monarch.freq_hz: %.1f Hz (carriers to +/- %.0f Hz) is outside the "
                     "transmitter's band %.6f MHz +/- %.0f kHz (downlink.tx_center_freq_hz, "
                     "tx_rate_sps)",
                     cfg->monarch_freq_hz, half, center / 1e6, rate / 2e3);
            return CFG_ERR_USAGE;
        }
    }
    return 0;
}

int cfg_validate(const cfg_t *cfg, char *err, size_t err_len)
{
    if (!cfg)
        return CFG_ERR_ARG;
    const rc_params_t *rc = rc_lookup(cfg->rc);
    if (!rc) {
        snprintf(err, err_len, "radio.rc: unknown radio configuration '%s'", cfg->rc);
        return CFG_ERR_USAGE;
    }
    /* In live mode the macro-channel (§2.2.1: 192 kHz) must lie inside the captured band;
     * a replay takes its centre from the file, so it is checked when the file is open. */
    if (!cfg->replay_file[0]) {
        double chan = cfg->channel_freq_hz ? cfg->channel_freq_hz : rc->ul_center_hz;
        double tuner = cfg->center_freq_hz ? cfg->center_freq_hz : chan;
        double half_band = cfg->rate_sps / 2.0;
        if (fabs(chan - tuner) + RC_MACRO_CHANNEL_HZ / 2.0 > half_band) {
            snprintf(err, err_len,
                     "the macro-channel %.6f MHz +/- %.0f kHz does not fit in the captured "
                     "band %.6f MHz +/- %.0f kHz (radio.center_freq_hz, radio.rate_sps)",
                     chan / 1e6, RC_MACRO_CHANNEL_HZ / 2e3, tuner / 1e6, half_band / 1e3);
            return CFG_ERR_USAGE;
        }
    }
    /* One socket per endpoint: the second bind would fail at start (exit 1, a restart
     * loop under systemd) after --check-config said OK. */
    if (cfg->pub_endpoint[0] && strcmp(cfg->pub_endpoint, cfg->cmd_endpoint) == 0) {
        snprintf(err, err_len,
                 "api.pub_endpoint and api.cmd_endpoint are both '%s': each needs its own "
                 "endpoint",
                 cfg->pub_endpoint);
        return CFG_ERR_USAGE;
    }
    /* The recordings are the live input: a replay has none. Given on the command line
     * with --replay they are a mistake; from the station's configuration file they are
     * left out of the replay (sigfoxd.c says so). */
    static const char *const live_dirs[] = {"record.dir", "snippets.dir"};
    for (size_t i = 0; i < 2; i++) {
        const cfg_option_t *o = cfg_find_path(live_dirs[i]);
        const char *v = (const char *)cfg + o->offset;
        if (cfg->replay_file[0] && v[0] && cfg_source(cfg, o) == CFG_SRC_FLAG) {
            snprintf(err, err_len, "--%s records the live radio input: it does not go with --replay",
                     o->flag);
            return CFG_ERR_USAGE;
        }
        struct stat rs;
        if (v[0] && stat(v, &rs) == 0 && !S_ISDIR(rs.st_mode)) {
            snprintf(err, err_len, "%s '%s' exists and is not a directory", o->path, v);
            return CFG_ERR_USAGE;
        }
    }
    /* state.dir must be a directory (created at start when missing). */
    struct stat sd;
    if (cfg->state_dir[0] && stat(cfg->state_dir, &sd) == 0 && !S_ISDIR(sd.st_mode)) {
        snprintf(err, err_len, "state.dir '%s' exists and is not a directory", cfg->state_dir);
        return CFG_ERR_USAGE;
    }
    for (size_t i = 0; i < cfg->ndevices; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->devices[i].ep_id == cfg->devices[j].ep_id) {
                snprintf(err, err_len, "%s:%d: devices.list: device %08X is listed twice",
                         cfg->config_file, cfg->devices[i].line, cfg->devices[i].ep_id);
                return CFG_ERR_USAGE;
            }
    if (cfg->core_endpoint[0] && !cfg->station_id[0]) {
        snprintf(err, err_len, "core.endpoint is set but station.id is empty: the core needs "
                               "this station's name (--station-id NAME)");
        return CFG_ERR_USAGE;
    }
    if (cfg->core_endpoint[0] && !cfg->core_public_key[0]) {
        snprintf(err, err_len, "core.endpoint is set but core.public_key is empty (the core's "
                               "CURVE public key, --core-key Z85)");
        return CFG_ERR_USAGE;
    }
    return validate_downlink(cfg, rc, err, err_len);
}

bool cfg_station_has_position(const cfg_t *cfg)
{
    return cfg->station_lat != 0 || cfg->station_lng != 0;
}

size_t cfg_core_endpoints(const cfg_t *cfg, char (*bufs)[CFG_STR_MAX], size_t max)
{
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", cfg->core_endpoint);
    char *save = NULL;
    size_t n = 0;
    for (char *tok = strtok_r(buf, ", ", &save); tok && n < max; tok = strtok_r(NULL, ", ", &save))
        snprintf(bufs[n++], CFG_STR_MAX, "%s", tok);
    return n;
}

/* ---- output ------------------------------------------------------------------------- */

static const char *source_name(cfg_source_t s)
{
    return s == CFG_SRC_FILE ? "file" : s == CFG_SRC_FLAG ? "flag" : "default";
}

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\x%02X", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void print_value(FILE *out, const cfg_t *cfg, const cfg_option_t *opt)
{
    const char *field = (const char *)cfg + opt->offset;
    switch (opt->type) {
    case CFG_TYPE_STRING:
        print_string(out, field);
        break;
    case CFG_TYPE_INT:
        fprintf(out, "%d", *(const int *)field);
        break;
    case CFG_TYPE_DOUBLE: {
        /* libconfig needs a '.' or exponent to read a float back as a float. */
        char buf[64];
        snprintf(buf, sizeof buf, "%.15g", *(const double *)field);
        if (!strpbrk(buf, ".eE"))
            strcat(buf, ".0");
        fputs(buf, out);
        break;
    }
    case CFG_TYPE_BOOL:
        fputs(*(const bool *)field ? "true" : "false", out);
        break;
    case CFG_TYPE_ACTION:
        break;
    }
}

void cfg_print_help(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTIONS]                run the base station (radio -> ZeroMQ)\n"
            "       %s --replay FILE [OPTIONS]  decode a recording, JSON lines on stdout\n\n"
            "Precedence: defaults < configuration file < options. Numbers accept k, M, G\n"
            "(868.13M, 1024k). Exit status: 0 clean stop, 64 bad usage or configuration,\n"
            "1 runtime failure.\n\nOptions (configuration key in brackets):\n",
            prog, prog);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cfg_option_t *o = &options[i];
        if (!o->flag)
            continue;
        char left[64];
        int n = 0;
        if (o->short_flag)
            n = snprintf(left, sizeof left, "  -%c, --%s", o->short_flag, o->flag);
        else
            n = snprintf(left, sizeof left, "      --%s", o->flag);
        if (o->arg)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->arg);
        else if (o->type == CFG_TYPE_BOOL)
            snprintf(left + n, sizeof left - (size_t)n, "[=no]");
        fprintf(out, "%-34s %s", left, o->help);
        if (o->type != CFG_TYPE_ACTION && o->def && o->def[0] && o->type != CFG_TYPE_BOOL)
            fprintf(out, " (default %s)", o->def);
        if (o->path)
            fprintf(out, " [%s]", o->path);
        fputc('\n', out);
    }
    fprintf(out, "\nFile only: devices.list = ( { ep_id = \"FEDCBA98\"; key = \"<32 hex>\"; "
                 "name = \"...\"; daily_messages = 140;\n"
                 "    downlink_mode = \"direct\"; downlink_payload = \"<16 hex>\"; "
                 "downlink_quota = 4; } ).\n");
}

/* "callback", "direct", "off" ("default" for CFG_DL_MODE_DEFAULT). */
static const char *cfg_dl_mode_name(cfg_dl_mode_t mode)
{
    switch (mode) {
    case CFG_DL_MODE_CALLBACK:
        return "callback";
    case CFG_DL_MODE_DIRECT:
        return "direct";
    case CFG_DL_MODE_OFF:
        return "off";
    default:
        return "default";
    }
}

void cfg_print(const cfg_t *cfg, FILE *out)
{
    if (!cfg || !out)
        return;
    fprintf(out, "# sigfoxd effective configuration (%s)\n",
            cfg->config_file[0] ? cfg->config_file : "no configuration file");
    const char *group = NULL;
    size_t glen = 0;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cfg_option_t *o = &options[i];
        if (!o->path)
            continue;
        const char *dot = strchr(o->path, '.');
        size_t len = (size_t)(dot - o->path);
        if (!group || len != glen || strncmp(group, o->path, len) != 0) {
            if (group)
                fputs("};\n", out);
            group = o->path;
            glen = len;
            fprintf(out, "\n%.*s:\n{\n", (int)len, o->path);
        }
        fprintf(out, "    %s = ", dot + 1);
        print_value(out, cfg, o);
        fprintf(out, ";  # %s%s, %s\n", o->flag ? "--" : "", o->flag ? o->flag : "file only",
                source_name(cfg_source(cfg, o)));
        if (strcmp(o->path, "devices.keys_file") == 0) {
            /* Keys are redacted, so the device list is printed as a comment: the output
             * stays a loadable file with the same settings apart from the devices. */
            fprintf(out, "    # list = ( %zu device(s), keys redacted%s\n", cfg->ndevices,
                    cfg->ndevices ? ":" : " )");
            for (size_t d = 0; d < cfg->ndevices; d++) {
                const cfg_device_t *dev = &cfg->devices[d];
                fprintf(out, "    #   { ep_id = \"%08X\"; %s", dev->ep_id,
                        dev->has_key ? "key = \"(redacted)\"; " : "");
                if (dev->name[0]) {
                    fputs("name = ", out);
                    print_string(out, dev->name);
                    fputs("; ", out);
                }
                if (dev->daily_messages)
                    fprintf(out, "daily_messages = %d; ", dev->daily_messages);
                if (dev->dl_mode != CFG_DL_MODE_DEFAULT)
                    fprintf(out, "downlink_mode = \"%s\"; ", cfg_dl_mode_name(dev->dl_mode));
                if (dev->has_dl_payload) {
                    char hex[2 * CFG_DL_PAYLOAD_BYTES + 1];
                    fprintf(out, "downlink_payload = \"%s\"; ",
                            bytes_to_hex(dev->dl_payload, CFG_DL_PAYLOAD_BYTES, hex));
                }
                if (dev->dl_quota)
                    fprintf(out, "downlink_quota = %d; ", dev->dl_quota);
                fprintf(out, "}%s\n", d + 1 < cfg->ndevices ? "," : "");
            }
            if (cfg->ndevices)
                fputs("    # )\n", out);
        }
    }
    if (group)
        fputs("};\n", out);
}

json_object *cfg_to_json(const cfg_t *cfg)
{
    if (!cfg)
        return NULL;
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    json_object_object_add(root, "config_file", json_object_new_string(cfg->config_file));
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cfg_option_t *o = &options[i];
        if (!o->path)
            continue;
        const char *dot = strchr(o->path, '.');
        char gname[32];
        snprintf(gname, sizeof gname, "%.*s", (int)(dot - o->path), o->path);
        json_object *g = NULL;
        if (!json_object_object_get_ex(root, gname, &g)) {
            g = json_object_new_object();
            if (!g)
                goto fail;
            json_object_object_add(root, gname, g);
        }
        const char *field = (const char *)cfg + o->offset;
        json_object *v = NULL;
        switch (o->type) {
        case CFG_TYPE_STRING:
            v = json_object_new_string(field);
            break;
        case CFG_TYPE_INT:
            v = json_object_new_int(*(const int *)field);
            break;
        case CFG_TYPE_DOUBLE:
            v = json_object_new_double(*(const double *)field);
            break;
        case CFG_TYPE_BOOL:
            v = json_object_new_boolean(*(const bool *)field);
            break;
        case CFG_TYPE_ACTION:
            continue;
        }
        if (!v)
            goto fail;
        json_object_object_add(g, dot + 1, v);
    }
    json_object *devices = NULL, *list = json_object_new_array();
    if (!list || !json_object_object_get_ex(root, "devices", &devices)) {
        json_object_put(list);
        goto fail;
    }
    json_object_object_add(devices, "list", list);
    for (size_t d = 0; d < cfg->ndevices; d++) {
        json_object *o = json_object_new_object();
        if (!o)
            goto fail;
        const cfg_device_t *dev = &cfg->devices[d];
        framejson_add_ep_id(o, dev->ep_id);
        json_object_object_add(o, "key",
                               dev->has_key ? json_object_new_string("(redacted)") : NULL);
        json_object_object_add(o, "name", json_object_new_string(dev->name));
        json_object_object_add(o, "daily_messages",
                               json_object_new_int(cfg_daily_messages(cfg, dev->ep_id)));
        json_object_object_add(o, "downlink_mode",
                               json_object_new_string(dev->dl_mode == CFG_DL_MODE_DEFAULT
                                                          ? cfg->dl_default_mode
                                                          : cfg_dl_mode_name(dev->dl_mode)));
        char hex[2 * CFG_DL_PAYLOAD_BYTES + 1];
        json_object_object_add(
            o, "downlink_payload",
            dev->has_dl_payload
                ? json_object_new_string(bytes_to_hex(dev->dl_payload, CFG_DL_PAYLOAD_BYTES, hex))
                : NULL);
        json_object_object_add(
            o, "downlink_quota",
            json_object_new_int(dev->dl_quota ? dev->dl_quota : cfg->dl_daily_quota));
        json_object_array_add(list, o);
    }
    return root;
fail:
    json_object_put(root);
    return NULL;
}

/* ---- keys --------------------------------------------------------------------------- */

keystore_t *cfg_load_keys(const cfg_t *cfg, char *err, size_t err_len)
{
    if (!cfg)
        return NULL;
    keystore_t *ks = keystore_create();
    if (!ks) {
        snprintf(err, err_len, "out of memory creating the key store");
        return NULL;
    }
    for (size_t i = 0; i < cfg->ndevices; i++) {
        if (!cfg->devices[i].has_key) /* downlink settings only: key from the keys file */
            continue;
        if (keystore_add(ks, cfg->devices[i].ep_id, cfg->devices[i].key) != 0) {
            snprintf(err, err_len, "out of memory adding device %08X", cfg->devices[i].ep_id);
            keystore_destroy(ks);
            return NULL;
        }
    }
    if (cfg->keys_file[0]) {
        struct stat st;
        if (stat(cfg->keys_file, &st) != 0) {
            snprintf(err, err_len, "cannot read keys file %s: %s", cfg->keys_file, strerror(errno));
            keystore_destroy(ks);
            return NULL;
        }
        /* Group access is the normal way to share a root-owned file with the service user;
         * access for everyone else exposes every device key. */
        if (st.st_mode & (S_IROTH | S_IWOTH))
            log_warn("Keys file is accessible to other users, file: %s, mode: %04o, fix: chmod "
                     "o-rwx %s",
                     cfg->keys_file, (unsigned)(st.st_mode & 07777), cfg->keys_file);
        int n = keystore_load(ks, cfg->keys_file, err, err_len);
        if (n < 0) {
            keystore_destroy(ks);
            return NULL;
        }
        log_info("Keys loaded, file: %s, keys: %d", cfg->keys_file, n);
    }
    return ks;
}

int cfg_daily_messages(const cfg_t *cfg, uint32_t ep_id)
{
    if (!cfg)
        return 0;
    for (size_t i = 0; i < cfg->ndevices; i++)
        if (cfg->devices[i].ep_id == ep_id && cfg->devices[i].daily_messages > 0)
            return cfg->devices[i].daily_messages;
    return cfg->daily_messages;
}
