/*
 * json_decode.c - schema-driven streaming JSON decoder emulating the reference's JSON
 * layer (serde_json 1.0.149 + serde derive): same accepted inputs, same error texts and
 * positions (snapshot-format.md 4.2, 4.3).  It walks the compiled schema (schema.h) while
 * parsing and builds the Lua representation directly.
 *
 * json_decode(payload, schema) -> value | nil, message, line, column
 *   message is serde's text followed by " at line L column C".
 *   `schema` is a compiled Schema (core.schema, schema.h) or a schema type table.
 *
 * Error positions follow serde_json: "peek" errors point at the byte looked at, other
 * errors at the bytes consumed; errors raised without a position (custom/derive errors)
 * get the position of the innermost enclosing struct/sequence once it has looked for its
 * closing bracket.  Ignored values (unknown keys) are skipped iteratively, with no depth
 * limit; known structures obey serde_json's recursion limit of 128.
 */
#include "json.h"
#include "transcode.h"
#include "io.h"

#include <errno.h>
#include <limits.h>
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
  dbuf win;       /* streamed payload: the window of bytes being parsed */
} dstate;

/* Streamed payloads are read CHUNK bytes at a time; parsed bytes are dropped from the
 * window at safe points (list elements, ignored values) once SLIDE bytes are behind. */
#define CHUNK 65536
#define SLIDE 65536

typedef struct {
  lua_State *L;
  const unsigned char *s;
  size_t n, i;
  int depth;        /* remaining recursion budget */
  int refs;         /* stack index of the refs table */
  dstate *st;
  int failed;
  size_t errpos;    /* NOPOS while unpositioned */
  jstream *src;     /* streamed payload (NULL: the whole payload is s[0..n)) */
  uint64_t base;    /* payload offset of s[0] */
  uint64_t lines;   /* newlines in the dropped bytes s had before base */
  uint64_t last_nl; /* payload offset + 1 of the last dropped newline (0 = none) */
  const jhooks *hk; /* the hooks see the records (their fields' values) */
  int skim;         /* nothing is built (the hooks alone see the values) */
  int noncanon;     /* skim mode: something differs from the canonical encoding */
  void *hud;
  jemit *em;        /* skim mode, optional: the canonical encoding is emitted (transcode.c) */
} jd;

/* Transcoding: the emitter sees every accepted value (skim mode only). */
#define EMIT(d, call) do { if ((d)->em) call; } while (0)

/* A string parse_str left in the window had no escape: its bytes need none either
 * (no quote, backslash or control character), so its canonical text is itself. */
static int in_window(const jd *d, const unsigned char *s) {
  uintptr_t p = (uintptr_t)s, a = (uintptr_t)d->s;
  return p >= a && p < a + d->n;
}

/* ---- buffers and errors -------------------------------------------------------- */

