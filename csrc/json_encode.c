/*
 * json_encode.c - schema-driven canonical JSON encoder (snapshot-format.md 4.1): keys in
 * schema order, compact, `null` for absent optionals, `[]` for empty lists, byte strings
 * as number arrays, the reference's string escaping, u64 printed unsigned.
 *
 * json_encode(value, schema [, sink [, chunk_size]]) -> string | true | nil, message
 * json_encode(value, schema, opts) with opts = {sink =, chunk_size =, indent =, features =}
 *   Without a sink the whole text is returned.  A sink is a function called as
 *   sink(chunk), or an object with a `write` method (e.g. an AtomicWriter) called as
 *   sink:write(chunk); a falsy first result aborts with its second result as message.
 *   (A third argument that is a table without a `write` field is the options table.)
 *   chunk_size defaults to 65536.  Type errors in the value name the path, e.g.
 *   "tasks[2].task_spec.constraints.max_attempts: expected u32, got -1".
 *
 *   opts.indent: pretty printing for people (`aqstore dump`); nil, false or 0 = the
 *   canonical compact form.  An integer n (1..16) indents by n spaces per level, a string
 *   is the unit itself ("\t"), true means 2 spaces.  The layout is serde_json's
 *   to_string_pretty (also Python's json.dumps(indent=n)): a newline after `{` and `[`
 *   and after every element (byte-string numbers included), the closing bracket on its
 *   own line at the parent's depth, `"key": value` (one space after the colon, none
 *   before), `,` at the end of the line; empty lists, byte strings and records stay
 *   `[]` / `{}`.  No trailing newline.  With indent = 2 this is byte-for-byte the
 *   reference's pretty payload (fixture compat_05_pretty_whitespace).  Only whitespace is
 *   added: the compact text equals the pretty text with the whitespace outside strings
 *   removed.
 *
 *   opts.features = {workflow = true}: feature-gated enum variants (RunPolicy::Cron) may
 *   be written; without it they are unknown variants (the default build).
 *
 *   A record field with `skip_if_none = true` (schema/dsl.lua) is left out entirely when
 *   nil instead of being written as `null` (CronPolicy.max_occurrences).
 */
#include "json.h"
#include "transcode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MT "actionqueue.storage.JsonEncodeState"
#define MAX_PATH 64

typedef aqs_obuf ebuf;   /* shared with transcode.c */

typedef struct {
  const char *name;     /* field name, or NULL for an index */
  lua_Integer index;
} pseg;

typedef struct {
  lua_State *L;
  ebuf *b;
  int sink;             /* stack index of the sink, 0 = none */
  int sink_method;      /* 1: call sink:write(chunk) */
  int sink_aw;          /* 1: the sink is an AtomicWriter, written to without Lua strings */
  size_t chunk;
  pseg path[MAX_PATH];
  int depth;
  int failed;
  const char *indent;   /* pretty-printing unit, NULL = compact */
  size_t indent_len;
  int level;            /* nesting of the container being written (pretty printing) */
  int features;         /* stack index of opts.features, 0 = none */
  int refs;             /* stack index of the schema's refs (interned names), 0 = none */
} je;

static int state_gc(lua_State *L) {
  ebuf *b = (ebuf *)lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

/* Pushes an empty output buffer owned by a userdata (its __gc frees the bytes, on every
 * path, errors included). */
static ebuf *push_buffer(lua_State *L) {
  ebuf *b = (ebuf *)lua_newuserdatauv(L, sizeof(ebuf), 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

static void reserve(je *e, size_t extra) {
  ebuf *b = e->b;
  if (b->len + extra > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    char *np;
    while (ncap < b->len + extra) ncap *= 2;
    np = (char *)realloc(b->p, ncap);
    if (!np) luaL_error(e->L, "json_encode: out of memory");
    b->p = np;
    b->cap = ncap;
  }
}

static void put(je *e, const char *s, size_t n) {
  if (n == 0) return;
  reserve(e, n);
  memcpy(e->b->p + e->b->len, s, n);
  e->b->len += n;
}

#define PUTS(e, lit) put((e), (lit), sizeof(lit) - 1)

static void putc_(je *e, char c) {
  reserve(e, 1);
  e->b->p[e->b->len++] = c;
}

/* Pushes "a.b[3].c" for the current path. */
static void push_path(je *e) {
  luaL_Buffer b;
  int k;
  luaL_buffinit(e->L, &b);
  for (k = 0; k < e->depth; k++) {
    if (e->path[k].name) {
      if (k) luaL_addchar(&b, '.');
      luaL_addstring(&b, e->path[k].name);
    } else {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "[%lld]", (long long)e->path[k].index);
      luaL_addstring(&b, tmp);
    }
  }
  luaL_pushresult(&b);
}

/* Records the error message "<path>: <text>" on the stack top; returns -1. */
static int fail(je *e, const char *fmt, ...) {
  va_list ap;
  char text[512];
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  push_path(e);
  if (lua_rawlen(e->L, -1) > 0) lua_pushfstring(e->L, "%s: %s", lua_tostring(e->L, -1), text);
  else lua_pushfstring(e->L, "%s", text);
  lua_remove(e->L, -2);
  e->failed = 1;
  return -1;
}

/* Short description of the offending value at idx. */
static const char *got(je *e, int idx, char *buf, size_t sz) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) snprintf(buf, sz, "%lld", (long long)lua_tointeger(L, idx));
      else snprintf(buf, sz, "%.17g", (double)lua_tonumber(L, idx));
      return buf;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      snprintf(buf, sz, "string \"%.*s\"%s", (int)(n > 40 ? 40 : n), s, n > 40 ? "..." : "");
      return buf;
    }
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? "true" : "false";
    default:
      return luaL_typename(L, idx);
  }
}

