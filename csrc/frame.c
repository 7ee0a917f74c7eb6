/*
 * frame.c - the 12-byte frame (version, length, crc; all u32 LE) around a payload:
 * encoding, and classification of a framed string or file in the exact order of the
 * snapshot loader (snapshot-format.md 1.3).  The result is a table, never an error:
 * the loader maps each status to its own text.
 *
 * Result offsets point at the field where the problem was found: 0 version,
 * 4 length, 8 crc, 12 payload; for "ok" the offset is the end of the frame.
 */
#include "aqs.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

void aqs_put_u32le(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v & 0xFF);
  p[1] = (unsigned char)((v >> 8) & 0xFF);
  p[2] = (unsigned char)((v >> 16) & 0xFF);
  p[3] = (unsigned char)((v >> 24) & 0xFF);
}

uint32_t aqs_get_u32le(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint32_t aqs_check_u32(lua_State *L, int arg, const char *what) {
  lua_Integer v = luaL_checkinteger(L, arg);
  if (v < 0 || v > 0xFFFFFFFF)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be in 0..4294967295", what));
  return (uint32_t)v;
}

/* opts.<key> as a u32, or dflt when opts or the field is nil. */
uint32_t aqs_opt_u32(lua_State *L, int opts, const char *key, uint32_t dflt) {
  lua_Integer v;
  int isnum;
  if (lua_isnoneornil(L, opts)) return dflt;
  luaL_checktype(L, opts, LUA_TTABLE);
  if (lua_getfield(L, opts, key) == LUA_TNIL) { lua_pop(L, 1); return dflt; }
  v = lua_tointegerx(L, -1, &isnum);
  if (!isnum || v < 0 || v > 0xFFFFFFFF)
    luaL_argerror(L, opts, lua_pushfstring(L, "opts.%s must be an integer in 0..4294967295", key));
  lua_pop(L, 1);
  return (uint32_t)v;
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void new_result(lua_State *L, const char *status, lua_Integer offset) {
  lua_createtable(L, 0, 6);
  set_str(L, "status", status);
  set_int(L, "offset", offset);
}

void aqs_push_io_result(lua_State *L, int err, lua_Integer offset) {
  new_result(L, "io_error", offset);
  aqs_push_osmsg(L, err);
  lua_setfield(L, -2, "message");
  set_str(L, "errno", aqs_errno_name(err));
}

/* Steps 2-6 of the loader on the first `got` (<= 12) bytes.  Pushes a result table
 * and returns 1 when the frame fails there; returns 0 with *len set otherwise. */
int aqs_frame_classify(lua_State *L, const unsigned char *h, size_t got,
                       uint32_t expect, uint32_t max, uint32_t *len) {
  static const char *const field[] = {"version", "length", "crc"};
  uint32_t version;
  if (got == 0) { new_result(L, "empty", 0); return 1; }
  if (got < 4) goto short_header;
  version = aqs_get_u32le(h);
  /* The version is judged before the length is read (loader step 3). */
  if (version != expect) {
    new_result(L, "bad_version", 0);
    set_int(L, "expected", expect);
    set_int(L, "found", version);
    return 1;
  }
  if (got < AQS_HEADER_SIZE) goto short_header;
  *len = aqs_get_u32le(h + 4);
  if (*len > max) {
    new_result(L, "too_long", 4);
    set_int(L, "length", *len);
    set_int(L, "max", max);
    return 1;
  }
  return 0;
short_header:
  new_result(L, "short_header", (lua_Integer)(got / 4 * 4));
  set_str(L, "field", field[got / 4]);
  set_int(L, "got", (lua_Integer)(got % 4));
  return 1;
}

void aqs_frame_crc_mismatch(lua_State *L, uint32_t stored, uint32_t actual, uint32_t len) {
  new_result(L, "crc_mismatch", AQS_HEADER_SIZE);
  set_int(L, "expected", stored);
  set_int(L, "actual", actual);
  set_int(L, "length", len);
}

/* Step 8 and success; the payload string is on top of the stack and is consumed. */
static void finish(lua_State *L, const unsigned char *h, uint32_t len) {
  size_t n;
  const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n)
                                                 : aqs_payload_buffer(L, -1, &n);
  uint32_t stored = aqs_get_u32le(h + 8);
  uint32_t actual = aqs_crc32_update(0, p, n);
  if (stored != actual) {
    lua_pop(L, 1);
    aqs_frame_crc_mismatch(L, stored, actual, len);
    return;
  }
  new_result(L, "ok", (lua_Integer)AQS_HEADER_SIZE + len);
  set_int(L, "version", aqs_get_u32le(h));
  set_int(L, "length", len);
  set_int(L, "crc", stored);
  lua_insert(L, -2);
  lua_setfield(L, -2, "payload");
}

void aqs_frame_short_payload(lua_State *L, uint32_t len, uint64_t got) {
  new_result(L, "short_payload", AQS_HEADER_SIZE);
  set_int(L, "length", len);
  set_int(L, "got", (lua_Integer)got);
}

/* frame_encode(version, payload) -> header .. payload */
int aqs_frame_encode(lua_State *L) {
  uint32_t version = aqs_check_u32(L, 1, "version");
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  unsigned char h[AQS_HEADER_SIZE];
  luaL_Buffer b;
  luaL_argcheck(L, n <= 0xFFFFFFFFu, 2, "payload longer than 4294967295 bytes");
  aqs_put_u32le(h, version);
  aqs_put_u32le(h + 4, (uint32_t)n);
  aqs_put_u32le(h + 8, aqs_crc32_update(0, p, n));
  luaL_buffinitsize(L, &b, n + AQS_HEADER_SIZE);
  luaL_addlstring(&b, (const char *)h, AQS_HEADER_SIZE);
  luaL_addlstring(&b, p, n);
  luaL_pushresult(&b);
  return 1;
}

/* frame_header(version, length, crc) -> 12-byte string */
int aqs_frame_header(lua_State *L) {
  unsigned char h[AQS_HEADER_SIZE];
  aqs_put_u32le(h, aqs_check_u32(L, 1, "version"));
  aqs_put_u32le(h + 4, aqs_check_u32(L, 2, "length"));
  aqs_put_u32le(h + 8, aqs_check_u32(L, 3, "crc"));
  lua_pushlstring(L, (const char *)h, AQS_HEADER_SIZE);
  return 1;
}

/* frame_decode(data [, opts]) -> result table (see the file comment) */
int aqs_frame_decode(lua_State *L) {
  size_t n;
  const unsigned char *d = (const unsigned char *)luaL_checklstring(L, 1, &n);
  uint32_t expect = aqs_opt_u32(L, 2, "version", 4);
  uint32_t max = aqs_opt_u32(L, 2, "max_length", AQS_MAX_PAYLOAD);
  uint32_t len = 0;
  if (aqs_frame_classify(L, d, n < AQS_HEADER_SIZE ? n : AQS_HEADER_SIZE, expect, max, &len))
    return 1;
  if (n - AQS_HEADER_SIZE < len) {
    aqs_frame_short_payload(L, len, n - AQS_HEADER_SIZE);
    return 1;
  }
  lua_pushlstring(L, (const char *)d + AQS_HEADER_SIZE, len);
  finish(L, d, len);
  return 1;
}

int aqs_read_payload(lua_State *L, int fd, uint64_t off, int seq, uint32_t len, uint64_t *got) {
  int64_t at = seq ? -1 : (int64_t)off;
  struct stat st;
  luaL_Buffer b;
  int64_t r;
  if (aqs_fstat(fd, &st) < 0) return -1;
  /* A regular file tells us up front whether the payload is there, so a lying
   * length field never makes us allocate memory for bytes that do not exist. */
  if (S_ISREG(st.st_mode)) {
    uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    uint64_t avail = size > off ? size - off : 0;
    if (avail < len) { *got = avail; return 0; }
    r = aqs_read_full(fd, luaL_buffinitsize(L, &b, len), len, at);
    if (r < 0) { int e = errno; lua_pop(L, 1); errno = e; return -1; }
    *got = (uint64_t)r;
    if (*got < len) { lua_pop(L, 1); return 0; }  /* shrank meanwhile */
    luaL_pushresultsize(&b, len);
    return 1;
  }
  /* Anything else is read in slices and may end early. */
  luaL_buffinit(L, &b);
  *got = 0;
  while (*got < len) {
    size_t want = len - *got < 65536 ? (size_t)(len - *got) : 65536;
    r = aqs_read_full(fd, luaL_prepbuffsize(&b, want), want, at < 0 ? -1 : at + (int64_t)*got);
    if (r < 0) { int e = errno; lua_pop(L, 1); errno = e; return -1; }
    luaL_addsize(&b, (size_t)r);
    *got += (uint64_t)r;
    if ((size_t)r < want) break;
  }
  if (*got < len) { lua_pop(L, 1); return 0; }
  luaL_pushresult(&b);
  return 1;
}

#define PB_MT "actionqueue.storage.PayloadBuffer"

/* frame_read(path, {buffer = true}): the payload of a regular file in a malloc'd buffer
 * (read straight into it: no copy into a Lua string; json_decode takes it, free() gives
 * the memory back at once instead of at the next collection). */
typedef struct { char *p; size_t n; } pbuf;

static int pb_free(lua_State *L) {
  pbuf *b = (pbuf *)luaL_checkudata(L, 1, PB_MT);
  free(b->p);
  b->p = NULL;
  b->n = 0;
  return 0;
}

static int pb_len(lua_State *L) {
  pbuf *b = (pbuf *)luaL_checkudata(L, 1, PB_MT);
  lua_pushinteger(L, (lua_Integer)b->n);
  return 1;
}

static int pb_tostring(lua_State *L) {
  pbuf *b = (pbuf *)luaL_checkudata(L, 1, PB_MT);
  lua_pushlstring(L, b->p ? b->p : "", b->p ? b->n : 0);
  return 1;
}

const char *aqs_payload_buffer(lua_State *L, int idx, size_t *n) {
  pbuf *b = (pbuf *)luaL_testudata(L, idx, PB_MT);
  if (!b) return NULL;
  if (!b->p) luaL_error(L, "payload buffer already freed");
  *n = b->n;
  return b->p;
}

/* Like aqs_read_payload for a regular file, into a PayloadBuffer; 1 = pushed, 0 = fewer
 * bytes (*got), -1 = I/O error (errno), 2 = not a regular file (nothing done). */
static int read_payload_buffer(lua_State *L, int fd, uint64_t off, uint32_t len, uint64_t *got) {
  struct stat st;
  pbuf *b;
  int64_t r;
  uint64_t size, avail;
  if (aqs_fstat(fd, &st) < 0) return -1;
  if (!S_ISREG(st.st_mode)) return 2;
  size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  avail = size > off ? size - off : 0;
  if (avail < len) { *got = avail; return 0; }
  b = (pbuf *)lua_newuserdatauv(L, sizeof(pbuf), 0);
  b->p = NULL;
  b->n = 0;
  luaL_setmetatable(L, PB_MT);
  b->p = (char *)malloc(len ? len : 1);
  if (!b->p) luaL_error(L, "frame_read: out of memory");
  r = aqs_read_full(fd, b->p, len, -1);
  if (r < 0) { int e = errno; free(b->p); b->p = NULL; lua_pop(L, 1); errno = e; return -1; }
  *got = (uint64_t)r;
  if (*got < len) { free(b->p); b->p = NULL; lua_pop(L, 1); return 0; }  /* shrank meanwhile */
  b->n = len;
  return 1;
}

#define FD_MT "actionqueue.storage.fd"

/* The descriptor lives in a userdata so that a memory error while the payload is
 * being allocated (a longjmp) cannot leak it: __gc closes it. */
static int fdbox_gc(lua_State *L) {
  int *fd = (int *)luaL_checkudata(L, 1, FD_MT);
  if (*fd >= 0) { (void)aqs_close(*fd); *fd = -1; }
  return 0;
}

void aqs_frame_init(lua_State *L) {
  luaL_newmetatable(L, FD_MT);
  lua_pushcfunction(L, fdbox_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, PB_MT);
  lua_pushcfunction(L, pb_free);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, pb_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, pb_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  lua_pushcfunction(L, pb_free);
  lua_setfield(L, -2, "free");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* The result of an input that is not a regular file (nor a directory, which fails at
 * its first read with the engine's EISDIR text): refused before any read could block. */
static void push_not_regular(lua_State *L, const char *path, const char *kind) {
  new_result(L, "io_error", 0);
  lua_pushfstring(L, "refusing to read %s: it is a %s, not a regular file", path, kind);
  lua_setfield(L, -2, "message");
  set_str(L, "errno", "EINVAL");
  set_str(L, "file_type", kind);
}

/* Where an io_error happened: the step and the file (issue 13, "Errors"). */
static void set_where(lua_State *L, const char *op, const char *path) {
  int is_io;
  lua_getfield(L, -1, "status");
  is_io = strcmp(lua_tostring(L, -1), "io_error") == 0;
  lua_pop(L, 1);
  if (is_io) {
    set_str(L, "op", op);
    set_str(L, "path", path);
  }
}

int aqs_frame_open(lua_State *L, const char *path, int *fd) {
  const char *kind = NULL;
  *fd = aqs_open_input(path, &kind);
  if (*fd >= 0) return 0;
  if (*fd == -2) push_not_regular(L, path, kind);
  else if (errno == ENOENT) new_result(L, "missing", 0);
  else aqs_push_io_result(L, errno, 0);
  set_where(L, "open", path);
  *fd = -1;
  return 1;
}

/* frame_read(path [, opts]) -> result table; "missing" for ENOENT. Non-regular files
 * (FIFO, device, socket) are refused at once with an io_error naming their kind. */
int aqs_frame_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uint32_t expect = aqs_opt_u32(L, 2, "version", 4);
  uint32_t max = aqs_opt_u32(L, 2, "max_length", AQS_MAX_PAYLOAD);
  int want_buffer = 0;
  unsigned char h[AQS_HEADER_SIZE];
  uint32_t len = 0;
  uint64_t got = 0;
  int64_t r;
  int *box;
  int fd;
  if (lua_istable(L, 2)) {
    want_buffer = lua_getfield(L, 2, "buffer") != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  box = (int *)lua_newuserdatauv(L, sizeof(int), 0);
  *box = -1;
  luaL_setmetatable(L, FD_MT);
  if (aqs_frame_open(L, path, &fd)) return 1;
  *box = fd;
  r = aqs_read_full(fd, h, AQS_HEADER_SIZE, -1);
  if (r < 0) {
    aqs_push_io_result(L, errno, 0);
  } else if (!aqs_frame_classify(L, h, (size_t)r, expect, max, &len)) {
    int st = 2;
    if (want_buffer) st = read_payload_buffer(L, fd, AQS_HEADER_SIZE, len, &got);
    if (st == 2) st = aqs_read_payload(L, fd, AQS_HEADER_SIZE, 1, len, &got);
    if (st < 0) aqs_push_io_result(L, errno, AQS_HEADER_SIZE);
    else if (st == 0) aqs_frame_short_payload(L, len, got);
    else finish(L, h, len);
  }
  set_where(L, "read", path);
  /* A read-only descriptor has nothing left to lose on close. */
  *box = -1;
  (void)aqs_close(fd);
  return 1;
}
