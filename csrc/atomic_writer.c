/*
 * atomic_writer.c - AtomicWriter: replace a file so that readers see either the old
 * or the new content, never a mix (snapshot-format.md section 2, with the deviations
 * listed in docs/safety.md).
 *
 * The data goes to a temp sibling of its own, PATH.tmp.<pid>.<16 hex>, created with
 * O_CREAT|O_EXCL|O_NOFOLLOW: no other writer shares it and no planted link is followed.
 * close() gives the temp the previous target's owner and mode, makes it durable
 * (fsync), checks that the name still refers to our inode (a writer whose temp was
 * removed or replaced fails instead of renaming somebody else's file), renames it over
 * PATH and fsyncs the directory so the rename itself survives a power loss.  A frame is
 * streamed: begin_frame() reserves the 12 header bytes, write() appends payload while
 * the CRC and length accumulate, finish_frame() pwrites the header at offset 0.  With
 * opts.frame = false the writer writes plain bytes (reports, cut files); with
 * opts.replace = false close() never replaces an existing PATH (EEXIST).
 *
 * Temps of killed writers (dead pid and idle for a minute, or idle for a day) are
 * removed when a writer for the same target starts, at most once a minute per
 * directory and Lua state.  The engine's fixed PATH.tmp is never touched.
 *
 * Failure policy: the first I/O error is final.  fsync in particular is never retried,
 * because after a failed fsync the kernel may have dropped the dirty pages and a
 * second fsync would report success for data that is gone.
 */
#include "aqs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <unistd.h>

#define AW_MT "actionqueue.storage.AtomicWriter"
#define AW_SWEEPS "actionqueue.storage.AtomicWriter.sweeps"

/* A temp is stale when its writer is gone and it has not been written for a minute, or
 * when nobody wrote it for a day (pid reused, another pid namespace or host). */
#define STALE_DEAD_SECS 60
#define STALE_ANY_SECS 86400
#define SWEEP_EVERY_SECS 60
#define TEMP_TRIES 16

enum { AW_OPEN, AW_FAILED, AW_CLOSED, AW_ABORTED };

typedef struct {
  int fd;            /* -1 once released */
  int lockfd;        /* the previous target, flocked while we replace it; -1: none */
  int state;
  int in_frame;
  int framed;        /* a frame has been finished */
  int tmp_live;      /* the temp file exists and is ours to remove */
  int plain;         /* opts.frame == false: write() appends plain bytes */
  int noreplace;     /* opts.replace == false: close() never replaces PATH */
  uint32_t version;
  uint32_t crc;
  uint64_t length;   /* payload bytes of the open frame (plain: bytes written) */
  dev_t dev;         /* identity of our temp inode */
  ino_t ino;
  char *path, *tmp, *dir;
  char *err, *errname;   /* the first failure, repeated to every later call */
  const char *eop;       /* last_error(): the failing step ("fsync", "open dir", ...) */
  const char *epath;     /* and the file it acted on (tmp, path or dir) */
  int eno;               /* and its errno (0: none) */
  int ereplaced;         /* the failure came after the rename */
  int edisturbed;        /* the temp was removed or replaced by someone else */
} aw_t;