static int flush_sink(je *e, int final) {
  lua_State *L = e->L;
  if (!e->sink || e->b->len == 0) return 0;
  if (!final && e->b->len < e->chunk) return 0;
  luaL_checkstack(L, 6, "json_encode");
  if (e->sink_aw) {
    /* no 64 KiB Lua string per chunk: nothing for the collector to sweep up */
    int r = aqs_aw_write_raw(L, e->sink, e->b->p, e->b->len);
    e->b->len = 0;
    if (r == 0) return 0;
    lua_pop(L, 1);          /* ENAME: keep the message, like a failing write method */
    lua_remove(L, -2);
    e->failed = 1;
    return -1;
  }
  if (e->sink_method) {
    lua_getfield(L, e->sink, "write");
    lua_pushvalue(L, e->sink);
    lua_pushlstring(L, e->b->p, e->b->len);
    lua_call(L, 2, 2);
  } else {
    lua_pushvalue(L, e->sink);
    lua_pushlstring(L, e->b->p, e->b->len);
    lua_call(L, 1, 2);
  }
  e->b->len = 0;
  if (!lua_toboolean(L, -2)) {
    if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushliteral(L, "json_encode: sink failed"); }
    else if (!lua_isstring(L, -1)) { lua_pop(L, 1); lua_pushliteral(L, "json_encode: sink failed"); }
    else lua_pushstring(L, lua_tostring(L, -1)), lua_remove(L, -2);
    lua_remove(L, -2);
    e->failed = 1;
    return -1;
  }
  lua_pop(L, 2);
  return 0;
}

static void put_u64(je *e, uint64_t v) {
  char tmp[24];
  int k = 24;
  do { tmp[--k] = (char)('0' + v % 10); v /= 10; } while (v);
  put(e, tmp + k, (size_t)(24 - k));
}

static void put_i64(je *e, int64_t v) {
  if (v < 0) { putc_(e, '-'); put_u64(e, (uint64_t)0 - (uint64_t)v); }
  else put_u64(e, (uint64_t)v);
}

static void put_string(je *e, const unsigned char *s, size_t n) {
  static const char HEX[] = "0123456789abcdef";
  size_t i, start = 0;
  reserve(e, n + 2);
  putc_(e, '"');
  for (i = 0; i < n; i++) {
    unsigned char c = s[i];
    const char *esc = NULL;
    char u[7];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(e, (const char *)s + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\t': esc = "\\t"; break;
      case '\n': esc = "\\n"; break;
      case '\f': esc = "\\f"; break;
      case '\r': esc = "\\r"; break;
      default:
        u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0'; u[4] = HEX[c >> 4]; u[5] = HEX[c & 15]; u[6] = 0;
        esc = u;
    }
    put(e, esc, strlen(esc));
  }
  put(e, (const char *)s + start, n - start);
  putc_(e, '"');
}

/* Pretty printing: a newline and the indentation of `level`; nothing when compact. */
static void newline(je *e, int level) {
  int k;
  if (!e->indent) return;
  reserve(e, 1 + (size_t)level * e->indent_len);
  putc_(e, '\n');
  for (k = 0; k < level; k++) put(e, e->indent, e->indent_len);
}

/* `"name":` (compact) or `"name": ` (pretty) */
static void put_key(je *e, const char *name, size_t len) {
  putc_(e, '"');
  put(e, name, len);
  putc_(e, '"');
  putc_(e, ':');
  if (e->indent) putc_(e, ' ');
}

