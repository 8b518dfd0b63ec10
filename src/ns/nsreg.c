/* nsreg: device registry and station list in the database (include/nsreg.h). Licence: MIT. */
#include "nsreg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "antireplay.h"
#include "errbuf.h"
#include "framejson.h"
#include "hexutil.h"

static const char *const mode_names[] = {"callback", "direct", "off"};

const char *nsreg_dl_mode_name(nsreg_dl_mode_t m)
{
    return (unsigned)m < 3 ? mode_names[m] : "?";
}

static int nsreg_dl_mode_from_name(const char *name)
{
    for (int i = 0; name && i < 3; i++) {
        if (!strcmp(name, mode_names[i]))
            return i;
    }
    return -1;
}

void nsreg_device_init(nsreg_device_t *d, uint32_t ep_id, const uint8_t key[NSREG_KEY_BYTES])
{
    memset(d, 0, sizeof *d);
    d->ep_id = ep_id;
    if (key)
        memcpy(d->key, key, NSREG_KEY_BYTES);
    d->daily_messages = NSREG_DEFAULT_DAILY_MESSAGES;
    d->dl_mode = NSREG_DL_CALLBACK;
    d->dl_quota = NSREG_DEFAULT_DL_QUOTA;
}

#define DEVICE_COLUMNS                                                                             \
    "ep_id, key, name, device_type, daily_messages, dl_mode, dl_payload, dl_quota, last_mc, "      \
    "last_t"

static void device_from_row(const nsdb_rows_t *r, size_t i, nsreg_device_t *d)
{
    nsreg_device_init(d, (uint32_t)nsdb_rows_int(r, i, 0), NULL);
    const char *key = nsdb_rows_text(r, i, 1);
    if (!key || hex_to_bytes(key, d->key, sizeof d->key) != NSREG_KEY_BYTES)
        memset(d->key, 0, sizeof d->key);
    snprintf(d->name, sizeof d->name, "%s", nsdb_rows_text(r, i, 2) ? nsdb_rows_text(r, i, 2) : "");
    snprintf(d->device_type, sizeof d->device_type, "%s",
             nsdb_rows_text(r, i, 3) ? nsdb_rows_text(r, i, 3) : "");
    d->daily_messages = (int)nsdb_rows_int(r, i, 4);
    int mode = nsreg_dl_mode_from_name(nsdb_rows_text(r, i, 5));
    d->dl_mode = mode < 0 ? NSREG_DL_OFF : (nsreg_dl_mode_t)mode;
    const char *pl = nsdb_rows_text(r, i, 6);
    d->has_dl_payload =
        pl && hex_to_bytes(pl, d->dl_payload, sizeof d->dl_payload) == NSREG_DL_PAYLOAD_BYTES;
    d->dl_quota = (int)nsdb_rows_int(r, i, 7);
    d->has_last = !nsdb_rows_isnull(r, i, 8);
    d->last_mc = (uint16_t)(nsdb_rows_int(r, i, 8) & UL_MC_MAX);
    d->last_t = nsdb_rows_real(r, i, 9);
}

int nsreg_device_get(nsdb_t *db, uint32_t ep_id, nsreg_device_t *out)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(ep_id)};
    int rc = nsdb_query(db, "SELECT " DEVICE_COLUMNS " FROM ns_devices WHERE ep_id = $1", p, 1, &r);
    if (rc < 0)
        return rc;
    int found = nsdb_rows_count(r) > 0;
    if (found && out)
        device_from_row(r, 0, out);
    nsdb_rows_free(r);
    return found;
}

int nsreg_device_put(nsdb_t *db, const nsreg_device_t *d, double now)
{
    char key[2 * NSREG_KEY_BYTES + 1], pl[2 * NSREG_DL_PAYLOAD_BYTES + 1];
    bytes_to_hex(d->key, NSREG_KEY_BYTES, key);
    bytes_to_hex(d->dl_payload, NSREG_DL_PAYLOAD_BYTES, pl);
    nsdb_val_t p[] = {NSDB_INT(d->ep_id),
                      NSDB_TEXT(key),
                      NSDB_TEXT(d->name),
                      NSDB_TEXT(d->device_type),
                      NSDB_INT(d->daily_messages),
                      NSDB_TEXT(nsreg_dl_mode_name(d->dl_mode)),
                      d->has_dl_payload ? NSDB_TEXT(pl) : NSDB_NULLV,
                      NSDB_INT(d->dl_quota),
                      NSDB_REAL(now)};
    int rc = nsdb_exec(db,
                       "INSERT INTO ns_devices (ep_id, key, name, device_type, daily_messages, "
                       "dl_mode, dl_payload, dl_quota, created_s, updated_s) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) "
                       "ON CONFLICT (ep_id) DO UPDATE SET key = excluded.key, name = excluded.name, "
                       "device_type = excluded.device_type, daily_messages = excluded.daily_messages, "
                       "dl_mode = excluded.dl_mode, dl_payload = excluded.dl_payload, "
                       "dl_quota = excluded.dl_quota, updated_s = excluded.updated_s",
                       p, sizeof p / sizeof p[0]);
    return rc < 0 ? rc : 0;
}

