/* iqfile: streaming read/write of complex baseband recordings (raw, WAV, SigMF).
 * Licence: MIT. */
#define _FILE_OFFSET_BITS 64 /* multi-GB files on 32-bit Raspberry Pi OS too */

#include "iqfile.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "errbuf.h"
#include "infile.h"
#include "jsonstrict.h"
#include "log.h"

/* Conversion buffer: 64 KiB is 8192 cf32 samples, enough to amortise fread calls and small
 * enough to stay in L2 on a Raspberry Pi. */
#define IQ_BUF_BYTES 65536
#define IQ_ERR_LEN 512
#define IQ_NAME_LEN 256

/* A WAV data chunk size of 0xFFFFFFFF (or 0 with data after it) means "until the end of
 * the file": what streaming writers leave when they cannot seek back. */
#define WAV_SIZE_UNKNOWN 0xFFFFFFFFu
#define WAV_FORMAT_PCM 1
#define WAV_FORMAT_IEEE_FLOAT 3
#define WAV_FORMAT_EXTENSIBLE 0xFFFE
/* "auxi" chunk (SpectraVue, SDR#, HDSDR): two Windows SYSTEMTIMEs (start, stop; 16 bytes
 * each), then DWORD CenterFreq, ADFrequency, IFFrequency, Bandwidth, IQOffset, 4 unused. */
#define WAV_AUXI_BYTES 68
#define WAV_AUXI_CENTER_OFFSET 32

#define SIGMF_VERSION "1.0.0"
/* Limits of what a recording's metadata may claim (an absurd value is a damaged or hostile
 * file, not a radio): 10 GS/s, 100 GHz. */
#define IQ_MAX_RATE_SPS 1e10
#define IQ_MAX_FREQ_HZ 1e11
/* A WAV header: chunks before "data", and bytes of them on a stream. */
#define WAV_MAX_CHUNKS 256u
#define WAV_MAX_STREAM_HEADER_BYTES (1u << 20)

struct iqfile {
    FILE *fp;
    bool writing;
    bool is_std;   /* stdin/stdout: flushed, never closed */
    bool seekable; /* a regular file */
    char name[IQ_NAME_LEN];
    iq_format_t container; /* raw format, WAV16/WAVF32 or SIGMF */
    iq_format_t fmt;       /* sample format on disk */
    size_t sample_bytes;
    double rate_sps;
    double center_freq_hz;
    iq_source_t rate_src;
    iq_source_t freq_src;
    double datetime_unix_s; /* SigMF captures[0] core:datetime, 0: none */
    uint64_t datetime_sample; /* ... of this sample (captures[0] core:sample_start) */
    off_t data_offset;   /* byte offset of the first sample */
    uint64_t data_limit; /* bytes of sample data, UINT64_MAX: to the end of the file */
    uint64_t data_done;  /* bytes read or written so far */
    int64_t length;      /* samples, -1 unknown */
    bool pending_error;  /* error to report once the samples before it are returned */
    bool at_end;
    /* WAV writer: where the size fields are. */
    off_t wav_fact_pos; /* 0: no fact chunk */
    off_t wav_data_size_pos;
    uint64_t wav_max_data;
    char err[IQ_ERR_LEN];
    uint8_t buf[IQ_BUF_BYTES];
};

/* ---- names ---------------------------------------------------------------------------- */

static const struct {
    iq_format_t fmt;
    const char *name;
    size_t sample_bytes;
} format_table[] = {
    {IQ_FORMAT_CU8, "cu8", 2},     {IQ_FORMAT_CS8, "cs8", 2},         {IQ_FORMAT_CS16, "cs16", 4},
    {IQ_FORMAT_CF32, "cf32", 8},   {IQ_FORMAT_WAV16, "wav16", 4},     {IQ_FORMAT_WAVF32, "wavf32", 8},
    {IQ_FORMAT_SIGMF, "sigmf", 0},
};
#define FORMAT_COUNT (sizeof format_table / sizeof format_table[0])

iq_format_t iq_format_from_name(const char *name)
{
    if (!name)
        return IQ_FORMAT_UNKNOWN;
    if (strcasecmp(name, "wav") == 0)
        return IQ_FORMAT_WAV16;
    for (size_t i = 0; i < FORMAT_COUNT; i++)
        if (strcasecmp(name, format_table[i].name) == 0)
            return format_table[i].fmt;
    return IQ_FORMAT_UNKNOWN;
}

const char *iq_format_name(iq_format_t fmt)
{
    for (size_t i = 0; i < FORMAT_COUNT; i++)
        if (format_table[i].fmt == fmt)
            return format_table[i].name;
    return "unknown";
}

size_t iq_format_sample_bytes(iq_format_t fmt)
{
    for (size_t i = 0; i < FORMAT_COUNT; i++)
        if (format_table[i].fmt == fmt)
            return format_table[i].sample_bytes;
    return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

iq_format_t iq_format_from_path(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return IQ_FORMAT_UNKNOWN;
    static const struct {
        const char *ext;
        iq_format_t fmt;
    } ext_table[] = {
        {".cu8", IQ_FORMAT_CU8},          {".cs8", IQ_FORMAT_CS8},
        {".cs16", IQ_FORMAT_CS16},        {".cf32", IQ_FORMAT_CF32},
        {".wav", IQ_FORMAT_WAV16},        {".sigmf-meta", IQ_FORMAT_SIGMF},
        {".sigmf-data", IQ_FORMAT_SIGMF}, {".sigmf", IQ_FORMAT_SIGMF},
    };
    for (size_t i = 0; i < sizeof ext_table / sizeof ext_table[0]; i++)
        if (has_suffix(path, ext_table[i].ext))
            return ext_table[i].fmt;
    return IQ_FORMAT_UNKNOWN;
}

const char *iq_source_name(iq_source_t src)
{
    switch (src) {
    case IQ_SOURCE_METADATA:
        return "metadata";
    case IQ_SOURCE_PARAMS:
        return "parameters";
    case IQ_SOURCE_FILENAME:
        return "file name";
    case IQ_SOURCE_NONE:
        break;
    }
    return "none";
}

/* rtl_433 convention (src/fileformat.c): a decimal number directly followed by a unit.
 * Parsed here independently; only the last path component is looked at. */
int iq_parse_name_tokens(const char *path, double *rate_sps, double *center_freq_hz)
{
    if (!path)
        return 0;
    const char *p = strrchr(path, '/');
    p = p ? p + 1 : path;
    int found = 0;
    while (*p) {
        if (!(*p >= '0' && *p <= '9')) {
            /* Skip a whole alphanumeric word so that "cs16" or "rc1" is not read as 16. */
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
                while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9'))
                    p++;
            } else {
                p++;
            }
            continue;
        }
        double value = 0.0;
        while (*p >= '0' && *p <= '9')
            value = value * 10.0 + (*p++ - '0');
        if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
            double scale = 0.1;
            for (p++; *p >= '0' && *p <= '9'; p++, scale *= 0.1)
                value += (*p - '0') * scale;
        }
        const char *unit = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
            p++;
        size_t len = (size_t)(p - unit);
        double mult = 1.0;
        const char *rest = unit;
        if (len > 1 && strchr("kKmMgG", unit[0])) {
            mult = (unit[0] == 'k' || unit[0] == 'K') ? 1e3
                   : (unit[0] == 'g' || unit[0] == 'G') ? 1e9
                                                        : 1e6;
            rest = unit + 1;
        }
        size_t rest_len = len - (size_t)(rest - unit);
        if (len == 1 && (unit[0] == 'M' || unit[0] == 'm')) {
            if (center_freq_hz)
                *center_freq_hz = value * 1e6;
            found |= 2;
        } else if (len == 1 && (unit[0] == 'k' || unit[0] == 'K')) {
            if (rate_sps)
                *rate_sps = value * 1e3;
            found |= 1;
        } else if (rest_len == 2 && strncasecmp(rest, "Hz", 2) == 0) {
            if (center_freq_hz)
                *center_freq_hz = value * mult;
            found |= 2;
        } else if (rest_len == 3 && strncasecmp(rest, "sps", 3) == 0) {
            if (rate_sps)
                *rate_sps = value * mult;
            found |= 1;
        }
    }
    return found;
}