static aw_t *check_aw(lua_State *L) {
  return (aw_t *)luaL_checkudata(L, 1, AW_MT);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* 1 when the temp name still refers to our inode. */
static int temp_is_ours(aw_t *w) {
  struct stat st;
  return aqs_lstat(w->tmp, &st) == 0 && S_ISREG(st.st_mode) &&
         st.st_dev == w->dev && st.st_ino == w->ino;
}

static void unlock_target(aw_t *w) {
  if (w->lockfd >= 0) { (void)aqs_close(w->lockfd); w->lockfd = -1; }
}

static void release(aw_t *w) {
  if (w->fd >= 0) { (void)aqs_close(w->fd); w->fd = -1; }
  unlock_target(w);
  /* Until the rename happened the temp file is ours to remove, but only if the name
   * still is our file: never somebody else's that took its place. */
  if (w->tmp_live) {
    if (temp_is_ours(w)) (void)aqs_unlink(w->tmp);
    w->tmp_live = 0;
  }
}

/* The error details a caller needs to print the reference's texts and to say where:
 * {op = "fsync", path = "/d/x.tmp.12.ab..", errno = 5, ename = "EIO",
 *  os_message = "Input/output error (os error 5)", replaced = false}. */
static void push_info(lua_State *L, const char *op, const char *path, int err, int replaced,
                      int disturbed) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  if (path) {
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
  }
  lua_pushinteger(L, err);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, aqs_errno_name(err));
  lua_setfield(L, -2, "ename");
  if (disturbed)
    lua_pushfstring(L, "temp file %s was removed or replaced by another process", path);
  else if (strcmp(op, "lock") == 0 && err == EWOULDBLOCK)
    lua_pushfstring(L, "another process is writing %s (os error %d)", path, err);
  else
    aqs_push_osmsg(L, err);
  lua_setfield(L, -2, "os_message");
  lua_pushboolean(L, replaced);
  lua_setfield(L, -2, "replaced");
}

static void record(lua_State *L, aw_t *w, const char *op, const char *what, int err) {
  w->eop = op;
  w->epath = what;
  w->eno = err;
  w->state = AW_FAILED;
  w->err = dupstr(lua_tostring(L, -2));
  w->errname = dupstr(lua_tostring(L, -1));
  release(w);
}

/* Records the failure (once), releases the temp file and pushes the error triple. */
static int fail(lua_State *L, aw_t *w, const char *op, const char *what, int err) {
  aqs_push_ioerr(L, op, what, err);
  if (w->state == AW_OPEN) record(L, w, op, what, err);
  return 3;
}

/* Pushes the stored failure; raises on use after close/abort (API misuse). */
static int check_usable(lua_State *L, aw_t *w) {
  if (w->state == AW_FAILED) {
    lua_pushnil(L);
    lua_pushstring(L, w->err ? w->err : "atomic writer failed");
    lua_pushstring(L, w->errname ? w->errname : "EIO");
    return 3;
  }
  if (w->state != AW_OPEN)
    return luaL_error(L, "atomic writer for %s is %s", w->path,
                      w->state == AW_CLOSED ? "closed" : "aborted");
  return 0;
}

/* The directory to fsync after the rename: "." for a bare name, "/" for "/x". */
static char *parent_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *d;
  size_t n;
  if (slash == NULL) return dupstr(".");
  n = slash == path ? 1 : (size_t)(slash - path);
  d = (char *)malloc(n + 1);
  if (d) { memcpy(d, path, n); d[n] = '\0'; }
  return d;
}

static const char *base_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int has_filename(const char *path) {
  const char *base = base_of(path);
  return *base != '\0' && strcmp(base, ".") != 0 && strcmp(base, "..") != 0;
}

/* ---- stale temps ---- */

typedef struct {
  const char *base;      /* the target's file name */
  size_t blen;
  char **names;          /* matching entries, removed after the listing */
  size_t n, cap;
  int oom;
} sweep_t;

/* BASE.tmp.<digits>.<16 hex>: pid in *pid. */
static int temp_name_pid(const sweep_t *s, const char *name, long *pid) {
  const char *p;
  long v = 0;
  int digits = 0, hex = 0;
  if (strncmp(name, s->base, s->blen) != 0 || strncmp(name + s->blen, ".tmp.", 5) != 0) return 0;
  for (p = name + s->blen + 5; *p >= '0' && *p <= '9'; p++) {
    if (++digits > 10) return 0;
    v = v * 10 + (*p - '0');
  }
  if (digits == 0 || *p++ != '.') return 0;
  for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++) hex++;
  if (hex != 16 || *p != '\0') return 0;
  *pid = v;
  return 1;
}

