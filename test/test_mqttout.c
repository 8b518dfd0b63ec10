/* test_mqttout: MQTT publication against a real mosquitto broker (Debian package) started
 * by the test on a free 127.0.0.1 port with a temporary config: every event type on its
 * topic, downlinks from .../downlink/set, and a broker restart that loses nothing queued.
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <mosquitto.h>

#include "mqttout.h"

static char dir[64];
static int port;
static pid_t broker = -1;

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

static bool broker_up(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

static void start_broker(void)
{
    char conf[128];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
    broker = fork();
    assert_true(broker >= 0);
    if (broker == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !broker_up(); i++)
        usleep(50000);
    assert_true(broker_up());
}

static void stop_broker(void)
{
    if (broker > 0) {
        kill(broker, SIGTERM);
        waitpid(broker, NULL, 0);
    }
    broker = -1;
}

/* The subscriber: a persistent session (clean_session false) so that the broker keeps
 * its subscription and messages across the broker restart (persistence on). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char got_topic[64][128];
static char got_body[64][1024];
static int ngot;
static bool sub_ready;

static void sub_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    (void)ud;
    pthread_mutex_lock(&lock);
    if (ngot < 64) {
        snprintf(got_topic[ngot], sizeof got_topic[0], "%s", msg->topic);
        snprintf(got_body[ngot], sizeof got_body[0], "%.*s", msg->payloadlen, (char *)msg->payload);
        ngot++;
    }
    pthread_mutex_unlock(&lock);
}

static void sub_subscribed(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
    (void)m;
    (void)ud;
    (void)mid;
    (void)n;
    (void)q;
    pthread_mutex_lock(&lock);
    sub_ready = true;
    pthread_mutex_unlock(&lock);
}

static void sub_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)ud;
    if (rc == 0)
        mosquitto_subscribe(m, NULL, "sigfox/+/+/up", 1);
}

static int count_got(void)
{
    pthread_mutex_lock(&lock);
    int n = ngot;
    pthread_mutex_unlock(&lock);
    return n;
}

static void wait_got(int n)
{
    for (int i = 0; i < 200 && count_got() < n; i++)
        usleep(50000);
}

static uint32_t dl_id;
static uint8_t dl_payload[8];
static int dl_calls, dl_none;
static void on_dl(void *ctx, uint32_t ep_id, const uint8_t *payload)
{
    (void)ctx;
    pthread_mutex_lock(&lock);
    dl_id = ep_id;
    if (payload)
        memcpy(dl_payload, payload, 8);
    else
        dl_none++;
    dl_calls++;
    pthread_mutex_unlock(&lock);
}

static appevent_t event(appevent_type_t type, uint32_t id, int mc)
{
    appevent_t ev;
    appevent_init(&ev);
    ev.type = type;
    ev.ep_id = id;
    ev.seq = mc;
    ev.time_s = 1795696395;
    ev.data_len = 2;
    ev.data[0] = 0xCA;
    ev.data[1] = (uint8_t)mc;
    return ev;
}

static void test_mqtt(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_mqttout.XXXXXX");
    assert_non_null(mkdtemp(dir));
    port = free_port();
    assert_true(port > 0);
    char path[128];
    snprintf(path, sizeof path, "%s/mosquitto.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* Started as root (CI), mosquitto switches to the user named by `user` (default
     * "mosquitto"), which cannot write the persistence file into this 0700 directory: the
     * subscriber's session would silently not survive the restart. Stay who we are. */
    const struct passwd *pw = getpwuid(geteuid());
    assert_non_null(pw);
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
               "persistence_location %s/\nautosave_interval 1\nuser %s\n",
            port, dir, pw->pw_name);
    fclose(f);
    start_broker();

    mosquitto_lib_init();
    struct mosquitto *sub = mosquitto_new("test-sub", false, NULL);
    assert_non_null(sub);
    mosquitto_connect_callback_set(sub, sub_connect);
    mosquitto_message_callback_set(sub, sub_message);
    mosquitto_subscribe_callback_set(sub, sub_subscribed);
    mosquitto_reconnect_delay_set(sub, 1, 1, false);
    assert_int_equal(mosquitto_connect(sub, "127.0.0.1", port, 30), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_loop_start(sub), MOSQ_ERR_SUCCESS);
    for (int i = 0; i < 100 && !sub_ready; i++)
        usleep(50000);
    assert_true(sub_ready);

    mqttout_config_t cfg = {.port = port, .reconnect_s = 1, .on_downlink = on_dl};
    char err[256];
    mqttout_t *m = mqttout_create(&cfg, err, sizeof err);
    assert_non_null(m);
    mqttout_stats_t st;
    for (int i = 0; i < 100; i++) {
        mqttout_get_stats(m, &st);
        if (st.connected)
            break;
        usleep(50000);
    }
    assert_true(st.connected);

    /* every type on its topic; the subscriber listens to .../up only, the others are
     * checked through a second subscription below */
    appevent_t ev = event(APPEVENT_DATA, 0xED4E06E3, 1);
    assert_int_equal(mqttout_publish(m, &ev), 0);
    wait_got(1);
    assert_int_equal(count_got(), 1);
    assert_string_equal(got_topic[0], "sigfox/ns/ED4E06E3/up");
    assert_string_equal(got_body[0], "{\"type\":\"data\",\"subtype\":\"uplink\",\"device\":"
                                     "\"ED4E06E3\",\"time\":1795696395,\"seqNumber\":1,"
                                     "\"data\":\"ca01\",\"ack\":false}");
    mosquitto_subscribe(sub, NULL, "sigfox/+/+/service", 1);
    mosquitto_subscribe(sub, NULL, "sigfox/+/+/error", 1);
    mosquitto_subscribe(sub, NULL, "sigfox/+/+/downlink/ack", 1);
    usleep(300000);
    appevent_t s1 = event(APPEVENT_SERVICE, 0xA, 2);
    s1.subtype = APPEVENT_SUB_STATUS;
    appevent_t s2 = event(APPEVENT_SERVICE, 0xA, 3);
    s2.subtype = APPEVENT_SUB_DOWNLINK_ACK;
    s2.dl_ok = true;
    appevent_t e1 = event(APPEVENT_ERROR, 0xB, -1);
    mqttout_publish(m, &s1);
    mqttout_publish(m, &s2);
    mqttout_publish(m, &e1);
    wait_got(4);
    assert_int_equal(count_got(), 4);
    int seen = 0;
    for (int i = 1; i < 4; i++) {
        if (strcmp(got_topic[i], "sigfox/ns/0000000A/service") == 0)
            seen |= 1;
        else if (strcmp(got_topic[i], "sigfox/ns/0000000A/downlink/ack") == 0 &&
                 strstr(got_body[i], "\"downlinkAck\":true"))
            seen |= 2;
        else if (strcmp(got_topic[i], "sigfox/ns/0000000B/error") == 0)
            seen |= 4;
    }
    assert_int_equal(seen, 7);

    /* downlink via MQTT */
    const char *dl = "{\"downlinkData\":\"0102030405060708\"}";
    mosquitto_publish(sub, NULL, "sigfox/ns/ED4E06E3/downlink/set", (int)strlen(dl), dl, 1, false);
    mosquitto_publish(sub, NULL, "sigfox/ns/0000000A/downlink/set", 4, "none", 1, false);
    mosquitto_publish(sub, NULL, "sigfox/ns/0000000A/downlink/set", 5, "01020", 1, false);
    mosquitto_publish(sub, NULL, "sigfox/ns/nodevice/downlink/set", 16, "0102030405060708", 1, false);
    for (int i = 0; i < 100; i++) {
        mqttout_get_stats(m, &st);
        if (st.downlinks + st.refused >= 4)
            break;
        usleep(50000);
    }
    assert_int_equal(st.downlinks, 2);
    assert_int_equal(st.refused, 2);
    assert_int_equal(dl_calls, 2);
    assert_int_equal(dl_none, 1);
    assert_int_equal(dl_payload[7], 8);

    /* broker restart: events published while it is away arrive after the reconnect */
    stop_broker();
    char db[128];
    snprintf(db, sizeof db, "%s/mosquitto.db", dir);
    assert_int_equal(access(db, R_OK), 0); /* the subscriber's session was saved */
    for (int i = 0; i < 100; i++) {
        mqttout_get_stats(m, &st);
        if (!st.connected)
            break;
        usleep(50000);
    }
    assert_false(st.connected);
    for (int i = 10; i < 15; i++) {
        appevent_t e = event(APPEVENT_DATA, 0x100, i);
        assert_int_equal(mqttout_publish(m, &e), 0);
    }
    mqttout_get_stats(m, &st);
    assert_int_equal(st.queued, 5);
    start_broker();
    wait_got(9);
    assert_int_equal(count_got(), 9);
    for (int i = 10; i < 15; i++) {
        int hits = 0;
        char want[64];
        snprintf(want, sizeof want, "\"seqNumber\":%d,", i);
        for (int k = 4; k < count_got(); k++)
            hits += strstr(got_body[k], want) != NULL;
        assert_int_equal(hits, 1);
    }
    /* the broker may forward to the subscriber before its PUBACK reaches the publisher */
    for (int i = 0; i < 200; i++) {
        mqttout_get_stats(m, &st);
        if (st.queued == 0)
            break;
        usleep(50000);
    }
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.acked, 9);

    /* bounded queue: with the broker away, the oldest events go first. The subscriber
     * leaves first and cleanly: cancelling its thread mid-reconnect would leak libc's
     * getaddrinfo state inside libmosquitto (LeakSanitizer) */
    mosquitto_disconnect(sub);
    mosquitto_loop_stop(sub, false);
    stop_broker();
    mqttout_destroy(m);
    cfg.max_queue = 3;
    m = mqttout_create(&cfg, err, sizeof err);
    assert_non_null(m);
    for (int i = 0; i < 5; i++) {
        appevent_t e = event(APPEVENT_DATA, 0x200, i);
        mqttout_publish(m, &e);
    }
    mqttout_get_stats(m, &st);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.dropped, 2);
    mqttout_destroy(m);

    cfg.prefix = "a/b";
    assert_null(mqttout_create(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "without '/'"));

    mosquitto_destroy(sub);
    mosquitto_lib_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_parse_downlink(void **state)
{
    (void)state;
    uint8_t p[8];
    assert_int_equal(mqttout_parse_downlink("0102030405060708", 16, p), 0);
    assert_int_equal(p[0], 1);
    assert_int_equal(mqttout_parse_downlink(" {\"downlinkData\":\"a1b2c3d4e5f60718\"}\n", 38, p), 0);
    assert_int_equal(p[0], 0xA1);
    assert_int_equal(mqttout_parse_downlink("", 0, p), 1);
    assert_int_equal(mqttout_parse_downlink("none", 4, p), 1);
    assert_int_equal(mqttout_parse_downlink("010203040506070", 15, p), -1);
    assert_int_equal(mqttout_parse_downlink("01020304050607zz", 16, p), -1);
    assert_int_equal(mqttout_parse_downlink("{\"downlinkData\":1}", 18, p), -1);
    assert_int_equal(mqttout_parse_downlink("{", 1, p), -1);
    /* strict JSON: nothing after the object, no comments */
    assert_int_equal(mqttout_parse_downlink("{\"downlinkData\":\"a1b2c3d4e5f60718\"}x", 36, p), -1);
    assert_int_equal(mqttout_parse_downlink("{/**/\"downlinkData\":\"a1b2c3d4e5f60718\"}", 39, p), -1);
    char big[300];
    memset(big, '0', sizeof big);
    assert_int_equal(mqttout_parse_downlink(big, sizeof big, p), -1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_downlink),
        cmocka_unit_test(test_mqtt),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_broker();
    if (dir[0]) { /* also after a failed assertion left it behind */
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
