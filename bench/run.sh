#!/usr/bin/env bash
# The benchmark suite: playbook side by side with the floor (a bare loop spawning the same processes)
# and the tools people would use instead (make, go-task), in paired rounds, with a table of medians,
# ratios and goals. See bench/README.md.
#
#   bench/run.sh                 # full size (about 5 minutes); exit 1 when a goal is missed
#   bench/run.sh --quick         # CI size (100 steps, 64 MiB flood, 3 rounds); exit 0 whatever the ratios,
#                                # non-zero only when a workload fails to run
#   bench/run.sh --only chain,wide --rounds 21
#   bench/run.sh --baseline /path/to/old/playbook   # adds before/after rows, measured side by side
#
# Everything it builds and generates goes to bench/.work/ (ignored by git); each report is also saved
# in bench/results/. Needs: go and a C compiler (cgo, for SQLite), bash, xargs, head, sh. Uses make
# and go-task when present; in full mode it installs what is missing when it can (make with apt-get as
# root, go-task with go install into bench/.work/gobin) and otherwise says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
install=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; install=0; args+=(-quick) ;;
    --install) install=1 ;;
    --no-install) install=0 ;;
    --rounds) args+=(-rounds "$2"); shift ;;
    --rounds=*) args+=(-rounds "${1#*=}") ;;
    --only) args+=(-only "$2"); shift ;;
    --baseline) args+=(-baseline "$2"); shift ;;
    --baseline=*) args+=(-baseline "${1#*=}") ;;
    --only=*) args+=(-only "${1#*=}") ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

work=bench/.work
mkdir -p "$work/bin" bench/results
say() { printf 'bench: %s\n' "$*" >&2; }

missing=()
for tool in go gcc bash xargs head sh; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]} (Go 1.26+ from https://go.dev/dl; on Debian: apt-get install -y gcc coreutils findutils)"
  exit 2
fi

say "building playbook, the harness and seeddb into $work/bin"
export CGO_ENABLED=1
go build -o "$work/bin/playbook" ./cmd/playbook
go build -o "$work/bin/harness" ./bench/harness
go build -o "$work/bin/seeddb" ./bench/seeddb

# make: the reference of the chain and wide workloads.
make_bin=$(command -v make || true)
if [ -z "$make_bin" ] && [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing make (apt-get install -y make)"
  apt-get install -y make >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y make >/dev/null 2>&1) || true
  make_bin=$(command -v make || true)
fi
[ -n "$make_bin" ] || say "make is missing: its rows are n/a. Install it: apt-get install -y make"

# go-task, pinned, in a bench-local GOBIN (never in go.mod). PLAYBOOK_BENCH_TASK overrides.
task_version=v3.54.0
task_bin=${PLAYBOOK_BENCH_TASK:-$work/gobin/task}
if [ ! -x "$task_bin" ] && [ -z "${PLAYBOOK_BENCH_TASK:-}" ] && [ "$install" = 1 ]; then
  say "installing go-task $task_version into $work/gobin"
  GOBIN="$PWD/$work/gobin" GOFLAGS=-mod=mod go install "github.com/go-task/task/v3/cmd/task@$task_version" ||
    say "could not install go-task (no network?): its rows are n/a"
fi
if [ -x "$task_bin" ]; then
  task_arg=(-task "$task_bin")
else
  task_arg=()
  say "go-task not compared: install it with GOBIN=$PWD/$work/gobin go install github.com/go-task/task/v3/cmd/task@$task_version"
fi

mode=full
[ "$quick" = 1 ] && mode=quick
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$mode.md"
status=0
"$work/bin/harness" -playbook "$work/bin/playbook" -seeddb "$work/bin/seeddb" -work "$work" \
  ${make_bin:+-make "$make_bin"} ${task_arg[@]+"${task_arg[@]}"} -out "$out" ${args[@]+"${args[@]}"} || status=$?
say "report saved in $out"
exit $status
