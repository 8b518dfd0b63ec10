/* cbtemplate: callback templates with the Sigfox backend's variables (seeds/000 §7.1.3),
 * so that an existing endpoint's URL, headers and body can be copied over unchanged.
 * Licence: MIT.
 *
 * A variable is `{name}`; any other brace (a JSON body's own) is literal text. Unknown
 * names, and names the callback type does not provide, are refused when the template is
 * created, with their column. Variables (docs/integrations.md has the same table):
 *
 *   all types  {device}      device ID, 8 uppercase hex digits
 *              {time}        epoch seconds (UTC) of the event
 *              {deviceTypeId} the device's type name ("" without one)
 *   DATA       {data}        payload, lowercase hex ("" for an empty payload)
 *              {seqNumber}   message counter 0..4095
 *              {ack}         true when the device waits for a downlink from this callback
 *              {station}     ID of the station with the best RSSI
 *              {rssi} {snr}  that station's RSSI (dBm, dBFS when uncalibrated) and SNR (dB), 2 decimals
 *              {avgSnr}      mean SNR over the stations, 2 decimals
 *              {lat} {lng}   that station's position (degrees, 6 decimals; "" when unknown)
 *              {duplicates}  JSON array of the OTHER stations:
 *                            [{"bsId":"B","rssi":-120.5,"snr":8.1,"nbRep":3}]
 *              {stations}    JSON array of ALL stations, best first (same members)
 *              {nbStations}  number of stations that heard the message
 *              {customData#NAME}  field NAME of the device type's payload grammar
 *                            (payloadfmt.h): number, true/false, text; "" when the payload
 *                            was too short for it
 *              {decoded}     all grammar fields as one JSON object ({} without a grammar)
 *   SERVICE    {station} {rssi} {snr} {avgSnr} {lat} {lng} {seqNumber} as for DATA
 *              {temp}        device temperature (°C, 1 decimal), keep-alive status
 *              {batt}        supply voltage during TX (V, 2 decimals)
 *              {vddIdle} {vddTx}  supply voltages idle / TX in mV
 *              {downlinkAck} true/false: the device confirmed the downlink
 *              {infoMessage} event behind it (downlink_ack, downlink_lost, ...)
 *              {infoCode}    0 = acknowledged, 1 = not
 *   ERROR      {info}        "Communication loss"
 *              {severity}    "ERROR"
 *              {lastSeen}    epoch seconds of the device's last message (0 = never)
 *
 * Escaping (cbtemplate_escape_t) is applied to every substituted value, never to the
 * template text: URL (percent-encoding of all but RFC 3986 unreserved characters), JSON
 * (the inside of a JSON string; the JSON-valued variables {duplicates} {stations}
 * {decoded} are inserted as JSON), FORM (as URL), HEADER (CR, LF and other control
 * characters become spaces, so a value cannot add a header), NONE.
 */
#ifndef SIGFOX_CBTEMPLATE_H
#define SIGFOX_CBTEMPLATE_H

#include <stddef.h>

#include "appevent.h"

/* Longest template text and longest expansion (bytes). */
#define CBTEMPLATE_MAX_TEXT 16384
#define CBTEMPLATE_MAX_OUT 65536

typedef enum {
    CBTEMPLATE_ESC_NONE = 0,
    CBTEMPLATE_ESC_URL,
    CBTEMPLATE_ESC_JSON,
    CBTEMPLATE_ESC_HEADER,
} cbtemplate_escape_t;

typedef struct cbtemplate cbtemplate_t;

/* Parses text for callbacks of the given type. NULL with err ("... at column N") on an
 * unknown variable, one the type does not provide, or an over-long text. */
cbtemplate_t *cbtemplate_create(const char *text, appevent_type_t type, char *err,
                                size_t err_len);
void cbtemplate_destroy(cbtemplate_t *t);

/* Expands t for ev with the escaping esc. Returns a new NUL-terminated string (free()),
 * or NULL when the result would exceed CBTEMPLATE_MAX_OUT bytes or on no memory. */
char *cbtemplate_expand(const cbtemplate_t *t, const appevent_t *ev, cbtemplate_escape_t esc);

/* The escaping a body with this Content-Type needs: JSON for "application/json" (and
 * "+json"), URL for "application/x-www-form-urlencoded", NONE otherwise. */
cbtemplate_escape_t cbtemplate_escape_for_content_type(const char *content_type);

#endif