static void sweep_collect(const char *name, void *ud) {
  sweep_t *s = (sweep_t *)ud;
  long pid;
  if (s->oom || !temp_name_pid(s, name, &pid)) return;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    char **nn = (char **)realloc(s->names, cap * sizeof *nn);
    if (!nn) { s->oom = 1; return; }
    s->names = nn;
    s->cap = cap;
  }
  if (!(s->names[s->n] = dupstr(name))) { s->oom = 1; return; }
  s->n++;
}

/* At most once per SWEEP_EVERY_SECS per directory and Lua state (a batch writes
 * thousands of outputs into one directory; listing it each time would cost O(n^2)). */
static int sweep_due(lua_State *L, const char *dir) {
  struct timespec ts;
  lua_Integer now, last;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 1;
  now = (lua_Integer)ts.tv_sec;
  if (luaL_getsubtable(L, LUA_REGISTRYINDEX, AW_SWEEPS)) {
    lua_getfield(L, -1, dir);
    last = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    lua_pop(L, 1);
    if (last >= 0 && now - last < SWEEP_EVERY_SECS) { lua_pop(L, 1); return 0; }
  }
  lua_pushinteger(L, now);
  lua_setfield(L, -2, dir);
  lua_pop(L, 1);
  return 1;
}

/* Removes the stale temps of `path` (its own pattern only; the engine's PATH.tmp and
 * anything else in the directory are left alone).  Best effort: errors are ignored. */
static void sweep_stale(lua_State *L, const char *path, const char *dir) {
  sweep_t s;
  size_t i, dlen = strlen(dir);
  time_t now = time(NULL);
  memset(&s, 0, sizeof s);
  s.base = base_of(path);
  s.blen = strlen(s.base);
  if (!sweep_due(L, dir)) return;
  (void)aqs_list_dir(dir, sweep_collect, &s);
  for (i = 0; i < s.n; i++) {
    size_t nlen = strlen(s.names[i]);
    char *full = (char *)malloc(dlen + nlen + 2);
    struct stat st;
    long pid = 0;
    if (full) {
      memcpy(full, dir, dlen);
      full[dlen] = '/';
      memcpy(full + dlen + 1, s.names[i], nlen + 1);
      (void)temp_name_pid(&s, s.names[i], &pid);
      if (aqs_lstat(full, &st) == 0 && S_ISREG(st.st_mode)) {
        double idle = difftime(now, st.st_mtime);
        if (idle > STALE_ANY_SECS || (idle > STALE_DEAD_SECS && !aqs_pid_alive(pid)))
          (void)aqs_unlink(full);
      }
      free(full);
    }
    free(s.names[i]);
  }
  free(s.names);
}

/* Creates PATH.tmp.<pid>.<16 hex> exclusively; the name goes to w->tmp.  Returns the
 * descriptor or -1 (errno). */
static int create_temp(aw_t *w, size_t plen, mode_t mode) {
  int tries;
  for (tries = 0; tries < TEMP_TRIES; tries++) {
    unsigned char rnd[8];
    char suffix[48];
    int fd, k;
    size_t slen;
    aqs_random_bytes(rnd, sizeof rnd);
    k = snprintf(suffix, sizeof suffix, ".tmp.%ld.", (long)getpid());
    for (slen = 0; slen < sizeof rnd; slen++)
      k += snprintf(suffix + k, sizeof suffix - (size_t)k, "%02x", rnd[slen]);
    slen = (size_t)k;
    memcpy(w->tmp, w->path, plen);
    memcpy(w->tmp + plen, suffix, slen + 1);
    fd = aqs_open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

static int opt_bool(lua_State *L, int idx, const char *key, int dflt) {
  int v = dflt;
  if (lua_isnoneornil(L, idx)) return dflt;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, key) != LUA_TNIL) v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Takes an exclusive flock (never waiting) on the regular file PATH is now, held until
 * the writer ends: a second writer of ours that starts while we replace that file is
 * refused (EWOULDBLOCK) instead of replacing our output a moment later.  A target that
 * is gone, a link, or that we may not read, and a file system without flock, go without
 * the lock (0); so does a missing target (nothing to lock: the later rename wins, both
 * outputs whole).  Other failures (EIO ...) are the writer's first failure: -1, errno. */
static int lock_target(aw_t *w) {
  struct stat st;
  int fd = aqs_open(w->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == EACCES || e == EPERM || e == ELOOP || e == ENXIO) return 0;
    return -1;
  }
  if (aqs_fstat(fd, &st) < 0) {
    int e = errno;
    (void)aqs_close(fd);
    errno = e;
    return -1;
  }
  if (!S_ISREG(st.st_mode)) { (void)aqs_close(fd); return 0; }
  if (aqs_flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int e = errno;
    (void)aqs_close(fd);
    if (e != EWOULDBLOCK && e != EAGAIN) return 0;
    errno = EWOULDBLOCK;
    return -1;
  }
  w->lockfd = fd;
  return 0;
}