/* ---- errors --------------------------------------------------------------------------- */

#define FERR(f, ...) errbuf_set((f)->err, sizeof(f)->err, __VA_ARGS__)

/* ---- little-endian helpers ------------------------------------------------------------ */

static uint16_t get_le16(const uint8_t *b)
{
    return (uint16_t)(b[0] | (b[1] << 8));
}

static uint32_t get_le32(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}

static void put_le16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static inline float get_lef32(const uint8_t *b)
{
    uint32_t u = get_le32(b);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void put_lef32(uint8_t *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    put_le32(b, u);
}

/* ---- sample conversion ---------------------------------------------------------------- */

/* 8-bit codes to floats through a table of the 256 values, computed by the compiler with
 * the same expression as the scalar conversion (so the same floats): two loads and a
 * store per component, where the conversion and division took ~6 instructions, and
 * every sample of an RTL-SDR or HackRF passes here. */
#define IQ_CU8(x) (((float)(x) - 127.5f) / 127.5f)
#define IQ_CS8(x) ((float)(int8_t)(uint8_t)(x) / 128.0f)
#define IQ_T4(F, b) F(b), F((b) + 1), F((b) + 2), F((b) + 3)
#define IQ_T16(F, b) IQ_T4(F, b), IQ_T4(F, (b) + 4), IQ_T4(F, (b) + 8), IQ_T4(F, (b) + 12)
#define IQ_T64(F, b) IQ_T16(F, b), IQ_T16(F, (b) + 16), IQ_T16(F, (b) + 32), IQ_T16(F, (b) + 48)
#define IQ_T256(F) IQ_T64(F, 0), IQ_T64(F, 64), IQ_T64(F, 128), IQ_T64(F, 192)
static const float cu8_value[256] = {IQ_T256(IQ_CU8)};
static const float cs8_value[256] = {IQ_T256(IQ_CS8)};

static void decode8(const float *value, const uint8_t *in, float complex *out, size_t n)
{
    float *o = (float *)out;
    for (size_t k = 0; k < 2 * n; k += 2) {
        o[k] = value[in[k]];
        o[k + 1] = value[in[k + 1]];
    }
}

void iq_decode(iq_format_t fmt, const void *in_bytes, float complex *out, size_t n)
{
    const uint8_t *in = in_bytes;
    switch (fmt) {
    case IQ_FORMAT_CU8:
    case IQ_FORMAT_CS8:
        decode8(fmt == IQ_FORMAT_CS8 ? cs8_value : cu8_value, in, out, n);
        break;
    case IQ_FORMAT_CS16:
    case IQ_FORMAT_WAV16:
        for (size_t i = 0; i < n; i++)
            out[i] = CMPLXF((float)(int16_t)get_le16(in + 4 * i) / 32768.0f,
                            (float)(int16_t)get_le16(in + 4 * i + 2) / 32768.0f);
        break;
    case IQ_FORMAT_CF32:
    case IQ_FORMAT_WAVF32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(out, in, n * sizeof *out);
#else
        for (size_t i = 0; i < n; i++)
            out[i] = CMPLXF(get_lef32(in + 8 * i), get_lef32(in + 8 * i + 4));
#endif
        break;
    default:
        break;
    }
}

/* Round to nearest, clip to [lo, hi]; NaN becomes the code nearest to zero. */
static long quantise(float v, float scale, float offset, long lo, long hi)
{
    if (isnan(v))
        v = 0.0f;
    float x = v * scale + offset;
    if (x <= (float)lo)
        return lo;
    if (x >= (float)hi)
        return hi;
    return lrintf(x);
}

void iq_encode(iq_format_t fmt, const float complex *in, void *out_bytes, size_t n)
{
    uint8_t *out = out_bytes;
    switch (fmt) {
    case IQ_FORMAT_CU8:
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = (uint8_t)quantise(crealf(in[i]), 127.5f, 127.5f, 0, 255);
            out[2 * i + 1] = (uint8_t)quantise(cimagf(in[i]), 127.5f, 127.5f, 0, 255);
        }
        break;
    case IQ_FORMAT_CS8:
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = (uint8_t)(int8_t)quantise(crealf(in[i]), 128.0f, 0.0f, -128, 127);
            out[2 * i + 1] = (uint8_t)(int8_t)quantise(cimagf(in[i]), 128.0f, 0.0f, -128, 127);
        }
        break;
    case IQ_FORMAT_CS16:
    case IQ_FORMAT_WAV16:
        for (size_t i = 0; i < n; i++) {
            put_le16(out + 4 * i,
                     (uint16_t)(int16_t)quantise(crealf(in[i]), 32768.0f, 0.0f, -32768, 32767));
            put_le16(out + 4 * i + 2,
                     (uint16_t)(int16_t)quantise(cimagf(in[i]), 32768.0f, 0.0f, -32768, 32767));
        }
        break;
    case IQ_FORMAT_CF32:
    case IQ_FORMAT_WAVF32:
        for (size_t i = 0; i < n; i++) {
            put_lef32(out + 8 * i, crealf(in[i]));
            put_lef32(out + 8 * i + 4, cimagf(in[i]));
        }
        break;
    default:
        break;
    }
}

/* ---- handle set-up -------------------------------------------------------------------- */

static iqfile_t *iqfile_alloc(const char *name, char *err, size_t err_len)
{
    iqfile_t *f = calloc(1, sizeof *f);
    if (!f) {
        errbuf_set(err, err_len, "%s: out of memory", name);
        return NULL;
    }
    /* Long paths are cut in messages only; the file itself is opened by its full path. */
    size_t n = strnlen(name, sizeof f->name - 1);
    memcpy(f->name, name, n);
    f->name[n] = '\0';
    f->data_limit = UINT64_MAX;
    f->length = -1;
    return f;
}

/* Frees without writing anything (failed open). */
static void iqfile_free(iqfile_t *f)
{
    if (!f)
        return;
    if (f->fp && !f->is_std)
        fclose(f->fp);
    free(f);
}

