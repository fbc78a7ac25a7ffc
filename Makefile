# SPDX-License-Identifier: MIT
# libasyncq - plain GNU make, no configure step.
#
#   make                 the static and shared library and the examples
#   make demo            build and run examples/quickstart
#   make check           the Check suite, a staged install built with
#                        pkg-config and CMake (C and C++), a lint of the man
#                        pages, check-http and check-loops (event loops)
#   make check SANITIZE=address|thread   the suite under ASan+UBSan or TSan
#   make stress [STRESS_SECONDS=20] [SANITIZE=...]  the stress program
#   make fuzz [FUZZ_RUNS=N]  libFuzzer on the API and the HTTP parser (tests/fuzz/)
#   make analyze         gcc -fanalyzer, cppcheck and clang-tidy over lib/
#   make bench           benchmarks against the peers (tests/bench/)
#   make check-http      drive examples/http_server with curl (part of check)
#   make check-usdt      the USDT probes are in the shared library, and a
#                        bpftrace run counts them right where it can (part
#                        of check)
#   make bench-http      examples/http_server under wrk, offload vs inline
#   make install / uninstall  honour prefix, libdir, includedir, mandir, DESTDIR
#
# V=1 shows the commands.

MAJOR := $(shell sed -n 's/^\#define AQ_VERSION_MAJOR //p' include/asyncq.h)
MINOR := $(shell sed -n 's/^\#define AQ_VERSION_MINOR //p' include/asyncq.h)
PATCH := $(shell sed -n 's/^\#define AQ_VERSION_PATCH //p' include/asyncq.h)
VERSION := $(MAJOR).$(MINOR).$(PATCH)

prefix ?= /usr/local
exec_prefix ?= $(prefix)
libdir ?= $(exec_prefix)/lib
includedir ?= $(prefix)/include
mandir ?= $(prefix)/share/man
DESTDIR ?=

CC ?= cc
CXX ?= c++
CFLAGS ?= -O2 -g
# Preprocessor flags (defines, include paths, dependency files) apart from
# the compiler's, so that CFLAGS from the command line replaces only the
# latter.
override CPPFLAGS += -D_GNU_SOURCE -Iinclude -MMD -MP
override CFLAGS += -std=c11 -Wall -Wextra -Wpedantic -fvisibility=hidden \
	-pthread
LDLIBS_THREADS := -pthread

# `make` alone builds `all`, not the first rule below (the SDT stamp).
.DEFAULT_GOAL := all

# USDT probes (lib/trace.h) when <sys/sdt.h> is there (Debian:
# systemtap-sdt-dev); HAVE_SDT=0 compiles them out, HAVE_SDT=1 insists.
HAVE_SDT ?= $(shell echo '\#include <sys/sdt.h>' | \
	$(CC) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(HAVE_SDT),1)
override CPPFLAGS += -DAQ_HAVE_SDT
endif
# The library's objects depend on this stamp, so that a change of HAVE_SDT
# (the header installed, or the knob set) rebuilds them.
SDT_STAMP := build/sdt-$(HAVE_SDT).stamp
$(SDT_STAMP):
	@mkdir -p build && rm -f build/sdt-*.stamp && touch $@

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif

# Sanitizer builds live in their own directory so they never mix objects.
SANITIZE ?=
ifeq ($(SANITIZE),)
SANFLAGS :=
else ifeq ($(SANITIZE),address)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
else ifeq ($(SANITIZE),thread)
SANFLAGS := -fsanitize=thread
else
$(error SANITIZE must be address or thread)
endif

# The sources, listed: a stray file in lib/ does not end up in the library.
LIB_SRCS := \
	lib/cache.c lib/channel.c lib/current.c lib/deps.c lib/deque.c \
	lib/error.c lib/fault.c lib/future.c lib/help.c lib/job.c lib/metrics.c \
	lib/opts.c lib/park.c lib/pool.c lib/promise.c lib/queue.c lib/retry.c \
	lib/ring.c lib/run.c lib/sched_fair.c lib/sched_fifo.c lib/sched_prio.c \
	lib/scheduler.c lib/stats.c lib/steal.c lib/submit.c lib/threads.c \
	lib/timer.c lib/wait.c lib/worker.c
