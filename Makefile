# actionqueue-storage: build, test and tooling entry points.
# Everything runs under Lua 5.4 (Debian's /usr/bin/lua is 5.1).

LUA        ?= lua5.4
BUSTED     ?= busted
LUACHECK   ?= luacheck
CC         ?= cc
LUA_INC    ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Wpedantic -Werror=implicit-function-declaration
ALL_CFLAGS := -std=c99 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) $(LUA_INC)
LDLIBS     := -lz

SRCS       := $(sort $(wildcard csrc/*.c))
HDRS       := $(wildcard csrc/*.h)
BUILD      ?= build
MODULE     := $(BUILD)/actionqueue/storage/core.so

DEB_PKGS   := lua5.4 liblua5.4-dev lua-cjson zlib1g-dev luarocks lua-busted lua-argparse \
              lua-filesystem lua-term lua-penlight lua-check lua-ldoc pkg-config gcc make
DEB_EXTRA  := clang libclang-rt-14-dev valgrind

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all build deps test lint spec demo bench sanitize valgrind install docs repl clean fuzz crash faults

all: build

build: $(MODULE)

$(MODULE): $(SRCS) $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(SRCS) $(LDFLAGS) $(LDLIBS)

# Installs the Debian packages when run as root, otherwise prints the exact command.
deps:
	@missing=""; for p in $(DEB_PKGS) $(DEB_EXTRA); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	else echo "deps: run as root:  apt-get install -y$$missing"; exit 1; fi

lint:
	$(LUACHECK) -q lua spec scripts/aqstore bench

spec: build
	@$(LUA) spec/support/run_busted.lua

test: deps build
	@$(LUA) spec/support/run_tests.lua

demo: deps build
	@sh examples/demo.sh

bench: build
	@for b in bench/*.lua; do echo "== $$b"; $(LUA) $$b || exit 1; done

install: deps
	luarocks --lua-version 5.4 make --deps-mode none rockspec/actionqueue-storage-scm-1.rockspec

docs:
	ldoc -c docs/config.ld .

repl: build
	@scripts/aqstore repl $(FILE)

clean:
	rm -rf build build-* docs/html
