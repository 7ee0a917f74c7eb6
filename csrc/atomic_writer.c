/*
 * atomic_writer.c - AtomicWriter: replace a file so that readers see either the old
 * or the new content, never a mix (snapshot-format.md section 2).
 *
 * The data goes to the sibling PATH.tmp; close() makes it durable (fsync), renames it
 * over PATH and fsyncs the directory so the rename itself survives a power loss.
 * A frame is streamed: begin_frame() reserves the 12 header bytes, write() appends
 * payload while the CRC and length accumulate, finish_frame() pwrites the header at
 * offset 0.  So a payload is never held twice in memory.
 *
 * Failure policy: the first I/O error is final.  fsync in particular is never retried,
 * because after a failed fsync the kernel may have dropped the dirty pages and a
 * second fsync would report success for data that is gone.
 */
#include "aqs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define AW_MT "actionqueue.storage.AtomicWriter"

enum { AW_OPEN, AW_FAILED, AW_CLOSED, AW_ABORTED };

typedef struct {
  int fd;            /* -1 once released */
  int state;
  int in_frame;
  int framed;        /* a frame has been finished */
  int tmp_live;      /* the temp file exists and is ours to remove */
  uint32_t version;
  uint32_t crc;
  uint64_t length;   /* payload bytes of the open frame */
  char *path, *tmp, *dir;
  char *err, *errname;   /* the first failure, repeated to every later call */
  const char *eop;       /* last_error(): the failing step ("fsync", "open dir", ...) */
  int eno;               /* and its errno (0: none) */
  int ereplaced;         /* the failure came after the rename */
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

static void release(aw_t *w) {
  if (w->fd >= 0) { (void)aqs_close(w->fd); w->fd = -1; }
  /* Until the rename happened the temp file is ours to remove; the target is
   * never touched on this path. */
  if (w->tmp_live) { (void)aqs_unlink(w->tmp); w->tmp_live = 0; }
}

/* The error details a caller needs to print the reference's texts:
 * {op = "fsync", errno = 5, ename = "EIO", os_message = "Input/output error (os error 5)",
 *  replaced = false}. */
static void push_info(lua_State *L, const char *op, int err, int replaced) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_pushinteger(L, err);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, aqs_errno_name(err));
  lua_setfield(L, -2, "ename");
  aqs_push_osmsg(L, err);
  lua_setfield(L, -2, "os_message");
  lua_pushboolean(L, replaced);
  lua_setfield(L, -2, "replaced");
}

/* Records the failure (once), releases the temp file and pushes the error triple. */
static int fail(lua_State *L, aw_t *w, const char *op, const char *what, int err) {
  aqs_push_ioerr(L, op, what, err);
  if (w->state == AW_OPEN) {
    w->eop = op;
    w->eno = err;
    w->state = AW_FAILED;
    w->err = dupstr(lua_tostring(L, -2));
    w->errname = dupstr(lua_tostring(L, -1));
    release(w);
  }
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

static int has_filename(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return *base != '\0' && strcmp(base, ".") != 0 && strcmp(base, "..") != 0;
}

/* atomic_writer(path) -> AtomicWriter | nil, msg, ENAME, info (push_info; op "path" when
 * the path has no file name, "open" when the temp file cannot be created) */
int aqs_atomic_writer(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  aw_t *w;
  luaL_argcheck(L, strlen(path) == n, 1, "path contains a NUL byte");
  if (!has_filename(path)) {
    lua_pushnil(L);
    lua_pushfstring(L, "atomic_writer %s: path has no filename component", path);
    lua_pushliteral(L, "EINVAL");
    push_info(L, "path", EINVAL, 0);
    return 4;
  }
  w = (aw_t *)lua_newuserdatauv(L, sizeof(aw_t), 0);
  memset(w, 0, sizeof *w);
  w->fd = -1;
  w->state = AW_CLOSED;  /* nothing to clean up until the temp file exists */
  luaL_setmetatable(L, AW_MT);
  w->path = dupstr(path);
  w->dir = parent_of(path);
  w->tmp = (char *)malloc(n + 5);
  if (!w->path || !w->dir || !w->tmp) return luaL_error(L, "out of memory");
  memcpy(w->tmp, path, n);
  memcpy(w->tmp + n, ".tmp", 5);
  w->fd = aqs_open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);  /* umask applies, as for Rust File::create */
  if (w->fd < 0) {
    int e = errno;
    aqs_push_ioerr(L, "open", w->tmp, e);
    push_info(L, "open", e, 0);
    return 4;
  }
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
  if (n > 0xFFFFFFFFu - w->length) {
    lua_pushnil(L);
    lua_pushfstring(L, "write %s: frame payload would exceed 4294967295 bytes", w->tmp);
    lua_pushliteral(L, "EFBIG");
    return 3;
  }
  if (aqs_write_all(w->fd, p, n, (int64_t)(AQS_HEADER_SIZE + w->length)) < 0)
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
  if (!w->in_frame) return luaL_error(L, "write outside begin_frame/finish_frame");
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
  if (!w->in_frame) return luaL_error(L, "write outside begin_frame/finish_frame");
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
  if (aqs_write_all(w->fd, h, sizeof h, 0) < 0) return fail(L, w, "pwrite", w->tmp, errno);
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
  w->eop = op;
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
  push_info(L, w->eop, w->eno, w->ereplaced);
  return 1;
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
  if (aqs_fsync(w->fd) < 0) return fail(L, w, "fsync", w->tmp, errno);
  fd = w->fd;
  w->fd = -1;
  /* close() can carry a deferred write error (NFS); it must not be ignored. */
  if (aqs_close(fd) < 0) return fail(L, w, "close", w->tmp, errno);
  if (aqs_rename(w->tmp, w->path) < 0) return fail(L, w, "rename", w->tmp, errno);
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
