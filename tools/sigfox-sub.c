/* sigfox-sub: subscribe to sigfoxd's ZeroMQ events and print them, or send one command.
 * Licence: MIT. docs/api.md describes the events and commands.
 *
 * Exit status: 0 ok; 1 no reply / command error reply / fewer events than --count before
 * --timeout; 64 bad usage.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <zmq.h>

#include "cliutil.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE CLI_EXIT_USAGE
#define DEFAULT_PUB "ipc:///run/sigfoxd/events"
#define MAX_TOPICS 16

static const char usage_text[] =
    "Usage: sigfox-sub [--pub ENDPOINT] [--json] [--topic T]... [--count N] [--timeout S]\n"
    "       sigfox-sub --cmd ENDPOINT REQUEST [--timeout S]\n"
    "Print sigfoxd events, or send one command and print the reply.\n"
    "\n"
    "  --pub ENDPOINT   event socket (default " DEFAULT_PUB ")\n"
    "  --json           print each event's JSON on one line instead of a summary\n"
    "  --topic T        only events of topic T: frame, message, replay, stats, log,\n"
    "                   softframe, ...\n"
    "                   (repeatable; default all)\n"
    "  --count N        exit after N events\n"
    "  --timeout S      exit after S seconds (status 1 when --count was not reached);\n"
    "                   with --cmd: how long to wait for the reply (default 5)\n"
    "  --cmd ENDPOINT REQUEST\n"
    "                   send REQUEST, a JSON object or just a verb (\"stats\" means\n"
    "                   {\"cmd\": \"stats\"}), print the JSON reply; status 1 unless it\n"
    "                   says \"ok\": true\n"
    "  -h, --help, --version\n"
    "\n"
    "Examples:\n"
    "  sigfox-sub --topic message\n"
    "  sigfox-sub --cmd ipc:///run/sigfoxd/commands '{\"cmd\": \"devices\"}'\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *str(json_object *o, const char *key, const char *dflt)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v) && v)
        return json_object_get_string(v);
    return dflt;
}

static double num(json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v) && v)
        return json_object_get_double(v);
    return NAN;
}

/* "12:00:16.123456" from time_utc, else "t=1.205625s" from the stream time. */
static void when(json_object *o, char *out, size_t len)
{
    const char *utc = str(o, "time_utc", NULL);
    const char *t = utc ? strchr(utc, 'T') : NULL;
    if (t)
        snprintf(out, len, "%.15s", t + 1);
    else
        snprintf(out, len, "t=%.6fs", num(o, "t_start_s"));
}

