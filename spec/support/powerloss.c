/*
 * powerloss.c - power-loss model for the storage tests (test builds only).
 *
 * Linked into a test build of the C core compiled with -DAQS_IO_TEST (make powerloss ->
 * build-iotest/actionqueue/storage/core.so); the normal build never contains it.  It
 * installs a syscall table through aqs_io_set_sys (csrc/io.h) and keeps a model of
 * what a power cut would leave on disk:
 *
 *   - every write really goes to the file system: that is the page cache;
 *   - the durable image: per inode the content as of its last fsync/fdatasync, per
 *     directory the name -> inode list as of its last fsync; start() declares the tree
 *     under ROOT durable as it is;
 *   - crash() replaces the tree under ROOT by the durable image: each name durable in
 *     its directory comes back with the durable content of its inode (empty when that
 *     inode was never synced); names never made durable by a directory fsync vanish.
 *
 * Test switches (set()): skip_sync = k makes the k-th fsync/fdatasync since start() a
 * no-op that reports success (a "removed" fsync); cut_at = n makes syscall n and every
 * later one fail with EIO without touching the disk (the moment of the power cut, after
 * which the process's code only runs error paths).  Real fsyncs are never issued (the
 * model decides durability), so the tests are fast.
 *
 * Lua (via package.loadlib(<core.so>, "luaopen_aqs_powerloss")):
 *   start(root) ; set{skip_sync = k, cut_at = n} ; stats() -> {calls, syncs, cut}
 *   crash() -> true (materialises the durable image, uninstalls) ; stop() (uninstalls)
 * Every inode the model refers to is pinned by an open descriptor so its number cannot
 * be reused while the model runs.
 */
#include "../../csrc/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#ifndef AQS_IO_TEST
#error "powerloss.c needs a core built with -DAQS_IO_TEST"
#endif

typedef struct { dev_t dev; ino_t ino; int pin; int synced; char *data; size_t len; } inode_t;
typedef struct { char *name; dev_t dev; ino_t ino; int isdir; } entry_t;
typedef struct { dev_t dev; ino_t ino; entry_t *e; size_t n; } dirent_t;

static inode_t *inodes; static size_t ninodes;
static dirent_t *dirs; static size_t ndirs;
static char *root;
static dev_t root_dev; static ino_t root_ino;
static long calls, syncs, skip_sync, cut_at;
static int cut, armed;
static const aqs_sys *libc;

static inode_t *inode_of(dev_t dev, ino_t ino, int fd_or_path_fd) {
  size_t i;
  for (i = 0; i < ninodes; i++) if (inodes[i].dev == dev && inodes[i].ino == ino) return &inodes[i];
  inodes = realloc(inodes, (ninodes + 1) * sizeof *inodes);
  memset(&inodes[ninodes], 0, sizeof *inodes);
  inodes[ninodes].dev = dev;
  inodes[ninodes].ino = ino;
  inodes[ninodes].pin = fd_or_path_fd;
  return &inodes[ninodes++];
}

/* Reads the whole current content of an open file (through /proc: works for O_WRONLY). */
static void capture(inode_t *in, int fd) {
  char p[64], buf[65536];
  int r;
  ssize_t k;
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  r = open(p, O_RDONLY | O_CLOEXEC);
  if (r < 0) return;
  free(in->data);
  in->data = NULL; in->len = 0;
  while ((k = read(r, buf, sizeof buf)) > 0) {
    in->data = realloc(in->data, in->len + (size_t)k);
    memcpy(in->data + in->len, buf, (size_t)k);
    in->len += (size_t)k;
  }
  close(r);
  in->synced = 1;
}

static dirent_t *dir_of(dev_t dev, ino_t ino) {
  size_t i;
  for (i = 0; i < ndirs; i++) if (dirs[i].dev == dev && dirs[i].ino == ino) return &dirs[i];
  dirs = realloc(dirs, (ndirs + 1) * sizeof *dirs);
  memset(&dirs[ndirs], 0, sizeof *dirs);
  dirs[ndirs].dev = dev;
  dirs[ndirs].ino = ino;
  return &dirs[ndirs++];
}

/* Records the current entries of the directory open at dfd as its durable namespace;
 * with `deep`, also every file's content and every subdirectory (start()). */
