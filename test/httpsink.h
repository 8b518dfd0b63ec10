/* httpsink.h: a real HTTP server for tests (libmicrohttpd on 127.0.0.1, a thread per
 * connection) that records every request and answers with a programmable status, body and
 * delay. Header-only, for test/test_*.c. Licence: MIT. */
#ifndef SIGFOX_TEST_HTTPSINK_H
#define SIGFOX_TEST_HTTPSINK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HTTPSINK_MAX_REQ 256
#define HTTPSINK_MAX_BODY 65536

typedef struct {
    char method[8];
    char url[1024];      /* path and query as received */
    char content_type[128];
    char x_test[256];    /* the X-Test header, "" when absent */
    char body[HTTPSINK_MAX_BODY];
    size_t body_len;
} httpsink_req_t;

typedef struct {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t lock;
    httpsink_req_t req[HTTPSINK_MAX_REQ];
    size_t n;
    /* behaviour of the next answers */
    unsigned status;     /* default 200 */
    char answer[4096];   /* body of the answer */
    unsigned delay_ms;   /* sleep before answering */
} httpsink_t;

typedef struct {
    httpsink_req_t r;
} httpsink_conn_t;

static enum MHD_Result httpsink_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    httpsink_req_t *r = cls;
    if (strcasecmp(key, "Content-Type") == 0)
        snprintf(r->content_type, sizeof r->content_type, "%s", value);
    else if (strcasecmp(key, "X-Test") == 0)
        snprintf(r->x_test, sizeof r->x_test, "%s", value);
    return MHD_YES;
}

static enum MHD_Result httpsink_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    httpsink_req_t *r = cls;
    size_t n = strlen(r->url);
    /* re-encode minimally: the test compares decoded values */
    snprintf(r->url + n, sizeof r->url - n, "%s%s=%s", strchr(r->url, '?') ? "&" : "?", key,
             value ? value : "");
    return MHD_YES;
}

static enum MHD_Result httpsink_handler(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    httpsink_t *s = cls;
    httpsink_conn_t *hc = *con_cls;
    if (!hc) {
        hc = calloc(1, sizeof *hc);
        if (!hc)
            return MHD_NO;
        snprintf(hc->r.method, sizeof hc->r.method, "%s", method);
        snprintf(hc->r.url, sizeof hc->r.url, "%s", url);
        MHD_get_connection_values(c, MHD_HEADER_KIND, httpsink_header, &hc->r);
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, httpsink_arg,
                                  &hc->r);
        *con_cls = hc;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t room = HTTPSINK_MAX_BODY - 1 - hc->r.body_len;
        size_t k = *upload_size < room ? *upload_size : room;
        memcpy(hc->r.body + hc->r.body_len, upload, k);
        hc->r.body_len += k;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->lock);
    unsigned status = s->status ? s->status : 200, delay = s->delay_ms;
    char answer[sizeof s->answer];
    memcpy(answer, s->answer, sizeof answer);
    pthread_mutex_unlock(&s->lock);
    if (delay)
        usleep(delay * 1000u);
    pthread_mutex_lock(&s->lock);
    if (s->n < HTTPSINK_MAX_REQ)
        s->req[s->n++] = hc->r;
    pthread_mutex_unlock(&s->lock);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(answer), answer, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void httpsink_done(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* Starts on 127.0.0.1:port (0 = any free port). Returns 0 or -1. */
static int httpsink_start(httpsink_t *s, unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, httpsink_handler, s, MHD_OPTION_SOCK_ADDR, &a,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED,
                            httpsink_done, s, MHD_OPTION_END);
    if (!s->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->port ? 0 : -1;
}

static httpsink_t *httpsink_new(void)
{
    httpsink_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    if (httpsink_start(s, 0) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void httpsink_stop(httpsink_t *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    s->d = NULL;
}

static void httpsink_set(httpsink_t *s, unsigned status, const char *answer, unsigned delay_ms)
{
    pthread_mutex_lock(&s->lock);
    s->status = status;
    snprintf(s->answer, sizeof s->answer, "%s", answer ? answer : "");
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->lock);
}

static size_t httpsink_count(httpsink_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void httpsink_free(httpsink_t *s)
{
    if (!s)
        return;
    httpsink_stop(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

#endif
