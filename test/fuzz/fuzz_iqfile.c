/* fuzz_iqfile: IQ recordings as --replay opens them: a WAV header, SigMF metadata (the
 * input is the .sigmf-meta next to a small data file), name tokens, and reading the
 * samples of raw and WAV files to the end. Licence: MIT. */
#include <complex.h>

#include "fuzzutil.h"
#include "iqfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(iqfile_t *f)
{
    float complex buf[512];
    for (int i = 0; i < 64; i++) {
        ssize_t n = iqfile_read(f, buf, sizeof buf / sizeof buf[0]);
        FUZZ_CHECK(n >= -1 && n <= (ssize_t)(sizeof buf / sizeof buf[0]));
        if (n <= 0)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const names[] = {"x.wav", "x.sigmf-meta", "x_868.13M_1024k.cu8",
                                        "x_250k.cs16", "x.cf32", "x.cs8"};
    const char *name = names[data[0] % (sizeof names / sizeof names[0])];
    data++;
    size--;
    if (strstr(name, "sigmf")) { /* SigMF: a data file beside the metadata */
        static const uint8_t samples[64] = {1, 2, 3, 4};
        fuzz_write_file("x.sigmf-data", samples, sizeof samples);
    }
    const char *path = fuzz_write_file(name, data, size);
    char err[512];
    iqfile_params_t p = {0};
    iqfile_t *f = iqfile_open_read(path, &p, err, sizeof err);
    if (!f)
        return 0;
    double rate = iqfile_rate(f), freq = iqfile_center_freq(f);
    FUZZ_CHECK(rate >= 0 && rate <= 1e10 && freq >= 0 && freq <= 1e11);
    read_all(f);
    iqfile_close(f);
    return 0;
}
