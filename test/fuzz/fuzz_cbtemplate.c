/* fuzz_cbtemplate: a callback template as a user writes it in sigfox-ns.conf or through the
 * REST API (the Sigfox backend's {variable} grammar, cbtemplate.h), for each callback type,
 * expanded for a fixed event with every escaping. Invariants: an accepted template expands
 * within CBTEMPLATE_MAX_OUT, and with HEADER escaping the substituted values add no line
 * break that the template text does not have. Licence: MIT. */
#include "appevent.h"
#include "cbtemplate.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_breaks(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\r' || *s == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dir(); /* quiet logs */
    char *text = fuzz_cstring(data, size);
    appevent_t ev;
    appevent_init(&ev);
    ev.ep_id = 0x0000ABCD;
    ev.time_s = 1764158400;
    ev.seq = 42;
    ev.ack = true;
    ev.data_len = 12;
    for (size_t i = 0; i < ev.data_len; i++)
        ev.data[i] = (uint8_t)(0xF0 + i);
    ev.nstations = 2;
    snprintf(ev.stations[0].id, sizeof ev.stations[0].id, "a\r\nX-Evil: 1");
    snprintf(ev.stations[1].id, sizeof ev.stations[1].id, "b\"}\\");
    ev.has_status = true;
    ev.vdd_idle_mv = 3300;
    ev.vdd_tx_mv = 3100;
    ev.temp_c = -12.5;
    snprintf(ev.info, sizeof ev.info, "line\nbreak");
    snprintf(ev.device_type, sizeof ev.device_type, "meter\r\n");
    for (int type = APPEVENT_DATA; type <= APPEVENT_ERROR; type++) {
        char err[256];
        cbtemplate_t *t = cbtemplate_create(text, (appevent_type_t)type, err, sizeof err);
        if (!t)
            continue;
        ev.type = (appevent_type_t)type;
        for (int esc = CBTEMPLATE_ESC_NONE; esc <= CBTEMPLATE_ESC_HEADER; esc++) {
            char *out = cbtemplate_expand(t, &ev, (cbtemplate_escape_t)esc);
            if (!out)
                continue; /* over CBTEMPLATE_MAX_OUT */
            FUZZ_CHECK(strlen(out) <= CBTEMPLATE_MAX_OUT);
            if (esc == CBTEMPLATE_ESC_HEADER)
                FUZZ_CHECK(count_breaks(out) <= count_breaks(text));
            free(out);
        }
        cbtemplate_destroy(t);
    }
    appevent_clear(&ev);
    free(text);
    return 0;
}
