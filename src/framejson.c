/* framejson: shared JSON field names for uplink frames and messages. Licence: MIT. */
#include "framejson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hexutil.h"

int framejson_add(struct json_object *obj, const char *key, struct json_object *val)
{
    if (!obj || !key || !val) {
        json_object_put(val);
        return -1;
    }
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

#define add framejson_add

struct json_object *framejson_number(double v, int decimals)
{
    if (!isfinite(v))
        return NULL;
    if (decimals <= 0)
        return json_object_new_int64((int64_t)llround(v));
    char text[48];
    snprintf(text, sizeof text, "%.*f", decimals, v);
    return json_object_new_double_s(strtod(text, NULL), text);
}

int framejson_add_num(struct json_object *obj, const char *key, double v, int decimals)
{
    if (!obj || !key)
        return -1;
    if (!isfinite(v))
        return json_object_object_add(obj, key, NULL) == 0 ? 0 : -1;
    return add(obj, key, framejson_number(v, decimals));
}

int framejson_add_ep_id(struct json_object *obj, uint32_t ep_id)
{
    char id[9];
    snprintf(id, sizeof id, "%08X", (unsigned)ep_id);
    return add(obj, "ep_id", json_object_new_string(id));
}

int framejson_add_hex(struct json_object *obj, const char *key, const uint8_t *p, size_t n)
{
    char hex[2 * FRAMEJSON_HEX_MAX_BYTES + 1];
    if (n > FRAMEJSON_HEX_MAX_BYTES || (!p && n))
        return -1;
    return add(obj, key, json_object_new_string(bytes_to_hex(p, n, hex)));
}

static int add_u16_hex(struct json_object *obj, const char *key, uint16_t v)
{
    char s[5];
    snprintf(s, sizeof s, "%04X", (unsigned)v);
    return add(obj, key, json_object_new_string(s));
}

int framejson_add_message(struct json_object *obj, const ul_message_t *m)
{
    if (!obj || !m || m->payload_len > UL_MAX_PAYLOAD_BYTES)
        return -1;
    int rc = framejson_add_ep_id(obj, m->ep_id);
    rc |= add(obj, "mc", json_object_new_int(m->mc));
    rc |= add(obj, "bf", json_object_new_boolean(m->bf));
    rc |= add(obj, "kind", json_object_new_string(ul_kind_name(m->kind)));
    if (m->one_bit)
        rc |= add(obj, "payload_bit", json_object_new_int(m->payload_bit));
    else
        rc |= framejson_add_hex(obj, "payload", m->payload, m->payload_len);
    if (m->kind != UL_KIND_APP) {
        rc |= add(obj, "vdd_idle_mv", json_object_new_int(m->control.vdd_idle_mv));
        rc |= add(obj, "vdd_tx_mv", json_object_new_int(m->control.vdd_tx_mv));
        rc |= add(obj, "temp_tenth_c", json_object_new_int(m->control.temp_tenth_c));
        rc |= framejson_add_num(obj, "temp_c", m->control.temp_tenth_c / 10.0, 1);
    }
    if (m->kind == UL_KIND_DL_CONFIRMATION)
        rc |= add(obj, "rssi_dbm", json_object_new_int(m->control.rssi_dbm));
    return rc ? -1 : 0;
}

int framejson_add_frame(struct json_object *obj, const ul_frame_t *f, bool with_message)
{
    if (!obj || !f || f->auth_len > UL_MAX_AUTH_BYTES)
        return -1;
    /* A parsed container always has a UL-AUTH: without one f->msg is not valid, whatever
     * the caller says (a good CRC over impossible fields). */
    with_message = with_message && f->auth_len > 0;
    int rc = with_message ? framejson_add_message(obj, &f->msg) : 0;
    rc |= add(obj, "rank", json_object_new_int(f->rank));
    rc |= add_u16_hex(obj, "ft", f->ft);
    rc |= add(obj, "ft_distance", json_object_new_int(f->ft_distance));
    rc |= add(obj, "crc_ok", json_object_new_boolean(f->crc_ok));
    rc |= add_u16_hex(obj, "ul_crc", f->crc);
    if (with_message)
        rc |= framejson_add_hex(obj, "ul_auth", f->auth, f->auth_len);
    return rc ? -1 : 0;
}

int framejson_add_auth(struct json_object *obj, const char *status)
{
    static const char *const valid[] = {FRAMEJSON_AUTH_OK, FRAMEJSON_AUTH_BAD,
                                        FRAMEJSON_AUTH_UNKNOWN_DEVICE, FRAMEJSON_AUTH_UNCHECKED};
    if (!obj || !status)
        return -1;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (strcmp(status, valid[i]) == 0)
            return add(obj, "auth", json_object_new_string(status));
    return -1;
}

const char *framejson_auth_with_key(const ul_frame_t *f, const uint8_t *key)
{
    if (!f || !key || !f->crc_ok)
        return FRAMEJSON_AUTH_UNCHECKED;
    int rc = ul_auth_verify(f->container, f->container_len, key);
    if (rc < 0)
        return FRAMEJSON_AUTH_UNCHECKED; /* container not parseable: nothing to check */
    return rc == 1 ? FRAMEJSON_AUTH_OK : FRAMEJSON_AUTH_BAD;
}

const char *framejson_auth_with_store(const ul_frame_t *f, const keystore_t *ks)
{
    if (!f || !ks || !f->crc_ok)
        return FRAMEJSON_AUTH_UNCHECKED;
    /* The ID from the container itself: f->msg is empty when the fields did not parse. */
    if (f->container_len < 2 + UL_ID_BYTES)
        return FRAMEJSON_AUTH_UNCHECKED;
    uint32_t ep_id = 0;
    for (int i = 0; i < UL_ID_BYTES; i++)
        ep_id |= (uint32_t)f->container[2 + i] << (8 * i);
    const uint8_t *key = keystore_find(ks, ep_id);
    return key ? framejson_auth_with_key(f, key) : FRAMEJSON_AUTH_UNKNOWN_DEVICE;
}
