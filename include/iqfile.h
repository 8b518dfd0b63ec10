/* iqfile: streaming read/write of complex baseband recordings. Licence: MIT.
 *
 * Formats: cu8 (RTL-SDR), cs8 (HackRF), cs16, cf32 (raw interleaved I/Q, little-endian),
 * WAV with 2 channels (int16 or float32), SigMF (.sigmf-meta JSON + .sigmf-data with
 * datatype cu8 / ci8 / ci16_le / cf32_le, core:sample_rate, core:frequency).
 * Samples are complex float with full scale 1.0. "-" means stdin / stdout (raw formats).
 * Memory use is constant whatever the file size.
 */
#ifndef SIGFOX_IQFILE_H
#define SIGFOX_IQFILE_H

#include <complex.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum {
    IQ_FORMAT_UNKNOWN = 0,
    IQ_FORMAT_CU8,
    IQ_FORMAT_CS8,
    IQ_FORMAT_CS16,
    IQ_FORMAT_CF32,
    IQ_FORMAT_WAV16,   /* 2-channel PCM int16 */
    IQ_FORMAT_WAVF32,  /* 2-channel IEEE float32 */
    IQ_FORMAT_SIGMF,   /* sample type from the metadata */
} iq_format_t;

/* "cu8", "cs8", "cs16", "cf32", "wav", "wav16", "wavf32", "sigmf" (also "cs32"? no).
 * Returns IQ_FORMAT_UNKNOWN for anything else. */
iq_format_t iq_format_from_name(const char *name);
const char *iq_format_name(iq_format_t fmt);
/* From a path's extension (.cu8 .cs8 .cs16 .cf32 .wav .sigmf-meta .sigmf-data .sigmf;
 * also rtl_433-style .raw/.bin? no). Returns IQ_FORMAT_UNKNOWN when not recognised. */
iq_format_t iq_format_from_path(const char *path);

typedef struct iqfile iqfile_t;

typedef struct {
    iq_format_t format;    /* UNKNOWN: from the path */
    double rate_sps;       /* 0: unknown; metadata (WAV, SigMF) overrides nothing given here
                              when non-zero? -> see iqfile_open_read */
    double center_freq_hz; /* 0: unknown */
} iqfile_params_t;

/* Opens a recording for reading. Rate and centre frequency come from the file's metadata
 * when it has them, else from params (non-zero values in params win over metadata only
 * for raw formats). On failure returns NULL and writes a message naming the file and the
 * problem into err. */
iqfile_t *iqfile_open_read(const char *path, const iqfile_params_t *params, char *err,
                           size_t err_len);
/* Opens for writing (creates/truncates; SigMF writes both files, WAV fixes its header at
 * close). */
iqfile_t *iqfile_open_write(const char *path, const iqfile_params_t *params, char *err,
                            size_t err_len);

/* Reads up to n samples. Returns the count (0 at end of file) or -1 on error, with
 * iqfile_error() explaining (a truncated final sample is an error after the whole
 * samples before it were returned). */
ssize_t iqfile_read(iqfile_t *f, float complex *out, size_t n);
/* Writes n samples (clipped to the format's range). Returns 0 or -1. */
int iqfile_write(iqfile_t *f, const float complex *in, size_t n);
/* Closes (finishing headers for writers). Returns 0 or -1 (write error). NULL-safe. */
int iqfile_close(iqfile_t *f);

double iqfile_rate(const iqfile_t *f);
double iqfile_center_freq(const iqfile_t *f);
iq_format_t iqfile_format(const iqfile_t *f);       /* sample format, never SIGMF */
const char *iqfile_error(const iqfile_t *f);        /* last error message */

#endif