int nsreg_device_delete(nsdb_t *db, uint32_t ep_id)
{
    nsdb_val_t p[] = {NSDB_INT(ep_id)};
    return nsdb_exec(db, "DELETE FROM ns_devices WHERE ep_id = $1", p, 1);
}

int nsreg_device_count(nsdb_t *db)
{
    int64_t n = 0;
    int rc = nsdb_query_int(db, "SELECT COUNT(*) FROM ns_devices", NULL, 0, &n);
    return rc < 0 ? rc : (int)n;
}

int nsreg_device_list(nsdb_t *db, uint32_t after, int limit, bool with_key, json_object *arr)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT((int64_t)after - (after == 0 ? 1 : 0)), NSDB_INT(limit)};
    int rc = nsdb_query(db,
                        "SELECT " DEVICE_COLUMNS " FROM ns_devices WHERE ep_id > $1 "
                        "ORDER BY ep_id LIMIT $2",
                        p, 2, &r);
    if (rc < 0)
        return rc;
    int n = 0;
    for (size_t i = 0; i < nsdb_rows_count(r); i++) {
        nsreg_device_t d;
        device_from_row(r, i, &d);
        json_object *o = json_object_new_object();
        if (!o || nsreg_device_to_json(&d, with_key, o) < 0 || json_object_array_add(arr, o) < 0) {
            json_object_put(o);
            nsdb_rows_free(r);
            return NSDB_ERR_NOMEM;
        }
        n++;
    }
    nsdb_rows_free(r);
    return n;
}

int nsreg_import_keys(nsdb_t *db, const keystore_t *ks, double now)
{
    int n = 0;
    for (size_t i = 0; i < keystore_count(ks); i++) {
        uint32_t id = keystore_ep_id_at(ks, i);
        nsreg_device_t d;
        int rc = nsreg_device_get(db, id, &d);
        if (rc < 0)
            return rc;
        if (rc == 0)
            nsreg_device_init(&d, id, NULL);
        memcpy(d.key, keystore_find(ks, id), NSREG_KEY_BYTES);
        rc = nsreg_device_put(db, &d, now);
        if (rc < 0)
            return rc;
        n++;
    }
    return n;
}

int nsreg_device_to_json(const nsreg_device_t *d, bool with_key, json_object *obj)
{
    int rc = framejson_add_ep_id(obj, d->ep_id);
    if (with_key)
        rc |= framejson_add_hex(obj, "key", d->key, NSREG_KEY_BYTES);
    rc |= framejson_add(obj, "name", json_object_new_string(d->name));
    rc |= framejson_add(obj, "device_type", json_object_new_string(d->device_type));
    rc |= framejson_add(obj, "daily_messages", json_object_new_int(d->daily_messages));
    rc |= framejson_add(obj, "downlink_mode", json_object_new_string(nsreg_dl_mode_name(d->dl_mode)));
    if (d->has_dl_payload)
        rc |= framejson_add_hex(obj, "downlink_payload", d->dl_payload, NSREG_DL_PAYLOAD_BYTES);
    else
        rc |= json_object_object_add(obj, "downlink_payload", NULL);
    rc |= framejson_add(obj, "downlink_quota", json_object_new_int(d->dl_quota));
    if (d->has_last) {
        rc |= framejson_add(obj, "last_mc", json_object_new_int(d->last_mc));
        rc |= framejson_add(obj, "last_t", json_object_new_double(d->last_t));
    }
    return rc ? -1 : 0;
}

static int get_string(json_object *obj, const char *key, const char **out, char *err,
                      size_t err_len)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        errbuf_set(err, err_len, "%s: expected a string", key);
        return -1;
    }
    *out = json_object_get_string(v);
    return 1;
}

