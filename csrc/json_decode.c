/*
 * json_decode.c - schema-driven streaming JSON decoder emulating the reference's JSON
 * layer (serde_json 1.0.149 + serde derive): same accepted inputs, same error texts and
 * positions (snapshot-format.md 4.2, 4.3).  It walks the compiled schema (json.h) while
 * parsing and builds the Lua representation directly.
 *
 * json_decode(payload, schema) -> value | nil, message, line, column
 *   message is serde's text followed by " at line L column C".
 *   `schema` is a JsonSchema (json_schema) or a schema type table.
 *
 * Error positions follow serde_json: "peek" errors point at the byte looked at, other
 * errors at the bytes consumed; errors raised without a position (custom/derive errors)
 * get the position of the innermost enclosing struct/sequence once it has looked for its
 * closing bracket.  Ignored values (unknown keys) are skipped iteratively, with no depth
 * limit; known structures obey serde_json's recursion limit of 128.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MT "actionqueue.storage.JsonDecodeState"
#define NOPOS ((size_t)-1)

typedef struct {
  unsigned char *p;
  size_t len, cap;
} dbuf;

typedef struct {
  dbuf scratch;   /* unescaped strings */
  dbuf bytes;     /* byte strings */
  dbuf stack;     /* ignored-value nesting */
  dbuf msg;       /* error message */
} dstate;

typedef struct {
  lua_State *L;
  const unsigned char *s;
  size_t n, i;
  int depth;        /* remaining recursion budget */
  int refs;         /* stack index of the refs table */
  dstate *st;
  int failed;
  size_t errpos;    /* NOPOS while unpositioned */
  int gc_was_running;
} jd;

/* ---- buffers and errors -------------------------------------------------------- */

static int state_gc(lua_State *L) {
  dstate *st = (dstate *)lua_touserdata(L, 1);
  free(st->scratch.p); free(st->bytes.p); free(st->stack.p); free(st->msg.p);
  memset(st, 0, sizeof *st);
  return 0;
}

static int dbuf_reserve(dbuf *b, size_t extra) {
  if (b->len + extra > b->cap) {
    size_t ncap = b->cap ? b->cap : 256;
    unsigned char *np;
    while (ncap < b->len + extra) ncap *= 2;
    np = (unsigned char *)realloc(b->p, ncap);
    if (!np) return 0;
    b->p = np;
    b->cap = ncap;
  }
  return 1;
}