/* Number of variants of enum t the encoder may write: the gated ones (after nitems)
 * only when opts.features enables one of them (checked per variant by variant_on). */
static int nvariants(je *e, jtype *t) {
  return e->features ? t->nall : t->nitems;
}

static int variant_on(je *e, jitem *v) {
  int on;
  if (!v->feature) return 1;
  lua_getfield(e->L, e->features, v->feature);
  on = lua_toboolean(e->L, -1);
  lua_pop(e->L, 1);
  return on;
}

static int ev(je *e, jtype *t, int idx);

static int push_seg(je *e, const char *name, lua_Integer index) {
  if (e->depth >= MAX_PATH) return fail(e, "value nested too deeply");
  e->path[e->depth].name = name;
  e->path[e->depth].index = index;
  e->depth++;
  return 0;
}

static int ev_int(je *e, jtype *t, int idx) {
  lua_State *L = e->L;
  char buf[96];
  int isnum;
  lua_Integer v = lua_tointegerx(L, idx, &isnum);
  const char *name = aqs_kind_name(t->kind);
  if (lua_type(L, idx) != LUA_TNUMBER || !isnum)
    return fail(e, "expected %s, got %s", name, got(e, idx, buf, sizeof buf));
  if (t->kind == JK_U64) { put_u64(e, (uint64_t)v); return 0; }
  if (v < t->min || v > t->max)
    return fail(e, "expected %s, got %s", name, got(e, idx, buf, sizeof buf));
  put_i64(e, (int64_t)v);
  return 0;
}

static int ev_record(je *e, jtype *t, int idx) {
  lua_State *L = e->L;
  int k, written = 0;
  char buf[96];
  if (!lua_istable(L, idx))
    return fail(e, "expected %s (table), got %s", t->name, got(e, idx, buf, sizeof buf));
  luaL_checkstack(L, 6, "json_encode");
  putc_(e, '{');
  e->level++;
  for (k = 0; k < t->nitems; k++) {
    jitem *f = &t->items[k];
    /* the interned key (no hashing of the name per record) */
    if (e->refs) lua_rawgeti(L, e->refs, f->name_ref);
    else lua_pushlstring(L, f->name, f->len);
    if (lua_rawget(L, idx) == LUA_TNIL && f->skip_if_none) {
      lua_pop(L, 1);
      continue;
    }
    if (written++) putc_(e, ',');
    newline(e, e->level);
    put_key(e, f->name, f->len);
    if (push_seg(e, f->name, 0)) return -1;
    if (ev(e, f->type, lua_gettop(L))) return -1;
    e->depth--;
    lua_pop(L, 1);
  }
  e->level--;
  if (written) newline(e, e->level);
  putc_(e, '}');
  return flush_sink(e, 0);
}

static int ev_list(je *e, jtype *t, int idx) {
  lua_State *L = e->L;
  lua_Integer k, n;
  char buf[96];
  if (!lua_istable(L, idx)) return fail(e, "expected a list (table), got %s", got(e, idx, buf, sizeof buf));
  luaL_checkstack(L, 6, "json_encode");
  n = (lua_Integer)lua_rawlen(L, idx);
  putc_(e, '[');
  e->level++;
  for (k = 1; k <= n; k++) {
    if (k > 1) putc_(e, ',');
    newline(e, e->level);
    lua_rawgeti(L, idx, k);
    if (push_seg(e, NULL, k)) return -1;
    if (ev(e, t->of, lua_gettop(L))) return -1;
    e->depth--;
    lua_pop(L, 1);
    if (e->sink && e->b->len >= e->chunk && flush_sink(e, 0)) return -1;
  }
  e->level--;
  if (n > 0) newline(e, e->level);
  putc_(e, ']');
  return 0;
}