static int get_int(json_object *obj, const char *key, int lo, int hi, int *out, char *err,
                   size_t err_len)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_int)) {
        errbuf_set(err, err_len, "%s: expected an integer", key);
        return -1;
    }
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi) {
        errbuf_set(err, err_len, "%s: %lld is out of range %d .. %d", key, (long long)x, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 1;
}

int nsreg_device_from_json(json_object *obj, nsreg_device_t *d, char *err, size_t err_len)
{
    if (!obj || !json_object_is_type(obj, json_type_object)) {
        errbuf_set(err, err_len, "device: expected a JSON object");
        return -1;
    }
    const char *s;
    int rc = get_string(obj, "ep_id", &s, err, err_len);
    if (rc < 0)
        return -1;
    if (rc > 0 && hex_to_ep_id(s, &d->ep_id) < 0) {
        errbuf_set(err, err_len, "ep_id: expected 8 hex digits");
        return -1;
    }
    if ((rc = get_string(obj, "key", &s, err, err_len)) < 0)
        return -1;
    if (rc > 0 && hex_to_bytes(s, d->key, sizeof d->key) != NSREG_KEY_BYTES) {
        errbuf_set(err, err_len, "key: expected 32 hex digits");
        return -1;
    }
    if ((rc = get_string(obj, "name", &s, err, err_len)) < 0)
        return -1;
    if (rc > 0) {
        if (strlen(s) >= sizeof d->name) {
            errbuf_set(err, err_len, "name: longer than %zu bytes", sizeof d->name - 1);
            return -1;
        }
        snprintf(d->name, sizeof d->name, "%s", s);
    }
    if ((rc = get_string(obj, "device_type", &s, err, err_len)) < 0)
        return -1;
    if (rc > 0) {
        if (strlen(s) >= sizeof d->device_type) {
            errbuf_set(err, err_len, "device_type: longer than %zu bytes",
                       sizeof d->device_type - 1);
            return -1;
        }
        snprintf(d->device_type, sizeof d->device_type, "%s", s);
    }
    if (get_int(obj, "daily_messages", 1, 100000, &d->daily_messages, err, err_len) < 0)
        return -1;
    if (get_int(obj, "downlink_quota", -1, 1000, &d->dl_quota, err, err_len) < 0)
        return -1;
    if ((rc = get_string(obj, "downlink_mode", &s, err, err_len)) < 0)
        return -1;
    if (rc > 0) {
        int m = nsreg_dl_mode_from_name(s);
        if (m < 0) {
            errbuf_set(err, err_len, "downlink_mode: expected direct, callback or off");
            return -1;
        }
        d->dl_mode = (nsreg_dl_mode_t)m;
    }
    json_object *v;
    if (json_object_object_get_ex(obj, "downlink_payload", &v)) {
        if (!v) {
            d->has_dl_payload = false;
        } else if (!json_object_is_type(v, json_type_string) ||
                   hex_to_bytes(json_object_get_string(v), d->dl_payload, sizeof d->dl_payload) !=
                       NSREG_DL_PAYLOAD_BYTES) {
            errbuf_set(err, err_len, "downlink_payload: expected 16 hex digits or null");
            return -1;
        } else {
            d->has_dl_payload = true;
        }
    }
    return 0;
}

int nsreg_station_seen(nsdb_t *db, const nsreg_station_t *s, const char *instance, double now)
{
    nsdb_val_t p[] = {NSDB_TEXT(s->station_id),
                      isfinite(s->lat) ? NSDB_REAL(s->lat) : NSDB_NULLV,
                      isfinite(s->lng) ? NSDB_REAL(s->lng) : NSDB_NULLV,
                      isfinite(s->alt) ? NSDB_REAL(s->alt) : NSDB_NULLV,
                      NSDB_INT(s->tx),
                      NSDB_TEXT(s->version),
                      NSDB_TEXT(instance ? instance : ""),
                      NSDB_REAL(now)};
    int rc = nsdb_exec(db,
                       "INSERT INTO ns_stations (station_id, lat, lng, alt, tx, version, instance, "
                       "last_seen_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                       "ON CONFLICT (station_id) DO UPDATE SET lat = excluded.lat, "
                       "lng = excluded.lng, alt = excluded.alt, tx = excluded.tx, "
                       "version = excluded.version, instance = excluded.instance, "
                       "last_seen_s = excluded.last_seen_s",
                       p, sizeof p / sizeof p[0]);
    return rc < 0 ? rc : 0;
}

static int add_real_or_null(json_object *o, const char *key, const nsdb_rows_t *r, size_t i,
                            size_t c)
{
    if (nsdb_rows_isnull(r, i, c))
        return json_object_object_add(o, key, NULL);
    return framejson_add(o, key, json_object_new_double(nsdb_rows_real(r, i, c)));
}

int nsreg_station_list(nsdb_t *db, json_object *arr)
{
    nsdb_rows_t *r = NULL;
    int rc = nsdb_query(db,
                        "SELECT station_id, lat, lng, alt, tx, version, instance, last_seen_s "
                        "FROM ns_stations ORDER BY station_id",
                        NULL, 0, &r);
    if (rc < 0)
        return rc;
    int n = 0;
    for (size_t i = 0; i < nsdb_rows_count(r); i++) {
        json_object *o = json_object_new_object();
        int e = !o;
        e |= framejson_add(o, "station_id", json_object_new_string(nsdb_rows_text(r, i, 0)));
        e |= add_real_or_null(o, "lat", r, i, 1);
        e |= add_real_or_null(o, "lng", r, i, 2);
        e |= add_real_or_null(o, "alt", r, i, 3);
        e |= framejson_add(o, "tx", json_object_new_boolean(nsdb_rows_int(r, i, 4) != 0));
        e |= framejson_add(o, "version", json_object_new_string(nsdb_rows_text(r, i, 5)));
        e |= framejson_add(o, "instance", json_object_new_string(nsdb_rows_text(r, i, 6)));
        e |= framejson_add(o, "last_seen_s", json_object_new_double(nsdb_rows_real(r, i, 7)));
        if (e || json_object_array_add(arr, o) < 0) {
            json_object_put(o);
            nsdb_rows_free(r);
            return NSDB_ERR_NOMEM;
        }
        n++;
    }
    nsdb_rows_free(r);
    return n;
}
