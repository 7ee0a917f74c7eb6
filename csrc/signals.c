/*
 * signals.c - SIGINT and SIGTERM as a pollable descriptor, for commands that must end
 * cleanly when interrupted (the batch runner).
 *
 * proc_signal_watch() blocks SIGINT and SIGTERM in the calling process and returns a
 * SignalWatch holding a signalfd for them: the runner polls its descriptor next to the
 * worker pipes and, when it becomes readable, reads which signal came and stops in order
 * (workers stopped, journal committed, no temp files) instead of dying mid-way or having
 * the interpreter raise "interrupted!" wherever it happens to be. close() (also __close
 * and __gc) consumes signals still pending, then restores the previous signal mask, so a
 * second Ctrl-C during the clean-up cannot surface later as a traceback.
 * No global state: the previous mask lives in the userdata.
 */
#include "aqs.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define WATCH_MT "aqs.SignalWatch"

typedef struct {
  int fd;          /* signalfd, -1 once closed */
  sigset_t old;    /* the mask before the watch */
} watch_t;

static watch_t *check_watch(lua_State *L) {
  return (watch_t *)luaL_checkudata(L, 1, WATCH_MT);
}

/* Reads one pending signal: its number, 0 when none is pending, -1 on error (errno). */
static int read_one(int fd) {
  struct signalfd_siginfo si;
  for (;;) {
    ssize_t r = read(fd, &si, sizeof si);
    if (r == (ssize_t)sizeof si) return (int)si.ssi_signo;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return 0;
    if (r >= 0) errno = EIO; /* a short read: signalfd never gives one */
    return -1;
  }
}

static void watch_release(watch_t *w) {
  if (w->fd < 0) return;
  while (read_one(w->fd) > 0) {
  }
  (void)close(w->fd);
  w->fd = -1;
  (void)sigprocmask(SIG_SETMASK, &w->old, NULL);
}

/* proc_signal_watch() -> SignalWatch | nil, msg, ENAME */
int aqs_proc_signal_watch(lua_State *L) {
  watch_t *w = (watch_t *)lua_newuserdatauv(L, sizeof *w, 0);
  w->fd = -1;
  sigemptyset(&w->old);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, &w->old) != 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "sigprocmask: %s", strerror(e));
    lua_pushstring(L, e == EINVAL ? "EINVAL" : "EUNKNOWN");
    return 3;
  }
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    (void)sigprocmask(SIG_SETMASK, &w->old, NULL);
    lua_pushnil(L);
    lua_pushfstring(L, "signalfd: %s", strerror(e));
    lua_pushstring(L, e == EMFILE ? "EMFILE" : e == ENFILE ? "ENFILE" : e == ENOMEM ? "ENOMEM" : "EUNKNOWN");
    return 3;
  }
  w->fd = fd;
  luaL_setmetatable(L, WATCH_MT);
  return 1;
}

/* w:fd() -> descriptor to poll (readable when a signal is pending) */
static int watch_fd(lua_State *L) {
  watch_t *w = check_watch(L);
  if (w->fd < 0) return luaL_argerror(L, 1, "signal watch is closed");
  lua_pushinteger(L, w->fd);
  return 1;
}

/* w:read() -> signal number (2 SIGINT, 15 SIGTERM) | false (none pending) | nil, msg */
static int watch_read(lua_State *L) {
  watch_t *w = check_watch(L);
  if (w->fd < 0) return luaL_argerror(L, 1, "signal watch is closed");
  int sig = read_one(w->fd);
  if (sig < 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "read signalfd: %s", strerror(e));
    return 2;
  }
  if (sig == 0) lua_pushboolean(L, 0);
  else lua_pushinteger(L, sig);
  return 1;
}

/* w:close(): consumes pending signals, restores the previous mask (idempotent) */
static int watch_close(lua_State *L) {
  watch_release(check_watch(L));
  return 0;
}

static int watch_tostring(lua_State *L) {
  watch_t *w = check_watch(L);
  if (w->fd < 0) lua_pushliteral(L, "SignalWatch (closed)");
  else lua_pushfstring(L, "SignalWatch (fd %d: SIGINT, SIGTERM)", w->fd);
  return 1;
}

void aqs_signal_watch_init(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", watch_close},
    {"fd", watch_fd},
    {"read", watch_read},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__close", watch_close},
    {"__gc", watch_close},
    {"__tostring", watch_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, WATCH_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
