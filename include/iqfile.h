/* iqfile: streaming read/write of complex baseband recordings. Licence: MIT.
 *
 * Formats (docs/iq-formats.md has the byte layouts and scaling):
 *   cu8    RTL-SDR: interleaved unsigned 8-bit I/Q, value = (x - 127.5) / 127.5
 *   cs8    HackRF: interleaved signed 8-bit I/Q, value = x / 128
 *   cs16   interleaved signed 16-bit little-endian I/Q, value = x / 32768
 *   cf32   interleaved IEEE float32 little-endian I/Q, value as stored
 *   wav16  RIFF WAVE, 2 channels (I left, Q right), PCM int16; rate from the header
 *   wavf32 RIFF WAVE, 2 channels, IEEE float32; rate from the header
 *   sigmf  SigMF recording: NAME.sigmf-meta (JSON) + NAME.sigmf-data with core:datatype
 *          cu8 / ci8 / ci16_le / cf32_le, core:sample_rate (global) and core:frequency
 *          (captures[0])
 * Samples are complex float with full scale 1.0. "-" is stdin / stdout for the raw formats
 * and WAV (read sequentially; a WAV written to a pipe keeps "until end of file" sizes),
 * never for SigMF. Reads and writes stream through a fixed buffer: memory use does not
 * depend on the file size.
 *
 * Where rate and centre frequency come from (see iqfile_rate_source()):
 *   1. the file's own metadata (SigMF meta, WAV header; centre from a WAV "auxi" chunk);
 *      a different non-zero value in the parameters is ignored with a warning;
 *   2. non-zero values in iqfile_params_t (the caller's flags beat a guessed name);
 *   3. rtl_433-style tokens in the file name: `x_868.13M_1024k.cu8` ("M", "[kMG]Hz" =
 *      centre frequency; "k", "[kMG]sps" = sample rate);
 *   4. otherwise 0 (unknown).
 *
 * Threads: an iqfile_t belongs to one thread at a time; different handles are independent.
 */
#ifndef SIGFOX_IQFILE_H
#define SIGFOX_IQFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
/* For the C++ SoapySDR module: GNU C++ accepts C's `float _Complex` (same layout as
 * std::complex<float>); the macro is removed again at the end of this header. */
