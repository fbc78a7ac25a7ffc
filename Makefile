# SPDX-License-Identifier: MIT
# libasyncq - plain GNU make, no configure step.
#
#   make                 the static and shared library and the examples
#   make demo            build and run examples/quickstart
#   make check           the Check suite, a staged install built with
#                        pkg-config (C and C++), and a lint of the man pages
#   make check SANITIZE=address|thread   the suite under ASan+UBSan or TSan
#   make stress [STRESS_SECONDS=20] [SANITIZE=...]  the stress program
#   make fuzz [FUZZ_RUNS=N]  libFuzzer on the API and the HTTP parser (tests/fuzz/)
#   make analyze         gcc -fanalyzer, cppcheck and clang-tidy over lib/
#   make bench           benchmarks against the peers (tests/bench/)
#   make check-http      drive examples/http_server with curl (part of check)
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
override CFLAGS += -std=c11 -Wall -Wextra -Wpedantic -fvisibility=hidden \
	-D_GNU_SOURCE -pthread -Iinclude -MMD -MP
LDLIBS_THREADS := -pthread

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

LIB_SRCS := $(wildcard lib/*.c)
REL_OBJS := $(LIB_SRCS:lib/%.c=build/rel/%.o)
TVAR := test$(if $(SANITIZE),-$(SANITIZE))
TEST_OBJS := $(LIB_SRCS:lib/%.c=build/$(TVAR)/lib/%.o)
# tests/stress.c is a program of its own (make stress), not a suite.
TEST_SRCS := $(filter-out tests/stress.c,$(wildcard tests/*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=build/$(TVAR)/tests/%.o)
# examples/redis_*.c need hiredis: see the libasyncq-redis block.
EXAMPLES := $(patsubst examples/%.c,build/examples/%,$(filter-out \
	examples/redis_%.c,$(wildcard examples/*.c)))

STATIC := build/libasyncq.a
SHARED := build/libasyncq.so.$(VERSION)
SONAME := libasyncq.so.$(MAJOR)

.PHONY: all demo check check-unit check-install check-man check-http bench \
	bench-http install uninstall clean deps
all: $(STATIC) $(SHARED) build/libasyncq.so $(EXAMPLES)

# ---- the library --------------------------------------------------------------
# initial-exec TLS: the workers' thread-locals are read on every job, and
# the default model for a shared library calls __tls_get_addr each time.
# The library's few thread-local bytes fit glibc's static TLS surplus, so
# it can still be dlopen()ed.
LIB_TLS := -ftls-model=initial-exec

build/rel/%.o: lib/%.c
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
build/$(TVAR)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -DAQ_TESTING -Ilib -c -o $@ $<

build/$(TVAR)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -DAQ_TESTING -Ilib \
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
	@$(MAKE) --no-print-directory check-install check-man check-http
	@if pkg-config --exists hiredis; then \
		$(MAKE) --no-print-directory check-install-redis; fi
endif

check-unit: build/$(TVAR)/check_asyncq
	$(call msg,TEST,$<)
	$(Q)./$<

# Install into a staging DESTDIR and build an example against it through
# pkg-config, as C and as C++, then run both against the staged shared library.
# The prefix is not /usr so that pkg-config does not filter its -I out.
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
	$(Q)echo "  staged install: C and C++ builds ran"

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

# The HTTP server example on a loopback port, driven with curl.
check-http: build/examples/http_server
	$(call msg,TEST,http_server)
	$(Q)sh tests/http_test.sh

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
RSONAME := libasyncq-redis.so.$(MAJOR)
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
	$(EXAMPLES:=.d)
