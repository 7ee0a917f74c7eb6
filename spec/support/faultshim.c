/*
 * faultshim.c - LD_PRELOAD fault injection for the storage tests.
 *
 * Build: make build/faultshim.so.  Use: LD_PRELOAD=build/faultshim.so lua5.4 ...
 * (LD_PRELOAD only works from process start, so tests run one child per case.)
 *
 * Environment contract
 *   AQS_FAULT        comma-separated rules  FUNC:N:ACTION  or  FUNC:N+:ACTION
 *                      FUNC   open write pwrite read pread fsync fdatasync rename
 *                             close ftruncate unlink
 *                      N      1-based index of the call to FUNC (counted per FUNC);
 *                             "N" fails that call once, "N+" fails it and every later one
 *                      ACTION an errno name (EIO ENOSPC EDQUOT EINTR EROFS EACCES EPERM
 *                             EBADF EFBIG ENOENT EAGAIN), or "short" (write/pwrite only:
 *                             transfer half the bytes, at least 1, and report that)
 *                    e.g. AQS_FAULT="fsync:1:EIO"   AQS_FAULT="pwrite:2+:ENOSPC"
 *   AQS_FAULT_PATH   optional substring: only calls on paths containing it (open,
 *                    rename, unlink) and on descriptors opened from such paths count.
 *                    Without it every call counts.
 *   AQS_FAULT_COUNTS optional file: at exit, one line "FUNC COUNT" per function
 *                    (counted calls), so a test can learn how many call sites a
 *                    scenario has before failing each of them in turn.
 *   AQS_FAULT_TRACE  set to 1 to print each injected fault on stderr.
 *
 * ftruncate failures etc. are injected before the real call, so nothing happens on
 * disk; a "short" write really writes the first half.  open64/pread64/pwrite64/
 * ftruncate64 share the counters of their plain names.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

enum { F_OPEN, F_WRITE, F_PWRITE, F_READ, F_PREAD, F_FSYNC, F_FDATASYNC, F_RENAME,
       F_CLOSE, F_FTRUNCATE, F_UNLINK, F_COUNT };
static const char *const fnames[F_COUNT] = {
  "open", "write", "pwrite", "read", "pread", "fsync", "fdatasync", "rename",
  "close", "ftruncate", "unlink"
};

#define MAX_RULES 16
#define MAX_FD 4096
typedef struct { int fn; long n; int forever; int err; int shortw; } rule_t;

static rule_t rules[MAX_RULES];
static int nrules = -1;          /* -1: environment not read yet */
static long counts[F_COUNT];
static const char *filter;
static unsigned char tracked[MAX_FD];
static int trace;