static FILE *open_file(iqfile_t *f, const char *path, bool writing)
{
    FILE *fp = fopen(path, writing ? "wb" : "rb");
    if (!fp)
        return NULL;
    struct stat st;
    f->seekable = fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode);
    return fp;
}

static bool valid_param(double v)
{
    return isfinite(v) && v >= 0.0;
}

/* Byte size of a regular file from the current data offset, or -1. */
static int64_t bytes_after_offset(iqfile_t *f)
{
    if (!f->seekable)
        return -1;
    struct stat st;
    if (fstat(fileno(f->fp), &st) != 0)
        return -1;
    return st.st_size > f->data_offset ? (int64_t)(st.st_size - f->data_offset) : 0;
}

static void compute_length(iqfile_t *f)
{
    int64_t avail = bytes_after_offset(f);
    if (avail < 0) {
        f->length = f->data_limit == UINT64_MAX ? -1 : (int64_t)(f->data_limit / f->sample_bytes);
        return;
    }
    uint64_t bytes = (uint64_t)avail;
    if (f->data_limit < bytes)
        bytes = f->data_limit;
    f->length = (int64_t)(bytes / f->sample_bytes);
}

static bool nearly_equal(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* Applies the precedence metadata > parameters > file name for one value. */
static void resolve_value(const iqfile_t *f, const char *what, bool meta_has, double meta_value,
                          double param, bool name_has, double name_value, double *out,
                          iq_source_t *src)
{
    if (meta_has) {
        *out = meta_value;
        *src = IQ_SOURCE_METADATA;
        if (param > 0.0 && !nearly_equal(param, meta_value))
            log_warn("Recording's metadata overrides the given value, file: %s, %s: %.9g, "
                     "given: %.9g",
                     f->name, what, meta_value, param);
    } else if (param > 0.0) {
        *out = param;
        *src = IQ_SOURCE_PARAMS;
    } else if (name_has) {
        *out = name_value;
        *src = IQ_SOURCE_FILENAME;
    } else {
        *out = 0.0;
        *src = IQ_SOURCE_NONE;
    }
}

static void resolve_meta(iqfile_t *f, const char *path, const iqfile_params_t *p,
                         bool meta_rate_has, double meta_rate, bool meta_freq_has,
                         double meta_freq)
{
    double name_rate = 0.0, name_freq = 0.0;
    int name_found = iq_parse_name_tokens(path, &name_rate, &name_freq);
    /* A 0 Hz or 0 S/s token carries no information. */
    bool name_rate_has = (name_found & 1) && name_rate > 0.0;
    bool name_freq_has = (name_found & 2) && name_freq > 0.0;
    resolve_value(f, "rate_sps", meta_rate_has, meta_rate, p->rate_sps, name_rate_has,
                  name_rate, &f->rate_sps, &f->rate_src);
    resolve_value(f, "center_freq_hz", meta_freq_has, meta_freq, p->center_freq_hz,
                  name_freq_has, name_freq, &f->center_freq_hz, &f->freq_src);
}

/* ---- WAV ------------------------------------------------------------------------------ */

/* Reads exactly n bytes; false at end of file or on error. */
static bool read_exact(FILE *fp, void *buf, size_t n)
{
    return fread(buf, 1, n, fp) == n;
}

/* Skips n bytes of a (possibly non-seekable) stream. */
static bool skip_bytes(iqfile_t *f, uint64_t n)
{
    if (f->seekable && n <= (uint64_t)INT64_MAX)
        return fseeko(f->fp, (off_t)n, SEEK_CUR) == 0;
    while (n > 0) {
        size_t chunk = n < sizeof f->buf ? (size_t)n : sizeof f->buf;
        if (!read_exact(f->fp, f->buf, chunk))
            return false;
        n -= chunk;
    }
    return true;
}

static const char *eof_or_errno(FILE *fp)
{
    return ferror(fp) ? strerror(errno) : "unexpected end of file";
}

/* Parses the RIFF header up to the start of the data chunk. */
static int wav_read_header(iqfile_t *f, bool *freq_has, double *freq_hz)
{
    uint8_t hdr[12];
    if (!read_exact(f->fp, hdr, sizeof hdr)) {
        FERR(f, "%s: not a WAV file (shorter than a RIFF header)", f->name);
        return -1;
    }
    if (memcmp(hdr, "RF64", 4) == 0 || memcmp(hdr, "BW64", 4) == 0) {
        FERR(f, "%s: RF64 WAV files are not supported; convert to SigMF or raw", f->name);
        return -1;
    }
    if (memcmp(hdr, "RIFF", 4) != 0 || memcmp(hdr + 8, "WAVE", 4) != 0) {
        FERR(f, "%s: not a WAV file (no RIFF/WAVE header)", f->name);
        return -1;
    }
    off_t pos = 12;
    bool have_fmt = false;
    uint32_t rate = 0;
    for (unsigned chunks = 0;; chunks++) {
        uint8_t ch[8];
        /* An endless stream of empty chunks (/dev/zero after a forged header) must end. */
        if (chunks >= WAV_MAX_CHUNKS || (!f->seekable && pos > WAV_MAX_STREAM_HEADER_BYTES)) {
            FERR(f, "%s: WAV header has no data chunk within %u chunks / %u bytes", f->name,
                 WAV_MAX_CHUNKS, WAV_MAX_STREAM_HEADER_BYTES);
            return -1;
        }
        if (!read_exact(f->fp, ch, sizeof ch)) {
            FERR(f, "%s: WAV file has no data chunk (%s)", f->name, eof_or_errno(f->fp));
            return -1;
        }
        pos += 8;
        uint32_t size = get_le32(ch + 4);
        if (memcmp(ch, "fmt ", 4) == 0) {
            uint8_t fmt[40] = {0};
            if (size < 16 || size > 1024) {
                FERR(f, "%s: WAV fmt chunk has invalid size %u", f->name, size);
                return -1;
            }
            size_t take = size < sizeof fmt ? size : sizeof fmt;
            if (!read_exact(f->fp, fmt, take) || !skip_bytes(f, size - take + (size & 1))) {
                FERR(f, "%s: WAV fmt chunk cut short (%s)", f->name, eof_or_errno(f->fp));
                return -1;
            }
            pos += (off_t)size + (size & 1);
            unsigned tag = get_le16(fmt);
            unsigned channels = get_le16(fmt + 2);
            rate = get_le32(fmt + 4);
            unsigned align = get_le16(fmt + 12);
            unsigned bits = get_le16(fmt + 14);
            if (tag == WAV_FORMAT_EXTENSIBLE) {
                /* The sub-format GUID starts with the plain format tag. */
                if (size < 40) {
                    FERR(f, "%s: WAV extensible fmt chunk too short (%u bytes)", f->name, size);
                    return -1;
                }
                tag = get_le16(fmt + 24);
            }
            if (channels != 2) {
                FERR(f, "%s: WAV has %u channel(s); an IQ recording needs 2 (I left, Q right)",
                     f->name, channels);
                return -1;
            }
            if (tag == WAV_FORMAT_PCM && bits == 16)
                f->fmt = IQ_FORMAT_WAV16;
            else if (tag == WAV_FORMAT_IEEE_FLOAT && bits == 32)
                f->fmt = IQ_FORMAT_WAVF32;
            else {
                FERR(f,
                     "%s: WAV sample format (tag %u, %u bits) is not supported; need 16-bit "
                     "PCM or 32-bit float",
                     f->name, tag, bits);
                return -1;
            }
            if (align != channels * bits / 8) {
                FERR(f, "%s: WAV block align %u does not match 2 x %u bits", f->name, align,
                     bits);
                return -1;
            }
            if (rate == 0) {
                FERR(f, "%s: WAV header has sample rate 0", f->name);
                return -1;
            }
            have_fmt = true;
        } else if (memcmp(ch, "auxi", 4) == 0 && size >= WAV_AUXI_CENTER_OFFSET + 4) {
            uint8_t aux[WAV_AUXI_CENTER_OFFSET + 4];
            if (!read_exact(f->fp, aux, sizeof aux) ||
                !skip_bytes(f, size - sizeof aux + (size & 1))) {
                FERR(f, "%s: WAV auxi chunk cut short (%s)", f->name, eof_or_errno(f->fp));
                return -1;
            }
            pos += (off_t)size + (size & 1);
            uint32_t c = get_le32(aux + WAV_AUXI_CENTER_OFFSET);
            if (c > 0) {
                *freq_has = true;
                *freq_hz = c;
            }
        } else if (memcmp(ch, "data", 4) == 0) {
            if (!have_fmt) {
                FERR(f, "%s: WAV data chunk comes before the fmt chunk", f->name);
                return -1;
            }
            f->data_offset = pos;
            f->sample_bytes = iq_format_sample_bytes(f->fmt);
            f->rate_sps = rate;
            int64_t avail = bytes_after_offset(f);
            if (size == WAV_SIZE_UNKNOWN) {
                f->data_limit = UINT64_MAX;
            } else if (size == 0 && avail > 0) {
                log_warn("WAV data chunk size is 0 (unfinished recording?), reading to the end "
                         "of the file, file: %s",
                         f->name);
                f->data_limit = UINT64_MAX;
            } else {
                f->data_limit = size;
            }
            return 0;
        } else {
            if (!skip_bytes(f, (uint64_t)size + (size & 1))) {
                FERR(f, "%s: WAV chunk '%.4s' cut short (%s)", f->name, (const char *)ch,
                     eof_or_errno(f->fp));
                return -1;
            }
            pos += (off_t)size + (size & 1);
        }
    }
}

static int write_all(iqfile_t *f, const void *buf, size_t n)
{
    if (fwrite(buf, 1, n, f->fp) != n) {
        FERR(f, "%s: write failed: %s", f->name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Header sizes are placeholders (0xFFFFFFFF = until end of file) until close, so that a
 * recording cut short by a crash still reads. */
static int wav_write_header(iqfile_t *f)
{
    bool is_float = f->fmt == IQ_FORMAT_WAVF32;
    uint8_t h[12 + 8 + 18 + 12 + 8 + WAV_AUXI_BYTES + 8];
    size_t n = 0;
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, WAV_SIZE_UNKNOWN);
    memcpy(h + 8, "WAVE", 4);
    n = 12;
    /* Non-PCM formats carry cbSize (fmt size 18) and a fact chunk (WAVE spec rev. 3). */
    unsigned fmt_size = is_float ? 18 : 16;
    unsigned bits = is_float ? 32 : 16;
    uint32_t rate = (uint32_t)lrint(f->rate_sps);
    memcpy(h + n, "fmt ", 4);
    put_le32(h + n + 4, fmt_size);
    put_le16(h + n + 8, is_float ? WAV_FORMAT_IEEE_FLOAT : WAV_FORMAT_PCM);
    put_le16(h + n + 10, 2);
    put_le32(h + n + 12, rate);
    put_le32(h + n + 16, rate * 2 * bits / 8);
    put_le16(h + n + 20, (uint16_t)(2 * bits / 8));
    put_le16(h + n + 22, (uint16_t)bits);
    if (is_float)
        put_le16(h + n + 24, 0);
    n += 8 + fmt_size;
    if (is_float) {
        memcpy(h + n, "fact", 4);
        put_le32(h + n + 4, 4);
        put_le32(h + n + 8, WAV_SIZE_UNKNOWN);
        f->wav_fact_pos = (off_t)(n + 8);
        n += 12;
    }
    if (f->center_freq_hz >= 1.0 && f->center_freq_hz < 4294967295.0) {
        memcpy(h + n, "auxi", 4);
        put_le32(h + n + 4, WAV_AUXI_BYTES);
        memset(h + n + 8, 0, WAV_AUXI_BYTES);
        put_le32(h + n + 8 + WAV_AUXI_CENTER_OFFSET, (uint32_t)lrint(f->center_freq_hz));
        n += 8 + WAV_AUXI_BYTES;
    }
    memcpy(h + n, "data", 4);
    put_le32(h + n + 4, WAV_SIZE_UNKNOWN);
    f->wav_data_size_pos = (off_t)(n + 4);
    n += 8;
    f->data_offset = (off_t)n;
    /* RIFF size = file size - 8 must fit in 32 bits. */
    uint64_t max = 0xFFFFFFFFull - (n - 8);
    f->wav_max_data = max - max % f->sample_bytes;
    return write_all(f, h, n);
}

static int put_le32_at(iqfile_t *f, off_t pos, uint32_t v)
{
    uint8_t b[4];
    put_le32(b, v);
    if (fseeko(f->fp, pos, SEEK_SET) != 0 || fwrite(b, 1, 4, f->fp) != 4) {
        FERR(f, "%s: cannot finish WAV header: %s", f->name, strerror(errno));
        return -1;
    }
    return 0;
}

static int wav_finish_header(iqfile_t *f)
{
    if (!f->seekable)
        return 0; /* a pipe keeps the "until end of file" sizes */
    uint64_t riff = (uint64_t)f->data_offset - 8 + f->data_done;
    int rc = put_le32_at(f, 4, (uint32_t)riff);
    if (rc == 0 && f->wav_fact_pos)
        rc = put_le32_at(f, f->wav_fact_pos, (uint32_t)(f->data_done / f->sample_bytes));
    if (rc == 0)
        rc = put_le32_at(f, f->wav_data_size_pos, (uint32_t)f->data_done);
    return rc;
}

/* ---- SigMF ---------------------------------------------------------------------------- */

static const struct {
    const char *datatype;
    iq_format_t fmt;
} sigmf_types[] = {
    {"cu8", IQ_FORMAT_CU8},
    {"ci8", IQ_FORMAT_CS8},
    {"ci16_le", IQ_FORMAT_CS16},
    {"cf32_le", IQ_FORMAT_CF32},
};
#define SIGMF_TYPE_COUNT (sizeof sigmf_types / sizeof sigmf_types[0])

const char *iq_sigmf_datatype(iq_format_t fmt)
{
    for (size_t i = 0; i < SIGMF_TYPE_COUNT; i++)
        if (sigmf_types[i].fmt == fmt)
            return sigmf_types[i].datatype;
    return NULL;
}

#define SIGMF_PATH_MAX 4096

/* From either file of a SigMF pair or their common base name, the two file names (buffers
 * of SIGMF_PATH_MAX bytes). */
static int sigmf_paths(const char *path, char *meta_path, char *data_path, char *err,
                       size_t err_len)
{
    if (has_suffix(path, ".sigmf")) {
        errbuf_set(err, err_len,
                   "%s: SigMF archives (.sigmf, tar) are not supported; extract the "
                   ".sigmf-meta and .sigmf-data files and open one of them",
                   path);
        return -1;
    }
    if (strcmp(path, "-") == 0) {
        errbuf_set(err, err_len,
                   "-: SigMF needs two files; stdin/stdout works only for raw "
                   "formats and WAV");
        return -1;
    }
    size_t n = strlen(path);
    if (has_suffix(path, ".sigmf-meta") || has_suffix(path, ".sigmf-data"))
        n -= strlen(".sigmf-meta");
    if (n + strlen(".sigmf-meta") + 1 > SIGMF_PATH_MAX) {
        errbuf_set(err, err_len, "%s: path too long", path);
        return -1;
    }
    snprintf(meta_path, SIGMF_PATH_MAX, "%.*s.sigmf-meta", (int)n, path);
    snprintf(data_path, SIGMF_PATH_MAX, "%.*s.sigmf-data", (int)n, path);
    return 0;
}

/* ---- SigMF core:datetime ------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at *p into *v; advances. -1 when one is not a digit (stops at NUL). */
static int take_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = **p;
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
        (*p)++;
    }
    *v = x;
    return 0;
}

/* The character c at *p (either of two); advances. Never steps over the NUL. */
static int take_char(const char **p, char c1, char c2)
{
    if (**p != c1 && **p != c2)
        return -1;
    (*p)++;
    return 0;
}

int iq_parse_datetime(const char *s, double *unix_s)
{
    if (!s || !unix_s)
        return -1;
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (take_digits(&p, 4, &y) || take_char(&p, '-', '-') || take_digits(&p, 2, &mo) ||
        take_char(&p, '-', '-') || take_digits(&p, 2, &d) || take_char(&p, 'T', 't') ||
        take_digits(&p, 2, &h) || take_char(&p, ':', ':') || take_digits(&p, 2, &mi) ||
        take_char(&p, ':', ':') || take_digits(&p, 2, &sec))
        return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
        return -1;
    double frac = 0.0, scale = 0.1;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (++n > 12)
                return -1;
            frac += (*p - '0') * scale;
            scale *= 0.1;
            p++;
        }
        if (n == 0)
            return -1;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (take_digits(&p, 2, &oh) || take_char(&p, ':', ':') || take_digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                sec - (int64_t)offset_min * 60;
    if (t < 0)
        return -1;
    *unix_s = (double)t + frac;
    return 0;
}

char *iq_format_datetime(double unix_s, char *out, size_t out_len)
{
    /* 9999-12-31T23:59:59.999999Z */
    if (!out || out_len < 28 || !(unix_s >= 0.0 && unix_s < 253402300800.0))
        return NULL;
    double whole = floor(unix_s);
    long usec = lround((unix_s - whole) * 1e6);
    if (usec >= 1000000) {
        whole += 1.0;
        usec -= 1000000;
    }
    time_t t = (time_t)whole;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return NULL;
    char head[24];
    if (strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
        return NULL;
    snprintf(out, out_len, "%s.%06ldZ", head, usec);
    return out;
}

static bool json_is_number(json_object *o)
{
    return o && (json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int));
}

/* Parses NAME.sigmf-meta; on success fills fmt, rate/freq (with "has" flags) and the byte
 * offset of the samples in the data file. */
static int sigmf_read_meta(const char *user_path, const char *meta_path, iq_format_t *fmt, bool *rate_has,
                           double *rate, bool *freq_has, double *freq, uint64_t *header_bytes,
                           double *datetime_unix_s, uint64_t *datetime_sample, char *err,
                           size_t err_len)
{
    /* A regular file of bounded size (a FIFO would block, /dev/zero never ends), strict
     * JSON (no trailing text, valid UTF-8). */
    char *text = NULL, why[512];
    size_t len = 0;
    if (infile_read_all(meta_path, "SigMF metadata", INFILE_MAX_SIGMF_META_BYTES, &text, &len,
                        why, sizeof why) != 0) {
        if (strcmp(user_path, meta_path) != 0)
            errbuf_set(err, err_len, "%s: cannot read its %s", user_path, why);
        else
            errbuf_set(err, err_len, "cannot read %s", why);
        return -1;
    }
    json_object *root = NULL;
    if (len == 0)
        errbuf_set(err, err_len, "%s: invalid SigMF metadata: empty file", meta_path);
    else if (!(root = jsonstrict_parse(text, len, 0, why, sizeof why)))
        errbuf_set(err, err_len, "%s: invalid SigMF metadata (not JSON): %s", meta_path, why);
    free(text);
    if (!root)
        return -1;
    int rc = -1;
    json_object *global, *o;
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "global", &global) ||
        !json_object_is_type(global, json_type_object)) {
        errbuf_set(err, err_len, "%s: invalid SigMF metadata: no \"global\" object", meta_path);
        goto out;
    }
    if (!json_object_object_get_ex(global, "core:datatype", &o) ||
        !json_object_is_type(o, json_type_string)) {
        errbuf_set(err, err_len, "%s: invalid SigMF metadata: no core:datatype string", meta_path);
        goto out;
    }
    const char *dt = json_object_get_string(o);
    *fmt = IQ_FORMAT_UNKNOWN;
    for (size_t i = 0; i < SIGMF_TYPE_COUNT; i++)
        if (strcmp(dt, sigmf_types[i].datatype) == 0)
            *fmt = sigmf_types[i].fmt;
    if (*fmt == IQ_FORMAT_UNKNOWN) {
        errbuf_set(err, err_len,
                   "%s: SigMF core:datatype \"%s\" is not supported; need cu8, ci8, ci16_le or "
                   "cf32_le (complex)",
                   meta_path, dt);
        goto out;
    }
    if (json_object_object_get_ex(global, "core:num_channels", &o)) {
        if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) != 1) {
            errbuf_set(err, err_len,
                       "%s: SigMF core:num_channels is %s; only single-channel recordings are "
                       "supported",
                       meta_path, json_object_to_json_string(o));
            goto out;
        }
    }
    *rate_has = false;
    if (json_object_object_get_ex(global, "core:sample_rate", &o)) {
        double r = json_object_get_double(o);
        if (!json_is_number(o) || !isfinite(r) || r <= 0.0 || r > IQ_MAX_RATE_SPS) {
            errbuf_set(err, err_len,
                       "%s: invalid SigMF core:sample_rate %s (need a number > 0 and <= %.0f)",
                       meta_path, json_object_to_json_string(o), IQ_MAX_RATE_SPS);
            goto out;
        }
        *rate_has = true;
        *rate = r;
    }
    *freq_has = false;
    *header_bytes = 0;
    *datetime_unix_s = 0;
    *datetime_sample = 0;
    json_object *captures;
    if (json_object_object_get_ex(root, "captures", &captures)) {
        if (!json_object_is_type(captures, json_type_array)) {
            errbuf_set(err, err_len, "%s: invalid SigMF metadata: \"captures\" is not an array",
                       meta_path);
            goto out;
        }
        size_t nc = json_object_array_length(captures);
        for (size_t i = 0; i < nc; i++) {
            json_object *cap = json_object_array_get_idx(captures, i);
            if (!json_object_is_type(cap, json_type_object)) {
                errbuf_set(err, err_len,
                           "%s: invalid SigMF metadata: captures[%zu] is not an "
                           "object",
                           meta_path, i);
                goto out;
            }
            if (!json_object_object_get_ex(cap, "core:frequency", &o))
                continue;
            double fr = json_object_get_double(o);
            if (!json_is_number(o) || !isfinite(fr) || fr <= 0.0 || fr > IQ_MAX_FREQ_HZ) {
                errbuf_set(err, err_len,
                           "%s: invalid SigMF captures[%zu] core:frequency %s (need a number > "
                           "0 and <= %.0f Hz)",
                           meta_path, i, json_object_to_json_string(o), IQ_MAX_FREQ_HZ);
                goto out;
            }
            if (i == 0) {
                *freq_has = true;
                *freq = fr;
            } else if (!*freq_has || !nearly_equal(fr, *freq)) {
                log_warn("SigMF recording retunes; only captures[0] core:frequency is used, "
                         "file: %s, captures_index: %zu, freq_hz: %.9g",
                         meta_path, i, fr);
            }
        }
        json_object *cap0 = nc > 0 ? json_object_array_get_idx(captures, 0) : NULL;
        if (cap0 && json_object_object_get_ex(cap0, "core:header_bytes", &o)) {
            if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0) {
                errbuf_set(err, err_len, "%s: invalid SigMF core:header_bytes %s", meta_path,
                           json_object_to_json_string(o));
                goto out;
            }
            *header_bytes = (uint64_t)json_object_get_int64(o);
        }
        /* The recording's time: captures[0] core:datetime, the UTC of its core:sample_start
         * (later segments' datetimes are not needed: the sample rate gives them). */
        if (cap0 && json_object_object_get_ex(cap0, "core:datetime", &o)) {
            if (!json_object_is_type(o, json_type_string) ||
                iq_parse_datetime(json_object_get_string(o), datetime_unix_s) != 0) {
                errbuf_set(err, err_len,
                           "%s: invalid SigMF captures[0] core:datetime %.80s (need ISO-8601 "
                           "UTC such as 2026-12-05T10:00:00.000Z)",
                           meta_path, json_object_to_json_string(o));
                goto out;
            }
            if (json_object_object_get_ex(cap0, "core:sample_start", &o)) {
                if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0) {
                    errbuf_set(err, err_len, "%s: invalid SigMF captures[0] core:sample_start %.80s",
                               meta_path, json_object_to_json_string(o));
                    goto out;
                }
                *datetime_sample = (uint64_t)json_object_get_int64(o);
            }
        }
    }
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