static int ev_enum(je *e, jtype *t, int idx) {
  lua_State *L = e->L;
  char buf[96];
  int k;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    for (k = 0; k < nvariants(e, t); k++) {
      jitem *v = &t->items[k];
      if (v->len == n && memcmp(v->name, s, n) == 0 && variant_on(e, v)) {
        if (v->type) return fail(e, "variant %s of %s carries data: expected {%s = ...}", v->name, t->name, v->name);
        put_string(e, (const unsigned char *)s, n);
        return 0;
      }
    }
    return fail(e, "unknown variant `%s` of %s", s, t->name);
  }
  if (lua_istable(L, idx)) {
    jitem *found = NULL;
    int count = 0;
    luaL_checkstack(L, 6, "json_encode");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      count++;
      lua_pop(L, 1);
    }
    for (k = 0; k < nvariants(e, t) && count == 1; k++) {
      jitem *v = &t->items[k];
      if (e->refs) lua_rawgeti(L, e->refs, v->name_ref);
      else lua_pushlstring(L, v->name, v->len);
      if (lua_rawget(L, idx) != LUA_TNIL && variant_on(e, v)) { found = v; break; }
      lua_pop(L, 1);
    }
    if (!found) return fail(e, "expected %s (variant name or one-key table), got %s", t->name,
                            count == 1 ? "an unknown variant" : "a table");
    putc_(e, '{');
    newline(e, ++e->level);
    put_key(e, found->name, found->len);
    if (push_seg(e, found->name, 0)) return -1;
    if (found->type) {
      if (ev(e, found->type, lua_gettop(L))) return -1;
    } else {
      PUTS(e, "null");
    }
    e->depth--;
    lua_pop(L, 1);
    newline(e, --e->level);
    putc_(e, '}');
    return 0;
  }
  return fail(e, "expected %s, got %s", t->name, got(e, idx, buf, sizeof buf));
}

static int ev(je *e, jtype *t, int idx) {
  lua_State *L = e->L;
  char buf[96];
  switch (t->kind) {
    case JK_U8: case JK_U16: case JK_U32: case JK_U64: case JK_I32:
      return ev_int(e, t, idx);
    case JK_BOOL:
      if (!lua_isboolean(L, idx)) return fail(e, "expected bool, got %s", got(e, idx, buf, sizeof buf));
      if (lua_toboolean(L, idx)) PUTS(e, "true"); else PUTS(e, "false");
      return 0;
    case JK_STRING: {
      size_t n;
      const char *s;
      if (lua_type(L, idx) != LUA_TSTRING) return fail(e, "expected string, got %s", got(e, idx, buf, sizeof buf));
      s = lua_tolstring(L, idx, &n);
      if (!aqs_utf8_valid((const unsigned char *)s, n)) return fail(e, "invalid UTF-8 in string");
      put_string(e, (const unsigned char *)s, n);
      return 0;
    }
    case JK_ID: {
      size_t n;
      const char *s;
      char out[37], err[256];
      if (lua_type(L, idx) != LUA_TSTRING)
        return fail(e, "expected %s (UUID string), got %s", t->name, got(e, idx, buf, sizeof buf));
      s = lua_tolstring(L, idx, &n);
      if (n == 36 && s[8] == '-') {
        /* fast path: already canonical? */
        int k, ok = 1;
        for (k = 0; k < 36 && ok; k++) {
          char c = s[k];
          if (k == 8 || k == 13 || k == 18 || k == 23) ok = c == '-';
          else ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        }
        if (ok) {
          putc_(e, '"'); put(e, s, 36); putc_(e, '"');
          return 0;
        }
      }
      if (!aqs_uuid_text(s, n, out, err, sizeof err, NULL)) return fail(e, "invalid %s: UUID parsing failed: %s", t->name, err);
      putc_(e, '"'); put(e, out, 36); putc_(e, '"');
      return 0;
    }
    case JK_BYTES: {
      size_t n, k;
      const unsigned char *s;
      if (lua_type(L, idx) != LUA_TSTRING) return fail(e, "expected bytes (string), got %s", got(e, idx, buf, sizeof buf));
      s = (const unsigned char *)lua_tolstring(L, idx, &n);
      reserve(e, n * 4 + 2);
      putc_(e, '[');
      e->level++;
      for (k = 0; k < n; k++) {
        if (k) putc_(e, ',');
        newline(e, e->level);
        put_u64(e, s[k]);
      }
      e->level--;
      if (n) newline(e, e->level);
      putc_(e, ']');
      return 0;
    }
    case JK_OPTION:
      if (lua_isnil(L, idx)) { PUTS(e, "null"); return 0; }
      return ev(e, t->of, idx);
    case JK_LIST:
      return ev_list(e, t, idx);
    case JK_RECORD:
      return ev_record(e, t, idx);
    case JK_ENUM:
      return ev_enum(e, t, idx);
    default:
      return fail(e, "unsupported schema kind %d", t->kind);
  }
}

/* ---- for the transcoder (transcode.h) ------------------------------------------------ */

int aqs_json_encode_append(lua_State *L, int idx, jtype *t, aqs_obuf *b) {
  je e;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.b = b;
  return ev(&e, t, lua_absindex(L, idx));
}

