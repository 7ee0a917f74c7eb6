/*
 * framed_log.c - FramedLog, an append-only file of frames (the WAL's container),
 * and frames(), the iterator that walks and classifies its records.
 *
 * append() writes a record at the tracked end offset in one write loop.  If that
 * fails, the file is cut back to the previous end so a half record never stays
 * behind; if even the cut fails, the log is poisoned: its on-disk end is unknown,
 * so every later call fails (wal-format.md 4.2).
 *
 * frames() knows three classification orders (wal-format.md 3.3) because the
 * reader, the writer-open scan and the buffer validators of the reference disagree
 * on which problem wins when a record has two.  Payload decoding is left to the
 * caller, who may still report decode_failure itself.
 *
 * frames() reads through a read-ahead buffer (FRAMES_BUF bytes): a scan of small
 * records is one pread per buffer and a memcpy per payload.  A frame that does not
 * fit the buffer is read straight into its Lua string (one pread, no double copy)
 * after fstat has shown the bytes exist, so an untrusted length never sizes an
 * allocation.  opts.offset starts the walk at a record boundary other than 0.
 */
#include "aqs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#define LOG_MT "actionqueue.storage.FramedLog"
#define ITER_MT "actionqueue.storage.FrameIterator"

typedef struct {
  int fd;
  int poisoned;
  int readonly;
  uint64_t size;     /* where the next record goes */
  uint64_t cuts;     /* truncate() count: read-ahead buffers of iterators go stale */
  char *path;
  char *err, *errname;
} flog_t;

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static flog_t *check_log(lua_State *L, int open) {
  flog_t *g = (flog_t *)luaL_checkudata(L, 1, LOG_MT);
  if (open && g->fd < 0) luaL_error(L, "framed log %s is closed", g->path ? g->path : "?");
  if (open > 1 && g->readonly) luaL_error(L, "framed log %s is open readonly", g->path);
  return g;
}

static int poisoned(lua_State *L, flog_t *g) {
  lua_pushnil(L);
  lua_pushfstring(L, "log %s is poisoned after a failed rollback: %s", g->path,
                  g->err ? g->err : "?");
  lua_pushstring(L, g->errname ? g->errname : "EIO");
  return 3;
}

static void poison(flog_t *g, const char *msg, const char *name) {
  g->poisoned = 1;
  if (!g->err) { g->err = dupstr(msg); g->errname = dupstr(name); }
}

/* A failed sync or cut leaves the file in an unknown state: push nil, msg, ENAME and
 * poison the log with that same error, so no later call can report success. */
static int fail_poisoned(lua_State *L, flog_t *g, const char *op, int err) {
  aqs_push_ioerr(L, op, g->path, err);
  poison(g, lua_tostring(L, -2), lua_tostring(L, -1));
  return 3;
}

/* A FIFO, device or socket is never a WAL: refused at once, before any read could
 * block (issue 13 defect 10). */
static int push_not_regular(lua_State *L, const char *path, mode_t mode) {
  lua_pushnil(L);
  lua_pushfstring(L, "open %s: refusing to read %s: it is a %s, not a regular file", path, path,
                  aqs_file_kind(mode));
  lua_pushstring(L, "EINVAL");
  return 3;
}

/* log_open(path [, opts]) -> FramedLog | nil, msg, ENAME.
 * opts.create (default true) creates a missing file; opts.readonly opens O_RDONLY;
 * opts.nofollow refuses a symlink as the last component (ELOOP) instead of following
 * it; opts.exclusive creates a new file or fails with EEXIST (O_EXCL, never through a
 * symlink): the file is then ours alone, e.g. a repair's cut file. */
