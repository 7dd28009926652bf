# rys: one `make` builds build/rys, the tests and the kernel benchmark.
#   make            build/rys, build/tests/*, build/quant_bench
#   make SAN=1      the same with AddressSanitizer + UBSan, under build-san/
#   make check      install what is missing, then run every test (what CI runs)
#   make demo       install, pull the default model, run the main job
# Kernel files named *_avx2.c / *_avx512.c / *_amx.c get their ISA flags; the
# rest is portable x86-64 and dispatch picks kernels at run time.

CC      ?= cc
SAN     ?= 0
BUILD   ?= $(if $(filter 1,$(SAN)),build-san,build)
PKGS    := libpcre2-8 sqlite3 jansson cairo zlib libmicrohttpd
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O2 -pthread -Isrc \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ifeq ($(SAN),1)
CFLAGS_BASE += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lxgboost -lgmp -lbz2 -lm -lpthread
TESTLIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16
AMX_FLAGS    := $(AVX512_FLAGS) -mamx-tile -mamx-int8 -mamx-bf16

# The folders are the layers (docs/LAYOUT.md; scripts/check_layers.sh checks
# the includes). The engine (base, quant, kernels, engine) is a library of its
# own: the tests that use only engine headers link against it alone, which
# proves it needs no symbol of the layers above.
ENGINE_DIRS := base quant kernels engine
APP_DIRS    := probes tasks scan validate export serve report search
ENGINE_SRC := $(sort $(foreach d,$(ENGINE_DIRS),$(wildcard src/$(d)/*.c)))
APP_SRC    := $(sort $(foreach d,$(APP_DIRS),$(wildcard src/$(d)/*.c)))
LIB_SRC  := $(ENGINE_SRC) $(APP_SRC)
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
# tests whose includes are engine headers only (scripts/check_layers.sh
# checks that the list is exactly those)
ENGINE_TESTS := test_beam_kill test_deltanet test_forward test_generate test_gguf test_moe test_path test_pool test_prefix test_quant test_scan_kill test_sha256 test_tokenizer test_util

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all check demo clean deps test unit fuzz
all: $(BUILD)/rys $(TESTS) $(BUILD)/quant_bench

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(AVX2_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(AVX512_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_amx.o: %_amx.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(AMX_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -MMD -MP -c $< -o $@

$(BUILD)/librys_engine.a: $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/librys.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# the CLI's objects but main, for tests of the CLI layer (models.c)
$(BUILD)/librys_cli.a: $(filter-out %/main.o,$(CLI_OBJ))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/rys: $(CLI_OBJ) $(BUILD)/librys.a
	$(CC) $(LDSAN) -pthread -o $@ $(CLI_OBJ) $(BUILD)/librys.a $(LDLIBS)

# bench/quant_bench.c: the kernels alone over a real model's matrices (bench/).
$(BUILD)/quant_bench: bench/quant_bench.c $(BUILD)/librys.a
	$(CC) $(CFLAGS_BASE) -o $@ $< $(BUILD)/librys.a $(LDSAN) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/librys_cli.a $(BUILD)/librys.a tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Itests -o $@ $< $(BUILD)/librys_cli.a $(BUILD)/librys.a $(LDSAN) $(LDLIBS) $(TESTLIBS)

ENGINE_TEST_BINS := $(ENGINE_TESTS:%=$(BUILD)/tests/%)
$(ENGINE_TEST_BINS): $(BUILD)/tests/%: tests/%.c $(BUILD)/librys_engine.a tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Itests -o $@ $< $(BUILD)/librys_engine.a $(LDSAN) $(LDLIBS) $(TESTLIBS)

# Unit tests on tiny self-made models: fast, no downloads.
unit: all
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

deps:
	./scripts/deps.sh

check:
	./scripts/check.sh

demo:
	./scripts/demo.sh

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Fuzzing (make fuzz; scripts/fuzz.sh runs it): clang + libFuzzer. The library
# is rebuilt with coverage and sanitizers under $(BUILD)/fuzzlib (warnings not
# fatal there: clang is not the compiler the tree is kept warning-free with),
# then linked with each fuzz/fuzz_*.c into $(BUILD)/fuzz_*.
FUZZ_CC  ?= clang
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/%)
CFLAGS_BASE += $(RYS_EXTRA_CFLAGS)

fuzz: $(FUZZERS)

$(BUILD)/fuzzlib/librys.a: $(LIB_SRC) $(wildcard src/*/*.h)
	$(MAKE) --no-print-directory CC=$(FUZZ_CC) SAN=1 BUILD=$(BUILD)/fuzzlib \
		RYS_EXTRA_CFLAGS="-fsanitize=fuzzer-no-link -Wno-error" $@

$(BUILD)/fuzz_%: fuzz/fuzz_%.c $(BUILD)/fuzzlib/librys.a
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $< $(BUILD)/fuzzlib/librys.a $(LDLIBS)

# nanoarrow (Apache Arrow's C library, vendored by scripts/vendor_nanoarrow.sh
# from its PyPI sdist): the IPC reader src/tasks/mmlu.c reads MMLU's Arrow
# files with. Third-party code builds without our warning flags; its objects
# join librys.a.
NANOARROW_DIR := third_party/nanoarrow
NANOARROW_INC := -I$(NANOARROW_DIR)/src -I$(NANOARROW_DIR)/flatcc/include
NANOARROW_SRC := $(sort $(wildcard $(NANOARROW_DIR)/src/nanoarrow/*/*.c $(NANOARROW_DIR)/flatcc/src/runtime/*.c))
NANOARROW_OBJ := $(NANOARROW_SRC:%.c=$(BUILD)/obj/%.o)
$(BUILD)/obj/third_party/%.o: third_party/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wall -Wextra -Werror,$(CFLAGS_BASE)) -w $(NANOARROW_INC) -MMD -MP -c $< -o $@
$(BUILD)/obj/src/tasks/mmlu.o: CFLAGS_BASE += $(NANOARROW_INC)
# The forward pass's elementwise loops (norms, softmax, SiLU) vectorized with
# epilogues too: element by element the same IEEE operations, so the same bits.
# GCC's flag; compilers without it (clang, for the fuzz build) go without.
VECT_FLAGS := $(shell $(CC) -fvect-cost-model=dynamic -x c -c /dev/null -o /dev/null 2>/dev/null && echo -fvect-cost-model=dynamic)
$(BUILD)/obj/src/engine/forward.o: CFLAGS_BASE += $(VECT_FLAGS)
$(BUILD)/librys.a: $(NANOARROW_OBJ)
