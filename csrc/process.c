/*
 * process.c - child processes and raw descriptors for the batch runner.
 *
 * proc_spawn starts a worker with pipes on its stdin/stdout (posix_spawnp, so no
 * fork of a big parent), proc_poll waits for readable result pipes with a timeout,
 * proc_read/proc_write move bytes (EINTR and short-write loops), proc_kill/proc_wait
 * end and reap workers. proc_open/proc_fsync give the report journal a durable
 * append-only file. Errors follow the io.open convention: nil, "op path: strerror", "ENAME".
 */
#include "aqs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Pushes nil, "op what: strerror", "ENAME" and returns 3. */
static int push_error(lua_State *L, const char *op, const char *what, int e) {
  lua_pushnil(L);
  if (what != NULL)
    lua_pushfstring(L, "%s %s: %s", op, what, strerror(e));
  else
    lua_pushfstring(L, "%s: %s", op, strerror(e));
  lua_pushstring(L, aqs_errno_name(e));
  return 3;
}

static int check_fd(lua_State *L, int arg) {
  lua_Integer fd = luaL_checkinteger(L, arg);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, arg, "not a file descriptor");
  return (int)fd;
}

static void close_quietly(int fd) {
  if (fd >= 0) (void)aqs_close(fd);
}

/* proc_spawn(argv) -> pid, stdin_fd (write jobs), stdout_fd (read results) */
int aqs_proc_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 1 && n < 4096, 1, "argv must be a non-empty list");
  char **argv = lua_newuserdatauv(L, sizeof(char *) * ((size_t)n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 1, "argv entries must be strings");
    /* the string stays alive: the argv table (argument 1) holds it */
    argv[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  argv[n] = NULL;

  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return push_error(L, "pipe", argv[0], errno);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    close_quietly(in_pipe[0]);
    close_quietly(in_pipe[1]);
    return push_error(L, "pipe", argv[0], e);
  }

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc != 0) goto fail_pipes;
  rc = posix_spawnattr_init(&attr);
  if (rc != 0) {
    posix_spawn_file_actions_destroy(&fa);
    goto fail_pipes;
  }
  /* Workers start with SIGINT, SIGTERM and SIGHUP blocked: a Ctrl-C sent to the whole
   * process group (or kill -TERM -PGID, or a terminal hang-up) reaches the runner alone,
   * which stops the workers itself (signals.c); the interpreter's own SIGINT handler
   * never raises in a worker. */
  sigset_t defsigs, blocked;
  sigemptyset(&defsigs);
  sigaddset(&defsigs, SIGPIPE);
  sigaddset(&defsigs, SIGINT);
  sigaddset(&defsigs, SIGHUP);
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGHUP);
  if ((rc = posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0)) == 0 &&
      (rc = posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1)) == 0 &&
      (rc = posix_spawnattr_setsigdefault(&attr, &defsigs)) == 0 &&
      (rc = posix_spawnattr_setsigmask(&attr, &blocked)) == 0 &&
      (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) == 0) {
    pid_t pid;
    rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc == 0) {
      close_quietly(in_pipe[0]);
      close_quietly(out_pipe[1]);
      lua_pushinteger(L, (lua_Integer)pid);
      lua_pushinteger(L, in_pipe[1]);
      lua_pushinteger(L, out_pipe[0]);
      return 3;
    }
  } else {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
fail_pipes:
  close_quietly(in_pipe[0]);
  close_quietly(in_pipe[1]);
  close_quietly(out_pipe[0]);
  close_quietly(out_pipe[1]);
  return push_error(L, "spawn", argv[0], rc);
}

/* proc_write(fd, data) -> true | nil, msg, ENAME (whole string, EINTR/short writes) */
int aqs_proc_write(lua_State *L) {
  int fd = check_fd(L, 1);
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  if (aqs_write_all(fd, p, len, -1) < 0) return push_error(L, "write", NULL, errno);   /* io.c */
  lua_pushboolean(L, 1);
  return 1;
}

/* proc_read(fd [, max]) -> string ("" at end of file) | nil, msg, ENAME */
int aqs_proc_read(lua_State *L) {
  int fd = check_fd(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 65536);
  luaL_argcheck(L, max > 0 && max <= (1 << 24), 2, "bad size");
  luaL_Buffer b;
  char *buf = luaL_buffinitsize(L, &b, (size_t)max);
  int64_t r = aqs_read_some(fd, buf, (size_t)max);   /* io.c: one read, EINTR loop */
  if (r < 0) return push_error(L, "read", NULL, errno);
  luaL_pushresultsize(&b, (size_t)r);
  return 1;
}

