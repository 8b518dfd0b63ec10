/* infile: bounded reading of files named from outside. Licence: MIT. */
#include "infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "errbuf.h"

static const char *kind_of(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

FILE *infile_open(const char *path, const char *what, unsigned flags, char *err, size_t err_len)
{
    if (!path || !*path) {
        errbuf_set(err, err_len, "%s: no file name given", what);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        errbuf_set(err, err_len, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        errbuf_set(err, err_len, "%s %s: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        errbuf_set(err, err_len, "%s %s: is a directory, not a file", what, path);
        close(fd);
        return NULL;
    }
    if ((flags & INFILE_REGULAR) && !S_ISREG(st.st_mode)) {
        errbuf_set(err, err_len, "%s %s: is %s; it must be a regular file", what, path,
                   kind_of(st.st_mode));
        close(fd);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        errbuf_set(err, err_len, "%s %s: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        errbuf_set(err, err_len, "%s %s: %s", what, path, strerror(errno));
        close(fd);
    }
    return f;
}

int infile_read_all(const char *path, const char *what, size_t max_bytes, char **out,
                    size_t *len, char *err, size_t err_len)
{
    *out = NULL;
    *len = 0;
    FILE *f = infile_open(path, what, INFILE_REGULAR, err, err_len);
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap - 1) {
            if (cap - 1 > max_bytes)
                break;
            size_t ncap = cap * 2 > max_bytes + 2 ? max_bytes + 2 : cap * 2;
            char *b = realloc(buf, ncap);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (n > max_bytes)
            break;
        if (r == 0)
            break;
    }
    if (!buf) {
        errbuf_set(err, err_len, "%s %s: out of memory", what, path);
        rc = -1;
    } else if (n > max_bytes) {
        errbuf_set(err, err_len, "%s %s: larger than the limit of %zu bytes", what, path,
                   max_bytes);
        rc = -1;
    } else if (ferror(f)) {
        errbuf_set(err, err_len, "%s %s: read error: %s", what, path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int infile_lines_open(infile_lines_t *r, const char *path, const char *what, unsigned flags,
                      size_t max_bytes, size_t max_line, char *err, size_t err_len)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->what = what;
    r->max_bytes = max_bytes;
    r->max_line = max_line;
    r->f = infile_open(path, what, flags, err, err_len);
    if (!r->f)
        return -1;
    r->cap = max_line + 2;
    r->line = malloc(r->cap);
    if (!r->line) {
        errbuf_set(err, err_len, "%s %s: out of memory", what, path);
        fclose(r->f);
        r->f = NULL;
        return -1;
    }
    return 0;
}

ssize_t infile_lines_next(infile_lines_t *r, char *err, size_t err_len)
{
    size_t n = 0;
    int c = EOF;
    r->lineno++;
    while (n <= r->max_line && (c = getc(r->f)) != EOF) {
        if (++r->bytes > r->max_bytes) {
            errbuf_set(err, err_len, "%s:%u: the %s is larger than the limit of %zu bytes",
                       r->path, r->lineno, r->what, r->max_bytes);
            return -1;
        }
        if (c == '\0') {
            errbuf_set(err, err_len, "%s:%u: NUL byte in line", r->path, r->lineno);
            return -1;
        }
        r->line[n++] = (char)c;
        if (c == '\n')
            break;
    }
    r->line[n] = '\0';
    if (c != '\n' && n > r->max_line) {
        errbuf_set(err, err_len, "%s:%u: line longer than %zu bytes", r->path, r->lineno,
                   r->max_line);
        return -1;
    }
    if (c == EOF && ferror(r->f)) {
        errbuf_set(err, err_len, "%s:%u: read error: %s", r->path, r->lineno, strerror(errno));
        return -1;
    }
    return (ssize_t)n;
}

void infile_lines_close(infile_lines_t *r)
{
    if (r->f)
        fclose(r->f);
    if (r->line)
        OPENSSL_cleanse(r->line, r->cap);
    free(r->line);
    r->f = NULL;
    r->line = NULL;
}