static void dbuf_add(jd *d, dbuf *b, const void *p, size_t n) {
  if (n == 0) return;
  if (!dbuf_reserve(b, n)) luaL_error(d->L, "json_decode: out of memory");
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void set_msg(jd *d, const char *fmt, va_list ap) {
  va_list ap2;
  int n;
  dbuf *m = &d->st->msg;
  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  m->len = 0;
  if (!dbuf_reserve(m, (size_t)n + 1)) luaL_error(d->L, "json_decode: out of memory");
  vsnprintf((char *)m->p, (size_t)n + 1, fmt, ap);
  m->len = (size_t)n;
}

/* Error at an explicit byte index. */
static int err_at(jd *d, size_t pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_msg(d, fmt, ap);
  va_end(ap);
  d->failed = 1;
  d->errpos = pos;
  return -1;
}

/* serde_json `error`: position of the bytes consumed. */
#define ERR(d, msg) err_at((d), (d)->i, "%s", (msg))
/* serde_json `peek_error`: position of the byte looked at. */
#define PEEK_ERR(d, msg) err_at((d), (d)->i < (d)->n ? (d)->i + 1 : (d)->n, "%s", (msg))

/* Error without a position (serde custom errors); fixed later. */
static int err_custom(jd *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_msg(d, fmt, ap);
  va_end(ap);
  d->failed = 1;
  d->errpos = NOPOS;
  return -1;
}

static void fix_pos(jd *d) {
  if (d->failed && d->errpos == NOPOS) d->errpos = d->i;
}

/* ---- lexical helpers -------------------------------------------------------------- */

/* Skips whitespace; returns the next byte or -1 at the end. */
static int ws(jd *d) {
  while (d->i < d->n) {
    unsigned char c = d->s[d->i];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') d->i++;
    else return c;
  }
  return -1;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int peek_or_null(jd *d) { return d->i < d->n ? d->s[d->i] : 0; }

static int parse_ident(jd *d, const char *rest) {
  for (; *rest; rest++) {
    if (d->i >= d->n) return ERR(d, "EOF while parsing a value");
    if (d->s[d->i++] != (unsigned char)*rest) return ERR(d, "expected ident");
  }
  return 0;
}

static int hex4(jd *d, unsigned *out) {
  unsigned v = 0;
  int k;
  if (d->n - d->i < 4) {
    d->i = d->n;
    return ERR(d, "EOF while parsing a string");
  }
  for (k = 0; k < 4; k++) {
    unsigned char c = d->s[d->i + (size_t)k];
    int h = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
          : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (h < 0) { d->i += 4; return ERR(d, "invalid escape"); }
    v = v << 4 | (unsigned)h;
  }
  d->i += 4;
  *out = v;
  return 0;
}

static void put_cp(jd *d, unsigned cp) {   /* WTF-8 */
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) { b[0] = (unsigned char)cp; n = 1; }
  else if (cp < 0x800) { b[0] = (unsigned char)(0xC0 | cp >> 6); b[1] = (unsigned char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | cp >> 12); b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    b[0] = (unsigned char)(0xF0 | cp >> 18); b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (unsigned char)(0x80 | (cp & 0x3F)); n = 4;
  }
  dbuf_add(d, &d->st->scratch, b, n);
}

static int parse_escape(jd *d, int validate);

static int parse_unicode_escape(jd *d, int validate) {
  unsigned n, n1, n2;
  if (hex4(d, &n)) return -1;
  if (validate && n >= 0xDC00 && n <= 0xDFFF) return ERR(d, "lone leading surrogate in hex escape");
  for (;;) {
    if (n < 0xD800 || n > 0xDBFF) { put_cp(d, n); return 0; }
    n1 = n;
    if (d->i >= d->n) return ERR(d, "EOF while parsing a string");
    if (d->s[d->i] == '\\') d->i++;
    else {
      if (validate) { d->i++; return ERR(d, "unexpected end of hex escape"); }
      put_cp(d, n1);
      return 0;
    }
    if (d->i >= d->n) return ERR(d, "EOF while parsing a string");
    if (d->s[d->i] == 'u') d->i++;
    else {
      if (validate) { d->i++; return ERR(d, "unexpected end of hex escape"); }
      put_cp(d, n1);
      return parse_escape(d, validate);
    }
    if (hex4(d, &n2)) return -1;
    if (n2 < 0xDC00 || n2 > 0xDFFF) {
      if (validate) return ERR(d, "lone leading surrogate in hex escape");
      put_cp(d, n1);
      n = n2;
      continue;
    }
    put_cp(d, ((n1 - 0xD800) << 10 | (n2 - 0xDC00)) + 0x10000);
    return 0;
  }
}

static int parse_escape(jd *d, int validate) {
  unsigned char c, o;
  if (d->i >= d->n) return ERR(d, "EOF while parsing a string");
  c = d->s[d->i++];
  switch (c) {
    case '"': o = '"'; break;
    case '\\': o = '\\'; break;
    case '/': o = '/'; break;
    case 'b': o = '\b'; break;
    case 'f': o = '\f'; break;
    case 'n': o = '\n'; break;
    case 'r': o = '\r'; break;
    case 't': o = '\t'; break;
    case 'u': return parse_unicode_escape(d, validate);
    default: return ERR(d, "invalid escape");
  }
  dbuf_add(d, &d->st->scratch, &o, 1);
  return 0;
}

/* Skips 8 bytes at a time while none of them is '"', '\\' or a control character
 * (SWAR); ORs the skipped bytes' high bits into *high.  Returns the index where the
 * byte-wise scan must go on. */
#define SW_ONES 0x0101010101010101ULL
#define SW_HIGH 0x8080808080808080ULL
static size_t scan_plain(const unsigned char *s, size_t i, size_t n, unsigned char *high) {
  uint64_t acc = 0;
  while (n - i >= 8) {
    uint64_t x, q, b, t;
    memcpy(&x, s + i, 8);
    q = x ^ (SW_ONES * '"');
    b = x ^ (SW_ONES * '\\');
    t = ((q - SW_ONES) & ~q) | ((b - SW_ONES) & ~b) | ((x - SW_ONES * 0x20) & ~x);
    if (t & SW_HIGH) break;
    acc |= x;
    i += 8;
  }
  if (acc & SW_HIGH) *high |= 0x80;
  return i;
}

/* Parses a string whose opening quote was consumed.  On success *out and *len give the
 * decoded bytes (into the payload when there is no escape).  validate: decoded strings
 * (keys, known values) are checked for UTF-8 and lone surrogates. */
static int parse_str(jd *d, int validate, const unsigned char **out, size_t *len) {
  size_t start = d->i;
  int copied = 0;
  unsigned char high = 0;   /* OR of the raw bytes: no 0x80 bit = ASCII, valid UTF-8 */
  d->st->scratch.len = 0;
  for (;;) {
    const unsigned char *s = d->s;
    size_t i = d->i, n = d->n;
    i = scan_plain(s, i, n, &high);
    while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20) high |= s[i++];
    d->i = i;
    if (i == n) return ERR(d, "EOF while parsing a string");
    if (s[i] == '"') {
      if (copied) {
        dbuf_add(d, &d->st->scratch, s + start, i - start);
        *out = d->st->scratch.p;
        *len = d->st->scratch.len;
      } else {
        *out = s + start;
        *len = i - start;
      }
      d->i = i + 1;
      if (validate && (high & 0x80 || copied) && !aqs_utf8_valid(*out, *len))
        return ERR(d, "invalid unicode code point");
      return 0;
    }
    if (s[i] == '\\') {
      dbuf_add(d, &d->st->scratch, s + start, i - start);
      copied = 1;
      d->i = i + 1;
      if (parse_escape(d, validate)) return -1;
      start = d->i;
      continue;
    }
    d->i = i + 1;
    return ERR(d, "control character (\\u0000-\\u001F) found while parsing a string");
  }
}

/* Skips a string whose opening quote was consumed (serde_json ignore_str). */
static int ignore_str(jd *d) {
  for (;;) {
    const unsigned char *s = d->s;
    size_t i = d->i, n = d->n;
    while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20) i++;
    d->i = i;
    if (i == n) return ERR(d, "EOF while parsing a string");
    if (s[i] == '"') { d->i = i + 1; return 0; }
    if (s[i] == '\\') {
      unsigned char c;
      d->i = i + 1;
      if (d->i >= d->n) return ERR(d, "EOF while parsing a string");
      c = d->s[d->i++];
      if (c == 'u') { unsigned v; if (hex4(d, &v)) return -1; }
      else if (!strchr("\"\\/bfnrt", c) || c == 0) return ERR(d, "invalid escape");
      continue;
    }
    d->i = i + 1;
    return ERR(d, "control character (\\u0000-\\u001F) found while parsing a string");
  }
}

