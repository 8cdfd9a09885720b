# The two commands of the README's quick start, plus benchmarks.
#   make run    install what is missing, build, run the demo pipeline
#   make test   install what is missing, build, run the whole test suite
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all bootstrap build run test bench clean

all: build

bootstrap:
	./scripts/bootstrap

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	cd examples/hello && ../../$(BUILD)/cli/boxcar run

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	./bench/run_all

clean:
	rm -rf $(BUILD)