/* Whole numbers as JSON integers ("1024000", not "1024000.0"), as SigMF examples do. */
static json_object *json_number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_object_new_int64((int64_t)v);
    return json_object_new_double(v);
}

static int sigmf_write_meta(iqfile_t *f, const char *meta_path, const iqfile_params_t *p)
{
    const char *dt = iq_sigmf_datatype(f->fmt);
    json_object *root = json_object_new_object();
    json_object *global = json_object_new_object();
    json_object *captures = json_object_new_array();
    json_object *cap0 = json_object_new_object();
    json_object *annotations = json_object_new_array();
    int rc = -1;
    if (!root || !global || !captures || !cap0 || !annotations) {
        json_object_put(root);
        json_object_put(global);
        json_object_put(captures);
        json_object_put(cap0);
        json_object_put(annotations);
        FERR(f, "%s: out of memory", meta_path);
        return -1;
    }
    json_object_object_add(root, "global", global);
    json_object_object_add(root, "captures", captures);
    json_object_object_add(root, "annotations", annotations);
    json_object_array_add(captures, cap0);
    json_object_object_add(global, "core:datatype", json_object_new_string(dt));
    json_object_object_add(global, "core:version", json_object_new_string(SIGMF_VERSION));
    if (f->rate_sps > 0.0)
        json_object_object_add(global, "core:sample_rate", json_number(f->rate_sps));
    if (p->description)
        json_object_object_add(global, "core:description",
                               json_object_new_string(p->description));
    json_object_object_add(global, "core:recorder", json_object_new_string("sigfoxd"));
    json_object_object_add(cap0, "core:sample_start", json_object_new_int64(0));
    char when[40];
    if (p->start_unix_s > 0 && iq_format_datetime(p->start_unix_s, when, sizeof when))
        json_object_object_add(cap0, "core:datetime", json_object_new_string(when));
    if (f->center_freq_hz > 0.0)
        json_object_object_add(cap0, "core:frequency",
                               json_number(f->center_freq_hz));
    if (json_object_to_file_ext(meta_path, root,
                                JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED) != 0) {
        const char *why = json_util_get_last_err();
        size_t wl = why ? strlen(why) : 0;
        FERR(f, "%s: cannot write SigMF metadata: %.*s", meta_path,
             (int)(wl && why[wl - 1] == '\n' ? wl - 1 : wl), why ? why : strerror(errno));
    } else {
        rc = 0;
    }
    json_object_put(root);
    return rc;
}

