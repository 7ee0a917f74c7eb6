/*
 * io.c - syscall wrappers: EINTR and short-count loops, errno names, error values.
 *
 * Callers never talk to libc directly; they go through aqs_sys so that test builds
 * can interpose a recording or failing implementation in one place.
 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>

static int sys_open(const char *path, int flags, mode_t mode) {
  return open(path, flags, mode);
}

static int sys_rename_noreplace(const char *from, const char *to) {
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -1;
  /* No RENAME_NOREPLACE here (old kernel, some network file systems): link() also
   * refuses an existing name; the temp name is then removed. */
  if (link(from, to) < 0) return -1;
  (void)unlink(from);
  return 0;
}

static const aqs_sys libc_sys = {
  sys_open, read, pread, write, pwrite, fsync, fdatasync, ftruncate, fstat,
  close, rename, unlink, lstat, stat, fchmod, fchown, sys_rename_noreplace
};

#ifdef AQS_IO_TEST
/* Mutable only in test builds, where a harness owns the whole process anyway. */
static const aqs_sys *cur = &libc_sys;
void aqs_io_set_sys(const aqs_sys *sys) { cur = sys ? sys : &libc_sys; }
const aqs_sys *aqs_io_default_sys(void) { return &libc_sys; }
#define SYS (cur)
#else
#define SYS (&libc_sys)
#endif

int aqs_open(const char *path, int flags, mode_t mode) {
  int fd;
  do { fd = SYS->open(path, flags | O_CLOEXEC, mode); } while (fd < 0 && errno == EINTR);
  return fd;
}

int aqs_close(int fd) {
  /* On Linux the descriptor is released even when close() reports EINTR, so a
   * retry could close somebody else's fresh descriptor. */
  if (SYS->close(fd) < 0 && errno != EINTR) return -1;
  return 0;
}