/* atomic_writer(path [, opts]) -> AtomicWriter | nil, msg, ENAME, info (push_info; op
 * "path" when the path has no file name, "open temp" when the temp file cannot be
 * created).  opts: frame = false (plain bytes), replace = false (never replace PATH). */
int aqs_atomic_writer(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  int plain = !opt_bool(L, 2, "frame", 1), noreplace = !opt_bool(L, 2, "replace", 1);
  int foreign = opt_bool(L, 2, "foreign", 1);
  struct stat st;
  mode_t mode;
  aw_t *w;
  luaL_argcheck(L, strlen(path) == n, 1, "path contains a NUL byte");
  if (!has_filename(path)) {
    lua_pushnil(L);
    lua_pushfstring(L, "atomic_writer %s: path has no filename component", path);
    lua_pushliteral(L, "EINVAL");
    push_info(L, "path", path, EINVAL, 0, 0);
    return 4;
  }
  w = (aw_t *)lua_newuserdatauv(L, sizeof(aw_t), 0);
  memset(w, 0, sizeof *w);
  w->fd = -1;
  w->lockfd = -1;
  w->state = AW_CLOSED;  /* nothing to clean up until the temp file exists */
  w->plain = plain;
  w->noreplace = noreplace;
  luaL_setmetatable(L, AW_MT);
  w->path = dupstr(path);
  w->dir = parent_of(path);
  w->tmp = (char *)malloc(n + 48);
  if (!w->path || !w->dir || !w->tmp) return luaL_error(L, "out of memory");
  w->tmp[0] = '\0';
  /* opts.foreign = false: a file of another user is never replaced (the copy would be
   * theirs again, step 5: in a shared folder they could then rewrite what we wrote). */
  if (!foreign && aqs_lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid != geteuid()) {
    lua_pushnil(L);
    lua_pushfstring(L, "open %s: refusing to replace a file owned by uid %d (we are uid %d): "
                    "another user could read or rewrite it; remove it or choose another path",
                    path, (int)st.st_uid, (int)geteuid());
    lua_pushliteral(L, "EPERM");
    push_info(L, "owner", path, EPERM, 0, 0);
    return 4;
  }
  if (aqs_lstat(path, &st) == 0 && S_ISREG(st.st_mode) && lock_target(w) < 0) {
    int e = errno;
    /* A writer of this process that was dropped without close() may hold the lock until
     * it is collected: collect once, then ask again. */
    if (e == EWOULDBLOCK) {
      lua_gc(L, LUA_GCCOLLECT);
      e = lock_target(w) < 0 ? errno : 0;
    }
    if (e == EWOULDBLOCK) {
      lua_pushnil(L);
      lua_pushfstring(L, "lock %s: another process is writing it", path);
      lua_pushliteral(L, "EWOULDBLOCK");
      push_info(L, "lock", path, EWOULDBLOCK, 0, 0);
      return 4;
    }
    if (e) {
      aqs_push_ioerr(L, "lock", path, e);
      push_info(L, "lock", path, e, 0, 0);
      return 4;
    }
  }
  sweep_stale(L, path, w->dir);
  /* Replacing a regular file: the temp stays private (0600) until close() gives it the
   * previous file's mode, so payloads of a 0600 snapshot are never readable by others.
   * A new file follows the umask, as the engine's (Rust File::create, 0666 & ~umask). */
  mode = aqs_lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? 0600 : 0666;
  w->fd = create_temp(w, n, mode);
  if (w->fd < 0 || aqs_fstat(w->fd, &st) < 0) {
    int e = errno;
    if (w->fd >= 0) { (void)aqs_close(w->fd); w->fd = -1; (void)aqs_unlink(w->tmp); }
    aqs_push_ioerr(L, "open temp", w->tmp, e);
    push_info(L, "open temp", w->tmp, e, 0, 0);
    return 4;
  }
  w->dev = st.st_dev;
  w->ino = st.st_ino;
  w->state = AW_OPEN;
  w->tmp_live = 1;
  return 1;
}

