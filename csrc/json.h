/*
 * json.h - declarations shared by the JSON codec files (json_decode.c, json_encode.c,
 * verdict.c): skim mode and streamed payloads.  The compiled schema they walk is
 * schema.h's.
 */
#ifndef AQS_JSON_H
#define AQS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "schema.h"

/* ---- skim mode and streamed payloads (the verdict path, verdict.c) ----------------- */

/* The value of one field as seen in skim mode: nothing is built, the hooks read these. */
typedef struct {
  uint64_t u;               /* integer, bool 0/1, enum variant index, string/list length */
  unsigned char id[16];     /* id value (UUID bytes) */
  unsigned char present;    /* a non-null value was read */
  unsigned char empty_elem; /* list of strings: an element was "" */
} jcap;
#define JCAP_MAX 16         /* fields captured per record (the rest are only checked) */

/* Called when a record (type vk != 0) or an enum variant (item vk != 0) has been read
 * completely: 0, or -1 with a decode-time validation text in msg (a decode error). */
typedef struct {
  int (*record_end)(void *ud, const jtype *t, const jcap *caps, char *msg, size_t msgsz);
  int (*variant_end)(void *ud, const jtype *t, const jitem *v, const jcap *caps,
                     char *msg, size_t msgsz);
  /* an id element of a captured list of ids (DependencyDeclaration.depends_on) */
  void (*list_id)(void *ud, const unsigned char id[16]);
  /* building (optional): the expected length of a list of `list->of` (e.g. a count the
   * document declared earlier, bounded by its size), 0 = unknown: the Lua table is made
   * that size up front (no growth by doubling, no slack) */
  size_t (*list_hint)(void *ud, const jtype *list);
} jhooks;

/* A payload read from a descriptor in chunks; the CRC is computed on the same pass. */
typedef struct {
  int fd;
  uint64_t left;        /* payload bytes not read yet */
  uint64_t got;         /* payload bytes read */
  uint32_t crc;
  int read_errno;       /* errno of a failed read (0 = none) */
  /* optional: every chunk read is also handed to copy (e.g. an AtomicWriter) */
  void (*copy)(void *ud, const unsigned char *p, size_t n);
  void *copy_ud;
  struct jemit *emit;   /* optional (skim mode): the canonical encoding is emitted to it
                           (transcode.h) */
  int stop_noncanon;    /* skim mode: give up at the first non-canonical list element */
  int gave_up;          /* out: it did (nothing is judged; the rest was not read) */
  int canonical;        /* out (skim mode): the payload is exactly its canonical encoding
                           (compact, schema key order, every field, canonical ids, no
                           escapes, unit variants as strings) */
} jstream;

/* Decodes the payload of s with the schema at stack index sidx.  hk != NULL: skim mode
 * (nothing built, the hooks see the records); hk == NULL: the value is built.
 * The rest of the payload is always read through the CRC (s->left = 0 afterwards
 * unless the descriptor ended early or failed: s->read_errno, s->got).
 * Returns 1 with the value pushed (building) / nothing pushed (skim) on success,
 * 0 with message, line, column pushed on a decode error.  Restores the collector on
 * every path (errors are re-raised after that). */
int aqs_json_decode_stream(lua_State *L, int sidx, jstream *s, const jhooks *hk, void *ud);
/* The same with the modes apart: the payload comes from src (streamed) or, src == NULL,
 * from buf[0..n); build = 1 builds the value while the hooks (optional) also see the
 * records (they then replace the schema's Lua check functions: verdict.c implements
 * every one of them), build = 0 is skim mode (hk required). */
int aqs_json_decode_hooked(lua_State *L, int sidx, jstream *src, const char *buf, size_t n,
                           const jhooks *hk, void *ud, int build);

#endif
