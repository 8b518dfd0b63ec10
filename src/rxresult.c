/* rxresult: names of the receiver's result values. Licence: MIT. */
#include "rxresult.h"

#include "framejson.h"

const char *rx_auth_name(rx_auth_t a)
{
    switch (a) {
    case RX_AUTH_OK:
        return FRAMEJSON_AUTH_OK;
    case RX_AUTH_BAD:
        return FRAMEJSON_AUTH_BAD;
    case RX_AUTH_UNKNOWN_DEVICE:
        return FRAMEJSON_AUTH_UNKNOWN_DEVICE;
    case RX_AUTH_UNCHECKED:
    default:
        return FRAMEJSON_AUTH_UNCHECKED;
    }
}
