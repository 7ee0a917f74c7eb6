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
 *
 * proc_signal_trap() is for every other command (rewrite, build, compact, wal repair...):
 * SIGINT, SIGTERM and SIGHUP all behave as lua5.4's own Ctrl-C does: the handler arms a
 * Lua hook that raises "interrupted by SIGTERM!" at the next Lua instruction, so the
 * error unwinds through the writers (their temp files removed) to the CLI, which prints
 * one line and exits 128 + the signal.  SA_RESETHAND: a second signal of the same kind
 * kills at once, as a second Ctrl-C does.  A signal handler gets no user data, so the
 * state to hook and the signal caught are the two statics below (the same as lua.c's
 * globalL): set while a SignalTrap is open, restored by its close/__close/__gc.  The
 * AtomicWriter asks aqs_signal_caught() before its rename: a write that a signal
 * interrupted inside C never replaces its target (docs/safety.md "Signals").
 */
#include "aqs.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <lauxlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define WATCH_MT "aqs.SignalWatch"
#define TRAP_MT "aqs.SignalTrap"

static lua_State *volatile trap_state;     /* the state the handler hooks (NULL: none) */
static volatile sig_atomic_t trap_caught;  /* the signal caught while trapped, or 0 */

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
  sigaddset(&set, SIGHUP);
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

/* w:read() -> signal number (1 SIGHUP, 2 SIGINT, 15 SIGTERM) | false (none pending) | nil, msg */
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
  else lua_pushfstring(L, "SignalWatch (fd %d: SIGINT, SIGTERM, SIGHUP)", w->fd);
  return 1;
}

/* ---- SignalTrap ---- */

static const int trapped[] = {SIGHUP, SIGINT, SIGTERM};
#define NTRAPPED (sizeof trapped / sizeof trapped[0])

typedef struct {
  int active;
  lua_State *prev_state;            /* an enclosing trap's state (nesting) */
  struct sigaction old[NTRAPPED];
} trap_t;

static const char *signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

int aqs_signal_caught(void) {
  return (int)trap_caught;
}

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted by %s!", signal_name((int)trap_caught));
}

/* Async-signal-safe: stores the signal and arms the hook (lua_sethook is documented as
 * safe to call from a signal handler; lua.c does the same for SIGINT). */
static void on_signal(int sig) {
  lua_State *L = trap_state;
  trap_caught = sig;
  if (L) lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void trap_release(trap_t *t) {
  size_t i;
  if (!t->active) return;
  for (i = 0; i < NTRAPPED; i++) (void)sigaction(trapped[i], &t->old[i], NULL);
  trap_state = t->prev_state;
  trap_caught = 0;   /* a library caller that goes on may publish files again */
  t->active = 0;
}

/* proc_signal_trap() -> SignalTrap (close() restores the previous handlers) |
 * nil, msg, ENAME.  Hooks the main thread of the calling state. */
int aqs_proc_signal_trap(lua_State *L) {
  trap_t *t = (trap_t *)lua_newuserdatauv(L, sizeof *t, 0);
  struct sigaction sa;
  size_t i;
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, TRAP_MT);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;   /* a second signal of the kind ends the process */
  sigemptyset(&sa.sa_mask);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  t->prev_state = trap_state;
  trap_state = lua_tothread(L, -1);
  lua_pop(L, 1);
  trap_caught = 0;
  t->active = 1;
  for (i = 0; i < NTRAPPED; i++) {
    if (sigaction(trapped[i], &sa, &t->old[i]) != 0) {
      int e = errno;
      size_t k;
      for (k = 0; k < i; k++) (void)sigaction(trapped[k], &t->old[k], NULL);
      trap_state = t->prev_state;
      t->active = 0;
      lua_pushnil(L);
      lua_pushfstring(L, "sigaction: %s", strerror(e));
      lua_pushliteral(L, "EINVAL");
      return 3;
    }
  }
  return 1;
}

/* t:caught() -> signal number caught while trapped | false */
static int trap_caught_fn(lua_State *L) {
  (void)luaL_checkudata(L, 1, TRAP_MT);
  if (trap_caught) lua_pushinteger(L, (lua_Integer)trap_caught);
  else lua_pushboolean(L, 0);
  return 1;
}

static int trap_close(lua_State *L) {
  trap_release((trap_t *)luaL_checkudata(L, 1, TRAP_MT));
  return 0;
}

static int trap_tostring(lua_State *L) {
  trap_t *t = (trap_t *)luaL_checkudata(L, 1, TRAP_MT);
  lua_pushstring(L, t->active ? "SignalTrap (SIGHUP, SIGINT, SIGTERM)" : "SignalTrap (closed)");
  return 1;
}

void aqs_signal_watch_init(lua_State *L) {
  static const luaL_Reg trap_methods[] = {
    {"caught", trap_caught_fn},
    {"close", trap_close},
    {NULL, NULL}
  };
  static const luaL_Reg trap_meta[] = {
    {"__close", trap_close},
    {"__gc", trap_close},
    {"__tostring", trap_tostring},
    {NULL, NULL}
  };
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
  luaL_newmetatable(L, TRAP_MT);
  luaL_setfuncs(L, trap_meta, 0);
  luaL_newlib(L, trap_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