/* ---- numbers ------------------------------------------------------------------------ */

enum { N_U64, N_I64, N_F64 };
typedef struct { int kind; uint64_t u; int64_t i; double f; } jnum;

/* Scans the fraction/exponent (or remaining digits of a too long integer) of a float
 * token starting at `start`, then converts it. */
static int parse_float_tail(jd *d, size_t start, jnum *out) {
  char tmp[64], *buf = tmp;
  size_t len;
  while (is_digit(peek_or_null(d))) d->i++;
  if (peek_or_null(d) == '.') {
    int any = 0;
    d->i++;
    while (is_digit(peek_or_null(d))) { d->i++; any = 1; }
    if (!any) {
      if (d->i < d->n) return PEEK_ERR(d, "invalid number");
      return PEEK_ERR(d, "EOF while parsing a value");
    }
  }
  if (peek_or_null(d) == 'e' || peek_or_null(d) == 'E') {
    d->i++;
    if (peek_or_null(d) == '+' || peek_or_null(d) == '-') d->i++;
    if (d->i >= d->n) return ERR(d, "EOF while parsing a value");
    if (!is_digit(d->s[d->i])) { d->i++; return ERR(d, "invalid number"); }
    while (is_digit(peek_or_null(d))) d->i++;
  }
  len = d->i - start;
  if (len + 1 > sizeof tmp) {
    buf = (char *)malloc(len + 1);
    if (!buf) luaL_error(d->L, "json_decode: out of memory");
  }
  memcpy(buf, d->s + start, len);
  buf[len] = '\0';
  out->kind = N_F64;
  out->f = strtod(buf, NULL);
  if (buf != tmp) free(buf);
  if (isinf(out->f)) return ERR(d, "number out of range");
  return 0;
}

/* serde_json parse_integer; for a negative number the '-' has been consumed and
 * start points at it. */
static int parse_number(jd *d, int positive, size_t start, jnum *out) {
  unsigned char c;
  uint64_t sig;
  if (d->i >= d->n) return ERR(d, "EOF while parsing a value");
  c = d->s[d->i++];
  if (c == '0') {
    if (is_digit(peek_or_null(d))) return PEEK_ERR(d, "invalid number");
    sig = 0;
  } else if (c >= '1' && c <= '9') {
    sig = (uint64_t)(c - '0');
    for (;;) {
      int p = peek_or_null(d);
      uint64_t dg;
      if (!is_digit(p)) break;
      dg = (uint64_t)(p - '0');
      if (sig >= UINT64_MAX / 10 && (sig > UINT64_MAX / 10 || dg > UINT64_MAX % 10))
        return parse_float_tail(d, start, out);
      d->i++;
      sig = sig * 10 + dg;
    }
  } else {
    return ERR(d, "invalid number");
  }
  {
    int p = peek_or_null(d);
    if (p == '.' || p == 'e' || p == 'E') return parse_float_tail(d, start, out);
  }
  if (positive) { out->kind = N_U64; out->u = sig; return 0; }
  {
    int64_t neg = (int64_t)(0 - sig);
    if (sig == 0 || neg >= 0) { out->kind = N_F64; out->f = -(double)sig; }
    else { out->kind = N_I64; out->i = neg; }
  }
  return 0;
}

/* Python-repr-like shortest round-trip float text. */
static void fmt_float(double v, char *out, size_t outsz) {
  char buf[48], digits[32];
  int prec, e, nd = 0, neg;
  char *p;
  if (v == 0) { snprintf(out, outsz, signbit(v) ? "-0.0" : "0.0"); return; }
  if (isnan(v)) { snprintf(out, outsz, "NaN"); return; }
  if (isinf(v)) { snprintf(out, outsz, v < 0 ? "-inf" : "inf"); return; }
  for (prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (strtod(buf, NULL) == v) break;
  }
  neg = buf[0] == '-';
  for (p = buf + neg; *p && *p != 'e'; p++)
    if (is_digit((unsigned char)*p)) digits[nd++] = *p;
  digits[nd] = '\0';
  e = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = '\0';
  if (e >= -4 && e < 16) {
    char res[64];
    int k = 0, j;
    if (neg) res[k++] = '-';
    if (e >= 0) {
      for (j = 0; j <= e; j++) res[k++] = j < nd ? digits[j] : '0';
      res[k++] = '.';
      if (nd > e + 1) for (j = e + 1; j < nd; j++) res[k++] = digits[j];
      else res[k++] = '0';
    } else {
      res[k++] = '0'; res[k++] = '.';
      for (j = 0; j < -e - 1; j++) res[k++] = '0';
      for (j = 0; j < nd; j++) res[k++] = digits[j];
    }
    res[k] = '\0';
    snprintf(out, outsz, "%s", res);
  } else {
    snprintf(out, outsz, "%s%c%s%s%se%c%02d", neg ? "-" : "", digits[0], nd > 1 ? "." : "",
             nd > 1 ? digits + 1 : "", "", e < 0 ? '-' : '+', e < 0 ? -e : e);
  }
}