static void capture_dir(int dfd, int deep) {
  struct stat st;
  DIR *d;
  struct dirent *de;
  dirent_t *dd;
  int dup_fd;
  size_t i;
  size_t di;
  if (fstat(dfd, &st) < 0) return;
  dd = dir_of(st.st_dev, st.st_ino);
  di = (size_t)(dd - dirs);   /* the recursion below may move `dirs`: index, not pointer */
  for (i = 0; i < dd->n; i++) free(dd->e[i].name);
  free(dd->e); dd->e = NULL; dd->n = 0;
  dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0 || !(d = fdopendir(dup_fd))) return;
  while ((de = readdir(d)) != NULL) {
    struct stat es;
    int fd;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &es) < 0) { if (fd >= 0) close(fd); continue; }
    dd = &dirs[di];
    dd->e = realloc(dd->e, (dd->n + 1) * sizeof *dd->e);
    dd->e[dd->n].name = strdup(de->d_name);
    dd->e[dd->n].dev = es.st_dev;
    dd->e[dd->n].ino = es.st_ino;
    dd->e[dd->n].isdir = S_ISDIR(es.st_mode);
    dd->n++;
    {
      inode_t *in = inode_of(es.st_dev, es.st_ino, -1);
      if (in->pin < 0) in->pin = fd; else close(fd);
      if (deep && S_ISREG(es.st_mode)) capture(in, in->pin);
      if (deep && S_ISDIR(es.st_mode)) capture_dir(in->pin, 1);
    }
  }
  closedir(d);
}

/* ---- the hooked syscall table ---- */

static int gate(void) {
  calls++;
  if (cut_at > 0 && calls >= cut_at) cut = 1;
  if (cut) { errno = EIO; return -1; }
  return 0;
}

static int h_open(const char *p, int f, mode_t m) { return gate() ? -1 : libc->open(p, f, m); }
static ssize_t h_read(int fd, void *b, size_t n) { return gate() ? -1 : libc->read(fd, b, n); }
static ssize_t h_pread(int fd, void *b, size_t n, off_t o) { return gate() ? -1 : libc->pread(fd, b, n, o); }
static ssize_t h_write(int fd, const void *b, size_t n) { return gate() ? -1 : libc->write(fd, b, n); }
static ssize_t h_pwrite(int fd, const void *b, size_t n, off_t o) { return gate() ? -1 : libc->pwrite(fd, b, n, o); }
static int h_ftruncate(int fd, off_t n) { return gate() ? -1 : libc->ftruncate(fd, n); }
static int h_fstat(int fd, struct stat *st) { return gate() ? -1 : libc->fstat(fd, st); }
/* After the cut close() fails, but the descriptor is released all the same, as Linux's
 * close always releases it: a leaked descriptor would keep its flock (the data dir's
 * directory lock) held into the next case of this process, which a real cut never does. */
static int h_close(int fd) {
  if (gate()) {
    (void)libc->close(fd);
    errno = EIO;
    return -1;
  }
  return libc->close(fd);
}
static int h_rename(const char *a, const char *b) { return gate() ? -1 : libc->rename(a, b); }
static int h_unlink(const char *p) { return gate() ? -1 : libc->unlink(p); }
static int h_lstat(const char *p, struct stat *st) { return gate() ? -1 : libc->lstat(p, st); }
static int h_stat(const char *p, struct stat *st) { return gate() ? -1 : libc->stat(p, st); }
static int h_fchmod(int fd, mode_t m) { return gate() ? -1 : libc->fchmod(fd, m); }
static int h_fchown(int fd, uid_t u, gid_t g) { return gate() ? -1 : libc->fchown(fd, u, g); }
static int h_rename_noreplace(const char *a, const char *b) {
  return gate() ? -1 : libc->rename_noreplace(a, b);
}

static int h_sync(int fd) {
  struct stat st;
  if (gate()) return -1;
  if (++syncs == skip_sync) return 0;        /* the "removed" fsync */
  if (fstat(fd, &st) < 0) return -1;
  if (S_ISDIR(st.st_mode)) capture_dir(fd, 0);
  else if (S_ISREG(st.st_mode)) {
    inode_t *in = inode_of(st.st_dev, st.st_ino, -1);
    if (in->pin < 0) {
      char p[64];
      snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
      in->pin = open(p, O_RDONLY | O_CLOEXEC);
    }
    capture(in, fd);
  }
  return 0;
}

