# raftq — the only entry point. See README.md.
#   make            build everything into build/
#   make run        a three-node cluster on 127.0.0.1, data under ./data (Ctrl-C stops it)
#   make test       lint + unit and integration tests + simulation seeds + determinism checks
#   make lint       the determinism lint (no OS calls outside src/shim and src/cmd)
#   make sim        SEEDS=N FIRST=K [WORKLOAD=NAME] [SIMFLAGS=...]: many seeds on all cores
#   make coverage   gcov/lcov over the unit tests and seeds; report under build/coverage/
#   make fuzz       every libFuzzer target for FUZZ_SECONDS each
#   make clean
CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

BUILD := build
DEPS_STAMP := $(BUILD)/.deps-ok
# Switching compilers (CC=clang make test) rebuilds everything: objects depend on this stamp.
CC_STAMP := $(BUILD)/.cc-$(notdir $(firstword $(CC)))
$(shell mkdir -p $(BUILD); [ -e $(CC_STAMP) ] || { rm -rf $(BUILD)/release $(BUILD)/asan $(BUILD)/cov $(BUILD)/raftq-sim $(BUILD)/raftq-bench $(BUILD)/raftq $(BUILD)/.cc-*; mkdir -p $(BUILD); touch $(CC_STAMP); })

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror
CFLAGS_COMMON := -std=c11 $(WARNINGS) -Isrc -I. -MMD -MP
RELEASE_CFLAGS := $(CFLAGS_COMMON) -O2 -g
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS := $(CFLAGS_COMMON) -O1 -g $(SAN_FLAGS)
COV_CFLAGS := $(CFLAGS_COMMON) -O0 -g --coverage

# The deterministic core: everything under src/ except the OS shim and the main()s.
CORE_SRC := $(sort $(filter-out src/shim/% src/cmd/%,$(wildcard src/*/*.c)))
SHIM_SRC := $(sort $(wildcard src/shim/*.c))
SIM_SRC := $(sort $(filter-out sim/main.c,$(wildcard sim/*.c)))
# The main()s' pure helpers (no OS calls, e.g. raftqd's settings): linked into the unit tests too.
CMD_LIB_SRC := src/cmd/cmd_error.c src/cmd/daemon_config.c src/cmd/cli_args.c
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))

CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

# objects per flavour: $(call objs,FLAVOUR,SOURCES)
objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))

.PHONY: all run test lint unit unit-bins seeds determinism sim coverage fuzz fuzz-corpus clean deps bench spec
BENCH_BIN := $(if $(wildcard src/cmd/raftq_bench.c),$(BUILD)/raftq-bench)
all: $(BUILD)/raftq-sim $(BENCH_BIN) $(BUILD)/raftqd $(BUILD)/raftq

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps.sh
	@scripts/install-deps.sh --quiet
	@mkdir -p $(BUILD) && touch $@

# ---- compilation, one rule per flavour --------------------------------------------------------
# V=1 shows the full commands.
Q := $(if $(V),,@)
$(BUILD)/release/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(RELEASE_CFLAGS) -c $< -o $@
$(BUILD)/asan/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(ASAN_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@
$(BUILD)/cov/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC cov  $<")
	$(Q)$(CC) $(COV_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

# ---- binaries ---------------------------------------------------------------------------------
$(BUILD)/raftq-sim: $(call objs,release,$(CORE_SRC) $(SIM_SRC) $(SHIM_SRC) sim/main.c)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(RELEASE_CFLAGS) $^ -o $@ -lpthread

$(BUILD)/raftq-bench: $(call objs,release,$(CORE_SRC) $(SHIM_SRC) src/cmd/raftq_bench.c $(wildcard src/cmd/bench_*.c) src/cmd/client_node.c)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(RELEASE_CFLAGS) $^ -o $@ -lpthread

# The broker daemon and the command-line client, each a node on the shim's loop.
$(BUILD)/raftqd: $(call objs,release,$(CORE_SRC) $(SHIM_SRC) src/cmd/cmd_error.c src/cmd/daemon_config.c src/cmd/raftqd.c)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(RELEASE_CFLAGS) $^ -o $@ -lpthread

$(BUILD)/raftq: $(call objs,release,$(CORE_SRC) $(SHIM_SRC) src/cmd/raftq.c src/cmd/raftq_group.c src/cmd/cmd_error.c src/cmd/cli_args.c src/cmd/client_node.c)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(RELEASE_CFLAGS) $^ -o $@ -lpthread

$(BUILD)/asan/raftq-sim: $(call objs,asan,$(CORE_SRC) $(SIM_SRC) $(SHIM_SRC) sim/main.c)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ASAN_CFLAGS) $^ -o $@ -lpthread

$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/unit/%.o $(call objs,asan,$(CORE_SRC) $(SIM_SRC) $(SHIM_SRC) $(CMD_LIB_SRC)) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ASAN_CFLAGS) $^ -o $@ $(CHECK_LIBS)

UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(TEST_SRC))

# ---- test -------------------------------------------------------------------------------------
test: deps
	@scripts/test.sh

# A three-node cluster on 127.0.0.1 with data under ./data; Ctrl-C stops it.
run: deps
	@$(MAKE) -s --no-print-directory -j"$$(nproc 2>/dev/null || echo 2)" $(BUILD)/raftqd $(BUILD)/raftq
	@scripts/run.sh

lint:
	@scripts/lint.sh .

unit-bins: $(UNIT_BINS)
unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

seeds: $(BUILD)/raftq-sim $(BUILD)/asan/raftq-sim
	@scripts/run-seeds.sh

determinism: $(BUILD)/raftq-sim
	@tests/determinism.sh $(BUILD)/raftq-sim

SEEDS ?= 100
FIRST ?= 1
WORKLOAD ?= raft-kv
SIMFLAGS ?=
sim: $(BUILD)/raftq-sim
	@scripts/sim-many.sh $(SEEDS) $(FIRST) $(WORKLOAD) $(SIMFLAGS)

# ---- coverage ---------------------------------------------------------------------------------
COV_UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/cov/tests/%,$(TEST_SRC))
$(BUILD)/cov/tests/%: $(BUILD)/cov/tests/unit/%.o $(call objs,cov,$(CORE_SRC) $(SIM_SRC) $(SHIM_SRC) $(CMD_LIB_SRC)) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(COV_CFLAGS) $^ -o $@ $(CHECK_LIBS)
$(BUILD)/cov/raftq-sim: $(call objs,cov,$(CORE_SRC) $(SIM_SRC) $(SHIM_SRC) sim/main.c)
	$(Q)$(CC) $(COV_CFLAGS) $^ -o $@ -lpthread

coverage: deps
	@rm -rf $(BUILD)/cov $(BUILD)/coverage
	@$(MAKE) --no-print-directory $(COV_UNIT_BINS) $(BUILD)/cov/raftq-sim
	@scripts/coverage.sh $(BUILD)/cov $(COV_UNIT_BINS)

# ---- bench (measurements, never pass/fail on speed) -------------------------------------------
bench: $(BUILD)/raftq-bench $(BUILD)/raftqd
	@scripts/bench.sh

# ---- fuzz -------------------------------------------------------------------------------------
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)
fuzz-corpus:
	@scripts/gen-corpus.sh

clean:
	rm -rf $(BUILD)

# Objects built through pattern-rule chains are kept, not deleted as intermediates.
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