REL_OBJS := $(LIB_SRCS:lib/%.c=build/rel/%.o)
TVAR := test$(if $(SANITIZE),-$(SANITIZE))
TEST_OBJS := $(LIB_SRCS:lib/%.c=build/$(TVAR)/lib/%.o)
# One Check suite per module, one runner (check_main.c); tests/stress.c
# (make stress) and tests/usdt_prog.c (make check-usdt) are programs of
# their own, not suites.
TEST_SRCS := \
	tests/check_main.c tests/helpers.c tests/check_badinput.c \
	tests/check_cache.c tests/check_channel.c tests/check_deps.c tests/check_deque.c \
	tests/check_error.c \
	tests/check_fault.c tests/check_future.c tests/check_metrics.c \
	tests/check_pool.c tests/check_queue.c tests/check_retry.c \
	tests/check_ring.c tests/check_sched.c tests/check_sched_fair.c \
	tests/check_shutdown.c tests/check_shutdown_timed.c \
	tests/check_stats.c tests/check_submit.c tests/check_threads.c \
	tests/check_timer.c tests/check_wait.c tests/check_promise.c
TEST_BINS := $(TEST_SRCS:tests/%.c=build/$(TVAR)/tests/%.o)
# The event-loop examples (examples/loop_*.c) need their loop library: see
# the "event loops and CMake" block below; examples/redis_*.c need hiredis:
# see the libasyncq-redis block.
EXAMPLES := build/examples/custom_scheduler build/examples/http_server \
	build/examples/quickstart build/examples/retry build/examples/stats

STATIC := build/libasyncq.a
SHARED := build/libasyncq.so.$(VERSION)
# The ABI rule (include/asyncq.h, README): before 1.0 any minor version may
# change the ABI, so the soname names major and minor; from 1.0 the major.
SONAME := libasyncq.so.$(MAJOR)$(if $(filter 0,$(MAJOR)),.$(MINOR))

.PHONY: all demo check check-unit check-install check-man check-http \
	check-layers check-usdt bench \
	bench-http install uninstall clean deps
all: $(STATIC) $(SHARED) build/libasyncq.so $(EXAMPLES)

# ---- the library --------------------------------------------------------------
# initial-exec TLS: the workers' thread-locals are read on every job, and
# the default model for a shared library calls __tls_get_addr each time.
# The library's few thread-local bytes fit glibc's static TLS surplus, so
# it can still be dlopen()ed.
LIB_TLS := -ftls-model=initial-exec

build/rel/%.o: lib/%.c $(SDT_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_TLS) -fPIC -c -o $@ $<

$(STATIC): $(REL_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(SHARED): $(REL_OBJS) lib/libasyncq.map
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script=lib/libasyncq.map -Wl,-z,defs \
		-o $@ $(REL_OBJS) $(LDLIBS_THREADS)

build/libasyncq.so: $(SHARED)
	$(Q)ln -sf libasyncq.so.$(VERSION) build/$(SONAME)
	$(Q)ln -sf libasyncq.so.$(VERSION) $@

# The .pc file is written at install time, so it always names the prefix
# and libdir of that install.
PC_SED := -e 's|@prefix@|$(prefix)|' -e 's|@libdir@|$(libdir)|' \
	-e 's|@includedir@|$(includedir)|' -e 's|@VERSION@|$(VERSION)|'

# ---- examples (linked statically so they run from the tree) -------------------
build/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) \
		$(LDLIBS_THREADS)

demo: build/examples/quickstart
	./build/examples/quickstart