static int errno_of(const char *s) {
  static const struct { const char *n; int e; } t[] = {
    {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EINTR", EINTR},
    {"EROFS", EROFS}, {"EACCES", EACCES}, {"EPERM", EPERM}, {"EBADF", EBADF},
    {"EFBIG", EFBIG}, {"ENOENT", ENOENT}, {"EAGAIN", EAGAIN}};
  size_t i;
  for (i = 0; i < sizeof t / sizeof t[0]; i++) if (strcmp(s, t[i].n) == 0) return t[i].e;
  return EIO;
}

static void dump_counts(void) {
  const char *path = getenv("AQS_FAULT_COUNTS");
  FILE *f;
  int i;
  if (!path || !(f = fopen(path, "w"))) return;
  for (i = 0; i < F_COUNT; i++) fprintf(f, "%s %ld\n", fnames[i], counts[i]);
  fclose(f);
}

static void setup(void) {
  char buf[1024], *save = NULL, *tok;
  const char *spec = getenv("AQS_FAULT");
  nrules = 0;
  filter = getenv("AQS_FAULT_PATH");
  if (filter && !*filter) filter = NULL;
  trace = getenv("AQS_FAULT_TRACE") != NULL;
  if (getenv("AQS_FAULT_COUNTS")) atexit(dump_counts);
  if (!spec) return;
  snprintf(buf, sizeof buf, "%s", spec);
  for (tok = strtok_r(buf, ",", &save); tok && nrules < MAX_RULES; tok = strtok_r(NULL, ",", &save)) {
    char *fn = tok, *n = strchr(tok, ':'), *act;
    int i;
    if (!n) continue;
    *n++ = '\0';
    if (!(act = strchr(n, ':'))) continue;
    *act++ = '\0';
    for (i = 0; i < F_COUNT && strcmp(fnames[i], fn) != 0; i++) {}
    if (i == F_COUNT) continue;
    rules[nrules].fn = i;
    rules[nrules].n = strtol(n, NULL, 10);
    rules[nrules].forever = strchr(n, '+') != NULL;
    rules[nrules].shortw = strcmp(act, "short") == 0;
    rules[nrules].err = rules[nrules].shortw ? 0 : errno_of(act);
    nrules++;
  }
}

typedef void (*fnptr)(void);

/* dlsym hands back an object pointer; memcpy is the pedantic-clean way to turn it
 * into a function pointer. */
static fnptr real(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  fnptr f;
  if (!p) { fprintf(stderr, "faultshim: no %s\n", name); abort(); }
  memcpy(&f, &p, sizeof f);
  return f;
}

static int fd_counts(int fd) {
  return !filter || (fd >= 0 && fd < MAX_FD && tracked[fd]);
}

static int path_counts(const char *p) {
  return !filter || (p && strstr(p, filter));
}

/* Counts one call and returns the matching rule, if any. */
static rule_t *hit(int fn, int counted) {
  int i;
  if (nrules < 0) setup();
  if (!counted) return NULL;
  counts[fn]++;
  for (i = 0; i < nrules; i++) {
    rule_t *r = &rules[i];
    if (r->fn == fn && (counts[fn] == r->n || (r->forever && counts[fn] >= r->n))) {
      if (trace) fprintf(stderr, "faultshim: %s #%ld -> %s\n", fnames[fn], counts[fn],
                         r->shortw ? "short" : strerror(r->err));
      return r;
    }
  }
  return NULL;
}

static int do_open(const char *fname, const char *path, int flags, mode_t mode) {
  int (*o)(const char *, int, ...) = (int (*)(const char *, int, ...))real(fname);
  int counted, fd;
  rule_t *r;
  if (nrules < 0) setup();
  counted = path_counts(path);
  r = hit(F_OPEN, counted);
  if (r && !r->shortw) { errno = r->err; return -1; }
  fd = o(path, flags, mode);
  if (fd >= 0 && fd < MAX_FD) tracked[fd] = (unsigned char)(filter && counted);
  return fd;
}

int open(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  return do_open("open", path, flags, mode);
}

int open64(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  return do_open("open64", path, flags, mode);
}

#define FD_CALL(fn, name, rtype, proto, args, fdv)                    \
  rtype name proto {                                                  \
    rule_t *r = hit(fn, fd_counts(fdv));                              \
    if (r && !r->shortw) { errno = r->err; return -1; }               \
    return ((rtype (*) proto)real(#name)) args;                       \
  }

FD_CALL(F_READ, read, ssize_t, (int fd, void *b, size_t n), (fd, b, n), fd)
FD_CALL(F_PREAD, pread, ssize_t, (int fd, void *b, size_t n, off_t o), (fd, b, n, o), fd)
FD_CALL(F_PREAD, pread64, ssize_t, (int fd, void *b, size_t n, off_t o), (fd, b, n, o), fd)
FD_CALL(F_FSYNC, fsync, int, (int fd), (fd), fd)
FD_CALL(F_FDATASYNC, fdatasync, int, (int fd), (fd), fd)
FD_CALL(F_FTRUNCATE, ftruncate, int, (int fd, off_t l), (fd, l), fd)
FD_CALL(F_FTRUNCATE, ftruncate64, int, (int fd, off_t l), (fd, l), fd)

/* Writes may also be cut short. */
#define WRITE_CALL(fn, name, proto, args)                  \
  ssize_t name proto {                                                \
    rule_t *r = hit(fn, fd_counts(fd));                               \
    if (r && !r->shortw) { errno = r->err; return -1; }               \
    if (r && r->shortw && n > 1) n = n / 2;                           \
    return ((ssize_t (*) proto)real(#name)) args;                     \
  }

WRITE_CALL(F_WRITE, write, (int fd, const void *b, size_t n), (fd, b, n))
WRITE_CALL(F_PWRITE, pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
WRITE_CALL(F_PWRITE, pwrite64, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))

int close(int fd) {
  int (*c)(int) = (int (*)(int))real("close");
  rule_t *r = hit(F_CLOSE, fd_counts(fd));
  if (fd >= 0 && fd < MAX_FD) tracked[fd] = 0;
  /* Like Linux, a failing close still releases the descriptor. */
  if (r && !r->shortw) { c(fd); errno = r->err; return -1; }
  return c(fd);
}

int rename(const char *from, const char *to) {
  rule_t *r;
  if (nrules < 0) setup();
  r = hit(F_RENAME, path_counts(from) || path_counts(to));
  if (r && !r->shortw) { errno = r->err; return -1; }
  return ((int (*)(const char *, const char *))real("rename"))(from, to);
}

int unlink(const char *path) {
  rule_t *r;
  if (nrules < 0) setup();
  r = hit(F_UNLINK, path_counts(path));
  if (r && !r->shortw) { errno = r->err; return -1; }
  return ((int (*)(const char *))real("unlink"))(path);
}
