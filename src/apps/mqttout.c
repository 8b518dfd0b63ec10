/* mqttout: integration events to MQTT (libmosquitto, QoS 1). Licence: MIT. */
#include "mqttout.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "errbuf.h"
#include "hexutil.h"
#include "jsonstrict.h"
#include "log.h"

#define MAX_DL_PAYLOAD 256

typedef struct entry {
    char *topic;
    char *payload;
    int mid;     /* 0: not handed to libmosquitto since the last (re)connect */
    struct entry *next;
} entry_t;

struct mqttout {
    mqttout_config_t cfg;
    char host[256], prefix[64], source[64], client_id[128];
    struct mosquitto *mosq;
    pthread_mutex_t lock;
    entry_t *head, *tail;
    bool connected;
    mqttout_stats_t st;
};

static void entry_free(entry_t *e)
{
    if (e) {
        free(e->topic);
        free(e->payload);
        free(e);
    }
}

/* Hands every not yet sent entry to libmosquitto. Lock held. */
static void send_pending(mqttout_t *m)
{
    for (entry_t *e = m->head; e && m->connected; e = e->next) {
        if (e->mid)
            continue;
        int mid = 0;
        int rc = mosquitto_publish(m->mosq, &mid, e->topic, (int)strlen(e->payload), e->payload,
                                   1, false);
        if (rc != MOSQ_ERR_SUCCESS)
            break; /* retried after the next connect */
        e->mid = mid;
    }
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    mqttout_t *m = ud;
    if (rc != 0) {
        log_warn("MQTT connection refused, broker: %s:%d, reason: %s", m->host, m->cfg.port,
                 mosquitto_connack_string(rc));
        return;
    }
    char sub[160];
    snprintf(sub, sizeof sub, "%s/+/+/downlink/set", m->prefix);
    mosquitto_subscribe(mosq, NULL, sub, 1);
    pthread_mutex_lock(&m->lock);
    m->connected = true;
    for (entry_t *e = m->head; e; e = e->next)
        e->mid = 0;
    log_info("MQTT connected, broker: %s:%d, queued: %llu", m->host, m->cfg.port,
             (unsigned long long)m->st.queued);
    send_pending(m);
    pthread_mutex_unlock(&m->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    (void)mosq;
    mqttout_t *m = ud;
    pthread_mutex_lock(&m->lock);
    if (m->connected)
        log_warn("MQTT disconnected, broker: %s:%d, reason: %s, queued: %llu", m->host,
                 m->cfg.port, mosquitto_strerror(rc), (unsigned long long)m->st.queued);
    m->connected = false;
    pthread_mutex_unlock(&m->lock);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid)
{
    (void)mosq;
    mqttout_t *m = ud;
    pthread_mutex_lock(&m->lock);
    entry_t *prev = NULL;
    for (entry_t *e = m->head; e; prev = e, e = e->next) {
        if (e->mid != mid)
            continue;
        if (prev)
            prev->next = e->next;
        else
            m->head = e->next;
        if (m->tail == e)
            m->tail = prev;
        entry_free(e);
        m->st.acked++;
        m->st.queued--;
        break;
    }
    pthread_mutex_unlock(&m->lock);
}

int mqttout_parse_downlink(const char *text, size_t len, uint8_t payload[8])
{
    if (!text || len > MAX_DL_PAYLOAD)
        return -1;
    char buf[MAX_DL_PAYLOAD + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *s = buf;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (n == 0 || strcmp(s, "none") == 0)
        return 1;
    const char *hex = s;
    json_object *o = NULL;
    if (s[0] == '{') {
        o = jsonstrict_parse(s, n, 4, NULL, 0);
        json_object *v;
        if (!o || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "downlinkData", &v) ||
            !json_object_is_type(v, json_type_string)) {
            json_object_put(o);
            return -1;
        }
        hex = json_object_get_string(v);
    }
    int rc = -1;
    if (strlen(hex) == 16) {
        bool ok = true;
        for (size_t i = 0; i < 16; i++)
            ok = ok && isxdigit((unsigned char)hex[i]);
        if (ok && hex_to_bytes(hex, payload, 8) == 8)
            rc = 0;
    }
    json_object_put(o);
    return rc;
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
    (void)mosq;
    mqttout_t *m = ud;
    /* <prefix>/<source>/<device>/downlink/set */
    char **parts = NULL;
    int n = 0;
    if (mosquitto_sub_topic_tokenise(msg->topic, &parts, &n) != MOSQ_ERR_SUCCESS)
        return;
    uint32_t ep_id = 0;
    bool topic_ok = n == 5 && parts[2] && hex_to_ep_id(parts[2], &ep_id) == 0;
    mosquitto_sub_topic_tokens_free(&parts, n);
    uint8_t payload[8];
    int rc = topic_ok ? mqttout_parse_downlink(msg->payload, (size_t)msg->payloadlen, payload) : -1;
    pthread_mutex_lock(&m->lock);
    if (rc < 0)
        m->st.refused++;
    else
        m->st.downlinks++;
    pthread_mutex_unlock(&m->lock);
    if (rc < 0) {
        log_warn("MQTT downlink refused (want topic .../<8 hex digit device>/downlink/set and "
                 "16 hex digits, {\"downlinkData\":...} or none), bytes: %d",
                 msg->payloadlen);
        return;
    }
    if (m->cfg.on_downlink)
        m->cfg.on_downlink(m->cfg.downlink_ctx, ep_id, rc == 0 ? payload : NULL);
}

static bool topic_level_ok(const char *s)
{
    if (!s[0] || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (*s == '+' || *s == '#' || *s == '/' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

mqttout_t *mqttout_create(const mqttout_config_t *cfg, char *err, size_t err_len)
{
    mqttout_t *m = calloc(1, sizeof *m);
    if (!m) {
        errbuf_set(err, err_len, "mqtt: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    pthread_mutex_init(&m->lock, NULL);
    snprintf(m->host, sizeof m->host, "%s", cfg->host && cfg->host[0] ? cfg->host : "127.0.0.1");
    snprintf(m->prefix, sizeof m->prefix, "%s", cfg->prefix && cfg->prefix[0] ? cfg->prefix : "sigfox");
    snprintf(m->source, sizeof m->source, "%s", cfg->source && cfg->source[0] ? cfg->source : "ns");
    if (!topic_level_ok(m->prefix) || !topic_level_ok(m->source)) {
        errbuf_set(err, err_len, "mqtt: prefix and source must be 1..63 printable characters "
                                 "without '/', '+' or '#'");
        goto fail;
    }
    snprintf(m->client_id, sizeof m->client_id, "%s",
             cfg->client_id && cfg->client_id[0] ? cfg->client_id : "");
    if (!m->client_id[0])
        snprintf(m->client_id, sizeof m->client_id, "sigfox-%s", m->source);
    if (m->cfg.port <= 0)
        m->cfg.port = cfg->ca_file ? 8883 : 1883;
    if (m->cfg.port > 65535) {
        errbuf_set(err, err_len, "mqtt: port %d out of range", m->cfg.port);
        goto fail;
    }
    if (!m->cfg.max_queue)
        m->cfg.max_queue = 10000;
    if (m->cfg.reconnect_s <= 0)
        m->cfg.reconnect_s = 2;
    mosquitto_lib_init();
    m->mosq = mosquitto_new(m->client_id, true, m);
    if (!m->mosq) {
        errbuf_set(err, err_len, "mqtt: cannot create client");
        goto fail;
    }
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    mosquitto_message_callback_set(m->mosq, on_message);
    mosquitto_reconnect_delay_set(m->mosq, (unsigned)m->cfg.reconnect_s, (unsigned)m->cfg.reconnect_s,
                                  false);
    if (cfg->username && mosquitto_username_pw_set(m->mosq, cfg->username, cfg->password) !=
                             MOSQ_ERR_SUCCESS) {
        errbuf_set(err, err_len, "mqtt: bad username/password");
        goto fail;
    }
    if (cfg->ca_file) {
        int rc = mosquitto_tls_set(m->mosq, cfg->ca_file, NULL, NULL, NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            errbuf_set(err, err_len, "mqtt: TLS with CA file %s: %s", cfg->ca_file,
                       mosquitto_strerror(rc));
            goto fail;
        }
    }
    int rc = mosquitto_connect_async(m->mosq, m->host, m->cfg.port, 30);
    if (rc != MOSQ_ERR_SUCCESS)
        log_warn("MQTT broker not reachable yet, broker: %s:%d, reason: %s (retrying)", m->host,
                 m->cfg.port, mosquitto_strerror(rc));
    if (mosquitto_loop_start(m->mosq) != MOSQ_ERR_SUCCESS) {
        errbuf_set(err, err_len, "mqtt: cannot start the network thread");
        goto fail;
    }
    return m;
fail:
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    pthread_mutex_destroy(&m->lock);
    free(m);
    return NULL;
}

void mqttout_destroy(mqttout_t *m)
{
    if (!m)
        return;
    mosquitto_disconnect(m->mosq);
    mosquitto_loop_stop(m->mosq, false);
    mosquitto_destroy(m->mosq);
    if (m->st.queued)
        log_warn("MQTT stopped with unacknowledged events, count: %llu",
                 (unsigned long long)m->st.queued);
    while (m->head) {
        entry_t *e = m->head;
        m->head = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
    mosquitto_lib_cleanup();
}

int mqttout_publish(mqttout_t *m, const appevent_t *ev)
{
    if (!m || !ev)
        return -1;
    const char *leaf = ev->type == APPEVENT_DATA       ? "up"
                       : ev->type == APPEVENT_ERROR    ? "error"
                       : ev->subtype == APPEVENT_SUB_DOWNLINK_ACK ? "downlink/ack"
                                                                  : "service";
    json_object *j = appevent_to_json(ev);
    entry_t *e = calloc(1, sizeof *e);
    char topic[256];
    snprintf(topic, sizeof topic, "%s/%s/%08X/%s", m->prefix, m->source, ev->ep_id, leaf);
    if (e && j) {
        e->topic = strdup(topic);
        e->payload = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(j);
    if (!e || !e->topic || !e->payload) {
        entry_free(e);
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    if (m->st.queued >= m->cfg.max_queue) {
        /* drop the oldest one not in flight (in flight ones will be acknowledged) */
        entry_t *prev = NULL, *d = m->head;
        while (d && d->mid) {
            prev = d;
            d = d->next;
        }
        if (d) {
            if (prev)
                prev->next = d->next;
            else
                m->head = d->next;
            if (m->tail == d)
                m->tail = prev;
            entry_free(d);
            m->st.queued--;
            if (m->st.dropped++ % 1000 == 0)
                log_warn("MQTT queue full, oldest event dropped, max_queue: %zu, dropped: %llu",
                         m->cfg.max_queue, (unsigned long long)m->st.dropped);
        }
    }
    if (m->tail)
        m->tail->next = e;
    else
        m->head = e;
    m->tail = e;
    m->st.published++;
    m->st.queued++;
    send_pending(m);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void mqttout_get_stats(mqttout_t *m, mqttout_stats_t *st)
{
    pthread_mutex_lock(&m->lock);
    *st = m->st;
    st->connected = m->connected;
    pthread_mutex_unlock(&m->lock);
}