static void describe_num(const jnum *nm, char *out, size_t outsz) {
  if (nm->kind == N_U64) snprintf(out, outsz, "integer `%llu`", (unsigned long long)nm->u);
  else if (nm->kind == N_I64) snprintf(out, outsz, "integer `%lld`", (long long)nm->i);
  else {
    char f[64];
    fmt_float(nm->f, f, sizeof f);
    snprintf(out, outsz, "floating point `%s`", f);
  }
}

/* ---- values ------------------------------------------------------------------------- */

static int dv(jd *d, jtype *t);

static const char *int_name(int kind) {
  switch (kind) {
    case JK_U8: return "u8";
    case JK_U16: return "u16";
    case JK_U32: return "u32";
    case JK_I32: return "i32";
    default: return "u64";
  }
}

/* Rust Debug text of a str (for `invalid type: string "..."`). */
static void push_debug_str(jd *d, const unsigned char *s, size_t n) {
  luaL_Buffer b;
  size_t k;
  luaL_buffinit(d->L, &b);
  luaL_addchar(&b, '"');
  for (k = 0; k < n; k++) {
    unsigned char c = s[k];
    switch (c) {
      case '"': luaL_addstring(&b, "\\\""); break;
      case '\\': luaL_addstring(&b, "\\\\"); break;
      case '\n': luaL_addstring(&b, "\\n"); break;
      case '\r': luaL_addstring(&b, "\\r"); break;
      case '\t': luaL_addstring(&b, "\\t"); break;
      case 0: luaL_addstring(&b, "\\0"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char e[16];
          snprintf(e, sizeof e, "\\u{%x}", c);
          luaL_addstring(&b, e);
        } else {
          luaL_addchar(&b, (char)c);
        }
    }
  }
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

/* serde_json peek_invalid_type, then fix_position. */
static int invalid_type(jd *d, const char *expected) {
  int c = d->i < d->n ? d->s[d->i] : 0;
  char what[96];
  switch (c) {
    case 'n':
      d->i++;
      if (parse_ident(d, "ull")) return -1;
      err_custom(d, "invalid type: null, expected %s", expected);
      break;
    case 't':
      d->i++;
      if (parse_ident(d, "rue")) return -1;
      err_custom(d, "invalid type: boolean `true`, expected %s", expected);
      break;
    case 'f':
      d->i++;
      if (parse_ident(d, "alse")) return -1;
      err_custom(d, "invalid type: boolean `false`, expected %s", expected);
      break;
    case '"': {
      const unsigned char *s;
      size_t len;
      d->i++;
      if (parse_str(d, 1, &s, &len)) return -1;
      push_debug_str(d, s, len);
      err_custom(d, "invalid type: string %s, expected %s", lua_tostring(d->L, -1), expected);
      lua_pop(d->L, 1);
      break;
    }
    case '[': err_custom(d, "invalid type: sequence, expected %s", expected); break;
    case '{': err_custom(d, "invalid type: map, expected %s", expected); break;
    default:
      if (c == '-' || is_digit(c)) {
        jnum nm;
        size_t start = d->i;
        if (c == '-') d->i++;
        if (parse_number(d, c != '-', start, &nm)) return -1;
        describe_num(&nm, what, sizeof what);
        err_custom(d, "invalid type: %s, expected %s", what, expected);
      } else {
        return PEEK_ERR(d, "expected value");
      }
  }
  fix_pos(d);
  return -1;
}

/* Integer kinds; pushes nothing, returns the value in *out. */
static int read_int(jd *d, jtype *t, lua_Integer *out) {
  int c = ws(d);
  jnum nm;
  const char *name = int_name(t->kind);
  if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
  if (c == '-') {
    size_t start = d->i++;
    if (parse_number(d, 0, start, &nm)) { fix_pos(d); return -1; }
  } else if (is_digit(c)) {
    if (parse_number(d, 1, d->i, &nm)) { fix_pos(d); return -1; }
  } else {
    return invalid_type(d, name);
  }
  if (nm.kind == N_F64) {
    char what[96];
    describe_num(&nm, what, sizeof what);
    err_custom(d, "invalid type: %s, expected %s", what, name);
    fix_pos(d);
    return -1;
  }
  if (t->kind == JK_U64) {
    if (nm.kind == N_I64) goto bad_value;
    *out = (lua_Integer)nm.u;
    return 0;
  }
  if (nm.kind == N_U64) {
    if (nm.u > (uint64_t)t->max) goto bad_value;
    *out = (lua_Integer)nm.u;
    return 0;
  }
  if (nm.i < t->min) goto bad_value;
  *out = (lua_Integer)nm.i;
  return 0;
bad_value:
  if (nm.kind == N_U64) err_custom(d, "invalid value: integer `%llu`, expected %s", (unsigned long long)nm.u, name);
  else err_custom(d, "invalid value: integer `%lld`, expected %s", (long long)nm.i, name);
  fix_pos(d);
  return -1;
}

/* SeqAccess::has_next_element: 1 = element follows, 0 = end, -1 = error. */
static int seq_next(jd *d, int *first) {
  int c = ws(d);
  if (c == ']') return 0;
  if (c == ',' && !*first) { d->i++; c = ws(d); }
  else if (c >= 0) {
    if (*first) *first = 0;
    else return PEEK_ERR(d, "expected `,` or `]`");
  } else return PEEK_ERR(d, "EOF while parsing a list");
  if (c == ']') return PEEK_ERR(d, "trailing comma");
  if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
  return 1;
}

/* end_seq / end_map; report = 0 evaluates without recording an error. */
static int end_seq(jd *d, int report) {
  int c = ws(d);
  if (c == ']') { d->i++; return 0; }
  if (c == ',') {
    d->i++;
    c = ws(d);
    if (!report) return -1;
    if (c == ']') return PEEK_ERR(d, "trailing comma");
    return PEEK_ERR(d, "trailing characters");
  }
  if (!report) return -1;
  if (c >= 0) return PEEK_ERR(d, "trailing characters");
  return PEEK_ERR(d, "EOF while parsing a list");
}

static int end_map(jd *d, int report) {
  int c = ws(d);
  if (c == '}') { d->i++; return 0; }
  if (!report) return -1;
  if (c == ',') return PEEK_ERR(d, "trailing comma");
  if (c >= 0) return PEEK_ERR(d, "trailing characters");
  return PEEK_ERR(d, "EOF while parsing an object");
}

static int object_colon(jd *d) {
  int c = ws(d);
  if (c == ':') { d->i++; return 0; }
  if (c >= 0) return PEEK_ERR(d, "expected `:`");
  return PEEK_ERR(d, "EOF while parsing an object");
}

static int enter(jd *d) {
  if (--d->depth == 0) return PEEK_ERR(d, "recursion limit exceeded");
  return 0;
}

/* serde_json ignore_value: iterative, unbounded nesting. */
static int ignore_value(jd *d) {
  dbuf *stk = &d->st->stack;
  size_t base = stk->len;
  int r = -1;
  for (;;) {
    int c = ws(d), frame = 0, accept_comma;
    if (c < 0) { PEEK_ERR(d, "EOF while parsing a value"); goto out; }
    switch (c) {
      case 'n': d->i++; if (parse_ident(d, "ull")) goto out; break;
      case 't': d->i++; if (parse_ident(d, "rue")) goto out; break;
      case 'f': d->i++; if (parse_ident(d, "alse")) goto out; break;
      case '"': d->i++; if (ignore_str(d)) goto out; break;
      case '[': case '{': d->i++; frame = c; break;
      default:
        if (c == '-' || is_digit(c)) {
          /* serde_json ignore_integer/ignore_decimal/ignore_exponent */
          unsigned char ch;
          if (c == '-') d->i++;
          if (d->i >= d->n) { ERR(d, "invalid number"); goto out; }
          ch = d->s[d->i++];
          if (ch == '0') {
            if (is_digit(peek_or_null(d))) { PEEK_ERR(d, "invalid number"); goto out; }
          } else if (is_digit(ch)) {
            while (is_digit(peek_or_null(d))) d->i++;
          } else { ERR(d, "invalid number"); goto out; }
          if (peek_or_null(d) == '.') {
            int any = 0;
            d->i++;
            while (is_digit(peek_or_null(d))) { d->i++; any = 1; }
            if (!any) { PEEK_ERR(d, "invalid number"); goto out; }
          }
          if (peek_or_null(d) == 'e' || peek_or_null(d) == 'E') {
            d->i++;
            if (peek_or_null(d) == '+' || peek_or_null(d) == '-') d->i++;
            if (d->i >= d->n || !is_digit(d->s[d->i])) {
              if (d->i < d->n) d->i++;
              ERR(d, "invalid number");
              goto out;
            }
            while (is_digit(peek_or_null(d))) d->i++;
          }
        } else { PEEK_ERR(d, "expected value"); goto out; }
    }
    if (frame) accept_comma = 0;
    else {
      if (stk->len == base) { r = 0; goto out; }
      frame = stk->p[--stk->len];
      accept_comma = 1;
    }
    for (;;) {
      int p = ws(d);
      if (p == ',' && accept_comma) { d->i++; break; }
      if ((p == ']' && frame == '[') || (p == '}' && frame == '{')) {
        d->i++;
        if (stk->len == base) { r = 0; goto out; }
        frame = stk->p[--stk->len];
        accept_comma = 1;
        continue;
      }
      if (p >= 0) {
        if (accept_comma) {
          PEEK_ERR(d, frame == '[' ? "expected `,` or `]`" : "expected `,` or `}`");
          goto out;
        }
        break;
      }
      PEEK_ERR(d, frame == '[' ? "EOF while parsing a list" : "EOF while parsing an object");
      goto out;
    }
    if (frame == '{') {
      int p = ws(d);
      if (p == '"') d->i++;
      else if (p >= 0) { PEEK_ERR(d, "key must be a string"); goto out; }
      else { PEEK_ERR(d, "EOF while parsing a value"); goto out; }
      if (ignore_str(d)) goto out;
      if (object_colon(d)) goto out;
    }
    {
      unsigned char f = (unsigned char)frame;
      dbuf_add(d, stk, &f, 1);
    }
  }
out:
  stk->len = base;
  return r;
}

static void push_ref(jd *d, int ref) {
  lua_rawgeti(d->L, d->refs, ref);
}

/* Calls a check function (ref) on the value on top; returns -1 with a custom error
 * when it returns text. */
static int run_check(jd *d, int ref) {
  lua_State *L = d->L;
  push_ref(d, ref);
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    /* a check function raised: restore the collector, then propagate */
    if (d->gc_was_running) lua_gc(L, LUA_GCRESTART);
    lua_error(L);
  }
  if (lua_type(L, -1) == LUA_TSTRING) {
    err_custom(d, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  lua_pop(L, 1);
  return 0;
}

static void push_default(jd *d, jitem *f) {
  push_ref(d, f->dref);
  if (f->dkind == JD_FUNC) lua_call(d->L, 0, 1);
}

static int record_map(jd *d, jtype *t) {
  uint64_t seen = 0;
  int first = 1, k, hint = 0;
  for (;;) {
    int c = ws(d);
    const unsigned char *key;
    size_t klen;
    jitem *f = NULL;
    if (c == '}') break;
    if (c == ',' && !first) { d->i++; c = ws(d); }
    else if (c >= 0) {
      if (first) first = 0;
      else return PEEK_ERR(d, "expected `,` or `}`");
    } else return PEEK_ERR(d, "EOF while parsing an object");
    if (c == '"') {
      d->i++;
      /* canonical documents list the fields in schema order: when the raw bytes are the
       * next field's name followed by the closing quote, that is the decoded key (field
       * names are plain ASCII, no escapes) */
      if (hint < t->nitems) {
        const jitem *h = &t->items[hint];
        if (d->n - d->i > h->len && d->s[d->i + h->len] == '"'
            && memcmp(d->s + d->i, h->name, h->len) == 0) {
          d->i += h->len + 1;
          k = hint;
          f = &t->items[k];
          goto found;
        }
      }
      if (parse_str(d, 1, &key, &klen)) return -1;
    } else if (c == '}') return PEEK_ERR(d, "trailing comma");
    else if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
    else return PEEK_ERR(d, "key must be a string");
    if (hint < t->nitems && t->items[hint].len == klen
        && memcmp(t->items[hint].name, key, klen) == 0) {
      k = hint;
      f = &t->items[k];
    } else {
      for (k = 0; k < t->nitems; k++) {
        if (t->items[k].len == klen && memcmp(t->items[k].name, key, klen) == 0) {
          f = &t->items[k];
          break;
        }
      }
    }
  found:
    if (f) {
      hint = k + 1;
      if (seen & ((uint64_t)1 << k)) return err_custom(d, "duplicate field `%s`", f->name);
      seen |= (uint64_t)1 << k;
      if (object_colon(d)) return -1;
      push_ref(d, f->name_ref);
      if (dv(d, f->type)) return -1;
      /* the key/value pair stays on the stack (dv_record) */
    } else {
      if (object_colon(d)) return -1;
      if (ignore_value(d)) return -1;
    }
  }
  for (k = 0; k < t->nitems; k++) {
    jitem *f = &t->items[k];
    if (seen & ((uint64_t)1 << k)) continue;
    if (f->dkind == JD_VALUE || f->dkind == JD_FUNC) {
      push_ref(d, f->name_ref);
      push_default(d, f);
      /* the key/value pair stays on the stack (dv_record) */
    } else if (f->dkind == JD_NONE && f->type->kind != JK_OPTION) {
      return err_custom(d, "missing field `%s`", f->name);
    }
  }
  return 0;
}

static int record_seq(jd *d, jtype *t, int variant) {
  int first = 1, k;
  for (k = 0; k < t->nitems; k++) {
    jitem *f = &t->items[k];
    int r = seq_next(d, &first);
    if (r < 0) return -1;
    if (r) {
      push_ref(d, f->name_ref);
      if (dv(d, f->type)) return -1;
      /* the key/value pair stays on the stack (dv_record) */
    } else if (f->dkind == JD_VALUE || f->dkind == JD_FUNC) {
      push_ref(d, f->name_ref);
      push_default(d, f);
      /* the key/value pair stays on the stack (dv_record) */
    } else if (f->dkind != JD_ABSENT) {
      return err_custom(d, "invalid length %d, expected %s %s with %d element%s", k,
                        variant ? "struct variant" : "struct", t->name, t->nitems, t->nitems == 1 ? "" : "s");
    }
  }
  return 0;
}

/* deserialize_struct; variant = 1 for an enum struct-variant payload. */
static int dv_record(jd *d, jtype *t, int variant) {
  lua_State *L = d->L;
  int c = ws(d), r, base, top, j, nn = 0;
  if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
  if (c != '[' && c != '{') {
    char expecting[160];
    snprintf(expecting, sizeof expecting, "%s %s", variant ? "struct variant" : "struct", t->name);
    return invalid_type(d, expecting);
  }
  if (enter(d)) return -1;
  d->i++;
  /* The fields' key/value pairs collect on the stack; the table is made at the end with
   * room for the non-nil ones only (Lua stores no node for a nil value, so a record
   * with absent options would otherwise carry empty nodes). */
  luaL_checkstack(L, 2 * t->nitems + 8, "json_decode");
  base = lua_gettop(L);
  if (c == '[') {
    r = record_seq(d, t, variant);
    d->depth++;
    if (r) { end_seq(d, 0); fix_pos(d); return -1; }
    if (end_seq(d, 1)) return -1;
  } else {
    r = record_map(d, t);
    d->depth++;
    if (r) { end_map(d, 0); fix_pos(d); return -1; }
    if (end_map(d, 1)) return -1;
  }
  top = lua_gettop(L);
  for (j = base + 2; j <= top; j += 2) nn += !lua_isnil(L, j);
  lua_createtable(L, 0, nn);
  for (j = base + 1; j < top; j += 2) {
    if (lua_isnil(L, j + 1)) continue;
    lua_pushvalue(L, j);
    lua_pushvalue(L, j + 1);
    lua_rawset(L, -3);
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  if (t->check_ref && run_check(d, t->check_ref)) return -1;
  return 0;
}

#define LIST_STACK 32

static int dv_list(jd *d, jtype *t) {
  lua_State *L = d->L;
  int c = ws(d), first = 1, r, tbl, base;
  lua_Integer k = 0;
  if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
  if (c != '[') return invalid_type(d, "a sequence");
  if (enter(d)) return -1;
  d->i++;
  luaL_checkstack(L, 8, "json_decode");
  if (t->kind == JK_BYTES) {
    dbuf *b = &d->st->bytes;
    jtype u8t;
    memset(&u8t, 0, sizeof u8t);
    u8t.kind = JK_U8;
    u8t.max = 255;
    b->len = 0;
    for (;;) {
      lua_Integer v;
      unsigned char ch;
      r = seq_next(d, &first);
      if (r < 0) { d->depth++; return -1; }
      if (!r) break;
      if (read_int(d, &u8t, &v)) { r = -1; break; }
      ch = (unsigned char)v;
      dbuf_add(d, b, &ch, 1);
    }
    d->depth++;
    if (r < 0) { end_seq(d, 0); fix_pos(d); return -1; }
    if (end_seq(d, 1)) return -1;
    lua_pushlstring(L, (const char *)b->p, b->len);
    return 0;
  }
  /* The first LIST_STACK elements wait on the stack so that short lists get a table of
   * exactly their size (no 1 -> 2 -> 4 array growth); longer lists spill into a table. */
  base = lua_gettop(L);
  tbl = 0;
  luaL_checkstack(L, LIST_STACK + 8, "json_decode");
  for (;;) {
    r = seq_next(d, &first);
    if (r <= 0) break;
    if (!tbl && k == LIST_STACK) {
      lua_Integer j;
      lua_createtable(L, 2 * LIST_STACK, 0);
      lua_insert(L, base + 1);
      tbl = base + 1;
      for (j = k; j >= 1; j--) lua_rawseti(L, tbl, j);
    }
    if (dv(d, t->of)) { r = -1; break; }
    ++k;
    if (tbl) lua_rawseti(L, tbl, k);
  }
  d->depth++;
  if (r < 0) { end_seq(d, 0); fix_pos(d); return -1; }
  if (end_seq(d, 1)) return -1;
  if (!tbl) {
    lua_Integer j;
    lua_createtable(L, (int)k, 0);
    lua_insert(L, base + 1);
    tbl = base + 1;
    for (j = k; j >= 1; j--) lua_rawseti(L, tbl, j);
  }
  lua_settop(L, tbl);
  return 0;
}

static jitem *find_variant(jtype *t, const unsigned char *s, size_t n) {
  int k;
  for (k = 0; k < t->nitems; k++)
    if (t->items[k].len == n && memcmp(t->items[k].name, s, n) == 0) return &t->items[k];
  return NULL;
}

static int unknown_variant(jd *d, jtype *t, const unsigned char *s, size_t n) {
  err_custom(d, "unknown variant `%.*s`, expected %s", (int)n, (const char *)s, t->variant_list);
  fix_pos(d);
  return -1;
}

static int dv_enum(jd *d, jtype *t) {
  lua_State *L = d->L;
  int c = ws(d);
  const unsigned char *s;
  size_t n;
  jitem *v;
  if (c == '"') {
    d->i++;
    if (parse_str(d, 1, &s, &n)) { fix_pos(d); return -1; }
    v = find_variant(t, s, n);
    if (!v) return unknown_variant(d, t, s, n);
    if (v->type) {
      return err_custom(d, "invalid type: unit variant, expected %s",
                        v->type->kind == JK_RECORD ? "struct variant" : "newtype variant");
    }
    push_ref(d, v->name_ref);
  } else if (c == '{') {
    if (enter(d)) return -1;
    d->i++;
    c = ws(d);
    if (c < 0) { d->depth++; return PEEK_ERR(d, "EOF while parsing a value"); }
    if (c != '"') { d->depth++; return invalid_type(d, "variant identifier"); }
    d->i++;
    if (parse_str(d, 1, &s, &n)) { d->depth++; fix_pos(d); return -1; }
    v = find_variant(t, s, n);
    if (!v) { d->depth++; return unknown_variant(d, t, s, n); }
    if (object_colon(d)) { d->depth++; return -1; }
    if (!v->type) {
      c = ws(d);
      if (c == 'n') {
        d->i++;
        if (parse_ident(d, "ull")) { d->depth++; return -1; }
      } else if (c < 0) {
        d->depth++;
        return PEEK_ERR(d, "EOF while parsing a value");
      } else {
        d->depth++;
        return invalid_type(d, "unit");
      }
      push_ref(d, v->name_ref);
    } else {
      luaL_checkstack(L, 4, "json_decode");
      lua_createtable(L, 0, 1);
      push_ref(d, v->name_ref);
      if (v->type->kind == JK_RECORD ? dv_record(d, v->type, 1) : dv(d, v->type)) {
        d->depth++;
        return -1;
      }
      lua_rawset(L, -3);
    }
    d->depth++;
    c = ws(d);
    if (c == '}') d->i++;
    else if (c >= 0) return ERR(d, "expected value");
    else return ERR(d, "EOF while parsing an object");
  } else if (c < 0) {
    return PEEK_ERR(d, "EOF while parsing a value");
  } else {
    return PEEK_ERR(d, "expected value");
  }
  if (v->check_ref && run_check(d, v->check_ref)) return -1;
  return 0;
}

/* Lower-case hyphenated already (the writer's form): no re-formatting needed. */
static int is_canonical_uuid(const unsigned char *s) {
  static unsigned char ok[256];   /* 1 = lower-case hex digit */
  int k;
  if (!ok['a']) {
    const char *h = "0123456789abcdef";
    for (; *h; h++) ok[(unsigned char)*h] = 1;
  }
  for (k = 0; k < 36; k++) {
    if (k == 8 || k == 13 || k == 18 || k == 23) { if (s[k] != '-') return 0; }
    else if (!ok[s[k]]) return 0;
  }
  return 1;
}

static int dv(jd *d, jtype *t) {
  lua_State *L = d->L;
  int c;
  switch (t->kind) {
    case JK_U8: case JK_U16: case JK_U32: case JK_U64: case JK_I32: {
      lua_Integer v;
      if (read_int(d, t, &v)) return -1;
      lua_pushinteger(L, v);
      return 0;
    }
    case JK_BOOL:
      c = ws(d);
      if (c == 't') { d->i++; if (parse_ident(d, "rue")) return -1; lua_pushboolean(L, 1); return 0; }
      if (c == 'f') { d->i++; if (parse_ident(d, "alse")) return -1; lua_pushboolean(L, 0); return 0; }
      if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
      return invalid_type(d, "a boolean");
    case JK_STRING: case JK_ID: {
      const unsigned char *s;
      size_t n;
      c = ws(d);
      if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
      if (c != '"') return invalid_type(d, t->kind == JK_ID ? "a formatted UUID string" : "a string");
      d->i++;
      if (parse_str(d, 1, &s, &n)) { fix_pos(d); return -1; }
      if (t->kind == JK_ID) {
        char out[37], err[256];
        if (n == 36 && is_canonical_uuid(s)) {
          lua_pushlstring(L, (const char *)s, 36);
          return 0;
        }
        if (!aqs_uuid_text((const char *)s, n, out, err, sizeof err)) {
          err_custom(d, "UUID parsing failed: %s", err);
          fix_pos(d);
          return -1;
        }
        lua_pushlstring(L, out, 36);
      } else {
        lua_pushlstring(L, (const char *)s, n);
      }
      return 0;
    }
    case JK_BYTES: case JK_LIST:
      return dv_list(d, t);
    case JK_OPTION:
      c = ws(d);
      if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
      if (c == 'n') {
        d->i++;
        if (parse_ident(d, "ull")) return -1;
        lua_pushnil(L);
        return 0;
      }
      return dv(d, t->of);
    case JK_RECORD:
      return dv_record(d, t, 0);
    case JK_ENUM:
      return dv_enum(d, t);
    default:
      return err_custom(d, "json_decode: unsupported schema kind %d", t->kind);
  }
}

/* json_decode(payload, schema) -> value | nil, message, line, column */
int aqs_json_decode(lua_State *L) {
  size_t n;
  const char *s = aqs_payload_buffer(L, 1, &n);   /* frame_read's {buffer = true} */
  jschema *sc;
  jd d;
  dstate *st;
  int top;
  if (!s) s = luaL_checklstring(L, 1, &n);
  luaL_argexpected(L, luaL_testudata(L, 2, AQS_JSCHEMA_MT) || lua_istable(L, 2), 2, "schema");
  lua_settop(L, 2);
  sc = aqs_json_schema_at(L, 2);
  aqs_json_push_refs(L, 2);                 /* 3: refs */
  st = (dstate *)lua_newuserdatauv(L, sizeof(dstate), 0);   /* 4: state (freed by __gc) */
  memset(st, 0, sizeof *st);
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  memset(&d, 0, sizeof d);
  d.L = L; d.s = (const unsigned char *)s; d.n = n; d.i = 0; d.depth = 128;
  d.refs = 3; d.st = st; d.errpos = NOPOS;
  top = lua_gettop(L);
  /* Decoding allocates almost no garbage: pausing the incremental collector saves it
   * from re-traversing the growing document (a large part of the decode time). */
  d.gc_was_running = lua_gc(L, LUA_GCISRUNNING);
  if (d.gc_was_running) lua_gc(L, LUA_GCSTOP);
  if (dv(&d, sc->root) == 0) {
    int c = ws(&d);
    if (d.gc_was_running) lua_gc(L, LUA_GCRESTART);
    if (c < 0) {
      lua_replace(L, 1);
      lua_settop(L, 1);
      return 1;
    }
    PEEK_ERR(&d, "trailing characters");
  } else if (d.gc_was_running) {
    lua_gc(L, LUA_GCRESTART);
  }
  fix_pos(&d);
  lua_settop(L, top);
  {
    size_t line = 1, col = 0, k, pos = d.errpos > n ? n : d.errpos;
    for (k = 0; k < pos; k++) {
      if (s[k] == '\n') { line++; col = 0; } else col++;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "%s at line %I column %I", (const char *)st->msg.p, (lua_Integer)line, (lua_Integer)col);
    lua_pushinteger(L, (lua_Integer)line);
    lua_pushinteger(L, (lua_Integer)col);
    return 4;
  }
}