int aqs_log_open(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  int create = 1, readonly = 0, nofollow = 0, exclusive = 0, flags;
  struct stat st;
  flog_t *g;
  luaL_argcheck(L, strlen(path) == n, 1, "path contains a NUL byte");
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "create") != LUA_TNIL) create = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "readonly") != LUA_TNIL) readonly = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "nofollow") != LUA_TNIL) nofollow = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "exclusive") != LUA_TNIL) exclusive = lua_toboolean(L, -1);
    lua_pop(L, 4);
  }
  luaL_argcheck(L, !(exclusive && readonly), 2, "exclusive and readonly exclude each other");
  g = (flog_t *)lua_newuserdatauv(L, sizeof(flog_t), 0);
  memset(g, 0, sizeof *g);
  g->fd = -1;
  luaL_setmetatable(L, LOG_MT);
  if ((g->path = dupstr(path)) == NULL) return luaL_error(L, "out of memory");
  flags = readonly ? O_RDONLY : (O_RDWR | (create ? O_CREAT : 0));
  if (exclusive) flags |= O_CREAT | O_EXCL | O_NOFOLLOW;
  if (nofollow) flags |= O_NOFOLLOW;
  g->readonly = readonly;
  /* O_NONBLOCK: a FIFO must not hang the open (nor the first read); the type is checked
   * below and the flag cleared for the regular file we keep. */
  g->fd = aqs_open(path, flags | O_NONBLOCK | O_NOCTTY, 0666);
  if (g->fd < 0) {
    int e = errno;
    /* A socket cannot be opened at all (ENXIO): say what it is instead. */
    if (e == ENXIO && aqs_stat(path, &st) == 0 && !S_ISREG(st.st_mode))
      return push_not_regular(L, path, st.st_mode);
    return aqs_push_ioerr(L, "open", path, e);
  }
  if (aqs_fstat(g->fd, &st) < 0) {
    int e = errno;
    (void)aqs_close(g->fd);
    g->fd = -1;
    return aqs_push_ioerr(L, "fstat", path, e);
  }
  if (S_ISDIR(st.st_mode)) {
    (void)aqs_close(g->fd);
    g->fd = -1;
    return aqs_push_ioerr(L, "open", path, EISDIR);
  }
  if (!S_ISREG(st.st_mode) || aqs_fcntl_clear_nonblock(g->fd) < 0) {
    int e = errno;
    (void)aqs_close(g->fd);
    g->fd = -1;
    if (!S_ISREG(st.st_mode)) return push_not_regular(L, path, st.st_mode);
    return aqs_push_ioerr(L, "fcntl", path, e);
  }
  g->size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  return 1;
}

/* append(bytes) -> offset of the record | nil, msg, ENAME */
static int log_append(lua_State *L) {
  flog_t *g = check_log(L, 2);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  uint64_t at = g->size;
  int e;
  if (g->poisoned) return poisoned(L, g);
  if (n > (uint64_t)INT64_MAX - at) return aqs_push_ioerr(L, "append", g->path, EFBIG);
  if (aqs_write_all(g->fd, p, n, (int64_t)at) == 0) {
    g->size = at + n;
    lua_pushinteger(L, (lua_Integer)at);
    return 1;
  }
  e = errno;
  aqs_push_ioerr(L, "append", g->path, e);
  if (aqs_ftruncate(g->fd, at) < 0) {
    poison(g, lua_tostring(L, -2), lua_tostring(L, -1));
    return poisoned(L, g);
  }
  return 3;
}