void aqs_json_string_append(lua_State *L, aqs_obuf *b, const unsigned char *s, size_t n) {
  je e;   /* put_string uses only the buffer and the state (no 1 KiB memset per string) */
  e.L = L;
  e.b = b;
  put_string(&e, s, n);
}

/* The canonical encoding of the value at idx with the compiled schema at sidx, into a
 * buffer owned by a userdata pushed on the stack (its __gc frees it, on every path):
 * returns the buffer, or NULL with the userdata and then the encoder's message pushed.
 * snapshot_rules judges a Lua table through it, so that validating a table never makes
 * a Lua string of its whole encoding beside the buffer (95 MB at 100k tasks + runs). */
aqs_obuf *aqs_json_encode_owned(lua_State *L, int idx, int sidx) {
  jschema *sc;
  je e;
  ebuf *b;
  idx = lua_absindex(L, idx);
  sidx = lua_absindex(L, sidx);
  sc = aqs_schema_at(L, sidx);
  memset(&e, 0, sizeof e);
  e.L = L;
  e.chunk = 65536;
  b = push_buffer(L);
  e.b = b;
  aqs_schema_push_refs(L, sidx);
  e.refs = lua_gettop(L);
  if (ev(&e, sc->root, idx)) {
    lua_remove(L, e.refs);
    return NULL;
  }
  lua_pop(L, 1);
  return b;
}

/* Reads opts.indent (at the options table idx) into e; pushes the unit string (slot 7). */
static void read_indent(lua_State *L, je *e, int opts) {
  static const char SPACES[] = "                ";
  int ty = opts ? lua_getfield(L, opts, "indent") : (lua_pushnil(L), LUA_TNIL);
  if (ty == LUA_TSTRING) {
    e->indent = lua_tolstring(L, -1, &e->indent_len);
  } else if (ty == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, -1);
    luaL_argcheck(L, n >= 0 && n <= 16, 3, "opts.indent: 0..16 spaces expected");
    e->indent = SPACES;
    e->indent_len = (size_t)n;
  } else if (ty == LUA_TBOOLEAN) {
    e->indent = lua_toboolean(L, -1) ? SPACES : NULL;
    e->indent_len = 2;
  } else {
    luaL_argexpected(L, ty == LUA_TNIL, 3, "opts.indent: integer, string or boolean");
  }
  if (e->indent && e->indent_len == 0) e->indent = NULL;
}

/* json_encode(value, schema [, sink [, chunk_size]]) | json_encode(value, schema, opts) */
int aqs_json_encode(lua_State *L) {
  jschema *sc;
  je e;
  ebuf *b;
  int opts = 0;
  luaL_argexpected(L, luaL_testudata(L, 2, AQS_SCHEMA_MT) || lua_istable(L, 2), 2, "schema");
  lua_settop(L, 4);
  sc = aqs_schema_at(L, 2);
  memset(&e, 0, sizeof e);
  e.L = L;
  if (lua_istable(L, 3)) {
    int has_write = lua_getfield(L, 3, "write") != LUA_TNIL;
    lua_pop(L, 1);
    if (!has_write) {                     /* options table: move it to slot 5 */
      lua_pushvalue(L, 3);
      opts = 5;
      lua_getfield(L, opts, "sink");
      lua_replace(L, 3);
      lua_getfield(L, opts, "chunk_size");
      lua_replace(L, 4);
    }
  }
  if (!opts) lua_pushnil(L);              /* 5 */
  if (opts && lua_getfield(L, opts, "features") != LUA_TNIL) {   /* 6 */
    luaL_argexpected(L, lua_istable(L, 6), 3, "opts.features: table");
    e.features = 6;
  }
  if (!opts) lua_pushnil(L);
  read_indent(L, &e, opts);               /* 7 */
  e.chunk = (size_t)luaL_optinteger(L, 4, 65536);
  if (e.chunk < 1) e.chunk = 1;
  if (!lua_isnil(L, 3)) {
    e.sink = 3;
    if (lua_isfunction(L, 3)) e.sink_method = 0;
    else if (aqs_aw_is(L, 3)) e.sink_aw = 1;
    else {
      int ty = lua_getfield(L, 3, "write");
      lua_pop(L, 1);
      luaL_argexpected(L, ty == LUA_TFUNCTION, 3, "function or object with a write method");
      e.sink_method = 1;
    }
  }
  b = push_buffer(L);                     /* 8 */
  e.b = b;
  aqs_schema_push_refs(L, 2);             /* 9 */
  e.refs = 9;
  if (ev(&e, sc->root, 1) || flush_sink(&e, 1)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (e.sink) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}