/* begin_frame(version): reserve the header; write() then streams the payload. */
static int aw_begin_frame(lua_State *L) {
  aw_t *w = check_aw(L);
  uint32_t version = aqs_check_u32(L, 2, "version");
  unsigned char zero[AQS_HEADER_SIZE] = {0};
  int r = check_usable(L, w);
  if (r) return r;
  if (w->plain) return luaL_error(L, "begin_frame on a plain (frame = false) atomic writer");
  if (w->in_frame || w->framed) return luaL_error(L, "atomic writer holds one frame only");
  if (aqs_write_all(w->fd, zero, sizeof zero, 0) < 0) return fail(L, w, "write", w->tmp, errno);
  w->in_frame = 1;
  w->version = version;
  w->crc = 0;
  w->length = 0;
  lua_settop(L, 1);
  return 1;
}

static int write_payload(lua_State *L, aw_t *w, const char *p, size_t n) {
  if (!w->plain && n > 0xFFFFFFFFu - w->length) {
    lua_pushnil(L);
    lua_pushfstring(L, "write %s: frame payload would exceed 4294967295 bytes", w->tmp);
    lua_pushliteral(L, "EFBIG");
    return 3;
  }
  if (w->plain && n > (uint64_t)INT64_MAX - w->length) return fail(L, w, "write", w->tmp, EFBIG);
  if (aqs_write_all(w->fd, p, n, (int64_t)((w->plain ? 0 : AQS_HEADER_SIZE) + w->length)) < 0)
    return fail(L, w, "write", w->tmp, errno);
  w->crc = aqs_crc32_update(w->crc, p, n);
  w->length += n;
  return 0;
}

/* write(chunk): append payload bytes to the open frame. */
static int aw_write(lua_State *L) {
  aw_t *w = check_aw(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int r = check_usable(L, w);
  if (r) return r;
  if (!w->in_frame && !w->plain) return luaL_error(L, "write outside begin_frame/finish_frame");
  if ((r = write_payload(L, w, p, n)) != 0) return r;
  lua_settop(L, 1);
  return 1;
}

/* C fast path for json_encode's sink (aqs.h): writes n bytes like aw_write without a Lua
 * string.  Returns -1 when the value at idx is not an AtomicWriter, 0 on success, or
 * pushes nil, message, ENAME and returns 3. */
int aqs_aw_write_raw(lua_State *L, int idx, const char *p, size_t n) {
  aw_t *w = (aw_t *)luaL_testudata(L, idx, AW_MT);
  int r;
  if (!w) return -1;
  if ((r = check_usable(L, w)) != 0) return r;
  if (!w->in_frame && !w->plain) return luaL_error(L, "write outside begin_frame/finish_frame");
  return write_payload(L, w, p, n);
}

int aqs_aw_is(lua_State *L, int idx) {
  return luaL_testudata(L, idx, AW_MT) != NULL;
}

/* finish_frame() -> length, crc: the header goes in last, at offset 0. */
static int aw_finish_frame(lua_State *L) {
  aw_t *w = check_aw(L);
  unsigned char h[AQS_HEADER_SIZE];
  int r = check_usable(L, w);
  if (r) return r;
  if (!w->in_frame) return luaL_error(L, "finish_frame without begin_frame");
  aqs_put_u32le(h, w->version);
  aqs_put_u32le(h + 4, (uint32_t)w->length);
  aqs_put_u32le(h + 8, w->crc);
  if (aqs_write_all(w->fd, h, sizeof h, 0) < 0) return fail(L, w, "write header", w->tmp, errno);
  w->in_frame = 0;
  w->framed = 1;
  lua_pushinteger(L, (lua_Integer)w->length);
  lua_pushinteger(L, (lua_Integer)w->crc);
  return 2;
}

/* write_frame(version, payload) -> length, crc */
static int aw_write_frame(lua_State *L) {
  aw_t *w = check_aw(L);
  size_t n;
  const char *p;
  int r;
  lua_settop(L, 3);
  p = luaL_checklstring(L, 3, &n);
  lua_pushcfunction(L, aw_begin_frame);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 3);
  if (lua_isnil(L, -3)) return 3;
  lua_settop(L, 3);
  if ((r = write_payload(L, w, p, n)) != 0) return r;
  lua_settop(L, 1);
  return aw_finish_frame(L);
}

