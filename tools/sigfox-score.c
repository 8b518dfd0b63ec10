/* sigfox-score: compare decoded uplink output (sigfoxd --replay JSON lines) with the ground
 * truth written by sigfox-synth, print a summary and exit according to the expectations
 * asked. Licence: MIT. docs/score.md describes the rules; include/truth.h the library.
 *
 *   sigfoxd --replay cap.cu8 --keys cap.keys | \
 *       sigfox-score --truth cap.truth.jsonl --expect-all --max-false 0
 *
 * Exit status: 0 every expectation met (or none asked); 1 an expectation failed, or an
 * input file is unreadable or malformed; 64 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cliutil.h"
#include "truth.h"

#define EXIT_FAIL 1

static const char usage_text[] =
    "Usage: sigfox-score --truth FILE.truth.jsonl [options] DECODED.jsonl|-\n"
    "Compare decoded frames and messages (sigfoxd --replay output) with the ground truth\n"
    "of sigfox-synth. Prints a summary; the exit status says whether the expectations hold.\n"
    "\n"
    "Matching (a decoded frame matches a truth burst with the same ep_id, mc and rank,\n"
    "within these tolerances; payload, bf and kind must then be equal):\n"
    "  --time-tol-symbols N  time tolerance in symbols of the burst's rate (2)\n"
    "  --time-tol-ms MS      plus this many milliseconds (10)\n"
    "  --freq-tol-hz HZ      carrier tolerance (300)\n"
    "Which truth must be decoded (\"expected\"):\n"
    "  --min-ebn0 DB         only bursts with Eb/N0 >= DB (all)\n"
    "  --expect-collided     collided bursts too (not by default)\n"
    "  --expect-interfered   bursts hit by an interferer too (not by default)\n"
    "Expectations (exit status 1 when one fails):\n"
    "  --expect-all          every expected truth message is decoded with exact fields\n"
    "  --frames              --expect-all and --min-decoded count frames, not messages\n"
    "  --min-decoded F       at least this fraction (0..1, or a percentage such as 95%)\n"
    "                        of the expected messages (frames) decoded exactly\n"
    "  --max-false N         at most N false frames and N false messages (decoded with an\n"
    "                        ep_id+mc that no truth burst has)\n"
    "  --max-wrong N         at most N wrong-field + misplaced frames and messages\n"
    "  --max-duplicates N    at most N duplicate frames and N duplicate messages\n"
    "  --expect-auth         every matched frame and message has \"auth\": \"ok\"\n"
    "  --max-freq-rms HZ     carrier error RMS over the matched frames at most HZ\n"
    "Output:\n"
    "  --json                one JSON object instead of the text summary\n"
    "  --list N              list at most N entries per kind of error (20; -1 = all)\n"
    "  -q, --quiet           no lists, only the table and the result\n"
    "  -h, --help, --version\n"
    "\n"
    "Exit status: 0 pass (or no expectation asked), 1 an expectation failed or an input\n"
    "file is unreadable or malformed (the message names file and line), 64 bad usage.\n";

#define PROG "sigfox-score"
#define usage_error(...) cli_usage_error(PROG, __VA_ARGS__)

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(x))
        return false;
    *out = x;
    return true;
}

/* "0.95" or "95%". */
static bool parse_fraction(const char *s, double *out)
{
    char buf[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf)
        return false;
    bool pct = s[n - 1] == '%';
    memcpy(buf, s, n + 1);
    if (pct)
        buf[n - 1] = 0;
    double x;
    if (!parse_double(buf, &x))
        return false;
    if (pct)
        x /= 100.0;
    if (x < 0 || x > 1)
        return false;
    *out = x;
    return true;
}

typedef struct {
    const char *label;
    size_t offset;
} row_t;

#define ROW(label, member)                                                                         \
    {                                                                                              \
        label, offsetof(truth_stats_t, member)                                                     \
    }

static void print_rows(const truth_score_t *s, const row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%-30s", rows[i].label);
        for (int g = 0; g < TRUTH_GROUPS; g++)
            printf(" %8zu", *(const size_t *)((const char *)&s->stats[g] + rows[i].offset));
        printf("\n");
    }
}

static void print_value_row(const truth_score_t *s, const char *label, size_t offset,
                            const char *fmt)
{
    printf("%-30s", label);
    for (int g = 0; g < TRUTH_GROUPS; g++) {
        double x = *(const double *)((const char *)&s->stats[g] + offset);
        if (isfinite(x))
            printf(fmt, x);
        else
            printf(" %8s", "-");
    }
    printf("\n");
}