int aqs_fsync(int fd) {
  int r;
  do { r = SYS->fsync(fd); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_fdatasync(int fd) {
  int r;
  do { r = SYS->fdatasync(fd); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_ftruncate(int fd, uint64_t len) {
  int r;
  if (len > (uint64_t)INT64_MAX) { errno = EFBIG; return -1; }
  do { r = SYS->ftruncate(fd, (off_t)len); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_fstat(int fd, struct stat *st) {
  return SYS->fstat(fd, st);
}

int aqs_rename(const char *from, const char *to) {
  int r;
  do { r = SYS->rename(from, to); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_unlink(const char *path) {
  int r;
  do { r = SYS->unlink(path); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_flock(int fd, int op) {
  int r;
  do { r = flock(fd, op); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_lstat(const char *path, struct stat *st) {
  return SYS->lstat(path, st);
}

int aqs_stat(const char *path, struct stat *st) {
  return SYS->stat(path, st);
}

int aqs_fchmod(int fd, mode_t mode) {
  int r;
  do { r = SYS->fchmod(fd, mode); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_fchown(int fd, uid_t uid, gid_t gid) {
  int r;
  do { r = SYS->fchown(fd, uid, gid); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_rename_noreplace(const char *from, const char *to) {
  int r;
  do { r = SYS->rename_noreplace(from, to); } while (r < 0 && errno == EINTR);
  return r;
}

int aqs_fcntl_clear_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  if (!(fl & O_NONBLOCK)) return 0;
  return fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int aqs_same_file_under(const char *dir, const char *rel, int fd) {
  char comp[256];
  struct stat want, got;
  const char *p = rel;
  int dfd;
  if (aqs_fstat(fd, &want) < 0) return -1;
  do { dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); } while (dfd < 0 && errno == EINTR);
  if (dfd < 0) return -1;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    int r;
    if (n == 0 || n >= sizeof comp) {
      (void)close(dfd);
      errno = n == 0 ? EINVAL : ENAMETOOLONG;
      return -1;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    if (!slash) {
      r = fstatat(dfd, comp, &got, AT_SYMLINK_NOFOLLOW);
      (void)close(dfd);
      if (r < 0) return -1;
      if (S_ISLNK(got.st_mode)) { errno = ELOOP; return -1; }
      if (got.st_dev != want.st_dev || got.st_ino != want.st_ino) { errno = ESTALE; return -1; }
      return 0;
    }
    do { r = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); } while (r < 0 && errno == EINTR);
    (void)close(dfd);
    if (r < 0) {
      /* O_NOFOLLOW|O_DIRECTORY on a link gives ELOOP or ENOTDIR depending on the kernel */
      if (errno == ENOTDIR) errno = ELOOP;
      return -1;
    }
    dfd = r;
    p = slash + 1;
  }
}

const char *aqs_file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "regular file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISFIFO(mode)) return "FIFO (named pipe)";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISLNK(mode)) return "symbolic link";
  return "special file";
}

int aqs_open_input(const char *path, const char **kind) {
  struct stat st;
  int fd = aqs_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
  if (fd < 0) {
    /* A socket cannot be opened at all (ENXIO); say what it is instead. */
    int e = errno;
    if (e == ENXIO && aqs_stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
      *kind = aqs_file_kind(st.st_mode);
      return -2;
    }
    errno = e;
    return -1;
  }
  if (aqs_fstat(fd, &st) < 0) {
    int e = errno;
    (void)aqs_close(fd);
    errno = e;
    return -1;
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    *kind = aqs_file_kind(st.st_mode);
    (void)aqs_close(fd);
    return -2;
  }
  /* Regular files never block; the flag is dropped anyway so later reads are plain. */
  if (aqs_fcntl_clear_nonblock(fd) < 0) {
    int e = errno;
    (void)aqs_close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void aqs_random_bytes(void *buf, size_t n) {
  unsigned char *p = (unsigned char *)buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += (size_t)r;
  }
  if (got < n) {
    /* No entropy source: names only need to differ between concurrent writers, and
     * O_EXCL catches a collision; mix the clock and the pid. */
    struct timespec ts;
    uint64_t x;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    for (; got < n; got++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      p[got] = (unsigned char)(x & 0xFF);
    }
  }
}

int aqs_pid_alive(long pid) {
  if (pid <= 0 || (long)(pid_t)pid != pid) return 0;
  return !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

int aqs_list_dir(const char *dir, void (*fn)(const char *name, void *ud), void *ud) {
  DIR *d = opendir(dir);
  struct dirent *de;
  if (!d) return -1;
  for (;;) {
    errno = 0;
    de = readdir(d);
    if (!de) break;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    fn(de->d_name, ud);
  }
  {
    int e = errno;
    (void)closedir(d);
    if (e) { errno = e; return -1; }
  }
  return 0;
}

/* Kernel calls move at most about 2 GiB at once; ask for no more than that. */
#define IO_CHUNK ((size_t)1 << 30)

int64_t aqs_read_full(int fd, void *buf, size_t n, int64_t off) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got < IO_CHUNK ? n - got : IO_CHUNK;
    ssize_t r = off < 0 ? SYS->read(fd, (char *)buf + got, want)
                        : SYS->pread(fd, (char *)buf + got, want, (off_t)(off + (int64_t)got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int64_t)got;
}

int64_t aqs_read_some(int fd, void *buf, size_t n) {
  ssize_t r;
  if (n > IO_CHUNK) n = IO_CHUNK;
  do { r = SYS->read(fd, buf, n); } while (r < 0 && errno == EINTR);
  return (int64_t)r;
}

int aqs_write_all(int fd, const void *buf, size_t n, int64_t off) {
  size_t done = 0;
  while (done < n) {
    size_t want = n - done < IO_CHUNK ? n - done : IO_CHUNK;
    ssize_t r = off < 0 ? SYS->write(fd, (const char *)buf + done, want)
                        : SYS->pwrite(fd, (const char *)buf + done, want,
                                      (off_t)(off + (int64_t)done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    /* A zero-byte write for a non-empty request would loop forever; the device
     * is not taking data, which is what ENOSPC means to our callers. */
    if (r == 0) { errno = ENOSPC; return -1; }
    done += (size_t)r;
  }
  return 0;
}

const char *aqs_errno_name(int err) {
  switch (err) {
#define N(e) case e: return #e;
    N(EPERM) N(ENOENT) N(ESRCH) N(EINTR) N(EIO) N(ENXIO) N(E2BIG) N(ENOEXEC)
    N(EBADF) N(ECHILD) N(EAGAIN) N(ENOMEM) N(EACCES) N(EFAULT) N(EBUSY)
    N(EEXIST) N(EXDEV) N(ENODEV) N(ENOTDIR) N(EISDIR) N(EINVAL) N(ENFILE)
    N(EMFILE) N(ENOTTY) N(ETXTBSY) N(EFBIG) N(ENOSPC) N(ESPIPE) N(EROFS)
    N(EMLINK) N(EPIPE) N(EDOM) N(ERANGE) N(EDEADLK) N(ENAMETOOLONG) N(ENOLCK)
    N(ENOSYS) N(ENOTEMPTY) N(ELOOP) N(EOVERFLOW) N(EDQUOT) N(ESTALE)
    N(EOPNOTSUPP) N(ETIMEDOUT) N(ECANCELED)
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
    N(EWOULDBLOCK)
#endif
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    N(ENOTSUP)
#endif
#undef N
    default: return "EUNKNOWN";
  }
}

void aqs_push_osmsg(lua_State *L, int err) {
  /* The reference prints OS errors the way Rust's std::io::Error does. */
  lua_pushfstring(L, "%s (os error %d)", strerror(err), err);
}

int aqs_push_ioerr(lua_State *L, const char *op, const char *path, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", op, path, strerror(err));
  lua_pushstring(L, aqs_errno_name(err));
  return 3;
}