/* flush(): fsync the temp file. */
static int aw_flush(lua_State *L) {
  aw_t *w = check_aw(L);
  int r = check_usable(L, w);
  if (r) return r;
  if (aqs_fsync(w->fd) < 0) return fail(L, w, "fsync", w->tmp, errno);
  lua_settop(L, 1);
  return 1;
}

/* A directory step failed after the rename: the new content is in place. */
static int dir_fail(lua_State *L, aw_t *w, const char *op, int err) {
  unlock_target(w);
  w->eop = op;
  w->epath = w->dir;
  w->eno = err;
  w->ereplaced = 1;
  aqs_push_ioerr(L, op, w->dir, err);
  lua_pushliteral(L, "replaced");
  return 4;
}

/* last_error() -> nil | info (push_info) of the failure that ended this writer. */
static int aw_last_error(lua_State *L) {
  aw_t *w = check_aw(L);
  if (!w->eop) return 0;
  push_info(L, w->eop, w->epath, w->eno, w->ereplaced, w->edisturbed);
  return 1;
}

/* Gives the temp the owner and mode of the file it replaces (owner only where we may:
 * root, or a group we belong to; set-id and sticky bits are dropped: this is data).
 * No previous regular file: the mode chosen at creation stays.  0 or -1 (errno). */
static int copy_owner_and_mode(aw_t *w) {
  struct stat prev, ours;
  if (aqs_lstat(w->path, &prev) < 0 || !S_ISREG(prev.st_mode)) return 0;
  if (aqs_fstat(w->fd, &ours) < 0) return -1;
  if (prev.st_uid != ours.st_uid || prev.st_gid != ours.st_gid) {
    if (aqs_fchown(w->fd, prev.st_uid, prev.st_gid) < 0 && prev.st_gid != ours.st_gid)
      (void)aqs_fchown(w->fd, (uid_t)-1, prev.st_gid);
  }
  return aqs_fchmod(w->fd, prev.st_mode & 0777);
}

