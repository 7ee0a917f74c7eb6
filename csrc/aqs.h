/*
 * aqs.h - declarations shared by the C files of actionqueue.storage.core.
 * Each C file has one job; core.c assembles the module from their functions.
 */
#ifndef AQS_H
#define AQS_H

#include <lua.h>
#include <lauxlib.h>

#define AQS_VERSION "0.1.0"

/* Module functions, one group per file (keep in the order of core.c's table). */

/* Metatable set-up for userdata types, called once from luaopen. */

#endif