/* ---- open ----------------------------------------------------------------------------- */

static iq_format_t pick_format(const char *path, const iqfile_params_t *p, char *err,
                               size_t err_len)
{
    iq_format_t fmt = p->format != IQ_FORMAT_UNKNOWN ? p->format : iq_format_from_path(path);
    if (fmt != IQ_FORMAT_SIGMF && iq_format_sample_bytes(fmt) == 0) {
        if (strcmp(path, "-") == 0)
            errbuf_set(err, err_len,
                       "-: the format of stdin/stdout must be given explicitly "
                       "(cu8, cs8, cs16, cf32, wav16, wavf32)");
        else
            errbuf_set(err, err_len,
                       "%s: unknown IQ format; use an extension .cu8 .cs8 .cs16 .cf32 .wav "
                       ".sigmf-meta or give the format explicitly",
                       path);
        return IQ_FORMAT_UNKNOWN;
    }
    return fmt;
}

static int check_params(const char *path, const iqfile_params_t *p, char *err, size_t err_len)
{
    if (!valid_param(p->rate_sps)) {
        errbuf_set(err, err_len, "%s: invalid sample rate %g S/s", path, p->rate_sps);
        return -1;
    }
    if (!valid_param(p->center_freq_hz)) {
        errbuf_set(err, err_len, "%s: invalid centre frequency %g Hz", path, p->center_freq_hz);
        return -1;
    }
    return 0;
}