/* close() -> true | nil, msg, ENAME [, "replaced"] */
static int aw_close(lua_State *L) {
  aw_t *w = check_aw(L);
  int fd, dfd, r = check_usable(L, w);
  if (r) {
    release(w);
    return r;
  }
  if (w->in_frame) return luaL_error(L, "close inside an unfinished frame");
  if (copy_owner_and_mode(w) < 0) return fail(L, w, "chmod", w->tmp, errno);
  if (aqs_fsync(w->fd) < 0) return fail(L, w, "fsync", w->tmp, errno);
  fd = w->fd;
  w->fd = -1;
  /* close() can carry a deferred write error (NFS); it must not be ignored. */
  if (aqs_close(fd) < 0) return fail(L, w, "close", w->tmp, errno);
  /* Our name must still be our inode: otherwise someone removed or replaced the temp
   * and renaming it would publish their file (or nothing) as our success. */
  if (!temp_is_ours(w)) {
    lua_pushnil(L);
    lua_pushfstring(L, "verify temp %s: removed or replaced by another process", w->tmp);
    lua_pushliteral(L, "ESTALE");
    w->tmp_live = 0;
    w->edisturbed = 1;
    record(L, w, "verify temp", w->tmp, ESTALE);
    return 3;
  }
  /* A SIGINT/SIGTERM/SIGHUP caught meanwhile (signals.c) interrupts the command: the
   * target keeps its previous content, as if the signal had come a moment earlier. */
  if (aqs_signal_caught()) return fail(L, w, "rename", w->path, EINTR);
  if ((w->noreplace ? aqs_rename_noreplace(w->tmp, w->path) : aqs_rename(w->tmp, w->path)) < 0) {
    int e = errno;
    /* The target is what a failing rename is about (a directory there, EEXIST, ...). */
    return fail(L, w, "rename", w->path, e);
  }
  w->tmp_live = 0;
  w->state = AW_CLOSED;
  /* From here the new content is visible; a directory failure only means we
   * cannot promise that the rename survives a crash. */
  dfd = aqs_open(w->dir, O_RDONLY | O_DIRECTORY, 0);
  if (dfd < 0) return dir_fail(L, w, "open dir", errno);
  if (aqs_fsync(dfd) < 0) {
    int e = errno;
    (void)aqs_close(dfd);
    return dir_fail(L, w, "fsync dir", e);
  }
  if (aqs_close(dfd) < 0) return dir_fail(L, w, "close dir", errno);
  /* The file we locked is replaced: the next writer locks ours.  Its descriptor is only
   * read-only, but no failure is hidden: one after the rename says "replaced". */
  if (w->lockfd >= 0) {
    int lfd = w->lockfd;
    w->lockfd = -1;
    if (aqs_close(lfd) < 0) {
      int e = errno;
      w->eop = "close lock";
      w->epath = w->path;
      w->eno = e;
      w->ereplaced = 1;
      aqs_push_ioerr(L, "close lock", w->path, e);
      lua_pushliteral(L, "replaced");
      return 4;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* abort(): drop the temp file; the target keeps its old content. */
static int aw_abort(lua_State *L) {
  aw_t *w = check_aw(L);
  if (w->state == AW_OPEN || w->state == AW_FAILED) {
    release(w);
    w->state = AW_ABORTED;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int aw_path(lua_State *L) {
  lua_pushstring(L, check_aw(L)->path);
  return 1;
}

static int aw_temp_path(lua_State *L) {
  lua_pushstring(L, check_aw(L)->tmp);
  return 1;
}

static int aw_gc(lua_State *L) {
  aw_t *w = check_aw(L);
  release(w);
  if (w->state == AW_OPEN || w->state == AW_FAILED) w->state = AW_ABORTED;
  free(w->path); free(w->tmp); free(w->dir); free(w->err); free(w->errname);
  w->path = w->tmp = w->dir = w->err = w->errname = NULL;
  return 0;
}

/* __close: leaving the scope without close() means abort. */
static int aw_tbc(lua_State *L) {
  aw_t *w = check_aw(L);
  release(w);
  if (w->state == AW_OPEN || w->state == AW_FAILED) w->state = AW_ABORTED;
  return 0;
}

static int aw_tostring(lua_State *L) {
  static const char *const names[] = {"open", "failed", "closed", "aborted"};
  aw_t *w = check_aw(L);
  lua_pushfstring(L, "AtomicWriter(%s, %s)", w->path ? w->path : "?", names[w->state]);
  return 1;
}

void aqs_atomic_writer_init(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"abort", aw_abort},
    {"begin_frame", aw_begin_frame},
    {"close", aw_close},
    {"finish_frame", aw_finish_frame},
    {"flush", aw_flush},
    {"last_error", aw_last_error},
    {"path", aw_path},
    {"temp_path", aw_temp_path},
    {"write", aw_write},
    {"write_frame", aw_write_frame},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__close", aw_tbc},
    {"__gc", aw_gc},
    {"__tostring", aw_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, AW_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