static void print_human(const char *topic, json_object *o)
{
    char t[40];
    if (strcmp(topic, "frame") == 0 || strcmp(topic, "message") == 0 ||
        strcmp(topic, "replay") == 0) {
        when(o, t, sizeof t);
        const char *payload = str(o, "payload", NULL);
        char data[64];
        if (payload)
            snprintf(data, sizeof data, "%s", payload[0] ? payload : "(empty)");
        else if (json_object_object_get_ex(o, "payload_bit", NULL))
            snprintf(data, sizeof data, "bit %s", str(o, "payload_bit", "?"));
        else
            snprintf(data, sizeof data, "-");
        printf("%-7s %s %s mc %4s %-15s %-14s auth %-14s %10.6f MHz %4s bd  SNR %5.1f dB  "
               "RSSI %6.1f dBFS",
               topic, t, str(o, "ep_id", "--------"), str(o, "mc", "?"), str(o, "kind", "?"), data,
               str(o, "auth", "?"), num(o, "freq_hz") / 1e6, str(o, "baud", "?"), num(o, "snr_db"),
               num(o, "rssi_dbfs"));
        if (strcmp(topic, "frame") == 0)
            printf("  rank %s%s", str(o, "rank", "?"),
                   strcmp(str(o, "crc_ok", "true"), "true") ? " CRC BAD" : "");
        else
            printf("  replicas %s%s%s", str(o, "nframes", "?"),
                   strcmp(str(o, "combined", "false"), "true") == 0 ? " (combined)" : "",
                   strcmp(topic, "replay") == 0 ? "  REPLAYED" : "");
        if (strcmp(str(o, "bf", "false"), "true") == 0)
            printf("  downlink requested");
        putchar('\n');
    } else if (strcmp(topic, "stats") == 0) {
        printf("stats   uptime %s s, samples %s, dropped %s, bursts %s, frames ok %s, CRC bad %s, "
               "messages %s, replays %s, real time x%.1f, CPU %.0f%%\n",
               str(o, "uptime_s", "?"), str(o, "samples_in", "?"), str(o, "samples_dropped", "?"),
               str(o, "bursts_detected", "?"), str(o, "frames_ok", "?"),
               str(o, "frames_crc_bad", "?"), str(o, "messages", "?"), str(o, "replays", "?"),
               num(o, "realtime_factor"), num(o, "cpu_load") * 100.0);
    } else if (strcmp(topic, "log") == 0) {
        printf("log     %-7s %s\n", str(o, "level", "?"), str(o, "text", ""));
    } else if (strcmp(topic, "softframe") == 0) {
        when(o, t, sizeof t);
        printf("soft    %s %-7s %10.6f MHz %4s bd  SNR %5.1f dB  FT %s  %s symbols\n", t,
               str(o, "reason", "?"), num(o, "freq_hz") / 1e6, str(o, "baud", "?"),
               num(o, "snr_db"), str(o, "ft_rx", "?"), str(o, "n_symbols", "?"));
    } else {
        printf("%-7s %s\n", topic, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    }
}

static int run_command(void *ctx, const char *endpoint, const char *request, double timeout_s)
{
    char built[256];
    const char *text = request;
    /* A bare verb is shorthand for {"cmd": verb}. */
    if (request[0] != '{' && request[0] != '[' && request[0] != '"' && strlen(request) < 64 &&
        !strpbrk(request, "\\\"")) {
        snprintf(built, sizeof built, "{\"cmd\": \"%s\"}", request);
        text = built;
    }
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    int timeout_ms = (int)(timeout_s * 1000);
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    if (zmq_connect(req, endpoint) != 0) {
        fprintf(stderr, "sigfox-sub: cannot connect to %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        zmq_close(req);
        return EXIT_USAGE;
    }
    if (zmq_send(req, text, strlen(text), 0) < 0) {
        fprintf(stderr, "sigfox-sub: cannot send to %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(req);
        return EXIT_FAIL;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    int n = zmq_msg_recv(&msg, req, 0);
    int rc = EXIT_FAIL;
    if (n < 0) {
        fprintf(stderr, "sigfox-sub: no reply from %s within %.1f s (is sigfoxd running?)\n",
                endpoint, timeout_s);
    } else {
        fwrite(zmq_msg_data(&msg), 1, zmq_msg_size(&msg), stdout);
        putchar('\n');
        json_tokener *tok = json_tokener_new();
        json_object *reply =
            tok ? json_tokener_parse_ex(tok, zmq_msg_data(&msg), (int)zmq_msg_size(&msg)) : NULL;
        json_tokener_free(tok);
        json_object *ok;
        if (reply && json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok))
            rc = 0;
        json_object_put(reply);
    }
    zmq_msg_close(&msg);
    zmq_close(req);
    return rc;
}

static int run_subscriber(void *ctx, const char *endpoint, char *const *topics, int ntopics,
                          bool raw_json, long count, double timeout_s)
{
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sub, endpoint) != 0) {
        fprintf(stderr, "sigfox-sub: cannot connect to %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        zmq_close(sub);
        return EXIT_USAGE;
    }
    if (ntopics == 0)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    for (int i = 0; i < ntopics; i++)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topics[i], strlen(topics[i]));
    double deadline = timeout_s > 0 ? now_s() + timeout_s : 0;
    long received = 0;
    while (!stop && (count <= 0 || received < count)) {
        int wait_ms = 100; /* wake up for the stop flag and the deadline */
        if (deadline) {
            double left = deadline - now_s();
            if (left <= 0)
                break;
            if (left * 1000 < wait_ms)
                wait_ms = (int)(left * 1000) + 1;
        }
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, wait_ms) <= 0)
            continue;
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&topic, sub, 0) < 0) {
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            continue;
        }
        if (!zmq_msg_more(&topic) || zmq_msg_recv(&body, sub, 0) < 0) {
            fprintf(stderr, "sigfox-sub: ignoring a message without a JSON body\n");
        } else {
            /* Drop extra parts a future publisher might add. */
            while (zmq_msg_more(&body)) {
                zmq_msg_t extra;
                zmq_msg_init(&extra);
                zmq_msg_recv(&extra, sub, 0);
                int more = zmq_msg_more(&extra);
                zmq_msg_close(&extra);
                if (!more)
                    break;
            }
            char tname[64];
            size_t tl =
                zmq_msg_size(&topic) < sizeof tname - 1 ? zmq_msg_size(&topic) : sizeof tname - 1;
            memcpy(tname, zmq_msg_data(&topic), tl);
            tname[tl] = '\0';
            if (raw_json) {
                fwrite(zmq_msg_data(&body), 1, zmq_msg_size(&body), stdout);
                putchar('\n');
            } else {
                json_tokener *tok = json_tokener_new();
                json_object *o =
                    tok ? json_tokener_parse_ex(tok, zmq_msg_data(&body), (int)zmq_msg_size(&body))
                        : NULL;
                json_tokener_free(tok);
                if (o && json_object_is_type(o, json_type_object))
                    print_human(tname, o);
                else
                    printf("%-7s (not JSON) %.*s\n", tname, (int)zmq_msg_size(&body),
                           (const char *)zmq_msg_data(&body));
                json_object_put(o);
            }
            fflush(stdout);
            received++;
        }
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
    zmq_close(sub);
    if (count > 0 && received < count) {
        if (!stop)
            fprintf(stderr, "sigfox-sub: %ld of %ld events within %.1f s\n", received, count,
                    timeout_s);
        return EXIT_FAIL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pub", required_argument, NULL, 'p'},
        {"cmd", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *pub = DEFAULT_PUB, *cmd = NULL;
    char *topics[MAX_TOPICS];
    int ntopics = 0;
    bool raw_json = false;
    long count = 0;
    double timeout_s = 0;
    int c;
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'p':
            pub = optarg;
            break;
        case 'c':
            cmd = optarg;
            break;
        case 'j':
            raw_json = true;
            break;
        case 't':
            if (ntopics == MAX_TOPICS) {
                fprintf(stderr, "sigfox-sub: at most %d --topic options\n", MAX_TOPICS);
                return EXIT_USAGE;
            }
            topics[ntopics++] = optarg;
            break;
        case 'n':
            if (!cli_parse_long(optarg, 10, 1, LONG_MAX, &count)) {
                fprintf(stderr, "sigfox-sub: --count: '%s' is not a positive integer\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'w':
            timeout_s = strtod(optarg, &end);
            if (*end || !(timeout_s > 0) || timeout_s > 1e6) {
                fprintf(stderr, "sigfox-sub: --timeout: '%s' is not a number of seconds\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            printf("sigfox-sub %s\n", SIGFOXD_VERSION);
            return 0;
        default:
            fputs("Try 'sigfox-sub --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (cmd && optind != argc - 1) {
        fprintf(stderr, "sigfox-sub: --cmd needs exactly one REQUEST argument\n");
        return EXIT_USAGE;
    }
    if (!cmd && optind != argc) {
        fprintf(stderr, "sigfox-sub: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    void *ctx = zmq_ctx_new();
    if (!ctx) {
        fprintf(stderr, "sigfox-sub: cannot create a ZeroMQ context\n");
        return EXIT_FAIL;
    }
    int rc = cmd ? run_command(ctx, cmd, argv[optind], timeout_s > 0 ? timeout_s : 5.0)
                 : run_subscriber(ctx, pub, topics, ntopics, raw_json, count, timeout_s);
    zmq_ctx_term(ctx);
    return rc;
}
