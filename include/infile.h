/* infile: opening and reading files named from outside (configuration, keys, anti-replay
 * state, SigMF metadata, IQ recordings) with limits. Licence: MIT.
 *
 * Every file a user or an operator names is hostile until read: it may be a directory, a
 * FIFO that nobody writes (open() would block forever), a device like /dev/zero that never
 * ends, or just far too large. infile_open() opens with O_NONBLOCK (so a FIFO never blocks
 * open()), fstat()s, refuses directories always and anything but a regular file when the
 * caller says a stream makes no sense (INFILE_REGULAR), then clears O_NONBLOCK. The readers
 * stop at a byte limit (and a line limit) with a message naming the file and the limit.
 * Thread-safe (no shared state).
 */
#ifndef SIGFOX_INFILE_H
#define SIGFOX_INFILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define INFILE_REGULAR 0x1u /* refuse FIFOs, character/block devices and sockets */

/* Limits of the files sigfoxd reads (docs/sigfoxd.md "Limits"). */
#define INFILE_MAX_CONFIG_BYTES (1u << 20)    /* sigfoxd.conf: 1 MiB */
#define INFILE_MAX_KEYS_BYTES (64u << 20)     /* keys file: 64 MiB (> 1 M devices) */
#define INFILE_MAX_STATE_BYTES (256u << 20)   /* devices.state: 256 MiB (> 3 M devices) */
#define INFILE_MAX_SIGMF_META_BYTES (16u << 20) /* .sigmf-meta: 16 MiB */
#define INFILE_MAX_LINE_BYTES 4096            /* one line of a keys or state file */

/* Opens path for reading ("rb"). what names the file in messages ("keys file").
 * Returns the stream, or NULL with "<what> <path>: <reason>" in err. */
FILE *infile_open(const char *path, const char *what, unsigned flags, char *err,
                  size_t err_len);

/* Reads a whole file (INFILE_REGULAR implied) of at most max_bytes into a malloc()ed,
 * NUL-terminated buffer (*out, caller frees; *len without the NUL). An empty file is
 * allowed (*len 0). Returns 0, or -1 with the reason in err. */
int infile_read_all(const char *path, const char *what, size_t max_bytes, char **out,
                    size_t *len, char *err, size_t err_len);

/* Reader of a line-oriented file with a total byte limit and a line limit. */
typedef struct {
    FILE *f;
    const char *path, *what;
    size_t max_bytes, max_line;
    size_t bytes;     /* read so far */
    unsigned lineno;  /* of the line last returned */
    char *line;       /* the line last returned (NUL-terminated, '\n' kept) */
    size_t cap;
} infile_lines_t;

/* infile_open() + set-up. Returns 0 or -1 with the reason in err. */
int infile_lines_open(infile_lines_t *r, const char *path, const char *what, unsigned flags,
                      size_t max_bytes, size_t max_line, char *err, size_t err_len);
/* The next line in r->line (length returned; the last line may lack '\n'). Returns the
 * length (> 0), 0 at the end of the file, or -1 with "<path>:<line>: reason" in err (line
 * too long, NUL byte, file over its limit, read error). */
ssize_t infile_lines_next(infile_lines_t *r, char *err, size_t err_len);
/* Closes and wipes the line buffer (keys files hold secrets). NULL-safe fields. */
void infile_lines_close(infile_lines_t *r);

#endif
