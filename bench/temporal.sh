#!/usr/bin/env bash
# Distributed runs on Temporal against their floor, on one dev server, in paired rounds. See the
# section "Distributed runs on Temporal (issue 15)" of bench/README.md.
#
#   bench/temporal.sh                         # chain 200, wide 1,000, 3 rounds (about 10 minutes)
#   bench/temporal.sh --chain 50 --wide 200 --rounds 1
#   bench/temporal.sh --report bench/.work/temporal/results.tsv   # the table of an earlier run's times
#
# Each round runs, one after the other: the floor of the chain (bench/temporal-floor: N empty
# activities one after another, bare SDK), `playbook-temporal run` of a chain of N `run: "true"` steps,
# a local `playbook run` of the same file; then the same three for the wide workload (1,000
# independent steps, max_parallel 8; the floor runs 8 activities at a time). The chain's floor is
# also measured with its activities on a task queue of their own, as playbook's steps are (the
# workflow's own queue lets the server hand an activity to the worker eagerly). The distributed runs go
# to two `playbook-temporal worker` processes, --max-parallel 4 each. It prints every time, the ratios
# distributed/floor (goal <= 1.3) and the overhead a step pays distributed against local. Ratios are
# medians of the per-round ratios. Needs: go, a C compiler (cgo), the Temporal CLI (see .ci/temporal:
# TEMPORAL_CLI, else a cached build). Builds and writes into bench/.work/temporal/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

chain=200
wide=1000
rounds=3
report_only=
while [ $# -gt 0 ]; do
  case "$1" in
    --chain) chain=$2; shift ;;
    --wide) wide=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --report) report_only=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench/temporal.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# report TSV: the table of a results file (round, what, steps, ms): medians of the times, of the