/* proc_poll(fds, timeout_ms) -> list of fds that are readable (or hung up) */
int aqs_proc_poll(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer timeout = luaL_checkinteger(L, 2);
  if (timeout < -1) timeout = -1;
  if (timeout > 0x7fffffff) timeout = 0x7fffffff;
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n < 65536, 1, "too many descriptors");
  struct pollfd *pfd = lua_newuserdatauv(L, sizeof(struct pollfd) * ((size_t)n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_Integer fd = lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "not a file descriptor");
    pfd[i - 1].fd = (int)fd;
    pfd[i - 1].events = POLLIN;
    pfd[i - 1].revents = 0;
  }
  int r;
  do {
    r = poll(pfd, (nfds_t)n, (int)timeout);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return push_error(L, "poll", NULL, errno);
  lua_createtable(L, r, 0);
  int k = 0;
  for (lua_Integer i = 0; i < n; i++) {
    if (pfd[i].revents != 0) {
      lua_pushinteger(L, pfd[i].fd);
      lua_rawseti(L, -2, ++k);
    }
  }
  return 1;
}

/* proc_kill(pid, signal) -> true | nil, msg, ENAME */
int aqs_proc_kill(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  lua_Integer sig = luaL_optinteger(L, 2, SIGTERM);
  luaL_argcheck(L, pid > 0, 1, "pid must be positive");
  luaL_argcheck(L, sig >= 0 && sig < 65, 2, "bad signal");
  if (kill((pid_t)pid, (int)sig) != 0) return push_error(L, "kill", NULL, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* proc_wait(pid [, nohang]) -> {exited=bool, code=N} | {signaled=true, signal=N}
 *                              | false (nohang, still running) | nil, msg, ENAME */
int aqs_proc_wait(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  int nohang = lua_toboolean(L, 2);
  luaL_argcheck(L, pid > 0, 1, "pid must be positive");
  int status = 0;
  pid_t r;
  do {
    r = waitpid((pid_t)pid, &status, nohang ? WNOHANG : 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return push_error(L, "waitpid", NULL, errno);
  if (r == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_createtable(L, 0, 2);
  if (WIFEXITED(status)) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "exited");
    lua_pushinteger(L, WEXITSTATUS(status));
    lua_setfield(L, -2, "code");
  } else if (WIFSIGNALED(status)) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "signaled");
    lua_pushinteger(L, WTERMSIG(status));
    lua_setfield(L, -2, "signal");
  }
  return 1;
}

/* proc_close(fd) -> true | nil, msg, ENAME (EINTR on close is not retried, per POSIX/Linux) */
int aqs_proc_close(lua_State *L) {
  int fd = check_fd(L, 1);
  if (aqs_close(fd) != 0) return push_error(L, "close", NULL, errno);   /* io.c: EINTR = closed */
  lua_pushboolean(L, 1);
  return 1;
}

/* Opens PATH for writing as the journal of one process: never through a symlink at PATH
 * (O_NOFOLLOW: ELOOP), never blocking on a FIFO or device (anything but a regular file is
 * refused: EINVAL), never a file of another user (EPERM: in a shared, sticky folder that
 * user could read or rewrite what we log), and held with an exclusive flock (never
 * waiting: a second writer gets "lock PATH: another process holds it", EWOULDBLOCK).  A
 * truncation happens only once the lock is ours, so a refused opener never empties the
 * journal of the process that holds it.  After the lock the name must still be the
 * locked inode (the holder may have removed it as it finished); otherwise we retry.
 * Returns the descriptor, or pushes the error triple and returns -1. */
static int open_journal(lua_State *L, const char *path, int truncate, int append) {
  int tries;
  for (tries = 0; tries < 8; tries++) {
    struct stat st, again;
    int fd = aqs_open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                      (append ? O_APPEND : 0), 0666);
    if (fd < 0) return push_error(L, "open", path, errno), -1;
    if (aqs_fstat(fd, &st) < 0 || aqs_fcntl_clear_nonblock(fd) < 0) {
      int e = errno;
      (void)aqs_close(fd);
      return push_error(L, "open", path, e), -1;
    }
    if (!S_ISREG(st.st_mode)) {
      (void)aqs_close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "open %s: refusing to write a %s, not a regular file", path,
                      aqs_file_kind(st.st_mode));
      lua_pushliteral(L, "EINVAL");
      return -1;
    }
    if (st.st_uid != geteuid()) {
      (void)aqs_close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "open %s: refusing to write a file owned by uid %d (we are uid %d): "
                      "another user could read or rewrite it; remove it or choose another path",
                      path, (int)st.st_uid, (int)geteuid());
      lua_pushliteral(L, "EPERM");
      return -1;
    }
    if (aqs_flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int e = errno;
      (void)aqs_close(fd);
      return aqs_push_lock_error(L, path, e), -1;
    }
    if (aqs_lstat(path, &again) < 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
      (void)aqs_close(fd);   /* the name went away under us: open what is there now */
      continue;
    }
    if (truncate && aqs_ftruncate(fd, 0) < 0) {
      int e = errno;
      (void)aqs_close(fd);
      return push_error(L, "truncate", path, e), -1;
    }
    return fd;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "open %s: the file kept being replaced while we opened it", path);
  lua_pushliteral(L, "ESTALE");
  return -1;
}