static int state_gc(lua_State *L) {
  dstate *st = (dstate *)lua_touserdata(L, 1);
  free(st->scratch.p); free(st->bytes.p); free(st->stack.p); free(st->msg.p); free(st->win.p);
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

/* ---- the streamed source ---------------------------------------------------------- */

/* Appends the next chunk of a streamed payload to the window (the CRC goes along);
 * 1 = bytes added, 0 = the payload (or the descriptor) has ended. */
static int more(jd *d) {
  jstream *src = d->src;
  dbuf *w;
  size_t want;
  int64_t r;
  if (!src || src->left == 0 || src->read_errno) return 0;
  w = &d->st->win;
  want = src->left < CHUNK ? (size_t)src->left : CHUNK;
  if (!dbuf_reserve(w, want)) luaL_error(d->L, "json_decode: out of memory");
  /* the reserve may have moved the window: d->s must follow it even when the read
   * below fails, since the error path still scans the window for line and column */
  d->s = w->p;
  r = aqs_read_full(src->fd, w->p + w->len, want, -1);
  if (r < 0) { src->read_errno = errno ? errno : EIO; return 0; }
  if (r == 0) { src->read_errno = -1; return 0; }   /* ended early: short payload */
  src->crc = aqs_crc32_update(src->crc, w->p + w->len, (size_t)r);
  if (src->copy) src->copy(src->copy_ud, w->p + w->len, (size_t)r);
  src->got += (uint64_t)r;
  src->left -= (uint64_t)r;
  w->len += (size_t)r;
  d->s = w->p;
  d->n = w->len;
  return 1;
}

/* At least one byte at d->i (reading more when the window is used up). */
static inline int avail(jd *d) {
  return d->i < d->n || more(d);
}

/* At least k bytes at d->i. */
static int need(jd *d, size_t k) {
  while (d->n - d->i < k) if (!more(d)) return 0;
  return 1;
}

/* Drops the parsed bytes before d->i from the window.  Only called where no index
 * into the window is held (the start of a list element or of an ignored value). */
static void slide(jd *d) {
  dbuf *w;
  const unsigned char *p, *e;
  if (!d->src || d->i < SLIDE || d->failed) return;
  /* wait until little is left to move, unless the window keeps growing */
  if (d->n - d->i > 4096 && d->i < 8 * SLIDE) return;
  w = &d->st->win;
  /* line/column of later errors: count the dropped newlines */
  for (p = w->p, e = w->p + d->i; (p = (const unsigned char *)memchr(p, '\n', (size_t)(e - p))) != NULL; p++) {
    d->lines++;
    d->last_nl = d->base + (uint64_t)(p - w->p) + 1;
  }
  memmove(w->p, w->p + d->i, w->len - d->i);
  w->len -= d->i;
  d->base += d->i;
  d->i = 0;
  d->n = w->len;
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

/* A custom error whose text holds bytes of the input (which may include NUL bytes):
 * pre, the bytes, post, post2; no position yet (like err_custom). */
static int err_custom_bytes(jd *d, const char *pre, const void *mid, size_t midn, const char *post,
                            const char *post2) {
  dbuf *m = &d->st->msg;
  m->len = 0;
  dbuf_add(d, m, pre, strlen(pre));
  dbuf_add(d, m, mid, midn);
  dbuf_add(d, m, post, strlen(post));
  dbuf_add(d, m, post2, strlen(post2) + 1);   /* + NUL: the text stays a C string too */
  m->len--;
  d->failed = 1;
  d->errpos = NOPOS;
  return -1;
}

/* serde_json `error`: position of the bytes consumed. */
#define ERR(d, msg) err_at((d), (d)->i, "%s", (msg))
/* serde_json `peek_error`: position of the byte looked at. */
#define PEEK_ERR(d, msg) err_at((d), avail(d) ? (d)->i + 1 : (d)->n, "%s", (msg))

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
static int ws_slow(jd *d) {
  for (;;) {
    while (d->i < d->n) {
      unsigned char c = d->s[d->i];
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r') { d->i++; d->noncanon = 1; }
      else return c;
    }
    if (!more(d)) return -1;
  }
}

/* Compact documents have no whitespace: the next byte is the token. */
static inline int ws(jd *d) {
  if (d->i < d->n) {
    unsigned char c = d->s[d->i];
    if (c > ' ') return c;
  }
  return ws_slow(d);
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int peek_slow(jd *d) { return avail(d) ? d->s[d->i] : 0; }
static inline int peek_or_null(jd *d) { return d->i < d->n ? d->s[d->i] : peek_slow(d); }

static int parse_ident(jd *d, const char *rest) {
  size_t k = strlen(rest), j;
  for (j = 0; j < k && d->i + j < d->n && d->s[d->i + j] == (unsigned char)rest[j]; j++) {}
  if (j == k) {   /* the common case */
    d->i += k;
    return 0;
  }
  for (; *rest; rest++) {
    if (!avail(d)) return ERR(d, "EOF while parsing a value");
    if (d->s[d->i++] != (unsigned char)*rest) return ERR(d, "expected ident");
  }
  return 0;
}

static int hex4(jd *d, unsigned *out) {
  unsigned v = 0;
  int k;
  if (!need(d, 4)) {
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
    if (!avail(d)) return ERR(d, "EOF while parsing a string");
    if (d->s[d->i] == '\\') d->i++;
    else {
      if (validate) { d->i++; return ERR(d, "unexpected end of hex escape"); }
      put_cp(d, n1);
      return 0;
    }
    if (!avail(d)) return ERR(d, "EOF while parsing a string");
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
  if (!avail(d)) return ERR(d, "EOF while parsing a string");
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
    if (t & SW_HIGH) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      /* the lowest flagged byte is exact (little-endian load): skip the plain bytes
       * before it */
      unsigned k = (unsigned)__builtin_ctzll(t & SW_HIGH) >> 3;
      if (k) acc |= x & ((1ULL << (8 * k)) - 1);
      i += k;
#endif
      break;
    }
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
    if (i == n) {
      if (more(d)) continue;
      return ERR(d, "EOF while parsing a string");
    }
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
      d->noncanon = 1;
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
    if (i == n) {
      if (more(d)) continue;
      return ERR(d, "EOF while parsing a string");
    }
    if (s[i] == '"') { d->i = i + 1; return 0; }
    if (s[i] == '\\') {
      unsigned char c;
      d->i = i + 1;
      if (!avail(d)) return ERR(d, "EOF while parsing a string");
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
      if (avail(d)) return PEEK_ERR(d, "invalid number");
      return PEEK_ERR(d, "EOF while parsing a value");
    }
  }
  if (peek_or_null(d) == 'e' || peek_or_null(d) == 'E') {
    d->i++;
    if (peek_or_null(d) == '+' || peek_or_null(d) == '-') d->i++;
    if (!avail(d)) return ERR(d, "EOF while parsing a value");
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
  if (!avail(d)) return ERR(d, "EOF while parsing a value");
  c = d->s[d->i++];
  if (c == '0') {
    if (is_digit(peek_or_null(d))) return PEEK_ERR(d, "invalid number");
    sig = 0;
  } else if (c >= '1' && c <= '9') {
    sig = (uint64_t)(c - '0');
    for (;;) {
      const unsigned char *s = d->s;
      size_t i = d->i, n = d->n, fast = n - i < 18 ? n : i + 18;
      /* 19 digits cannot overflow: no check for the first 18 after the first digit */
      if (sig < 10) while (i < fast && is_digit(s[i])) sig = sig * 10 + (uint64_t)(s[i++] - '0');
      while (i < n && is_digit(s[i])) {
        uint64_t dg = (uint64_t)(s[i] - '0');
        if (sig >= UINT64_MAX / 10 && (sig > UINT64_MAX / 10 || dg > UINT64_MAX % 10)) {
          d->i = i;
          return parse_float_tail(d, start, out);
        }
        i++;
        sig = sig * 10 + dg;
      }
      d->i = i;
      if (i < n || !more(d)) break;
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

static int dv(jd *d, jtype *t, jcap *c);

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
  int c = peek_or_null(d);
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
  const char *name;
  if (c >= '1' && c <= '9') {
    /* the common case: a plain positive integer of at most 19 digits, wholly in the
     * window and in range; anything else (and every error) takes the general path */
    const unsigned char *s = d->s;
    size_t i = d->i, n = d->n, j = i, lim = n - i > 19 ? i + 19 : n;
    uint64_t v = 0;
    while (j < lim && is_digit(s[j])) v = v * 10 + (uint64_t)(s[j++] - '0');
    if (j < n && j - i < 19 && s[j] != '.' && s[j] != 'e' && s[j] != 'E' && !is_digit(s[j])
        && (t->kind == JK_U64 || v <= (uint64_t)t->max)) {
      d->i = j;
      *out = (lua_Integer)v;
      return 0;
    }
  }
  name = aqs_kind_name(t->kind);
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
static int seq_next_slow(jd *d, int *first);

static inline int seq_next(jd *d, int *first) {
  if (d->i + 1 < d->n) {   /* compact documents: `,` then the element, or the first one */
    unsigned char c = d->s[d->i];
    if (*first) {
      if (c > ' ' && c != ']' && c != ',') {
        *first = 0;
        if (d->src && d->i >= SLIDE) slide(d);
        return 1;
      }
    } else if (c == ',') {
      unsigned char c2 = d->s[d->i + 1];
      if (c2 > ' ' && c2 != ']') {
        d->i++;
        if (d->src && d->i >= SLIDE) slide(d);
        return 1;
      }
    }
  }
  return seq_next_slow(d, first);
}

static int seq_next_slow(jd *d, int *first) {
  int c;
  if (d->src && d->i >= SLIDE) slide(d);
  c = ws(d);
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

static int object_colon_slow(jd *d) {
  int c = ws(d);
  if (c == ':') { d->i++; return 0; }
  if (c >= 0) return PEEK_ERR(d, "expected `:`");
  return PEEK_ERR(d, "EOF while parsing an object");
}

static inline int object_colon(jd *d) {
  if (d->i < d->n && d->s[d->i] == ':') { d->i++; return 0; }
  return object_colon_slow(d);
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
    int c, frame = 0, accept_comma;
    slide(d);
    c = ws(d);
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
          if (!avail(d)) { ERR(d, "invalid number"); goto out; }
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
            if (!avail(d) || !is_digit(d->s[d->i])) {
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
  lua_call(L, 1, 1);   /* a raising check unwinds to decode_driver's pcall */
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

/* Short field names: a plain loop beats a memcmp call. */
static inline int same_bytes(const unsigned char *a, const char *b, size_t n) {
  uint64_t x, y;
  size_t k = 0;
  if (n < 8) {
    for (; k < n; k++) if (a[k] != (unsigned char)b[k]) return 0;
    return 1;
  }
  for (; k + 8 < n; k += 8) {
    memcpy(&x, a + k, 8);
    memcpy(&y, b + k, 8);
    if (x != y) return 0;
  }
  memcpy(&x, a + n - 8, 8);
  memcpy(&y, b + n - 8, 8);
  return x == y;
}

/* Transcoding: an absent field with a default is emitted as its default's encoding. */
static void emit_default(jd *d, jitem *f, int k) {
  luaL_checkstack(d->L, 4, "json_decode");
  push_default(d, f);
  aqs_tx_default(d->em, k, -1);
  lua_pop(d->L, 1);
}

static int record_map(jd *d, jtype *t, jcap *caps) {
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
        if ((d->n - d->i > h->len || need(d, h->len + 1)) && d->s[d->i + h->len] == '"'
            && same_bytes(d->s + d->i, h->name, h->len)) {
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
    d->noncanon = 1;   /* a key out of schema order, escaped or unknown */
  found:
    if (f) {
      hint = k + 1;
      if (seen & ((uint64_t)1 << k)) return err_custom(d, "duplicate field `%s`", f->name);
      seen |= (uint64_t)1 << k;
      if (object_colon(d)) return -1;
      if (d->skim) {
        EMIT(d, aqs_tx_field(d->em, k));
        /* skim: an absent optional value is the most common one; nothing to capture */
        if (f->type->kind == JK_OPTION && d->n - d->i >= 4 && d->s[d->i] == 'n'
            && d->s[d->i + 1] == 'u' && d->s[d->i + 2] == 'l' && d->s[d->i + 3] == 'l') {
          d->i += 4;
          EMIT(d, aqs_tx_raw(d->em, "null", 4));
        } else if (dv(d, f->type, caps && k < JCAP_MAX ? &caps[k] : NULL)) return -1;
        EMIT(d, aqs_tx_field_end(d->em, k));
        continue;
      }
      push_ref(d, f->name_ref);
      if (dv(d, f->type, caps && k < JCAP_MAX ? &caps[k] : NULL)) return -1;
      /* the key/value pair stays on the stack (dv_record) */
    } else {
      if (object_colon(d)) return -1;
      if (ignore_value(d)) return -1;
    }
  }
  for (k = 0; k < t->nitems; k++) {
    jitem *f = &t->items[k];
    if (seen & ((uint64_t)1 << k)) continue;
    d->noncanon = 1;   /* a field left out */
    if (f->dkind == JD_VALUE || f->dkind == JD_FUNC) {
      if (d->skim) {   /* skim: absent (the hooks know the defaults they need) */
        if (d->em) emit_default(d, f, k);
        continue;
      }
      push_ref(d, f->name_ref);
      push_default(d, f);
      /* the key/value pair stays on the stack (dv_record) */
    } else if (f->dkind == JD_NONE && f->type->kind != JK_OPTION) {
      return err_custom(d, "missing field `%s`", f->name);
    }
  }
  return 0;
}

static int record_seq(jd *d, jtype *t, int variant, jcap *caps) {
  int first = 1, k;
  d->noncanon = 1;   /* a record written as an array */
  for (k = 0; k < t->nitems; k++) {
    jitem *f = &t->items[k];
    int r = seq_next(d, &first);
    if (r < 0) return -1;
    if (r) {
      if (d->skim) {
        EMIT(d, aqs_tx_field(d->em, k));
        if (dv(d, f->type, caps && k < JCAP_MAX ? &caps[k] : NULL)) return -1;
        EMIT(d, aqs_tx_field_end(d->em, k));
        continue;
      }
      push_ref(d, f->name_ref);
      if (dv(d, f->type, caps && k < JCAP_MAX ? &caps[k] : NULL)) return -1;
      /* the key/value pair stays on the stack (dv_record) */
    } else if (f->dkind == JD_VALUE || f->dkind == JD_FUNC) {
      if (d->skim) {
        if (d->em) emit_default(d, f, k);
        continue;
      }
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

/* With hooks (skim or building): a record is judged by its hook (decode-time checks
 * and the verdict's bookkeeping) from the captured values of its fields. */
static int hook_record_end(jd *d, jtype *t, jcap *caps) {
  char msg[512];
  if (t->vk && d->hk->record_end(d->hud, t, caps, msg, sizeof msg)) return err_custom(d, "%s", msg);
  return 0;
}

/* deserialize_struct; variant = 1 for an enum struct-variant payload.  With hooks:
 * fcaps (optional) receives the fields' values, c (optional) that there is one. */
static int dv_record(jd *d, jtype *t, int variant, jcap *fcaps, jcap *c0) {
  lua_State *L = d->L;
  int c = ws(d), r, base = 0, top, j, nn = 0;
  jcap lcaps[JCAP_MAX], *caps = fcaps;
  if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
  if (c != '[' && c != '{') {
    char expecting[160];
    snprintf(expecting, sizeof expecting, "%s %s", variant ? "struct variant" : "struct", t->name);
    return invalid_type(d, expecting);
  }
  if (enter(d)) return -1;
  d->i++;
  if (d->hk) {
    if (!caps && t->vk) caps = lcaps;
    if (caps) memset(caps, 0, sizeof(jcap) * (size_t)(t->nitems < JCAP_MAX ? t->nitems : JCAP_MAX));
  }
  if (d->skim) {
    EMIT(d, aqs_tx_record_begin(d->em, t));
  } else {
    /* The fields' key/value pairs collect on the stack; the table is made at the end with
     * room for the non-nil ones only (Lua stores no node for a nil value, so a record
     * with absent options would otherwise carry empty nodes). */
    luaL_checkstack(L, 2 * t->nitems + 8, "json_decode");
    base = lua_gettop(L);
  }
  if (c == '[') {
    r = record_seq(d, t, variant, caps);
    d->depth++;
    if (r) { end_seq(d, 0); fix_pos(d); return -1; }
    if (end_seq(d, 1)) return -1;
  } else {
    r = record_map(d, t, caps);
    d->depth++;
    if (r) { end_map(d, 0); fix_pos(d); return -1; }
    if (end_map(d, 1)) return -1;
  }
  if (d->skim) {
    EMIT(d, aqs_tx_record_end(d->em));
  } else {
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
    /* with hooks, they implement the schema's decode-time checks (verdict.c plan_compile) */
    if (!d->hk) return t->check_ref && run_check(d, t->check_ref) ? -1 : 0;
  }
  if (c0) c0->present = 1;
  return caps ? hook_record_end(d, t, caps) : 0;
}

#define LIST_STACK 32

/* With hooks: what a captured list's hook needs of an element (an empty string, ids). */
static void list_elem_seen(jd *d, const jtype *t, jcap *cap, const jcap *ec) {
  if (t->of->kind == JK_STRING && ec->u == 0) cap->empty_elem = 1;
  else if (t->of->kind == JK_ID && d->hk->list_id) d->hk->list_id(d->hud, ec->id);
}

/* Copying a canonical payload (verdict.c): a non-canonical one is given up at the next
 * list element, as an error that is not reported (the caller transcodes instead). */
static int give_up(jd *d) {
  d->src->gave_up = 1;
  return err_custom(d, "not canonical");
}

static int dv_list(jd *d, jtype *t, jcap *cap) {
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
    jtype *u8t = t->of;   /* u8, its range from the table of kinds */
    b->len = 0;
    EMIT(d, aqs_tx_list_begin(d->em));
    for (;;) {
      lua_Integer v;
      unsigned char ch;
      size_t at0;
      r = seq_next(d, &first);
      if (r < 0) { d->depth++; return -1; }
      if (!r) break;
      at0 = d->i;
      if (read_int(d, u8t, &v)) { r = -1; break; }
      ch = (unsigned char)v;
      if (!d->skim) dbuf_add(d, b, &ch, 1);
      EMIT(d, (aqs_tx_list_elem(d->em, (uint64_t)k), aqs_tx_raw(d->em, (const char *)d->s + at0, d->i - at0)));
      k++;
    }
    d->depth++;
    if (r < 0) { end_seq(d, 0); fix_pos(d); return -1; }
    if (end_seq(d, 1)) return -1;
    if (cap) { cap->present = 1; cap->u = (uint64_t)k; }
    EMIT(d, aqs_tx_list_end(d->em));
    if (d->skim) return 0;
    lua_pushlstring(L, (const char *)b->p, b->len);
    return 0;
  }
  if (d->skim) {
    jcap ec;
    EMIT(d, aqs_tx_list_begin(d->em));
    for (;;) {
      r = seq_next(d, &first);
      if (r <= 0) break;
      if (d->noncanon && d->src && d->src->stop_noncanon) { r = give_up(d); break; }
      EMIT(d, aqs_tx_list_elem(d->em, (uint64_t)k));
      ec.present = 0;
      if (dv(d, t->of, cap ? &ec : NULL)) { r = -1; break; }
      ++k;
      if (cap) list_elem_seen(d, t, cap, &ec);
    }
    d->depth++;
    if (r < 0) { end_seq(d, 0); fix_pos(d); return -1; }
    if (end_seq(d, 1)) return -1;
    EMIT(d, aqs_tx_list_end(d->em));
    if (cap) { cap->present = 1; cap->u = (uint64_t)k; }
    return 0;
  }
  /* The first LIST_STACK elements wait on the stack so that short lists get a table of
   * exactly their size (no 1 -> 2 -> 4 array growth); longer lists spill into a table,
   * made at once at the size the hooks expect when they know it. */
  base = lua_gettop(L);
  tbl = 0;
  luaL_checkstack(L, LIST_STACK + 8, "json_decode");
  if (d->hk && d->hk->list_hint) {
    size_t hint = d->hk->list_hint(d->hud, t);
    if (hint > LIST_STACK && hint < (size_t)INT_MAX) {
      lua_createtable(L, (int)hint, 0);
      tbl = lua_gettop(L);
    }
  }
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
    if (cap) {
      jcap ec;
      ec.present = 0;
      if (dv(d, t->of, &ec)) { r = -1; break; }
      list_elem_seen(d, t, cap, &ec);
    } else if (dv(d, t->of, NULL)) { r = -1; break; }
    ++k;
    if (tbl) lua_rawseti(L, tbl, k);
  }
  d->depth++;
  if (r < 0) { end_seq(d, 0); fix_pos(d); return -1; }
  if (end_seq(d, 1)) return -1;
  if (cap) { cap->present = 1; cap->u = (uint64_t)k; }
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
  err_custom_bytes(d, "unknown variant `", s, n, "`, expected ", t->variant_list);
  fix_pos(d);
  return -1;
}

static int dv_enum(jd *d, jtype *t, jcap *cap) {
  lua_State *L = d->L;
  int c = ws(d);
  const unsigned char *s;
  size_t n;
  jitem *v;
  jcap vcaps[JCAP_MAX];
  if (c == '"') {
    d->i++;
    if (parse_str(d, 1, &s, &n)) { fix_pos(d); return -1; }
    v = find_variant(t, s, n);
    if (!v) return unknown_variant(d, t, s, n);
    if (v->type) {
      return err_custom(d, "invalid type: unit variant, expected %s",
                        v->type->kind == JK_RECORD ? "struct variant" : "newtype variant");
    }
    if (!d->skim) push_ref(d, v->name_ref);
    else EMIT(d, aqs_tx_plain(d->em, (const unsigned char *)v->name, v->len));
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
      d->noncanon = 1;   /* {"Unit":null} */
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
      if (!d->skim) push_ref(d, v->name_ref);
      else EMIT(d, aqs_tx_plain(d->em, (const unsigned char *)v->name, v->len));
    } else if (d->skim) {
      int r;
      EMIT(d, aqs_tx_variant_begin(d->em, v));
      if (v->type->kind == JK_RECORD) r = dv_record(d, v->type, 1, v->vk ? vcaps : NULL, NULL);
      else r = dv(d, v->type, NULL);
      if (r) { d->depth++; return -1; }
      EMIT(d, aqs_tx_variant_end(d->em));
    } else {
      jcap *rc = d->hk && v->vk ? vcaps : NULL;
      luaL_checkstack(L, 4, "json_decode");
      lua_createtable(L, 0, 1);
      push_ref(d, v->name_ref);
      if (v->type->kind == JK_RECORD ? dv_record(d, v->type, 1, rc, NULL) : dv(d, v->type, NULL)) {
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
  if (d->hk) {
    /* the hooks implement the variants' decode-time checks (verdict.c plan_compile) */
    char msg[512];
    if (cap) { cap->present = 1; cap->u = (uint64_t)(v - t->items); }
    if (v->vk && d->hk->variant_end(d->hud, t, v, vcaps, msg, sizeof msg)) return err_custom(d, "%s", msg);
    return 0;
  }
  if (v->check_ref && run_check(d, v->check_ref)) return -1;
  return 0;
}

static int dv(jd *d, jtype *t, jcap *cap) {
  lua_State *L = d->L;
  int c;
  switch (t->kind) {
    case JK_U8: case JK_U16: case JK_U32: case JK_U64: case JK_I32: {
      lua_Integer v;
      size_t at0 = d->em && ws(d) >= 0 ? d->i : 0;
      if (read_int(d, t, &v)) return -1;
      if (cap) { cap->present = 1; cap->u = (uint64_t)v; }
      /* an accepted integer's text is its canonical form (no sign on 0, no leading zero) */
      EMIT(d, aqs_tx_raw(d->em, (const char *)d->s + at0, d->i - at0));
      if (d->skim) return 0;
      lua_pushinteger(L, v);
      return 0;
    }
    case JK_BOOL: {
      int b;
      c = ws(d);
      if (c == 't') { d->i++; if (parse_ident(d, "rue")) return -1; b = 1; }
      else if (c == 'f') { d->i++; if (parse_ident(d, "alse")) return -1; b = 0; }
      else if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
      else return invalid_type(d, "a boolean");
      if (!d->skim) lua_pushboolean(L, b);
      EMIT(d, aqs_tx_raw(d->em, b ? "true" : "false", b ? 4 : 5));
      if (cap) { cap->present = 1; cap->u = (uint64_t)b; }
      return 0;
    }
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
        unsigned char b[16];
        if (n == 36 && aqs_uuid_canonical(s, b)) {
          if (!d->skim) lua_pushlstring(L, (const char *)s, 36);
          EMIT(d, aqs_tx_id(d->em, (const char *)s));
          if (cap) { cap->present = 1; memcpy(cap->id, b, 16); }
          return 0;
        }
        size_t errlen = 0;
        if (!aqs_uuid_text((const char *)s, n, out, err, sizeof err, &errlen)) {
          err_custom_bytes(d, "UUID parsing failed: ", err, errlen, "", "");
          fix_pos(d);
          return -1;
        }
        d->noncanon = 1;
        if (!d->skim) lua_pushlstring(L, out, 36);
        EMIT(d, aqs_tx_id(d->em, out));
        if (cap) { cap->present = 1; aqs_uuid_canonical((const unsigned char *)out, cap->id); }
      } else {
        if (!d->skim) lua_pushlstring(L, (const char *)s, n);
        EMIT(d, in_window(d, s) ? aqs_tx_plain(d->em, s, n) : aqs_tx_string(d->em, s, n));
        if (cap) { cap->present = 1; cap->u = (uint64_t)n; }
      }
      return 0;
    }
    case JK_BYTES: case JK_LIST:
      return dv_list(d, t, cap);
    case JK_OPTION:
      c = ws(d);
      if (c < 0) return PEEK_ERR(d, "EOF while parsing a value");
      if (c == 'n') {
        d->i++;
        if (d->n - d->i >= 3 && d->s[d->i] == 'u' && d->s[d->i + 1] == 'l' && d->s[d->i + 2] == 'l') d->i += 3;
        else if (parse_ident(d, "ull")) return -1;
        if (!d->skim) lua_pushnil(L);
        EMIT(d, aqs_tx_raw(d->em, "null", 4));
        return 0;
      }
      return dv(d, t->of, cap);
    case JK_RECORD:
      return dv_record(d, t, 0, NULL, cap);
    case JK_ENUM:
      return dv_enum(d, t, cap);
    default:
      return err_custom(d, "json_decode: unsupported schema kind %d", t->kind);
  }
}

/* The decode itself, run protected (decode_run) so that the collector is restored on
 * every path, also when a memory error or a raising check/default function unwinds
 * the decoder (issue 17.6).  Arguments: jd (light userdata), refs table. */
static int decode_run(lua_State *L) {
  jd *d = (jd *)lua_touserdata(L, 1);
  jschema *sc = (jschema *)lua_touserdata(L, 2);
  d->L = L;
  d->refs = 3;
  if (dv(d, sc->root, NULL) == 0) {
    int c = ws(d);
    if (c < 0) return d->skim ? 0 : 1;
    PEEK_ERR(d, "trailing characters");
  }
  return 0;
}

/* Reads what is left of a streamed payload through the CRC. */
static void drain(jd *d) {
  dbuf *w = &d->st->win;
  if (!d->src || d->src->gave_up) return;
  for (;;) {
    w->len = 0;
    d->i = d->n = 0;
    if (!more(d)) break;
  }
}

/* Decodes with the schema at sidx (compiled) from d's source; see json.h. */
static int decode_driver(lua_State *L, int sidx, jd *d) {
  jschema *sc = aqs_schema_at(L, sidx);
  dstate *st;
  int gc_was_running = 0, status;
  aqs_schema_push_refs(L, sidx);
  st = (dstate *)lua_newuserdatauv(L, sizeof(dstate), 0);   /* freed by __gc */
  memset(st, 0, sizeof *st);
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  d->st = st;
  d->depth = 128;
  d->errpos = NOPOS;
  lua_pushcfunction(L, decode_run);
  lua_pushlightuserdata(L, d);
  lua_pushlightuserdata(L, sc);
  lua_pushvalue(L, -5);          /* refs */
  /* Building allocates almost no garbage: pausing the incremental collector saves it
   * from re-traversing the growing document (a large part of the decode time). */
  if (!d->skim) {
    gc_was_running = lua_gc(L, LUA_GCISRUNNING);
    if (gc_was_running) lua_gc(L, LUA_GCSTOP);
  }
  status = lua_pcall(L, 3, 1, 0);
  if (gc_was_running) lua_gc(L, LUA_GCRESTART);
  if (status != LUA_OK) lua_error(L);
  if (!d->failed) {
    lua_replace(L, -3);          /* value (or nil in skim mode) over refs */
    lua_pop(L, 1);               /* state */
    drain(d);
    if (d->src) d->src->canonical = d->skim && !d->noncanon;
    return 1;
  }
  lua_pop(L, 1);
  fix_pos(d);
  {
    uint64_t line = 1 + d->lines, col;
    size_t k, pos = d->errpos > d->n ? d->n : d->errpos, nl = NOPOS;
    for (k = 0; k < pos; k++) if (d->s[k] == '\n') { line++; nl = k; }
    col = nl != NOPOS ? (uint64_t)(pos - nl - 1) : d->base + pos - d->last_nl;
    lua_pushlstring(L, (const char *)st->msg.p, st->msg.len);
    lua_pushfstring(L, " at line %I column %I", (lua_Integer)line, (lua_Integer)col);
    lua_concat(L, 2);
    lua_pushinteger(L, (lua_Integer)line);
    lua_pushinteger(L, (lua_Integer)col);
    drain(d);
    /* refs, state, message, line, column -> message, line, column */
    lua_rotate(L, -5, 3);
    lua_pop(L, 2);
    return 0;
  }
}

int aqs_json_decode_stream(lua_State *L, int sidx, jstream *src, const jhooks *hk, void *ud) {
  return aqs_json_decode_hooked(L, sidx, src, NULL, 0, hk, ud, hk == NULL);
}

int aqs_json_decode_hooked(lua_State *L, int sidx, jstream *src, const char *s, size_t n,
                           const jhooks *hk, void *ud, int build) {
  jd d;
  memset(&d, 0, sizeof d);
  d.L = L;
  d.src = src;
  d.hk = hk;
  d.skim = !build;
  d.hud = ud;
  d.em = !build && src ? src->emit : NULL;
  d.s = (const unsigned char *)(src ? "" : s);
  d.n = src ? 0 : n;
  return decode_driver(L, lua_absindex(L, sidx), &d);
}

/* json_decode(payload, schema) -> value | nil, message, line, column */
int aqs_json_decode(lua_State *L) {
  size_t n;
  const char *s = aqs_payload_buffer(L, 1, &n);   /* frame_read's {buffer = true} */
  jd d;
  if (!s) s = luaL_checklstring(L, 1, &n);
  luaL_argexpected(L, luaL_testudata(L, 2, AQS_SCHEMA_MT) || lua_istable(L, 2), 2, "schema");
  lua_settop(L, 2);
  memset(&d, 0, sizeof d);
  d.L = L;
  d.s = (const unsigned char *)s;
  d.n = n;
  if (decode_driver(L, 2, &d)) return 1;
  lua_pushnil(L);
  lua_insert(L, -4);
  return 4;
}
