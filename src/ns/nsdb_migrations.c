/* nsdb_migrations: the versioned schema of the network core and its integrations.
 * Licence: MIT. How to add one: include/nsdb.h (append at the end, next version, never
 * edit a released entry). Tables: ns_* the core (src/ns/), app_* the integrations. */
#include "nsdb.h"

/* Version 1 for both databases; only the message id column differs. */
#define NS_SCHEMA_V1(ID_COLUMN) \
    /* ns_devices: the registry (key as 32 hex digits) and the central anti-replay \
    * state (last_mc, last_t: counter and first-frame time of the last accepted \
    * message, seeds/000 §9.1.1). */ \
    "CREATE TABLE ns_devices (" \
    " ep_id BIGINT PRIMARY KEY," \
    " key TEXT NOT NULL," \
    " name TEXT NOT NULL DEFAULT ''," \
    " device_type TEXT NOT NULL DEFAULT ''," \
    " daily_messages INTEGER NOT NULL DEFAULT 140," \
    " dl_mode TEXT NOT NULL DEFAULT 'callback' CHECK (dl_mode IN ('direct','callback','off'))," \
    " dl_payload TEXT," \
    " dl_quota INTEGER NOT NULL DEFAULT 4," \
    " last_mc INTEGER," \
    " last_t DOUBLE PRECISION," \
    " created_s DOUBLE PRECISION NOT NULL," \
    " updated_s DOUBLE PRECISION NOT NULL);" \
    /* ns_stations: what each station said in its last hello. */ \
    "CREATE TABLE ns_stations (" \
    " station_id TEXT PRIMARY KEY," \
    " lat DOUBLE PRECISION, lng DOUBLE PRECISION, alt DOUBLE PRECISION," \
    " tx INTEGER NOT NULL DEFAULT 0," \
    " version TEXT NOT NULL DEFAULT ''," \
    " instance TEXT NOT NULL DEFAULT ''," \
    " last_seen_s DOUBLE PRECISION NOT NULL);" \
    /* ns_dedup: one row per (ep_id, mc); the upsert that moves first_t forward is the \
    * atomic claim only one writer wins (several sigfox-ns on one PostgreSQL). */ \
    "CREATE TABLE ns_dedup (" \
    " ep_id BIGINT NOT NULL," \
    " mc INTEGER NOT NULL," \
    " first_t DOUBLE PRECISION NOT NULL," \
    " msg_id BIGINT," \
    " PRIMARY KEY (ep_id, mc));" \
    /* ns_messages: the message log; status 'ok' (delivered) or 'replay' (refused by \
    * the anti-replay window; last_mc says against what). event: the JSON delivered. */ \
    "CREATE TABLE ns_messages (" \
    " id " ID_COLUMN "," \
    " ep_id BIGINT NOT NULL," \
    " mc INTEGER NOT NULL," \
    " bf INTEGER NOT NULL," \
    " kind TEXT NOT NULL," \
    " payload TEXT NOT NULL," \
    " status TEXT NOT NULL," \
    " last_mc INTEGER," \
    " t_first DOUBLE PRECISION NOT NULL," \
    " rx_s DOUBLE PRECISION NOT NULL," \
    " station_first TEXT NOT NULL," \
    " instance TEXT NOT NULL DEFAULT ''," \
    " event TEXT NOT NULL DEFAULT '');" \
    "CREATE INDEX ns_messages_device ON ns_messages (ep_id, id);" \
    /* ns_receptions: every replica heard, by station and rank (idempotent resends). */ \
    "CREATE TABLE ns_receptions (" \
    " msg_id BIGINT NOT NULL," \
    " station_id TEXT NOT NULL," \
    " rank INTEGER NOT NULL," \
    " snr_db DOUBLE PRECISION," \
    " rssi_dbfs DOUBLE PRECISION," \
    " freq_hz DOUBLE PRECISION," \
    " t_s DOUBLE PRECISION NOT NULL," \
    " rx_s DOUBLE PRECISION NOT NULL," \
    " tx INTEGER NOT NULL DEFAULT 0," \
    " PRIMARY KEY (msg_id, station_id, rank));" \
    /* ns_downlinks: the decision for a BF=1 message, written once by the instance \
    * that owns the message; every instance tells its own stations. */ \
    "CREATE TABLE ns_downlinks (" \
    " msg_id BIGINT PRIMARY KEY," \
    " ep_id BIGINT NOT NULL," \
    " mc INTEGER NOT NULL," \
    " mode TEXT NOT NULL," \
    " station_id TEXT," \
    " payload TEXT," \
    " dl_auth TEXT," \
    " status TEXT NOT NULL," \
    " reason TEXT NOT NULL DEFAULT ''," \
    " decided_s DOUBLE PRECISION NOT NULL," \
    " updated_s DOUBLE PRECISION NOT NULL);" \
    "CREATE INDEX ns_downlinks_device ON ns_downlinks (ep_id, decided_s);"