/* Validates the arguments common to both directions; returns the format or UNKNOWN with
 * the reason in err. */
static iq_format_t open_checks(const char *path, const iqfile_params_t *p, char *err,
                               size_t err_len)
{
    errbuf_set(err, err_len, "%s", "");
    if (!path || !*path) {
        errbuf_set(err, err_len, "no IQ file name given");
        return IQ_FORMAT_UNKNOWN;
    }
    if (check_params(path, p, err, err_len) != 0)
        return IQ_FORMAT_UNKNOWN;
    return pick_format(path, p, err, err_len);
}

iqfile_t *iqfile_open_read(const char *path, const iqfile_params_t *params, char *err,
                           size_t err_len)
{
    static const iqfile_params_t defaults = {0};
    const iqfile_params_t *p = params ? params : &defaults;
    iq_format_t fmt = open_checks(path, p, err, err_len);
    if (fmt == IQ_FORMAT_UNKNOWN)
        return NULL;
    bool is_stdin = strcmp(path, "-") == 0;
    bool meta_rate_has = false, meta_freq_has = false;
    double meta_rate = 0.0, meta_freq = 0.0;

    if (fmt == IQ_FORMAT_SIGMF) {
        char meta_path[SIGMF_PATH_MAX], data_path[SIGMF_PATH_MAX];
        if (sigmf_paths(path, meta_path, data_path, err, err_len) != 0)
            return NULL;
        iq_format_t sfmt;
        uint64_t header_bytes, dt_sample;
        double dt_unix_s;
        if (sigmf_read_meta(path, meta_path, &sfmt, &meta_rate_has, &meta_rate, &meta_freq_has,
                            &meta_freq, &header_bytes, &dt_unix_s, &dt_sample, err,
                            err_len) != 0)
            return NULL;
        iqfile_t *f = iqfile_alloc(data_path, err, err_len);
        if (!f)
            return NULL;
        f->container = IQ_FORMAT_SIGMF;
        f->datetime_unix_s = dt_unix_s;
        f->datetime_sample = dt_sample;
        f->fmt = sfmt;
        f->sample_bytes = iq_format_sample_bytes(sfmt);
        f->fp = open_file(f, data_path, false);
        if (!f->fp) {
            if (strcmp(path, data_path) != 0)
                errbuf_set(err, err_len, "%s: cannot open its SigMF data %s: %s", path, data_path,
                           strerror(errno));
            else
                errbuf_set(err, err_len, "%s: cannot open SigMF data: %s", data_path,
                           strerror(errno));
            iqfile_free(f);
            return NULL;
        }
        int64_t data_size = bytes_after_offset(f); /* -1: not a regular file */
        if (data_size >= 0 && header_bytes > (uint64_t)data_size) {
            errbuf_set(err, err_len,
                       "%s: core:header_bytes %llu is beyond the end of the data file (%lld "
                       "bytes)",
                       data_path, (unsigned long long)header_bytes, (long long)data_size);
            iqfile_free(f);
            return NULL;
        }
        if (header_bytes > 0 && !skip_bytes(f, header_bytes)) {
            errbuf_set(err, err_len, "%s: shorter than core:header_bytes %llu", data_path,
                       (unsigned long long)header_bytes);
            iqfile_free(f);
            return NULL;
        }
        f->data_offset = (off_t)header_bytes;
        resolve_meta(f, meta_path, p, meta_rate_has, meta_rate, meta_freq_has, meta_freq);
        compute_length(f);
        return f;
    }

    iqfile_t *f = iqfile_alloc(is_stdin ? "stdin" : path, err, err_len);
    if (!f)
        return NULL;
    if (is_stdin) {
        f->fp = stdin;
        f->is_std = true;
        struct stat st;
        f->seekable = fstat(fileno(stdin), &st) == 0 && S_ISREG(st.st_mode);
    } else {
        f->fp = open_file(f, path, false);
        if (!f->fp) {
            errbuf_set(err, err_len, "%s: cannot open: %s", path, strerror(errno));
            iqfile_free(f);
            return NULL;
        }
        struct stat st;
        if (fstat(fileno(f->fp), &st) == 0 && S_ISDIR(st.st_mode)) {
            errbuf_set(err, err_len, "%s: is a directory", path);
            iqfile_free(f);
            return NULL;
        }
    }
    if (fmt == IQ_FORMAT_WAV16 || fmt == IQ_FORMAT_WAVF32) {
        if (wav_read_header(f, &meta_freq_has, &meta_freq) != 0) {
            errbuf_set(err, err_len, "%s", f->err);
            iqfile_free(f);
            return NULL;
        }
        meta_rate_has = true;
        meta_rate = f->rate_sps;
        f->container = f->fmt;
    } else {
        f->fmt = fmt;
        f->container = fmt;
        f->sample_bytes = iq_format_sample_bytes(fmt);
        f->data_offset = 0;
    }
    resolve_meta(f, is_stdin ? NULL : path, p, meta_rate_has, meta_rate, meta_freq_has,
                 meta_freq);
    compute_length(f);
    return f;
}

