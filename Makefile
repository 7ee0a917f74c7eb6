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
FAULTSHIM  := $(BUILD)/faultshim.so
IOTEST     := build-iotest/actionqueue/storage/core.so
ROCKSPEC   := rockspec/actionqueue-storage-scm-1.rockspec

# Sanitizer build: gcc's runtimes are preloaded into the (uninstrumented) lua5.4.
SAN_CC     ?= gcc
SAN_DIR    := build-asan
SAN_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_LIBS    = $(shell $(SAN_CC) -print-file-name=libasan.so) $(shell $(SAN_CC) -print-file-name=libubsan.so)
# Leak checking stays on; lsan.supp only silences the interpreters' own exit-time blocks.
SAN_ENV     = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
              LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp:print_suppressions=0 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
VALGRIND   ?= valgrind
VG_FLAGS   := --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
              --show-leak-kinds=definite --trace-children=yes \
              --trace-children-skip='*/sh,*/bash,*/dash,*/true,*/cmp,*/rm'

# Debian packages `make deps` installs: one per line, so additions merge cleanly.
DEB_PKGS   :=
DEB_PKGS   += gcc
DEB_PKGS   += jq
DEB_PKGS   += liblua5.4-dev
DEB_PKGS   += lua-argparse
DEB_PKGS   += lua-busted
DEB_PKGS   += lua-check
DEB_PKGS   += lua-cjson
DEB_PKGS   += lua-discount
DEB_PKGS   += lua-filesystem
DEB_PKGS   += lua-ldoc
DEB_PKGS   += lua-penlight
DEB_PKGS   += lua-readline
DEB_PKGS   += lua-term
DEB_PKGS   += lua5.4
DEB_PKGS   += luarocks
DEB_PKGS   += make
DEB_PKGS   += parallel
DEB_PKGS   += pkg-config
DEB_PKGS   += strace
DEB_PKGS   += tmux
DEB_PKGS   += zlib1g-dev
# The reliability harness (fuzzing, valgrind).
DEB_EXTRA  :=
DEB_EXTRA  += clang
DEB_EXTRA  += libclang-rt-14-dev
DEB_EXTRA  += valgrind

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;


.PHONY: all build test-support rockspec rockspec-check pack deps test lint spec demo bench sanitize \
        valgrind install docs repl clean fuzz fuzz-build crash faults

all: build

# The module only: a build never writes outside build/ (and never a tracked file).
build: $(MODULE)

# What the specs need besides the module: the fault shim and the power-loss core.
test-support: $(FAULTSHIM) $(IOTEST)

$(MODULE): $(SRCS) $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(SRCS) $(LDFLAGS) $(LDLIBS)

# LD_PRELOAD fault injection for the specs (env contract at the top of the file).
$(FAULTSHIM): spec/support/faultshim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE -fPIC $(WARN) -O2 -g -shared -o $@ $< -ldl

# Test-only core with the power-loss model (spec/support/powerloss.c, -DAQS_IO_TEST);
# the normal module above never contains the hook.
$(IOTEST): $(SRCS) $(HDRS) spec/support/powerloss.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DAQS_IO_TEST -shared -o $@ $(SRCS) spec/support/powerloss.c $(LDFLAGS) $(LDLIBS)

# The rockspec's module list is derived from csrc/*.c and lua/**/*.lua: `make rockspec`
# rewrites it (commit the result); spec/core_build_spec.lua and `make install` check it.
rockspec:
	@$(LUA) rockspec/update.lua $(ROCKSPEC)

rockspec-check:
	@$(LUA) rockspec/update.lua --check $(ROCKSPEC)

# A .src.rock of the checkout as it is (uncommitted files too), for an offline install:
# luarocks --lua-version 5.4 install --deps-mode none build/actionqueue-storage-scm-1.src.rock
pack: rockspec-check
	@rockspec/pack.sh $(BUILD)

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

spec: build test-support
	@$(LUA) spec/support/run_busted.lua

test: deps build test-support
	@$(LUA) spec/support/run_tests.lua

demo: deps build
	@sh examples/demo.sh

bench: build
	@for b in bench/*.lua; do echo "== $$b"; $(LUA) $$b || exit 1; done

# The busted suite against an ASan+UBSan build of the C module (in $(SAN_DIR)).
sanitize: build test-support
	@mkdir -p $(SAN_DIR)/actionqueue/storage
	$(SAN_CC) -std=c99 -D_GNU_SOURCE -fPIC $(WARN) $(SAN_FLAGS) $(LUA_INC) -shared \
	  -o $(SAN_DIR)/actionqueue/storage/core.so $(SRCS) -lz
	LUA_CPATH='$(CURDIR)/$(SAN_DIR)/?.so;;' LD_PRELOAD='$(SAN_LIBS)' $(SAN_ENV) \
	  $(LUA) /usr/bin/busted --ignore-lua --cpath='$(SAN_DIR)/?.so' $(BUSTED_ARGS)

# The busted suite under memcheck: no errors, no definitely lost blocks.
# AQS_LUA_ALLOC=system: memcheck sees every Lua object as its own block (csrc/lua_alloc.c).
valgrind: build test-support
	AQS_UNDER_VALGRIND=1 AQS_LUA_ALLOC=system $(VALGRIND) $(VG_FLAGS) $(LUA) /usr/bin/busted --ignore-lua $(BUSTED_ARGS)

# libFuzzer targets (fuzz/harness.c + fuzz/<target>.lua, the Lua driver is read at run
# time), one per untrusted decoder. `make fuzz FUZZ_SECONDS=600` runs each for that long;
# crash inputs land in spec/regressions/<target>/, executions in $(FUZZ_DIR)/census.txt.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_DIR     := build-fuzz
FUZZ_TARGETS ?= frame snapshot_json snapshot_verdict wal_postcard wal_stream snapshot_transcode \
                wal_replay snapshot_rules
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined
AQ_FIXTURES  ?= $(firstword $(wildcard $(CURDIR)/../shared/fixtures /work/shared/fixtures))

$(FUZZ_DIR)/fuzz_%: fuzz/harness.c $(SRCS) $(HDRS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) -std=c99 -D_GNU_SOURCE $(FUZZ_FLAGS) $(LUA_INC) -DAQS_FUZZ_TARGET='"$*"' \
	  -DAQS_ROOT='"$(CURDIR)"' -o $@ fuzz/harness.c $(SRCS) -llua5.4 -lz -lm

fuzz-build: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@sh fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(AQ_FIXTURES) $(FUZZ_TARGETS)

# Long reliability loops (make test runs small slices of the same specs).
crash: build test-support
	AQS_RELIABILITY=full $(BUSTED) spec/reliability_crash_spec.lua spec/reliability_race_spec.lua \
	  spec/batch_safety_spec.lua spec/reliability_lock_spec.lua

faults: build test-support
	AQS_RELIABILITY=full $(BUSTED) spec/reliability_faults_spec.lua spec/reliability_powerloss_spec.lua \
	  spec/reliability_corruption_spec.lua

# luarocks builds in place; its objects are removed afterwards.
install: deps build rockspec-check
	luarocks --lua-version 5.4 make --deps-mode none $(ROCKSPEC) $(ROCKS_FLAGS)
	@rm -f csrc/*.o actionqueue/storage/core.so; rmdir -p actionqueue/storage 2>/dev/null || true

docs:
	ldoc -c docs/config.ld .

repl: build
	@scripts/aqstore repl $(FILE)

clean:
	rm -rf build build-* docs/html csrc/*.o