static void print_summary(const truth_score_t *s, long max_list, bool quiet)
{
    const truth_config_t *c = &s->cfg;
    printf("Truth: %s, bursts: %zu, messages: %zu, interferers: %zu\n", s->truth->name, s->truth->n,
           s->n_msgs, s->truth->n_interferers);
    size_t nf = 0, nm = 0, nr = 0;
    for (size_t i = 0; i < s->decoded->n; i++) {
        truth_rec_type_t t = s->decoded->recs[i].type;
        nf += t == TRUTH_REC_FRAME;
        nm += t == TRUTH_REC_MESSAGE;
        nr += t == TRUTH_REC_REPLAY;
    }
    printf("Decoded: %s, frames: %zu (without fields: %zu), messages: %zu, replay events: %zu, "
           "other lines: %zu\n",
           s->decoded->name, nf, s->decoded->n_no_fields, nm, nr, s->decoded->n_skipped);
    printf("Tolerances: time %g symbols + %g ms (BR100 %.1f ms, BR600 %.1f ms), carrier %g Hz\n",
           c->time_tol_symbols, c->time_tol_s * 1e3, truth_time_tol_s(c, 100) * 1e3,
           truth_time_tol_s(c, 600) * 1e3, c->freq_tol_hz);
    printf("Expected: Eb/N0 ");
    if (isinf(c->min_ebn0_db) && c->min_ebn0_db < 0)
        printf("any");
    else
        printf(">= %.1f dB", c->min_ebn0_db);
    printf(", %s collided, %s interfered\n\n", c->expect_collided ? "with" : "not",
           c->expect_interfered ? "with" : "not");

    printf("%-30s %8s %8s %8s\n", "", "all", "BR100", "BR600");
    static const row_t frame_rows[] = {
        ROW("frames: truth", truth_frames),
        ROW("  expected", expected_frames),
        ROW("  matched", matched_frames),
        ROW("  matched of expected", matched_expected_frames),
        ROW("  missed", missed_frames),
        ROW("  missed of expected", missed_expected_frames),
        ROW("  decoded (with fields)", decoded_frames),
        ROW("  false", false_frames),
        ROW("  wrong fields", wrong_frames),
        ROW("  misplaced", misplaced_frames),
        ROW("  duplicate", duplicate_frames),
        ROW("  without fields (CRC bad)", crc_bad_frames),
        ROW("  matched, auth not ok", frames_auth_not_ok),
    };
    static const row_t msg_rows[] = {
        ROW("messages: truth", truth_messages),
        ROW("  expected", expected_messages),
        ROW("  matched", matched_messages),
        ROW("  matched of expected", matched_expected_messages),
        ROW("  missed", missed_messages),
        ROW("  missed of expected", missed_expected_messages),
        ROW("  decoded", decoded_messages),
        ROW("  false", false_messages),
        ROW("  wrong fields", wrong_messages),
        ROW("  misplaced", misplaced_messages),
        ROW("  duplicate", duplicate_messages),
        ROW("  combined (soft)", combined_messages),
        ROW("  matched, auth not ok", messages_auth_not_ok),
        ROW("  replay events", replay_events),
    };
    print_rows(s, frame_rows, sizeof frame_rows / sizeof frame_rows[0]);
    print_rows(s, msg_rows, sizeof msg_rows / sizeof msg_rows[0]);
    print_value_row(s, "carrier error RMS (Hz)", offsetof(truth_stats_t, freq_err_rms_hz),
                    " %8.2f");
    print_value_row(s, "carrier error max (Hz)", offsetof(truth_stats_t, freq_err_max_hz),
                    " %8.2f");
    print_value_row(s, "timing error RMS (ms)", offsetof(truth_stats_t, time_err_rms_ms), " %8.3f");
    print_value_row(s, "timing error max (ms)", offsetof(truth_stats_t, time_err_max_ms), " %8.3f");
    print_value_row(s, "SNR - Eb/N0 mean (dB)", offsetof(truth_stats_t, snr_minus_ebn0_mean_db),
                    " %8.2f");
    print_value_row(s, "SNR - Eb/N0 RMS (dB)", offsetof(truth_stats_t, snr_minus_ebn0_rms_db),
                    " %8.2f");
    if (quiet || max_list == 0)
        return;

    char text[512];
    long shown;
    size_t total;
    /* Missed expected truth first: those are what fail --expect-all. */
    for (int pass = 0; pass < 2; pass++) {
        shown = 0;
        total = 0;
        for (size_t i = 0; i < s->truth->n; i++) {
            if (s->burst[i].dec >= 0 || s->burst[i].expected != (pass == 0))
                continue;
            if (total++ == 0)
                printf("\nMissed %s frames:\n", pass == 0 ? "expected" : "unexpected");
            if (max_list < 0 || shown < max_list) {
                printf("  %s\n", truth_describe_burst(s, i, text, sizeof text));
                shown++;
            }
        }
        if (total > (size_t)shown)
            printf("  ... %zu more\n", total - (size_t)shown);
    }
    for (int pass = 0; pass < 2; pass++) {
        shown = 0;
        total = 0;
        for (size_t i = 0; i < s->n_msgs; i++) {
            if (s->msgs[i].dec >= 0 || s->msgs[i].expected != (pass == 0))
                continue;
            if (total++ == 0)
                printf("\nMissed %s messages:\n", pass == 0 ? "expected" : "unexpected");
            if (max_list < 0 || shown < max_list) {
                printf("  %s\n", truth_describe_msg(s, i, text, sizeof text));
                shown++;
            }
        }
        if (total > (size_t)shown)
            printf("  ... %zu more\n", total - (size_t)shown);
    }
    static const truth_dec_class_t classes[] = {TRUTH_DEC_FALSE, TRUTH_DEC_WRONG,
                                                TRUTH_DEC_MISPLACED, TRUTH_DEC_DUPLICATE};
    static const char *titles[] = {"False (no truth with this ep_id and mc)", "Wrong fields",
                                   "Misplaced (time, carrier or rank out of tolerance)",
                                   "Duplicates"};
    for (size_t c_i = 0; c_i < sizeof classes / sizeof classes[0]; c_i++) {
        shown = 0;
        total = 0;
        for (size_t i = 0; i < s->decoded->n; i++) {
            if (s->dec[i].cls != classes[c_i])
                continue;
            if (total++ == 0)
                printf("\n%s:\n", titles[c_i]);
            if (max_list < 0 || shown < max_list) {
                printf("  %s\n", truth_describe_dec(s, i, text, sizeof text));
                shown++;
            }
        }
        if (total > (size_t)shown)
            printf("  ... %zu more\n", total - (size_t)shown);
    }
}

