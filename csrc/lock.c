/*
 * lock.c - FileLock, an advisory whole-file lock (flock) held on a descriptor of its own.
 *
 * It guards mutations of a data dir (<data_dir>/store.lock, the lock file of later engine
 * versions: exclusive for a writer, shared for a read-only session).  The lock never
 * waits: a lock held elsewhere is reported at once, so a second mutator is refused
 * instead of queued behind the first.  flock locks belong to the open file description,
 * so two FileLocks of one process on one file exclude each other as two processes do.
 *
 * The lock file is opened with O_NOFOLLOW (a planted symlink is refused, never followed)
 * and O_NONBLOCK (a planted FIFO cannot hang the open), and must be a regular file.
 * A created lock file gets mode 0666 minus the umask, as the engine's files do.
 * opts.directory locks a directory's own descriptor instead (O_RDONLY|O_DIRECTORY; the
 * path may be a link: the data dir the user names), which no planted file can replace.
 */
#include "aqs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#define LOCK_MT "actionqueue.storage.FileLock"

typedef struct {
  int fd;
  int shared;
  char *path;
} filelock_t;

static filelock_t *check_lock(lua_State *L) {
  return (filelock_t *)luaL_checkudata(L, 1, LOCK_MT);
}

static void release(filelock_t *k) {
  /* Closing the only descriptor of the open file description drops the lock. */
  if (k->fd >= 0) (void)aqs_close(k->fd);
  k->fd = -1;
}

/* Pushes nil, "lock PATH: another process holds it", "EWOULDBLOCK" (or the errno's
 * text) for a failed flock, and returns 3. */
int aqs_push_lock_error(lua_State *L, const char *path, int err) {
  if (err != EWOULDBLOCK && err != EAGAIN) return aqs_push_ioerr(L, "lock", path, err);
  lua_pushnil(L);
  lua_pushfstring(L, "lock %s: another process holds it", path);
  lua_pushliteral(L, "EWOULDBLOCK");
  return 3;
}

/* lock_file(path [, opts]) -> FileLock | nil, msg, ENAME.
 * opts.shared (default false: exclusive), opts.create (default false: a missing file is
 * ENOENT; true creates it, without truncating an existing one). */
int aqs_lock_file(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  int shared = 0, create = 0, directory = 0, flags;
  struct stat st;
  filelock_t *k;
  luaL_argcheck(L, strlen(path) == n, 1, "path contains a NUL byte");
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "shared") != LUA_TNIL) shared = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "create") != LUA_TNIL) create = lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "directory") != LUA_TNIL) directory = lua_toboolean(L, -1);
    lua_pop(L, 3);
  }
  k = (filelock_t *)lua_newuserdatauv(L, sizeof(filelock_t), 0);
  memset(k, 0, sizeof *k);
  k->fd = -1;
  k->shared = shared;
  luaL_setmetatable(L, LOCK_MT);
  if ((k->path = (char *)malloc(n + 1)) == NULL) return luaL_error(L, "out of memory");
  memcpy(k->path, path, n + 1);
  /* flock needs no write access: a shared lock works on a read-only mount. */
  flags = directory ? O_RDONLY | O_DIRECTORY
                    : O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0);
  k->fd = aqs_open(path, flags, 0666);
  if (k->fd < 0) return aqs_push_ioerr(L, "open", path, errno);
  if (aqs_fstat(k->fd, &st) < 0) {
    int e = errno;
    release(k);
    return aqs_push_ioerr(L, "fstat", path, e);
  }
  if (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    release(k);
    return aqs_push_ioerr(L, "open", path, directory ? ENOTDIR : S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
  }
  if (aqs_flock(k->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
    int e = errno;
    release(k);
    return aqs_push_lock_error(L, path, e);
  }
  return 1;
}

/* unlock() / close(): releases the lock (idempotent). */
static int lock_unlock(lua_State *L) {
  release(check_lock(L));
  lua_pushboolean(L, 1);
  return 1;
}

static int lock_held(lua_State *L) {
  lua_pushboolean(L, check_lock(L)->fd >= 0);
  return 1;
}

static int lock_path(lua_State *L) {
  filelock_t *k = check_lock(L);
  lua_pushstring(L, k->path ? k->path : "?");
  return 1;
}

static int lock_gc(lua_State *L) {
  filelock_t *k = check_lock(L);
  release(k);
  free(k->path);
  k->path = NULL;
  return 0;
}

static int lock_tostring(lua_State *L) {
  filelock_t *k = check_lock(L);
  lua_pushfstring(L, "FileLock(%s, %s, %s)", k->path ? k->path : "?",
                  k->shared ? "shared" : "exclusive", k->fd >= 0 ? "held" : "released");
  return 1;
}

void aqs_lock_init(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", lock_unlock},
    {"held", lock_held},
    {"path", lock_path},
    {"unlock", lock_unlock},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__close", lock_unlock},
    {"__gc", lock_gc},
    {"__tostring", lock_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, LOCK_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