/* proc_open(path, mode) -> fd | nil, "open PATH: ...", ENAME
 * mode "append" | "truncate" open a journal for writing (open_journal: regular file of
 * ours, no symlink, exclusive flock held until the descriptor is closed, truncated only
 * under the lock); "create" creates PATH exclusively (EEXIST when it exists, never
 * through a symlink).  New files get 0666 & ~umask, as the engine's.  "read" opens an
 * existing file for reading (a symlink is followed: inputs may be links), refusing
 * FIFOs, devices and sockets at once instead of blocking.  "directory" opens a directory
 * read-only for fsync; it follows a symlinked directory like every other path component
 * (nothing is written through it). */
int aqs_proc_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  static const char *const modes[] = {"append", "truncate", "directory", "create", "read", NULL};
  int mode = luaL_checkoption(L, 2, "append", modes);
  const char *kind = NULL;
  struct stat st;
  int fd;
  if (mode == 2) {
    fd = aqs_open(path, O_RDONLY | O_DIRECTORY, 0);   /* io.c: EINTR loop, test hooks */
    if (fd < 0) return push_error(L, "open", path, errno);
    lua_pushinteger(L, fd);
    return 1;
  }
  if (mode == 4) {
    fd = aqs_open_input(path, &kind);
    if (fd == -2) {
      lua_pushnil(L);
      lua_pushfstring(L, "open %s: refusing to read a %s, not a regular file", path, kind);
      lua_pushliteral(L, "EINVAL");
      return 3;
    }
    if (fd < 0) return push_error(L, "open", path, errno);
    lua_pushinteger(L, fd);
    return 1;
  }
  if (mode == 0 || mode == 1) {
    fd = open_journal(L, path, mode == 1, mode == 0);
    if (fd < 0) return 3;
    lua_pushinteger(L, fd);
    return 1;
  }
  fd = aqs_open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0666);
  if (fd < 0) return push_error(L, "open", path, errno);
  if (aqs_fstat(fd, &st) < 0 || aqs_fcntl_clear_nonblock(fd) < 0) {
    int e = errno;
    (void)aqs_close(fd);
    return push_error(L, "open", path, e);
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* proc_fsync(fd) -> true | nil, msg, ENAME */
int aqs_proc_fsync(lua_State *L) {
  int fd = check_fd(L, 1);
  if (aqs_fsync(fd) != 0) return push_error(L, "fsync", NULL, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* proc_isatty(fd) -> boolean */
int aqs_proc_isatty(lua_State *L) {
  int fd = check_fd(L, 1);
  lua_pushboolean(L, isatty(fd) == 1);
  return 1;
}

/* proc_info() -> {pid = N, euid = N, cpus = N} */
int aqs_proc_info(lua_State *L) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)getpid());
  lua_setfield(L, -2, "pid");
  lua_pushinteger(L, (lua_Integer)geteuid());
  lua_setfield(L, -2, "euid");
  lua_pushinteger(L, cpus > 0 ? (lua_Integer)cpus : 1);
  lua_setfield(L, -2, "cpus");
  return 1;
}

/* proc_ignore_sigpipe() -> true: a dead worker's pipe gives EPIPE instead of killing us.
 * Workers get SIGPIPE back to default (posix_spawnattr_setsigdefault above). */
int aqs_proc_ignore_sigpipe(lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGPIPE, &sa, NULL) != 0) return push_error(L, "sigaction", "SIGPIPE", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* proc_clock() -> monotonic seconds (float), for job deadlines and rates */
int aqs_proc_clock(lua_State *L) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return push_error(L, "clock_gettime", NULL, errno);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}