iqfile_t *iqfile_open_write(const char *path, const iqfile_params_t *params, char *err,
                            size_t err_len)
{
    static const iqfile_params_t defaults = {0};
    const iqfile_params_t *p = params ? params : &defaults;
    iq_format_t fmt = open_checks(path, p, err, err_len);
    if (fmt == IQ_FORMAT_UNKNOWN)
        return NULL;
    bool is_stdout = strcmp(path, "-") == 0;
    iqfile_t *f;
    if (fmt == IQ_FORMAT_SIGMF) {
        char meta_path[SIGMF_PATH_MAX], data_path[SIGMF_PATH_MAX];
        if (sigmf_paths(path, meta_path, data_path, err, err_len) != 0)
            return NULL;
        iq_format_t sfmt = p->sample_format == IQ_FORMAT_UNKNOWN ? IQ_FORMAT_CF32
                                                                 : p->sample_format;
        if (sfmt != IQ_FORMAT_CU8 && sfmt != IQ_FORMAT_CS8 && sfmt != IQ_FORMAT_CS16 &&
            sfmt != IQ_FORMAT_CF32) {
            errbuf_set(err, err_len,
                       "%s: SigMF sample format must be cu8, cs8, cs16 or cf32, not %s", path,
                       iq_format_name(sfmt));
            return NULL;
        }
        f = iqfile_alloc(data_path, err, err_len);
        if (!f)
            return NULL;
        f->container = IQ_FORMAT_SIGMF;
        f->fmt = sfmt;
        f->writing = true;
        f->rate_sps = p->rate_sps;
        f->center_freq_hz = p->center_freq_hz;
        if (sigmf_write_meta(f, meta_path, p) != 0) {
            errbuf_set(err, err_len, "%s", f->err);
            iqfile_free(f);
            return NULL;
        }
        f->fp = open_file(f, data_path, true);
    } else {
        f = iqfile_alloc(is_stdout ? "stdout" : path, err, err_len);
        if (!f)
            return NULL;
        f->container = fmt;
        f->fmt = fmt;
        f->writing = true;
        f->rate_sps = p->rate_sps;
        f->center_freq_hz = p->center_freq_hz;
        if (is_stdout) {
            f->fp = stdout;
            f->is_std = true;
            struct stat st;
            f->seekable = fstat(fileno(stdout), &st) == 0 && S_ISREG(st.st_mode);
        } else {
            f->fp = open_file(f, path, true);
        }
    }
    if (!f->fp) {
        errbuf_set(err, err_len, "%s: cannot create: %s", f->name, strerror(errno));
        iqfile_free(f);
        return NULL;
    }
    f->sample_bytes = iq_format_sample_bytes(f->fmt);
    f->rate_src = f->rate_sps > 0.0 ? IQ_SOURCE_PARAMS : IQ_SOURCE_NONE;
    f->freq_src = f->center_freq_hz > 0.0 ? IQ_SOURCE_PARAMS : IQ_SOURCE_NONE;
    if (f->container == IQ_FORMAT_WAV16 || f->container == IQ_FORMAT_WAVF32) {
        if (!(f->rate_sps >= 1.0 && f->rate_sps <= 4294967295.0)) {
            errbuf_set(err, err_len, "%s: a WAV file needs a sample rate (1 .. 2^32-1 S/s)",
                       f->name);
            iqfile_free(f);
            return NULL;
        }
        if (wav_write_header(f) != 0) {
            errbuf_set(err, err_len, "%s", f->err);
            iqfile_free(f);
            return NULL;
        }
    }
    return f;
}

