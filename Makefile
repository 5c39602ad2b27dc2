# Day-to-day entry points. CI runs .ci/run; these are for people.
#   make test         the test suite, race detector on (the README's test command)
#   make bench        the benchmark suite, full size: playbook against make, go-task and the floor (bench/)
#   make bench-quick  the same at CI size: checks that every workload runs; ratios are not judged
#   make gobench      runs every Go benchmark once (a smoke run; use go test -bench for figures)

GO ?= go
export CGO_ENABLED := 1

.PHONY: all build test vet bench bench-quick gobench

all: build

build:
	$(GO) build ./...

test:
	CGO_ENABLED=1 $(GO) test -race -timeout 60m ./...

vet:
	gofmt -l . | grep -v '^bench/.work/' | (! grep .)
	$(GO) vet ./...

bench:
	bench/run.sh

bench-quick:
	bench/run.sh --quick

gobench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