# per-round ratios and of the per-round differences a step.
report() {
  awk -F'\t' '
    { t[$1, $2] = $4; n[$2] = $3; if ($1 > rounds) rounds = $1 }
    function median(a, k,   i, j, x) {
      for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    function med(w,   r, a) { for (r = 1; r <= rounds; r++) a[r] = t[r, w]; return median(a, rounds) }
    function ratio(x, y,   r, a) { for (r = 1; r <= rounds; r++) a[r] = t[r, x] / t[r, y]; return median(a, rounds) }
    function over(x, y,   r, a) { for (r = 1; r <= rounds; r++) a[r] = (t[r, x] - t[r, y]) / n[x]; return median(a, rounds) }
    function row(name, fl, d, l) {
      printf "| %s | %.0f (%.1f a step) | %.0f | %.0f | **%.2fx** | %.1f | %.1f |\n", name, med(fl), med(fl) / n[fl], med(d), med(l),
        ratio(d, fl), over(d, fl), over(d, l)
    }
    END {
      printf "\nOne Temporal dev server, %d paired round(s); times in ms, medians; ratios and differences are medians of the per-round ones.\n\n", rounds
      printf "| workload | floor: bare SDK | playbook distributed | playbook local | distributed/floor (goal <= 1.3) | ms a step, distributed - floor | ms a step, distributed - local |\n"
      printf "|---|---|---|---|---|---|---|\n"
      row("chain " n["dist-chain"], "floor-chain", "dist-chain", "local-chain")
      row("chain " n["dist-chain"] ", floor on a queue of its own (no eager activities)", "floor-chain-queue", "dist-chain", "local-chain")
      row("wide " n["dist-wide"] ", 8 at a time", "floor-wide", "dist-wide", "local-wide")
    }' "$1"
}

if [ -n "$report_only" ]; then
  report "$report_only"
  exit 0
fi

work=bench/.work/temporal
mkdir -p bench/results
rm -rf "$work"
mkdir -p "$work/bin" "$work/w1" "$work/w2"
say() { printf 'bench: %s\n' "$*" >&2; }

say "building playbook, playbook-temporal and temporal-floor into $work/bin"
export CGO_ENABLED=1
go build -o "$work/bin/playbook" ./cmd/playbook
go build -o "$work/bin/playbook-temporal" ./cmd/playbook-temporal
go build -o "$work/bin/temporal-floor" ./bench/temporal-floor

# The playbooks: steps of `run: "true"`, each needing the previous (chain) or none (wide).
{
  printf 'version: 1\nname: chain\nsteps:\n'
  for i in $(seq 1 "$chain"); do
    printf '  - id: s%d\n    run: "true"\n' "$i"
    [ "$i" -gt 1 ] && printf '    needs: s%d\n' $((i - 1))
  done
} >"$work/chain.yaml"
{
  printf 'version: 1\nname: wide\nmax_parallel: 8\nsteps:\n'
  for i in $(seq 1 "$wide"); do printf '  - id: s%d\n    run: "true"\n' "$i"; done
} >"$work/wide.yaml"
printf 'version: 1\nname: warm\nsteps:\n  - id: a\n    run: "true"\n  - id: b\n    needs: a\n    run: "true"\n' >"$work/warm.yaml"

source .ci/temporal
workers=()
cleanup() {
  local p
  for p in ${workers[@]+"${workers[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
  for p in ${workers[@]+"${workers[@]}"}; do wait "$p" 2>/dev/null || true; done
  temporal_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
temporal_start

for w in w1 w2; do
  "$work/bin/playbook-temporal" worker --temporal "$TEMPORAL_ADDRESS" --queue playbook --max-parallel 4 --dir "$work/$w" \
    --name "$w" --db "$work/$w.db" >"$work/$w.log" 2>&1 &
  workers+=($!)
done
for w in w1 w2; do
  for _ in $(seq 300); do
    grep -q ': serving queues ' "$work/$w.log" && break
    sleep 0.1 # polling the worker's own word
  done
  grep -q ': serving queues ' "$work/$w.log" || { say "worker $w did not start:"; cat "$work/$w.log" >&2; exit 1; }
done

# ms CMD...: runs CMD (output to $work/last.out), prints its wall time in ms; fails when CMD fails.
ms() {
  local s e
  s=$(date +%s%N)
  if ! "$@" >"$work/last.out" 2>&1; then
    say "failed: $*"
    tail -n 20 "$work/last.out" >&2
    return 1
  fi
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
floor() { # the floor's own measure: workflow start to result, in ms
  "$work/bin/temporal-floor" -temporal "$TEMPORAL_ADDRESS" "$@" >"$work/last.out" 2>&1 || { say "failed: temporal-floor $*"; cat "$work/last.out" >&2; return 1; }
  sed -n 's/.*total_ms=\([0-9.]*\).*/\1/p' "$work/last.out"
}
dist() { ms "$work/bin/playbook-temporal" run --temporal "$TEMPORAL_ADDRESS" --db "$work/dist.db" "$1"; }
loc() { ms "$work/bin/playbook" run --db "$work/local.db" "$1"; }

say "warm-up (not counted)"
floor -n 5 >/dev/null
dist "$work/warm.yaml" >/dev/null
loc "$work/warm.yaml" >/dev/null

results=$work/results.tsv
: >"$results"
for r in $(seq 1 "$rounds"); do
  say "round $r of $rounds: chain $chain"
  printf '%s\tfloor-chain\t%s\t%s\n' "$r" "$chain" "$(floor -n "$chain" -parallel 1)" >>"$results"
  printf '%s\tfloor-chain-queue\t%s\t%s\n' "$r" "$chain" "$(floor -n "$chain" -parallel 1 -separate-queue)" >>"$results"
  printf '%s\tdist-chain\t%s\t%s\n' "$r" "$chain" "$(dist "$work/chain.yaml")" >>"$results"
  printf '%s\tlocal-chain\t%s\t%s\n' "$r" "$chain" "$(loc "$work/chain.yaml")" >>"$results"
  say "round $r of $rounds: wide $wide"
  printf '%s\tfloor-wide\t%s\t%s\n' "$r" "$wide" "$(floor -n "$wide" -parallel 8)" >>"$results"
  printf '%s\tdist-wide\t%s\t%s\n' "$r" "$wide" "$(dist "$work/wide.yaml")" >>"$results"
  printf '%s\tlocal-wide\t%s\t%s\n' "$r" "$wide" "$(loc "$work/wide.yaml")" >>"$results"
done

report "$results" | tee "bench/results/$(date -u +%Y%m%dT%H%M%SZ)-temporal.md"
say "raw times in $results"