/* ---- streaming ------------------------------------------------------------------------ */

ssize_t iqfile_read(iqfile_t *f, float complex *out, size_t n)
{
    if (!f)
        return -1;
    if (f->writing) {
        FERR(f, "%s: opened for writing, not reading", f->name);
        return -1;
    }
    if (f->pending_error)
        return -1;
    size_t got = 0;
    const size_t sb = f->sample_bytes;
    while (got < n && !f->at_end) {
        size_t want = n - got;
        if (want > sizeof f->buf / sb)
            want = sizeof f->buf / sb;
        uint64_t bytes = (uint64_t)want * sb;
        uint64_t left = f->data_limit - f->data_done;
        if (bytes > left)
            bytes = left;
        if (bytes == 0) {
            f->at_end = true;
            break;
        }
        size_t r = fread(f->buf, 1, (size_t)bytes, f->fp);
        f->data_done += r;
        size_t whole = r / sb;
        iq_decode(f->fmt, f->buf, out + got, whole);
        got += whole;
        if (r < bytes) {
            if (ferror(f->fp)) {
                FERR(f, "%s: read error: %s", f->name, strerror(errno));
                f->pending_error = true;
            } else if (r % sb != 0) {
                FERR(f, "%s: truncated final sample (%zu of %zu bytes) after %llu samples",
                     f->name, r % sb, sb, (unsigned long long)(f->data_done / sb));
                f->pending_error = true;
            } else if (f->data_limit != UINT64_MAX && f->data_done < f->data_limit) {
                FERR(f, "%s: file ends inside the WAV data chunk (%llu of %llu bytes)", f->name,
                     (unsigned long long)f->data_done, (unsigned long long)f->data_limit);
                f->pending_error = true;
            }
            f->at_end = true;
        } else if ((bytes % sb) != 0) {
            /* The declared data size is not a whole number of samples. */
            FERR(f, "%s: truncated final sample (data size %llu bytes is not a multiple of %zu)",
                 f->name, (unsigned long long)f->data_limit, sb);
            f->pending_error = true;
            f->at_end = true;
        }
    }
    if (got == 0 && f->pending_error)
        return -1;
    return (ssize_t)got;
}

int iqfile_write(iqfile_t *f, const float complex *in, size_t n)
{
    if (!f)
        return -1;
    if (!f->writing) {
        FERR(f, "%s: opened for reading, not writing", f->name);
        return -1;
    }
    const size_t sb = f->sample_bytes;
    if (f->container == IQ_FORMAT_WAV16 || f->container == IQ_FORMAT_WAVF32) {
        if ((uint64_t)n * sb > f->wav_max_data - f->data_done) {
            FERR(f, "%s: WAV files are limited to 4 GiB; use SigMF or a raw format for longer "
                    "recordings",
                 f->name);
            return -1;
        }
    }
    size_t done = 0;
    while (done < n) {
        size_t k = n - done;
        if (k > sizeof f->buf / sb)
            k = sizeof f->buf / sb;
        iq_encode(f->fmt, in + done, f->buf, k);
        if (write_all(f, f->buf, k * sb) != 0)
            return -1;
        f->data_done += (uint64_t)k * sb;
        done += k;
    }
    return 0;
}

int iqfile_rewind(iqfile_t *f)
{
    if (!f)
        return -1;
    if (f->writing || !f->seekable) {
        FERR(f, "%s: cannot rewind (%s)", f->name, f->writing ? "open for writing" : "not a "
                                                                                     "regular file");
        return -1;
    }
    if (fseeko(f->fp, f->data_offset, SEEK_SET) != 0) {
        FERR(f, "%s: cannot rewind: %s", f->name, strerror(errno));
        return -1;
    }
    clearerr(f->fp);
    f->data_done = 0;
    f->at_end = false;
    f->pending_error = false;
    f->err[0] = '\0';
    return 0;
}

int iqfile_close(iqfile_t *f)
{
    if (!f)
        return 0;
    int rc = 0;
    if (f->writing) {
        if (f->container == IQ_FORMAT_WAV16 || f->container == IQ_FORMAT_WAVF32)
            rc = wav_finish_header(f);
        if (fflush(f->fp) != 0 || ferror(f->fp)) {
            FERR(f, "%s: write failed: %s", f->name, strerror(errno));
            rc = -1;
        }
    }
    if (!f->is_std && fclose(f->fp) != 0 && f->writing) {
        FERR(f, "%s: close failed: %s", f->name, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        log_error("IQ file not written completely, error: %s", f->err);
    free(f);
    return rc;
}

/* ---- accessors ------------------------------------------------------------------------ */

double iqfile_rate(const iqfile_t *f)
{
    return f ? f->rate_sps : 0.0;
}

double iqfile_center_freq(const iqfile_t *f)
{
    return f ? f->center_freq_hz : 0.0;
}

double iqfile_start_unix_s(const iqfile_t *f)
{
    if (!f || !(f->datetime_unix_s > 0))
        return 0.0;
    if (f->datetime_sample == 0)
        return f->datetime_unix_s;
    if (!(f->rate_sps > 0))
        return 0.0; /* the datetime is of a later sample, and when that is is unknown */
    double t = f->datetime_unix_s - (double)f->datetime_sample / f->rate_sps;
    return t > 0 ? t : 0.0;
}

iq_source_t iqfile_rate_source(const iqfile_t *f)
{
    return f ? f->rate_src : IQ_SOURCE_NONE;
}

iq_source_t iqfile_center_freq_source(const iqfile_t *f)
{
    return f ? f->freq_src : IQ_SOURCE_NONE;
}

iq_format_t iqfile_format(const iqfile_t *f)
{
    return f ? f->fmt : IQ_FORMAT_UNKNOWN;
}

iq_format_t iqfile_container(const iqfile_t *f)
{
    return f ? f->container : IQ_FORMAT_UNKNOWN;
}

int64_t iqfile_length(const iqfile_t *f)
{
    return f && !f->writing ? f->length : -1;
}

uint64_t iqfile_position(const iqfile_t *f)
{
    return f && f->sample_bytes ? f->data_done / f->sample_bytes : 0;
}

const char *iqfile_error(const iqfile_t *f)
{
    return f ? f->err : "no IQ file";
}