static const aqs_sys hooked = {
  h_open, h_read, h_pread, h_write, h_pwrite, h_sync, h_sync, h_ftruncate, h_fstat,
  h_close, h_rename, h_unlink, h_lstat, h_stat, h_fchmod, h_fchown, h_rename_noreplace
};

static void reset(void) {
  size_t i, j;
  for (i = 0; i < ninodes; i++) { if (inodes[i].pin >= 0) close(inodes[i].pin); free(inodes[i].data); }
  for (i = 0; i < ndirs; i++) { for (j = 0; j < dirs[i].n; j++) free(dirs[i].e[j].name); free(dirs[i].e); }
  free(inodes); free(dirs); free(root);
  inodes = NULL; dirs = NULL; root = NULL; ninodes = ndirs = 0;
  calls = syncs = skip_sync = cut_at = 0;
  cut = 0;
  if (armed) aqs_io_set_sys(NULL);
  armed = 0;
}

static int pl_start(lua_State *L) {
  const char *r = luaL_checkstring(L, 1);
  int dfd;
  struct stat st;
  reset();
  dfd = open(r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fstat(dfd, &st) < 0) return luaL_error(L, "powerloss.start %s: %s", r, strerror(errno));
  root = strdup(r);
  root_dev = st.st_dev; root_ino = st.st_ino;
  inode_of(st.st_dev, st.st_ino, dfd);
  capture_dir(dfd, 1);
  libc = aqs_io_default_sys();
  aqs_io_set_sys(&hooked);
  armed = 1;
  return 0;
}

static int pl_set(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "skip_sync"); skip_sync = (long)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "cut_at"); cut_at = (long)luaL_optinteger(L, -1, 0);
  return 0;
}

static int pl_stats(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, calls); lua_setfield(L, -2, "calls");
  lua_pushinteger(L, syncs); lua_setfield(L, -2, "syncs");
  lua_pushboolean(L, cut); lua_setfield(L, -2, "cut");
  return 1;
}

/* Empties the directory open at dfd, then recreates the durable namespace dd in it. */
static int rebuild(int dfd, dirent_t *dd) {
  DIR *d;
  struct dirent *de;
  size_t i;
  int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0 || !(d = fdopendir(dup_fd))) return -1;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dfd, de->d_name, 0) < 0 && errno == EISDIR) {
      /* Directories are rebuilt in place below when durable, else emptied and removed. */
      int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dirent_t empty = {0, 0, NULL, 0};
      if (sub >= 0) { rebuild(sub, &empty); close(sub); }
      unlinkat(dfd, de->d_name, AT_REMOVEDIR);
    }
  }
  closedir(d);
  for (i = 0; dd && i < dd->n; i++) {
    entry_t *e = &dd->e[i];
    inode_t *in = inode_of(e->dev, e->ino, -1);
    if (e->isdir) {
      int sub;
      if (mkdirat(dfd, e->name, 0755) < 0 && errno != EEXIST) return -1;
      sub = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (sub < 0) return -1;
      {
        size_t k; dirent_t *child = NULL;
        for (k = 0; k < ndirs; k++) if (dirs[k].dev == e->dev && dirs[k].ino == e->ino) child = &dirs[k];
        rebuild(sub, child);
      }
      close(sub);
    } else {
      int fd = openat(dfd, e->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return -1;
      if (in->synced && in->len > 0 && write(fd, in->data, in->len) != (ssize_t)in->len) { close(fd); return -1; }
      close(fd);
    }
  }
  return 0;
}

static int pl_crash(lua_State *L) {
  int dfd, r;
  dirent_t *dd;
  if (!root) return luaL_error(L, "powerloss.crash without start");
  aqs_io_set_sys(NULL);
  armed = 0;
  dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return luaL_error(L, "powerloss.crash: %s", strerror(errno));
  dd = dir_of(root_dev, root_ino);
  r = rebuild(dfd, dd);
  close(dfd);
  reset();
  if (r < 0) return luaL_error(L, "powerloss.crash: rebuild failed: %s", strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

static int pl_stop(lua_State *L) {
  (void)L;
  reset();
  return 0;
}

int luaopen_aqs_powerloss(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"crash", pl_crash}, {"set", pl_set}, {"start", pl_start}, {"stats", pl_stats},
    {"stop", pl_stop}, {NULL, NULL}
  };
  luaL_newlib(L, fns);
  return 1;
}