enum {
    OPT_TRUTH = 256,
    OPT_TIME_SYM,
    OPT_TIME_MS,
    OPT_FREQ,
    OPT_MIN_EBN0,
    OPT_EXP_COLL,
    OPT_EXP_INTF,
    OPT_EXPECT_ALL,
    OPT_FRAMES,
    OPT_MIN_DEC,
    OPT_MAX_FALSE,
    OPT_MAX_WRONG,
    OPT_MAX_DUP,
    OPT_EXPECT_AUTH,
    OPT_MAX_FREQ_RMS,
    OPT_JSON,
    OPT_LIST,
};

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"truth", required_argument, NULL, OPT_TRUTH},
        {"time-tol-symbols", required_argument, NULL, OPT_TIME_SYM},
        {"time-tol-ms", required_argument, NULL, OPT_TIME_MS},
        {"freq-tol-hz", required_argument, NULL, OPT_FREQ},
        {"min-ebn0", required_argument, NULL, OPT_MIN_EBN0},
        {"expect-collided", no_argument, NULL, OPT_EXP_COLL},
        {"expect-interfered", no_argument, NULL, OPT_EXP_INTF},
        {"expect-all", no_argument, NULL, OPT_EXPECT_ALL},
        {"frames", no_argument, NULL, OPT_FRAMES},
        {"min-decoded", required_argument, NULL, OPT_MIN_DEC},
        {"max-false", required_argument, NULL, OPT_MAX_FALSE},
        {"max-wrong", required_argument, NULL, OPT_MAX_WRONG},
        {"max-duplicates", required_argument, NULL, OPT_MAX_DUP},
        {"expect-auth", no_argument, NULL, OPT_EXPECT_AUTH},
        {"max-freq-rms", required_argument, NULL, OPT_MAX_FREQ_RMS},
        {"json", no_argument, NULL, OPT_JSON},
        {"list", required_argument, NULL, OPT_LIST},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CLI_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    truth_config_t cfg;
    truth_config_default(&cfg);
    truth_expect_t exp;
    truth_expect_default(&exp);
    const char *truth_path = NULL;
    bool json = false, quiet = false, any_expectation = false;
    long max_list = 20;
    double x;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hq", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_TRUTH:
            truth_path = optarg;
            break;
        case OPT_TIME_SYM:
            if (!parse_double(optarg, &x) || x < 0)
                return usage_error("bad --time-tol-symbols '%s': a number >= 0", optarg);
            cfg.time_tol_symbols = x;
            break;
        case OPT_TIME_MS:
            if (!parse_double(optarg, &x) || x < 0)
                return usage_error("bad --time-tol-ms '%s': milliseconds >= 0", optarg);
            cfg.time_tol_s = x * 1e-3;
            break;
        case OPT_FREQ:
            if (!parse_double(optarg, &x) || x < 0)
                return usage_error("bad --freq-tol-hz '%s': Hz >= 0", optarg);
            cfg.freq_tol_hz = x;
            break;
        case OPT_MIN_EBN0:
            if (!parse_double(optarg, &x))
                return usage_error("bad --min-ebn0 '%s': a level in dB such as 8.5", optarg);
            cfg.min_ebn0_db = x;
            break;
        case OPT_EXP_COLL:
            cfg.expect_collided = true;
            break;
        case OPT_EXP_INTF:
            cfg.expect_interfered = true;
            break;
        case OPT_EXPECT_ALL:
            exp.expect_all = any_expectation = true;
            break;
        case OPT_FRAMES:
            exp.frames = true;
            break;
        case OPT_MIN_DEC:
            if (!parse_fraction(optarg, &exp.min_decoded))
                return usage_error("bad --min-decoded '%s': a fraction 0..1 or a percentage "
                                   "such as 95%%",
                                   optarg);
            any_expectation = true;
            break;
        case OPT_MAX_FALSE:
            if (!cli_parse_long(optarg, 10, 0, LONG_MAX, &exp.max_false))
                return usage_error("bad --max-false '%s': a count >= 0", optarg);
            any_expectation = true;
            break;
        case OPT_MAX_WRONG:
            if (!cli_parse_long(optarg, 10, 0, LONG_MAX, &exp.max_wrong))
                return usage_error("bad --max-wrong '%s': a count >= 0", optarg);
            any_expectation = true;
            break;
        case OPT_MAX_DUP:
            if (!cli_parse_long(optarg, 10, 0, LONG_MAX, &exp.max_duplicates))
                return usage_error("bad --max-duplicates '%s': a count >= 0", optarg);
            any_expectation = true;
            break;
        case OPT_EXPECT_AUTH:
            exp.expect_auth = any_expectation = true;
            break;
        case OPT_MAX_FREQ_RMS:
            if (!parse_double(optarg, &exp.max_freq_rms_hz) || exp.max_freq_rms_hz < 0)
                return usage_error("bad --max-freq-rms '%s': Hz >= 0", optarg);
            any_expectation = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_LIST:
            if (!cli_parse_long(optarg, 10, -1, LONG_MAX, &max_list))
                return usage_error("bad --list '%s': a count >= 0, or -1 for all", optarg);
            break;
        case 'q':
            quiet = true;
            break;
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    if (!truth_path)
        return usage_error("--truth FILE is required");
    if (optind != argc - 1)
        return usage_error(optind == argc ? "give the decoded JSON lines file (or - for stdin)"
                                          : "one decoded file only, got '%s' too",
                           argv[optind + 1 < argc ? optind + 1 : optind]);
    const char *dec_path = argv[optind];
    if (strcmp(truth_path, "-") == 0 && strcmp(dec_path, "-") == 0)
        return usage_error("the truth and the decoded lines cannot both come from stdin");
    if (exp.frames && !exp.expect_all && !isfinite(exp.min_decoded))
        return usage_error("--frames applies to --expect-all or --min-decoded");

    truth_set_t truth = {0}, dec = {0};
    truth_score_t score = {0};
    char err[512];
    int status = EXIT_FAIL;
    if (truth_set_load(&truth, truth_path, true, err, sizeof err) < 0 ||
        truth_set_load(&dec, dec_path, false, err, sizeof err) < 0 ||
        truth_score(&score, &truth, &dec, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "sigfox-score: %s\n", err);
        goto out;
    }
    char why[2048];
    int failed = truth_check(&score, &exp, why, sizeof why);
    if (json) {
        json_object *o = truth_score_json(&score, quiet ? 0 : max_list);
        json_object *f = json_object_new_array();
        if (!o || !f) {
            json_object_put(o);
            json_object_put(f);
            fprintf(stderr, "sigfox-score: out of memory\n");
            goto out;
        }
        for (char *line = why, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl)
                break;
            json_object_array_add(f, json_object_new_string_len(line, (int)(nl - line)));
        }
        json_object_object_add(o, "pass", json_object_new_boolean(failed == 0));
        json_object_object_add(o, "failures", f);
        cli_json_line(o, stdout);
        json_object_put(o);
    } else {
        print_summary(&score, max_list, quiet);
        if (!any_expectation)
            printf("\nResult: scored (no expectation asked)\n");
        else if (failed == 0)
            printf("\nResult: PASS\n");
        else
            printf("\nResult: FAIL\n%s", why);
    }
    if (failed)
        fprintf(stderr, "sigfox-score: %d expectation%s failed\n", failed, failed == 1 ? "" : "s");
    status = failed ? EXIT_FAIL : 0;
out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sigfox-score: cannot write the report: %s\n", strerror(errno));
        status = EXIT_FAIL;
    }
    truth_score_free(&score);
    truth_set_free(&truth);
    truth_set_free(&dec);
    return status;
}