/* sync(): fdatasync, enough for appended data (the size is part of the data). */
static int log_sync(lua_State *L) {
  flog_t *g = check_log(L, 1);
  if (g->poisoned) return poisoned(L, g);
  /* A failed sync is not retried: the pages may be gone, the next sync would lie. */
  if (aqs_fdatasync(g->fd) < 0) return fail_poisoned(L, g, "fdatasync", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* lock(): an exclusive flock on the log's own descriptor, never waiting; it lasts until
 * the log is closed.  true | nil, "lock PATH: another process holds it", "EWOULDBLOCK". */
static int log_lock(lua_State *L) {
  flog_t *g = check_log(L, 1);
  if (aqs_flock(g->fd, LOCK_EX | LOCK_NB) < 0) return aqs_push_lock_error(L, g->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* is_at(dir, rel) -> true | nil, "verify PATH: ...", ENAME: the log is the file DIR/REL,
 * walked without following a link in REL (io.c aqs_same_file_under).  The appender asks
 * it after opening a WAL in a data dir, so a wal/ folder swapped for a link between the
 * layout check and the open is caught before anything is written (docs/wal.md). */
static int log_is_at(lua_State *L) {
  flog_t *g = check_log(L, 1);
  const char *dir = luaL_checkstring(L, 2), *rel = luaL_checkstring(L, 3);
  if (aqs_same_file_under(dir, rel, g->fd) < 0) return aqs_push_ioerr(L, "verify", g->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int log_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_log(L, 1)->size);
  return 1;
}

/* truncate(offset): cut the log (repair), then fsync so the cut is durable. */
static int log_truncate(lua_State *L) {
  flog_t *g = check_log(L, 2);
  lua_Integer off = luaL_checkinteger(L, 2);
  luaL_argcheck(L, off >= 0 && (uint64_t)off <= g->size, 2, "offset outside the log");
  if (g->poisoned) return poisoned(L, g);
  if (aqs_ftruncate(g->fd, (uint64_t)off) < 0) return fail_poisoned(L, g, "ftruncate", errno);
  g->size = (uint64_t)off;
  g->cuts++;
  if (aqs_fsync(g->fd) < 0) return fail_poisoned(L, g, "fsync", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* close(): releases the descriptor; a close error is reported (it can carry a
 * deferred write error).  Durability is sync()'s job. */
static int log_close(lua_State *L) {
  flog_t *g = check_log(L, 0);
  int fd = g->fd;
  if (fd < 0) { lua_pushboolean(L, 1); return 1; }
  g->fd = -1;
  if (aqs_close(fd) < 0) return aqs_push_ioerr(L, "close", g->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int log_path(lua_State *L) {
  lua_pushstring(L, check_log(L, 0)->path);
  return 1;
}

static int log_gc(lua_State *L) {
  flog_t *g = check_log(L, 0);
  if (g->fd >= 0) { (void)aqs_close(g->fd); g->fd = -1; }
  free(g->path); free(g->err); free(g->errname);
  g->path = g->err = g->errname = NULL;
  return 0;
}

static int log_tbc(lua_State *L) {
  flog_t *g = check_log(L, 0);
  if (g->fd >= 0) { (void)aqs_close(g->fd); g->fd = -1; }
  return 0;
}

static int log_tostring(lua_State *L) {
  flog_t *g = check_log(L, 0);
  lua_pushfstring(L, "FramedLog(%s, %s, %I bytes)", g->path ? g->path : "?",
                  g->fd < 0 ? "closed" : g->poisoned ? "poisoned" : g->readonly ? "readonly" : "open",
                  (lua_Integer)g->size);
  return 1;
}

/* ---- frames() ---------------------------------------------------------------- */

enum { ORDER_READER, ORDER_WRITER_OPEN, ORDER_BUFFER };

#define FRAMES_BUF ((size_t)256 * 1024)

typedef struct {
  int fd;
  flog_t *log;       /* borrowed log, read through so a close is noticed */
  int owns_fd;       /* opened by frames(), not borrowed from a FramedLog */
  int done;
  int open_errno;    /* frames(path) could not open the file */
  const char *open_kind;  /* ... because it is a FIFO, device or socket (aqs_file_kind) */
  int order;
  uint32_t version, max;
  uint64_t offset;
  unsigned char *buf;  /* read-ahead: file bytes [boff, boff + blen) */
  uint64_t boff;
  size_t blen;
  uint64_t cuts;       /* the borrowed log's cuts when the buffer was filled */
} iter_t;

static void iter_release(iter_t *it) {
  if (it->owns_fd && it->fd >= 0) (void)aqs_close(it->fd);
  it->fd = -1;
  free(it->buf);
  it->buf = NULL;
  it->blen = 0;
}

/* Makes up to `need` (<= FRAMES_BUF) bytes at file offset o available at *p.
 * Returns how many are there (fewer only at the end of the file) or -1 (errno).
 * The buffer is refilled at o whenever it holds fewer than `need` bytes from o, so
 * a short tail read earlier (a record being appended meanwhile) is read again. */
static int64_t fill(iter_t *it, uint64_t o, size_t need, const unsigned char **p) {
  int64_t r;
  /* A borrowed log that was cut back (repair) must not be served stale bytes. */
  if (it->log && it->log->cuts != it->cuts) it->blen = 0;
  if (o >= it->boff && o - it->boff <= it->blen && it->blen - (o - it->boff) >= need) {
    *p = it->buf + (o - it->boff);
    return (int64_t)(it->blen - (o - it->boff));
  }
  if (!it->buf && (it->buf = (unsigned char *)malloc(FRAMES_BUF)) == NULL) {
    errno = ENOMEM;
    return -1;
  }
  it->blen = 0;
  r = aqs_read_full(it->fd, it->buf, FRAMES_BUF, (int64_t)o);
  if (r < 0) return -1;
  it->boff = o;
  it->blen = (size_t)r;
  if (it->log) it->cuts = it->log->cuts;
  *p = it->buf;
  return r;
}

static int iter_gc(lua_State *L) {
  iter_release((iter_t *)luaL_checkudata(L, 1, ITER_MT));
  return 0;
}

static void status(lua_State *L, iter_t *it, const char *st, uint64_t offset) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, st);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, (lua_Integer)offset);
  lua_setfield(L, -2, "offset");
  it->done = 1;
  iter_release(it);
}

/* The "io_error" status at `offset` for errno `e`: message (strerror text) and errno name. */
static int io_error_status(lua_State *L, iter_t *it, uint64_t offset, int e) {
  status(L, it, "io_error", offset);
  aqs_push_osmsg(L, e);
  lua_setfield(L, -2, "message");
  lua_pushstring(L, aqs_errno_name(e));
  lua_setfield(L, -2, "errno");
  return 1;
}

static void field(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void detail(lua_State *L, const char *d) {
  lua_pushstring(L, d);
  lua_setfield(L, -2, "detail");
}

/* The iterator step: offset, version, payload | status table | nil when finished. */
static int iter_next(lua_State *L) {
  iter_t *it = (iter_t *)luaL_checkudata(L, 1, ITER_MT);
  const unsigned char *h = NULL;
  uint32_t version, len, stored, actual;
  uint64_t o = it->offset, got = 0;
  int64_t r;
  int step, present = -1;
  if (it->done) return 0;
  if (it->open_errno == ENOENT) { status(L, it, "missing", 0); return 1; }
  if (it->open_kind) {
    status(L, it, "io_error", 0);
    lua_getiuservalue(L, 1, 1);  /* the path */
    lua_pushfstring(L, "refusing to read %s: it is a %s, not a regular file", lua_tostring(L, -1),
                    it->open_kind);
    lua_setfield(L, -3, "message");
    lua_pop(L, 1);
    lua_pushstring(L, "EINVAL");
    lua_setfield(L, -2, "errno");
    return 1;
  }
  if (it->open_errno) return io_error_status(L, it, 0, it->open_errno);
  if (it->log) it->fd = it->log->fd;
  if (it->fd < 0) return luaL_error(L, "frame iterator: the framed log was closed");
  if (o > (uint64_t)INT64_MAX - AQS_HEADER_SIZE) r = 0;   /* nothing can be there */
  else r = fill(it, o, AQS_HEADER_SIZE, &h);
  if (r < 0) return io_error_status(L, it, o, errno);
  if (r == 0) { status(L, it, "end", o); return 1; }
  if (r < AQS_HEADER_SIZE) {
    status(L, it, "incomplete_header", o);
    field(L, "got", r);
    return 1;
  }
  if (r > AQS_HEADER_SIZE) r = AQS_HEADER_SIZE;
  version = aqs_get_u32le(h);
  len = aqs_get_u32le(h + 4);
  stored = aqs_get_u32le(h + 8);
  /* Checks in the order of the requested component; "present" reads the payload. */
  for (step = 0; step < 5; step++) {
    static const char orders[3][5] = {
      {'L', 'V', 'P', 'Z', 'C'}, {'V', 'L', 'P', 'Z', 'C'}, {'P', 'V', 'Z', 'C', 0}};
    switch (orders[it->order][step]) {
      case 'L':
        if (len > it->max) {
          status(L, it, "decode_failure", o);
          detail(L, "too_long");
          field(L, "length", len);
          field(L, "max", it->max);
          return 1;
        }
        break;
      case 'V':
        if (version != it->version) {
          status(L, it, "unsupported_version", o);
          field(L, "expected", it->version);
          field(L, "found", version);
          return 1;
        }
        break;
      case 'P':
        if ((uint64_t)len + AQS_HEADER_SIZE <= FRAMES_BUF) {
          const unsigned char *f;
          int64_t avail = fill(it, o, AQS_HEADER_SIZE + (size_t)len, &f);
          if (avail < 0) present = -1;
          else if (avail < (int64_t)AQS_HEADER_SIZE + len) {
            present = 0;
            got = avail > AQS_HEADER_SIZE ? (uint64_t)avail - AQS_HEADER_SIZE : 0;
          } else {
            lua_pushlstring(L, (const char *)f + AQS_HEADER_SIZE, len);
            present = 1;
          }
        } else {
          present = aqs_read_payload(L, it->fd, o + AQS_HEADER_SIZE, 0, len, &got);
        }
        if (present < 0) return io_error_status(L, it, o, errno);
        if (present == 0) {
          status(L, it, "incomplete_payload", o);
          field(L, "length", len);
          field(L, "got", (lua_Integer)got);
          return 1;
        }
        break;
      case 'Z':
        if (len == 0) {
          lua_pop(L, 1);
          status(L, it, "decode_failure", o);
          detail(L, "zero_length");
          return 1;
        }
        break;
      case 'C': {
        size_t n;
        const char *p = lua_tolstring(L, -1, &n);
        actual = aqs_crc32_update(0, p, n);
        if (actual != stored) {
          lua_pop(L, 1);
          status(L, it, "crc_mismatch", o);
          field(L, "expected", stored);
          field(L, "actual", actual);
          return 1;
        }
        break;
      }
      default: break;
    }
  }
  it->offset = o + AQS_HEADER_SIZE + len;
  lua_pushinteger(L, (lua_Integer)o);
  lua_pushinteger(L, (lua_Integer)version);
  lua_rotate(L, -3, 2);   /* payload after offset and version */
  return 3;
}

/* frames(path_or_log [, opts]) -> iterator, state, nil, state (to-be-closed).
 * opts.order "reader" | "writer_open" | "buffer", opts.version (5), opts.max_length,
 * opts.offset (0): where the walk starts; it must be a record boundary (the caller's
 * promise: bytes there are classified as a header). */
int aqs_frames(lua_State *L) {
  static const char *const orders[] = {"reader", "writer_open", "buffer", NULL};
  iter_t *it;
  int order = ORDER_READER;
  uint32_t version = aqs_opt_u32(L, 2, "version", 5);
  uint32_t max = aqs_opt_u32(L, 2, "max_length", AQS_MAX_PAYLOAD);
  lua_Integer start = 0;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "order");
    order = luaL_checkoption(L, -1, "reader", orders);
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "offset") != LUA_TNIL) {
      int isint;
      start = lua_tointegerx(L, -1, &isint);
      luaL_argcheck(L, isint && start >= 0, 2, "offset must be a non-negative integer");
    }
    lua_pop(L, 1);
  }
  lua_pushcfunction(L, iter_next);
  it = (iter_t *)lua_newuserdatauv(L, sizeof(iter_t), 1);
  memset(it, 0, sizeof *it);
  it->fd = -1;
  it->order = order;
  it->version = version;
  it->max = order == ORDER_BUFFER ? 0xFFFFFFFFu : max;
  it->offset = (uint64_t)start;
  luaL_setmetatable(L, ITER_MT);
  if (luaL_testudata(L, 1, LOG_MT)) {
    flog_t *g = (flog_t *)lua_touserdata(L, 1);
    if (g->fd < 0) return luaL_argerror(L, 1, "framed log is closed");
    it->fd = g->fd;
    it->log = g;
    /* Keep the log alive (and its descriptor open) while we borrow it. */
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
  } else {
    const char *path = luaL_checkstring(L, 1);
    /* Never blocks: a FIFO, device or socket is refused (issue 13 defect 10). */
    it->fd = aqs_open_input(path, &it->open_kind);
    it->owns_fd = 1;
    /* An open failure is the first and last step's status ("missing" for ENOENT),
     * so a for loop handles it like any other end of the log. */
    if (it->fd == -2) {
      it->fd = -1;
      it->open_errno = EINVAL;
      lua_pushvalue(L, 1);
      lua_setiuservalue(L, -2, 1);
    } else if (it->fd < 0) {
      it->open_errno = errno;
      it->open_kind = NULL;
    }
  }
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

void aqs_framed_log_init(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"append", log_append},
    {"close", log_close},
    {"is_at", log_is_at},
    {"lock", log_lock},
    {"path", log_path},
    {"size", log_size},
    {"sync", log_sync},
    {"truncate", log_truncate},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__close", log_tbc},
    {"__gc", log_gc},
    {"__tostring", log_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, LOG_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, ITER_MT);
  lua_pushcfunction(L, iter_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, iter_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}
