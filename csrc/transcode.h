/*
 * transcode.h - the canonical emitter json_decode.c drives in skim mode (transcode.c),
 * and the pieces of the canonical encoder (json_encode.c) it shares.
 *
 * While the skim parser reads a document, every value it accepts is written in its
 * canonical form (snapshot-format.md 4.1: compact, schema key order, `null` for absent
 * optionals, defaults filled in, canonical ids, the reference's escaping).  A field that
 * arrives before the fields it follows in schema order is held (its canonical bytes
 * stay in the emitter's buffer) and put in place when its record ends; everything before
 * the first held byte goes on to the sink in chunks.  Memory is bounded by what has to
 * be reordered, not by the document.
 */
#ifndef AQS_TRANSCODE_H
#define AQS_TRANSCODE_H

#include "json.h"

/* A growable output buffer (the encoder's too). */
typedef struct {
  char *p;
  size_t len, cap;
} aqs_obuf;

/* json_encode.c: appends the canonical encoding of the Lua value at idx (of type t) to b;
 * 0, or -1 with the encoder's message pushed. */
int aqs_json_encode_append(lua_State *L, int idx, jtype *t, aqs_obuf *b);
/* json_encode.c: the canonical encoding of the value at idx with the compiled schema at
 * sidx in a buffer owned by a userdata it pushes; NULL with the encoder's message pushed
 * above that userdata on failure. */
aqs_obuf *aqs_json_encode_owned(lua_State *L, int idx, int sidx);
/* json_encode.c: appends s as a JSON string with the reference's escaping. */
void aqs_json_string_append(lua_State *L, aqs_obuf *b, const unsigned char *s, size_t n);

typedef struct jemit jemit;

/* Pushes a new emitter (a userdata freed by __gc) that flushes to the AtomicWriter at
 * stack index writer (inside begin_frame). */
jemit *aqs_tx_new(lua_State *L, int writer);
/* Hands what is left to the writer; 0, or -1 when a write failed (the writer keeps the
 * failure and repeats it to its next caller). */
int aqs_tx_finish(jemit *e);

/* Calls made by the decoder, in document order. */
void aqs_tx_raw(jemit *e, const char *s, size_t n);
void aqs_tx_string(jemit *e, const unsigned char *s, size_t n);  /* escaped as needed */
void aqs_tx_plain(jemit *e, const unsigned char *s, size_t n);   /* needs no escape */
void aqs_tx_id(jemit *e, const char text[36]);                 /* canonical text */
void aqs_tx_list_begin(jemit *e);
void aqs_tx_list_elem(jemit *e, uint64_t index);               /* before element index (0-based) */
void aqs_tx_list_end(jemit *e);
void aqs_tx_record_begin(jemit *e, const jtype *t);
void aqs_tx_field(jemit *e, int k);                            /* before field k's value */
void aqs_tx_field_end(jemit *e, int k);
void aqs_tx_default(jemit *e, int k, int idx);                 /* field k absent: its default at idx */
void aqs_tx_record_end(jemit *e);
void aqs_tx_variant_begin(jemit *e, const jitem *v);           /* `{"Name":` */
void aqs_tx_variant_end(jemit *e);                             /* `}` */

#endif