#ifndef complex
#define complex _Complex
#define IQFILE_UNDEF_COMPLEX
#endif
extern "C" {
#else
#include <complex.h>
#endif

typedef enum {
    IQ_FORMAT_UNKNOWN = 0,
    IQ_FORMAT_CU8,
    IQ_FORMAT_CS8,
    IQ_FORMAT_CS16,
    IQ_FORMAT_CF32,
    IQ_FORMAT_WAV16,  /* 2-channel PCM int16 */
    IQ_FORMAT_WAVF32, /* 2-channel IEEE float32 */
    IQ_FORMAT_SIGMF,  /* container; the sample type comes from core:datatype */
} iq_format_t;

/* Parses a format name, case-insensitive: "cu8", "cs8", "cs16", "cf32", "wav" (= wav16),
 * "wav16", "wavf32", "sigmf". Returns IQ_FORMAT_UNKNOWN for anything else or NULL. */
iq_format_t iq_format_from_name(const char *name);
/* The canonical name ("cu8" ... "sigmf"), or "unknown". Never NULL. */
const char *iq_format_name(iq_format_t fmt);
/* From a path's extension, case-insensitive: .cu8 .cs8 .cs16 .cf32, .wav (WAV16: when
 * reading, the header decides int16 or float32), .sigmf-meta .sigmf-data .sigmf (the last
 * is a SigMF tar archive, which iqfile_open_read() rejects with a message saying so).
 * .raw/.bin/.dat are ambiguous and give UNKNOWN, as do "-", NULL and anything else. */
iq_format_t iq_format_from_path(const char *path);
/* Bytes per complex sample of a sample format (cu8 2, cs8 2, cs16 4, cf32 8, wav16 4,
 * wavf32 8); 0 for SIGMF and UNKNOWN. */
size_t iq_format_sample_bytes(iq_format_t fmt);

/* SigMF core:datatype of a sample format: "cu8", "ci8", "ci16_le", "cf32_le" (CU8, CS8,
 * CS16, CF32); NULL for anything else. */
const char *iq_sigmf_datatype(iq_format_t fmt);

/* Converts n interleaved samples of a sample format (CU8, CS8, CS16/WAV16, CF32/WAVF32;
 * little-endian, scaling as above) to complex float, and back (rounding, clipping, NaN ->
 * 0). Other formats leave the output untouched. Buffers must not overlap. */
void iq_decode(iq_format_t fmt, const void *in, float complex *out, size_t n);
void iq_encode(iq_format_t fmt, const float complex *in, void *out, size_t n);

/* Where a rate or centre frequency value came from. */
typedef enum {
    IQ_SOURCE_NONE = 0, /* unknown: the value is 0 */
    IQ_SOURCE_METADATA, /* SigMF meta or WAV header/auxi chunk */
    IQ_SOURCE_PARAMS,   /* iqfile_params_t (the caller's flags) */
    IQ_SOURCE_FILENAME, /* rtl_433-style token in the file name */
} iq_source_t;
/* "none", "metadata", "parameters", "file name". Never NULL. */
const char *iq_source_name(iq_source_t src);

/* Parses rtl_433-style tokens in the last path component: a number followed by "M" or
 * "[kMG]Hz" is a centre frequency, by "k" or "[kMG]sps" a sample rate (case-insensitive),
 * e.g. "x_868.13M_1024k.cu8" -> 868.13e6 Hz, 1.024e6 S/s. Outputs are set only for tokens
 * found (may be NULL). Returns a bit mask: 1 = rate found, 2 = centre found. */
int iq_parse_name_tokens(const char *path, double *rate_sps, double *center_freq_hz);

typedef struct iqfile iqfile_t;

typedef struct {
    iq_format_t format;        /* UNKNOWN: from the path's extension */
    iq_format_t sample_format; /* SigMF writer only: CU8, CS8, CS16 or CF32 (UNKNOWN: CF32);
                                  ignored otherwise */
    double rate_sps;           /* 0: unknown (see the precedence above) */
    double center_freq_hz;     /* 0: unknown */
    const char *description;   /* SigMF writer: core:description (NULL: none) */
    double start_unix_s;       /* SigMF writer: UTC of the first sample, written as
                                  captures[0] core:datetime (0: none) */
} iqfile_params_t;

/* SigMF's core:datetime, ISO-8601 UTC: "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (an offset
 * "+HH:MM"/"-HH:MM" in place of Z is converted). Years 1970..9999, fields in range, at
 * most 12 fraction digits, nothing after. Returns 0 with *unix_s set, or -1. */
int iq_parse_datetime(const char *s, double *unix_s);
/* unix_s as "YYYY-MM-DDTHH:MM:SS.ssssssZ" (microseconds) into out (>= 28 bytes). Returns
 * out, or NULL for a time before 1970 or after 9999 or a short buffer. */
char *iq_format_datetime(double unix_s, char *out, size_t out_len);

/* Opens a recording for reading. params may be NULL (all defaults). For SigMF, path may
 * name the .sigmf-meta, the .sigmf-data, or the common base name with format SIGMF.
 * Returns the handle (owned by the caller: iqfile_close()), or NULL with a message naming
 * the file and the problem in err (truncated to err_len; err may be NULL). */
iqfile_t *iqfile_open_read(const char *path, const iqfile_params_t *params, char *err,
                           size_t err_len);
/* Opens for writing: creates or truncates. The format comes from params->format or the
 * extension. SigMF writes NAME.sigmf-meta at once (core:version, core:datatype,
 * core:sample_rate, captures[0] core:frequency when known) and samples to NAME.sigmf-data;
 * WAV writes its sizes into the RIFF header at close and is limited to 4 GiB of data.
 * "-" writes raw formats to stdout. Returns NULL with a message in err on failure. */
iqfile_t *iqfile_open_write(const char *path, const iqfile_params_t *params, char *err,
                            size_t err_len);

/* Reads up to n samples into out. Returns the count (< n only at the end of the file), 0
 * at the end, or -1 on error with iqfile_error() explaining. A file ending in a partial
 * sample first returns all the whole samples, then -1 ("truncated final sample"); so does
 * a WAV whose data chunk is shorter than its header says. Blocks may be of any size. */
ssize_t iqfile_read(iqfile_t *f, float complex *out, size_t n);
/* Writes n samples. Integer formats round to nearest and clip to their range (NaN -> 0).
 * Returns 0 or -1 (write error, WAV size limit) with iqfile_error() explaining. */
int iqfile_write(iqfile_t *f, const float complex *in, size_t n);
/* Goes back to the first sample of a regular file (for looping playback).
 * Returns 0, or -1 for stdin/pipes and writers. */
int iqfile_rewind(iqfile_t *f);
/* Flushes, finishes headers (WAV) and closes. Returns 0, or -1 if a write failed (the
 * message is logged, the handle is freed anyway). NULL-safe. Never closes stdin/stdout. */
int iqfile_close(iqfile_t *f);

double iqfile_rate(const iqfile_t *f);        /* S/s; 0 if unknown */
double iqfile_center_freq(const iqfile_t *f); /* Hz; 0 if unknown */
iq_source_t iqfile_rate_source(const iqfile_t *f);
/* UTC of the first sample (Unix seconds) from SigMF captures[0] core:datetime, moved back
 * by that capture's core:sample_start at the file's rate; 0 when the recording does not
 * say (raw, WAV, SigMF without core:datetime). */
double iqfile_start_unix_s(const iqfile_t *f);
iq_source_t iqfile_center_freq_source(const iqfile_t *f);
/* The sample format on disk: CU8, CS8, CS16, CF32, WAV16 or WAVF32 (never SIGMF). */
iq_format_t iqfile_format(const iqfile_t *f);
/* The container: the sample format for raw and WAV, SIGMF for SigMF. */
iq_format_t iqfile_container(const iqfile_t *f);
/* Total samples of a regular readable file (from its size or header), -1 if unknown
 * (stdin, pipes, writers). */
int64_t iqfile_length(const iqfile_t *f);
/* Samples read (or written) so far; rewinding resets it. */
uint64_t iqfile_position(const iqfile_t *f);
/* Last error message ("" if none), naming the file. Valid until the next call on f. */
const char *iqfile_error(const iqfile_t *f);

#ifdef __cplusplus
}
#ifdef IQFILE_UNDEF_COMPLEX
#undef complex
#undef IQFILE_UNDEF_COMPLEX
#endif
#endif

#endif