# ---- tests ---------------------------------------------------------------------
# The test build adds -DAQ_TESTING, which compiles in the fault-injection hooks
# (lib/fault.h); the release library never has them.
TEST_CPPFLAGS := -DAQ_TESTING -Ilib
build/$(TVAR)/lib/%.o: lib/%.c $(SDT_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(SANFLAGS) -c -o $@ $<

build/$(TVAR)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(SANFLAGS) \
		$$(pkg-config --cflags check) -c -o $@ $<

build/$(TVAR)/check_asyncq: $(TEST_BINS) $(TEST_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $^ \
		$$(pkg-config --libs check) $(LDLIBS_THREADS)

deps:
	@sh tests/deps.sh

check: deps
	@$(MAKE) --no-print-directory check-unit
	@if pkg-config --exists hiredis; then \
		$(MAKE) --no-print-directory check-redis; fi
ifeq ($(SANITIZE),)
	@$(MAKE) --no-print-directory check-install check-man check-http \
		check-layers check-usdt check-loops
endif

check-unit: build/$(TVAR)/check_asyncq
	$(call msg,TEST,$<)
	$(Q)./$<

# Install into a staging DESTDIR and build an example against it through
# pkg-config and through CMake (tests/cmake_test.sh), as C and as C++, then
# run them against the staged shared library; then uninstall, which must
# leave no file behind. The prefix is not /usr so that pkg-config does not
# filter its -I out.
STAGE := $(CURDIR)/build/stage
SPREFIX := /opt/libasyncq
check-install: all
	$(Q)rm -rf $(STAGE)
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(STAGE) \
		prefix=$(SPREFIX) >/dev/null
	$(call msg,TEST,staged-install)
	$(Q)PKG_CONFIG_SYSROOT_DIR=$(STAGE) \
		PKG_CONFIG_LIBDIR=$(STAGE)$(SPREFIX)/lib/pkgconfig \
		sh -c '$(CC) -std=c11 -Wall -Werror -x c examples/quickstart.c \
		-o build/stage/quickstart-c $$(pkg-config --cflags --libs libasyncq) && \
		$(CXX) -Wall -Werror -x c++ examples/quickstart.c \
		-o build/stage/quickstart-cxx $$(pkg-config --cflags --libs libasyncq)'
	$(Q)LD_LIBRARY_PATH=$(STAGE)$(SPREFIX)/lib ./build/stage/quickstart-c >/dev/null
	$(Q)LD_LIBRARY_PATH=$(STAGE)$(SPREFIX)/lib ./build/stage/quickstart-cxx >/dev/null
	$(Q)test -f $(STAGE)$(SPREFIX)/share/man/man7/libasyncq.7
	$(Q)sh tests/cmake_test.sh $(STAGE)$(SPREFIX) $(VERSION)
	$(Q)if [ "$(HIREDIS)" = yes ]; then \
		$(MAKE) --no-print-directory check-install-redis; fi
	$(Q)$(MAKE) --no-print-directory uninstall DESTDIR=$(STAGE) \
		prefix=$(SPREFIX) >/dev/null
	$(Q)left=$$(find $(STAGE)$(SPREFIX) ! -type d); [ -z "$$left" ] || \
		{ echo "make uninstall left:" $$left; exit 1; }
	$(Q)echo "  staged install: C and C++ builds ran (pkg-config, CMake);" \
		"uninstall removed every file"

# The stress program (tests/stress.c), against the test build of the library
# so that SANITIZE applies: `make stress [STRESS_SECONDS=N] [STRESS_SEED=S]`.
STRESS_SECONDS ?= 20
STRESS_OBJ := build/$(TVAR)/tests/stress.o
.PHONY: stress
build/$(TVAR)/stress: $(STRESS_OBJ) $(TEST_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_THREADS)

stress: build/$(TVAR)/stress
	$(call msg,STRESS,$<)
	$(Q)./$< -d $(STRESS_SECONDS) $(if $(STRESS_SEED),-s $(STRESS_SEED))

-include $(STRESS_OBJ:.o=.d)

# libFuzzer harnesses (clang), a fixed number of runs each on a copy of the
# seed corpora under build/fuzz: `make fuzz [FUZZ_RUNS=N] [FUZZ_TIME=s]`.
.PHONY: fuzz analyze
fuzz:
	$(Q)$(MAKE) --no-print-directory -C tests/fuzz run

# Static analysis of lib/; any finding fails (tests/analyze.sh, .clang-tidy).
analyze:
	$(Q)sh tests/analyze.sh

check-man:
	$(call msg,LINT,man)
	$(Q)sh tests/manlint.sh

# The layering rule of lib/ (README "Architecture"), on its include graph.
check-layers:
	$(call msg,LINT,layers)
	$(Q)sh tests/layers.sh

# The HTTP server example on a loopback port, driven with curl.
check-http: build/examples/http_server
	$(call msg,TEST,http_server)
	$(Q)sh tests/http_test.sh

# The USDT probes: listed in the shared library's notes (readelf -n), and
# counted by bpftrace on a small program (tests/usdt_prog.c) where bpftrace
# can attach (root, uprobes); skipped with the reason otherwise.
build/usdt_prog: tests/usdt_prog.c $(SHARED) build/libasyncq.so
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -Lbuild -lasyncq \
		-Wl,-rpath,$(CURDIR)/build \
		$(LDLIBS_THREADS)

check-usdt: $(SHARED) build/usdt_prog
	$(call msg,TEST,usdt)
	$(Q)HAVE_SDT=$(HAVE_SDT) sh tests/usdt.sh $(SHARED) build/usdt_prog

bench: $(STATIC)
	$(Q)$(MAKE) --no-print-directory -C tests/bench run
	$(Q)if command -v wrk >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory bench-http; \
	else \
		echo "  SKIP    bench-http: wrk not installed" \
			"(make bench-http installs it as root)"; \
	fi

# examples/http_server under wrk: offloading to a pool against inline.
bench-http: build/examples/http_server
	$(Q)sh tests/bench/http_bench.sh

# ==== libasyncq-redis (issue 14) ===============================================
# The optional component in lib/redis/, built when pkg-config finds hiredis:
# build/libasyncq-redis.a and .so (its own soname and version script, only
# aq_redis_* exported), examples/redis_add, and check-redis: the Check suite
# tests/redis/ against redis-servers it starts itself on loopback.
HIREDIS := $(shell pkg-config --exists hiredis 2>/dev/null && echo yes)
HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis 2>/dev/null)
HIREDIS_LIBS := $(shell pkg-config --libs hiredis 2>/dev/null)
RLIB_SRCS := $(wildcard lib/redis/*.c)
RLIB_OBJS := $(RLIB_SRCS:lib/redis/%.c=build/rel/redis/%.o)
RTEST_LIB_OBJS := $(RLIB_SRCS:lib/redis/%.c=build/$(TVAR)/redis/%.o)
RTEST_SRCS := $(filter-out tests/redis/aqr_worker.c,$(wildcard tests/redis/*.c))
RTEST_OBJS := $(RTEST_SRCS:tests/redis/%.c=build/$(TVAR)/rtests/%.o)
RSTATIC := build/libasyncq-redis.a
RSHARED := build/libasyncq-redis.so.$(VERSION)
RSONAME := libasyncq-redis.so.$(MAJOR)$(if $(filter 0,$(MAJOR)),.$(MINOR))
.PHONY: redis-lib check-redis check-install-redis install-redis \
	uninstall-redis

ifeq ($(HIREDIS),yes)
all: redis-lib
install: install-redis
uninstall: uninstall-redis
endif
redis-lib: $(RSTATIC) $(RSHARED) build/libasyncq-redis.so \
	build/examples-redis/redis_add

build/rel/redis/%.o: lib/redis/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(HIREDIS_CFLAGS) -Ilib -fPIC \
		-c -o $@ $<

$(RSTATIC): $(RLIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(RSHARED): $(RLIB_OBJS) lib/redis/libasyncq-redis.map build/libasyncq.so
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(RSONAME) \
		-Wl,--version-script=lib/redis/libasyncq-redis.map -Wl,-z,defs \
		-o $@ $(RLIB_OBJS) -Lbuild -lasyncq $(HIREDIS_LIBS) \
		$(LDLIBS_THREADS)

build/libasyncq-redis.so: $(RSHARED)
	$(Q)ln -sf libasyncq-redis.so.$(VERSION) build/$(RSONAME)
	$(Q)ln -sf libasyncq-redis.so.$(VERSION) $@

# examples/redis_add.c needs hiredis: built here, not by the EXAMPLES rule.
build/examples-redis/%: examples/%.c $(RSTATIC) $(STATIC)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(RSTATIC) \
		$(STATIC) $(HIREDIS_LIBS) $(LDLIBS_THREADS)

build/$(TVAR)/redis/%.o: lib/redis/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) $(HIREDIS_CFLAGS) -Ilib \
		-c -o $@ $<

build/$(TVAR)/rtests/%.o: tests/redis/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) $(HIREDIS_CFLAGS) -Ilib \
		-Itests $$(pkg-config --cflags check) -c -o $@ $<

build/$(TVAR)/check_redis: $(RTEST_OBJS) $(RTEST_LIB_OBJS) $(TEST_OBJS) \
	build/$(TVAR)/tests/helpers.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $^ \
		$$(pkg-config --libs check) $(HIREDIS_LIBS) $(LDLIBS_THREADS)

build/$(TVAR)/aqr_worker: build/$(TVAR)/rtests/aqr_worker.o \
	$(RTEST_LIB_OBJS) $(TEST_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(HIREDIS_LIBS) \
		$(LDLIBS_THREADS)

# The suite starts its own redis-servers (tests/redis/server.c).
check-redis: build/$(TVAR)/check_redis build/$(TVAR)/aqr_worker
	$(call msg,TEST,$<)
	$(Q)rm -rf build/$(TVAR)/redis-tmp && mkdir -p build/$(TVAR)/redis-tmp
	$(Q)AQR_WORKER=./build/$(TVAR)/aqr_worker \
		AQR_TMPDIR=$(CURDIR)/build/$(TVAR)/redis-tmp ./$<

# After check-install (whose staged install includes the component): build
# examples/redis_add against it with pkg-config, include the header from
# C++, and load both against the staged shared libraries.
check-install-redis:
	$(call msg,TEST,staged-install-redis)
	$(Q)PKG_CONFIG_SYSROOT_DIR=$(STAGE) \
		PKG_CONFIG_LIBDIR=$(STAGE)$(SPREFIX)/lib/pkgconfig:$$(pkg-config \
		--variable pc_path pkg-config) \
		sh -c '$(CC) -std=c11 -Wall -Werror examples/redis_add.c \
		-o build/stage/redis_add $$(pkg-config --cflags --libs \
		libasyncq-redis) && \
		printf "#include <asyncq_redis.h>\nint main(void){aq_redis_client *c;return aq_redis_client_create(&c,0,1)==-22?0:1;}\n" | \
		$(CXX) -Wall -Werror -x c++ - -o build/stage/redis-cxx \
		$$(pkg-config --cflags --libs libasyncq-redis)'
	$(Q)LD_LIBRARY_PATH=$(STAGE)$(SPREFIX)/lib ./build/stage/redis-cxx
	$(Q)LD_LIBRARY_PATH=$(STAGE)$(SPREFIX)/lib ./build/stage/redis_add \
		submit 1 127.0.0.1 1 2>/dev/null; test $$? -eq 1
	$(Q)test -f $(STAGE)$(SPREFIX)/share/man/man7/libasyncq-redis.7
	$(Q)echo "  staged install: libasyncq-redis built with pkg-config (C, C++)"

# libasyncq-redis against Celery 5 and BullMQ (tests/bench/redis/).
.PHONY: bench-redis
build/bench-redis/%: tests/bench/redis/%.c $(RSTATIC) $(STATIC)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(RSTATIC) \
		$(STATIC) $(HIREDIS_LIBS) $(LDLIBS_THREADS)

bench-redis: build/bench-redis/bench_redis build/bench-redis/bench_worker
	$(Q)sh tests/bench/redis/bench_redis.sh | tee build/bench-redis/results.txt

install-redis: redis-lib
	install -d $(DESTDIR)$(libdir)/pkgconfig $(DESTDIR)$(includedir) \
		$(DESTDIR)$(mandir)/man3 $(DESTDIR)$(mandir)/man7
	install -m 644 include/asyncq_redis.h $(DESTDIR)$(includedir)/
	install -m 644 $(RSTATIC) $(DESTDIR)$(libdir)/
	install -m 755 $(RSHARED) $(DESTDIR)$(libdir)/
	ln -sf libasyncq-redis.so.$(VERSION) $(DESTDIR)$(libdir)/$(RSONAME)
	ln -sf libasyncq-redis.so.$(VERSION) \
		$(DESTDIR)$(libdir)/libasyncq-redis.so
	sed $(PC_SED) libasyncq-redis.pc.in \
		>$(DESTDIR)$(libdir)/pkgconfig/libasyncq-redis.pc

uninstall-redis:
	rm -f $(DESTDIR)$(includedir)/asyncq_redis.h \
		$(DESTDIR)$(libdir)/libasyncq-redis.a \
		$(DESTDIR)$(libdir)/libasyncq-redis.so* \
		$(DESTDIR)$(libdir)/pkgconfig/libasyncq-redis.pc \
		$(DESTDIR)$(mandir)/man7/libasyncq-redis.7

-include $(RLIB_OBJS:.o=.d) $(RTEST_LIB_OBJS:.o=.d) $(RTEST_OBJS:.o=.d)
# ==== end of libasyncq-redis ===================================================

# ==== event loops and CMake (issue 15) ========================================
# examples/loop_{libuv,libevent,glib}.c deliver completions on a libuv,
# libevent or GLib loop through a completion channel. Each needs its loop
# library, found with pkg-config: `make` builds those it finds and says which
# it skips (the library itself needs only libc and pthreads); `make check`
# installs all three (tests/deps.sh) and runs them (check-loops).
#
# `make install` also writes a CMake package (find_package(libasyncq)) into
# $(libdir)/cmake/libasyncq, from libasyncqConfig.cmake.in and
# libasyncqConfigVersion.cmake.in; check-install builds a consumer with it.
LOOP_NAMES := libuv libevent glib
LOOP_PKG_libuv := libuv
LOOP_PKG_libevent := libevent
LOOP_PKG_glib := glib-2.0
LOOP_DEB_libuv := libuv1-dev
LOOP_DEB_libevent := libevent-dev
LOOP_DEB_glib := libglib2.0-dev
LOOP_FOUND := $(foreach n,$(LOOP_NAMES),$(if $(shell pkg-config --exists \
	$(LOOP_PKG_$(n)) 2>/dev/null && echo y),$(n)))
LOOP_MISSING := $(filter-out $(LOOP_FOUND),$(LOOP_NAMES))

.PHONY: loop-examples check-loops install-cmake uninstall-cmake
all: loop-examples
loop-examples: $(LOOP_FOUND:%=build/examples/loop_%)
	$(Q)$(foreach n,$(LOOP_MISSING),echo "  SKIP    build/examples/loop_$(n):" \
		"no $(LOOP_PKG_$(n)) (apt-get install $(LOOP_DEB_$(n)))";) true

# The stem is the loop's name; flags come from its pkg-config file (missing:
# the build fails, saying what to install).
build/examples/loop_%: examples/loop_%.c $(STATIC)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)pkg-config --exists $(LOOP_PKG_$*) || { echo "$@ needs" \
		"$(LOOP_PKG_$*): apt-get install $(LOOP_DEB_$*)" >&2; exit 1; }
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $$(pkg-config --cflags $(LOOP_PKG_$*)) \
		$(LDFLAGS) -o $@ $< $(STATIC) \
		$$(pkg-config --libs $(LOOP_PKG_$*)) $(LDLIBS_THREADS)

check-loops: $(LOOP_NAMES:%=build/examples/loop_%)
	$(call msg,TEST,loops)
	$(Q)sh tests/loops_test.sh $^

# The CMake package's paths are relative to its directory (realpath -m: the
# directories need not exist yet), so a DESTDIR or moved tree works.
CMAKEDIR = $(libdir)/cmake/libasyncq
CMAKE_SED = -e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(MAJOR)|' \
	-e 's|@MINOR@|$(MINOR)|' -e 's|@SONAME@|$(SONAME)|' \
	-e "s|@rel_libdir@|$$(realpath -sm --relative-to=$(CMAKEDIR) \
		$(libdir))|" \
	-e "s|@rel_includedir@|$$(realpath -sm --relative-to=$(CMAKEDIR) \
		$(includedir))|" \
	-e "s|@SIZEOF_VOID_P@|$$($(CC) $(CFLAGS) -dM -E -x c /dev/null | \
		sed -n 's/^\#define __SIZEOF_POINTER__ //p')|"
install: install-cmake
install-cmake:
	install -d $(DESTDIR)$(CMAKEDIR)
	sed $(CMAKE_SED) libasyncqConfig.cmake.in \
		>$(DESTDIR)$(CMAKEDIR)/libasyncqConfig.cmake
	sed $(CMAKE_SED) libasyncqConfigVersion.cmake.in \
		>$(DESTDIR)$(CMAKEDIR)/libasyncqConfigVersion.cmake

uninstall: uninstall-cmake
uninstall-cmake:
	rm -f $(DESTDIR)$(CMAKEDIR)/libasyncqConfig.cmake \
		$(DESTDIR)$(CMAKEDIR)/libasyncqConfigVersion.cmake
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true
# ==== end of event loops and CMake =============================================

# ---- install -------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(libdir)/pkgconfig $(DESTDIR)$(includedir) \
		$(DESTDIR)$(mandir)/man3 $(DESTDIR)$(mandir)/man7
	install -m 644 include/asyncq.h $(DESTDIR)$(includedir)/
	install -m 644 $(STATIC) $(DESTDIR)$(libdir)/
	install -m 755 $(SHARED) $(DESTDIR)$(libdir)/
	ln -sf libasyncq.so.$(VERSION) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf libasyncq.so.$(VERSION) $(DESTDIR)$(libdir)/libasyncq.so
	sed $(PC_SED) libasyncq.pc.in >$(DESTDIR)$(libdir)/pkgconfig/libasyncq.pc
	install -m 644 man/man3/*.3 $(DESTDIR)$(mandir)/man3/
	install -m 644 man/man7/*.7 $(DESTDIR)$(mandir)/man7/

uninstall:
	rm -f $(DESTDIR)$(includedir)/asyncq.h \
		$(DESTDIR)$(libdir)/libasyncq.a \
		$(DESTDIR)$(libdir)/libasyncq.so* \
		$(DESTDIR)$(libdir)/pkgconfig/libasyncq.pc
	for f in man/man3/*.3; do rm -f $(DESTDIR)$(mandir)/man3/$${f##*/}; done
	rm -f $(DESTDIR)$(mandir)/man7/libasyncq.7

clean:
	rm -rf build
	$(MAKE) --no-print-directory -C tests/bench clean

-include $(REL_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(TEST_BINS:.o=.d) \
	$(EXAMPLES:=.d) $(LOOP_NAMES:%=build/examples/loop_%.d)