/* The callback retry queue and its failure log (include/callback.h): one row per request
 * (simple) or line (batch), kept until a 2xx answer; instance = the sigfox-ns instance that
 * sends it. Times in ms since 1970. */
#define APP_CALLBACKS_V3(id_pk) \
    "CREATE TABLE app_callback_queue (" \
    " id " id_pk "," \
    " instance TEXT NOT NULL DEFAULT ''," \
    " callback TEXT NOT NULL," \
    " media INTEGER NOT NULL," \
    " method TEXT NOT NULL," \
    " url TEXT NOT NULL," \
    " headers TEXT NOT NULL," \
    " body TEXT NOT NULL," \
    " ep_id BIGINT NOT NULL," \
    " mc INTEGER NOT NULL," \
    " ack INTEGER NOT NULL," \
    " deadline_ms BIGINT NOT NULL," \
    " tries INTEGER NOT NULL DEFAULT 0," \
    " next_ms BIGINT NOT NULL," \
    " created_ms BIGINT NOT NULL," \
    " last_error TEXT);" \
    "CREATE INDEX app_callback_queue_due ON app_callback_queue (instance, next_ms);" \
    "CREATE TABLE app_callback_failure (" \
    " id " id_pk "," \
    " time_ms BIGINT NOT NULL," \
    " instance TEXT NOT NULL DEFAULT ''," \
    " callback TEXT NOT NULL," \
    " ep_id BIGINT NOT NULL," \
    " tries INTEGER NOT NULL," \
    " error TEXT NOT NULL);"

const nsdb_migration_t nsdb_migrations[] = {
    {
        1,
        "core: devices, stations, dedup claims, messages, receptions, downlinks",
        NS_SCHEMA_V1("INTEGER PRIMARY KEY AUTOINCREMENT"),
        NS_SCHEMA_V1("BIGSERIAL PRIMARY KEY"),
    },
    {
        2,
        "integrations: device types (payload grammar, communication-loss period), "
        "communication losses reported",
        /* app_device_types: the Sigfox custom payload grammar (payloadfmt.h) and the period
         * after which a silent device raises an ERROR callback (0: never).
         * app_comm_loss: the last silence reported per device (its last_t then), so that
         * one silence is reported once. */
        "CREATE TABLE app_device_types ("
        " name TEXT PRIMARY KEY,"
        " grammar TEXT NOT NULL DEFAULT '',"
        " period_s DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " updated_s DOUBLE PRECISION NOT NULL);"
        "CREATE TABLE app_comm_loss ("
        " ep_id BIGINT PRIMARY KEY,"
        " last_t DOUBLE PRECISION NOT NULL,"
        " reported_s DOUBLE PRECISION NOT NULL);",
        NULL,
    },
    {
        3,
        "integrations: callback retry queue and failures (in the core's database)",
        APP_CALLBACKS_V3("INTEGER PRIMARY KEY AUTOINCREMENT"),
        APP_CALLBACKS_V3("BIGSERIAL PRIMARY KEY"),
    },
    {
        4,
        "core: messages by counter (a resent reception recognised after the dedup window)",
        "CREATE INDEX ns_messages_counter ON ns_messages (ep_id, mc);",
        NULL,
    },
};

const size_t nsdb_nmigrations = sizeof nsdb_migrations / sizeof nsdb_migrations[0];
