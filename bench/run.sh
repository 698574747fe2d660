#!/usr/bin/env bash
# The gateway benchmark: direct-to-mock, the Thesis gateway and the LiteLLM proxy, in one run,
# against one local mock upstream (crates/thesis-mock-llm), non-streaming and streaming.
#
#   bench/run.sh            # full run (about 30 minutes on 2 cores)
#   BENCH_SECONDS=3 bench/run.sh   # quicker, noisier
#
# For every target it measures (1) latency at fixed request rates, open loop (bench/loadgen:
# latency counts from when a request was due, so queueing is not hidden), and (2) the highest
# rate it sustains: every request succeeds and p99 stays under BENCH_SLO_MS. Added latency is
# the target's percentile minus direct-to-mock's at the same rate. Results: bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
FIXED_RATES=${BENCH_RATES:-"50 100 150"}
ROUNDS=${BENCH_ROUNDS:-3}
LADDER=${BENCH_LADDER:-"25 50 75 100 150 200 300 400 600 800 1000 1200 1600 2000 2400 3200 4800 6400 9600 12800"}
HOLD=${BENCH_HOLD:-1000}
SLO_MS=${BENCH_SLO_MS:-100}
LITELLM_WORKERS=${BENCH_LITELLM_WORKERS:-2}
P_MOCK=18089 P_GW=18080 P_LL=18090
OUT=$ROOT/bench/results
WORK=$(mktemp -d)
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

log() { echo "[bench $(date +%T)] $*" >&2; }
wait_http() { for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done; log "timed out waiting for $1"; return 1; }

log "building release binaries"
cargo build --release -q -p thesis-api -p thesis-mock-llm -p thesis-loadgen
BIN=$ROOT/target/release
if [ ! -x bench/.venv/bin/litellm ]; then
  log "installing litellm into bench/.venv"
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q -r bench/requirements.txt
fi

log "starting the mock upstream on :$P_MOCK"
"$BIN/thesis-mock-llm" 127.0.0.1:$P_MOCK 2>"$WORK/mock.log" & PIDS+=($!)
wait_http "http://127.0.0.1:$P_MOCK/_requests"

log "starting the gateway on :$P_GW (SQLite, metering on)"
cat >"$WORK/thesis.toml" <<TOML
[plans.free]
daily_limit_cents = 1000000000
[[models]]
name = "bench"
provider = "openai"
base_url = "http://127.0.0.1:$P_MOCK/v1"
api_key_env = "BENCH_UPSTREAM_KEY"
upstream_model = "mock"
input_cents_per_mtok = 25
output_cents_per_mtok = 200
[[models]]
name = "bench-slow"
provider = "openai"
base_url = "http://127.0.0.1:$P_MOCK/v1"
api_key_env = "BENCH_UPSTREAM_KEY"
upstream_model = "mock?tokens=100&delay_ms=50"
input_cents_per_mtok = 25
output_cents_per_mtok = 200
TOML
export BENCH_UPSTREAM_KEY=sk-bench-upstream
GW_ENV=(env THESIS_CONFIG="$WORK/thesis.toml" THESIS_DATA_DIR="$WORK/gw" THESIS_BIND=127.0.0.1:$P_GW THESIS_CRON=off THESIS_LOG=warn)
"${GW_ENV[@]}" "$BIN/thesis-api" user create --email bench@example.com --password bench-password >/dev/null
GW_KEY=$("${GW_ENV[@]}" "$BIN/thesis-api" api-key create --email bench@example.com | jq -r .key)
"${GW_ENV[@]}" "$BIN/thesis-api" serve 2>"$WORK/gw.log" & PIDS+=($!)
GW_PID=$!
wait_http "http://127.0.0.1:$P_GW/healthz"
curl -fsS "http://127.0.0.1:$P_GW/v1/organization" -H "authorization: Bearer $GW_KEY" \
  -H 'content-type: application/json' -d '{"name":"Bench","email":"bench@example.com","type":"team"}' >/dev/null

log "starting the LiteLLM proxy on :$P_LL ($LITELLM_WORKERS workers)"
cat >"$WORK/litellm.yaml" <<YAML
model_list:
  - model_name: bench
    litellm_params:
      model: openai/mock
      api_base: http://127.0.0.1:$P_MOCK/v1
      api_key: sk-bench-upstream
general_settings:
  master_key: sk-bench-litellm
litellm_settings:
  telemetry: false
YAML
LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
  bench/.venv/bin/litellm --config "$WORK/litellm.yaml" --host 127.0.0.1 --port $P_LL \
  --num_workers "$LITELLM_WORKERS" >"$WORK/litellm.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$P_LL/health/liveliness"

# target name -> "url token model"
declare -A TARGET=(
  [direct]="http://127.0.0.1:$P_MOCK/v1/responses sk-bench-upstream mock"
  [thesis]="http://127.0.0.1:$P_GW/v1/responses $GW_KEY bench"
  [litellm]="http://127.0.0.1:$P_LL/v1/responses sk-bench-litellm bench"
)
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
run() { # target mode rate seconds phase
  local t=$1 mode=$2 rate=$3 secs=$4 phase=$5 url token model flag=""
  read -r url token model <<<"${TARGET[$t]}"
  [ "$mode" = stream ] && flag=--stream
  local line
  line=$("$BIN/thesis-loadgen" "$url" "$token" "$rate" "$secs" $flag --model "$model")
  echo "$line" | jq -c --arg t "$t" --arg m "$mode" --arg p "$phase" '. + {target:$t, mode:$m, phase:$p}' | tee -a "$RESULTS" >&2
  echo "$line"
}
sustains() { jq -e --argjson slo "$SLO_MS" '.errors == 0 and .ok == .requests and .p99_ms < $slo' >/dev/null; }

# A target that failed a ladder step may still be working off its backlog: wait until a short
# probe at a gentle rate answers within the SLO again (at most a minute).
settle() { # target mode
  for _ in $(seq 1 12); do
    sleep 5
    if run "$1" "$2" 10 2 settle | sustains; then return 0; fi
  done
  log "$1 ($2) did not settle"
}
# Waits (at most a minute) until the host's CPUs are at least QUIET_IDLE% idle over a second:
# a target that was overloaded (LiteLLM past its ceiling) goes on working off its backlog after
# its load generator stopped, on the cores the next measurement runs on.
QUIET_IDLE=${BENCH_QUIET_IDLE:-90}
cpu_idle() { # idle % of all CPUs over one second
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat); sleep 1; read -r -a b < <(grep '^cpu ' /proc/stat)
  local busy=0 idle=0 i
  for i in 1 2 3 6 7 8; do busy=$((busy + b[i] - a[i])); done
  for i in 4 5; do idle=$((idle + b[i] - a[i])); done
  echo $((100 * idle / (busy + idle > 0 ? busy + idle : 1)))
}
quiet() {
  local idle
  for _ in $(seq 1 60); do
    idle=$(cpu_idle)
    [ "$idle" -ge "$QUIET_IDLE" ] && return 0
  done
  log "the host did not quiet down (last: ${idle}% idle); measuring anyway"
}
# Fixed rates: every target in turn at each rate, ROUNDS times over, so that the host's drift
# reaches all of them alike, each run starting on a quiet host; the report takes the median of
# the rounds.
fixed() { # mode rate...
  local mode=$1; shift
  for r in "$@"; do
    for round in $(seq 1 "$ROUNDS"); do
      for t in direct thesis litellm; do quiet; run "$t" "$mode" "$r" "$SECONDS_PER_RUN" fixed >/dev/null; done
    done
  done
}

for mode in plain stream; do
  declare -A MAX=()
  for t in direct thesis litellm; do run "$t" "$mode" 20 3 warmup >/dev/null; done
  fixed "$mode" $FIXED_RATES
  for t in direct thesis litellm; do
    MAX[$t]=0
    quiet
    for r in $LADDER; do
      if ! run "$t" "$mode" "$r" "$SECONDS_PER_RUN" ladder | sustains; then break; fi
      MAX[$t]=$r
    done
    log "$t ($mode) sustains ${MAX[$t]} req/s"
    settle "$t" "$mode"
  done
  # added latency at the highest rate LiteLLM sustained, unless measured above already
  if [ "${MAX[litellm]}" -gt 0 ] && ! grep -qw -- "${MAX[litellm]}" <<<"$FIXED_RATES"; then
    fixed "$mode" "${MAX[litellm]}"
  fi
done
GW_RSS=$(awk '/VmHWM/ {print $2}' /proc/$GW_PID/status)
log "gateway peak RSS over the latency runs: ${GW_RSS} kB"
jq -nc --argjson peak "$GW_RSS" '{phase:"latency-rss", rss_peak_kb:$peak}' >>"$RESULTS"

# A fresh gateway process (same database) for the streams below, so that what they report is
# what 1000 open streams cost, not what the ladder's overload left allocated.
log "restarting the gateway"
kill -TERM "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
"${GW_ENV[@]}" "$BIN/thesis-api" serve 2>>"$WORK/gw.log" & PIDS+=($!)
GW_PID=$!
wait_http "http://127.0.0.1:$P_GW/healthz"

# Concurrent open streams: HOLD streams of ~5 s each (100 tokens, 50 ms apart) at once, twice;
# the gateway's peak RSS is reset before each round (clear_refs), so each round reports its own.
rss() { awk "/$1/ {print \$2}" /proc/$GW_PID/status; }
for round in 1 2; do
  idle=$(rss VmRSS)
  echo 5 >/proc/$GW_PID/clear_refs
  line=$("$BIN/thesis-loadgen" "http://127.0.0.1:$P_GW/v1/responses" "$GW_KEY" --hold "$HOLD" --stream --model bench-slow)
  peak=$(rss VmHWM)
  echo "$line" | jq -c --argjson idle "$idle" --argjson peak "$peak" --argjson round "$round" \
    '. + {target:"thesis", mode:"stream", phase:"hold", round:$round, rss_before_kb:$idle, rss_peak_kb:$peak}' | tee -a "$RESULTS" >&2
done
recorded=$(curl -fsS "http://127.0.0.1:$P_GW/v1/usage-record/summary" -H "authorization: Bearer $GW_KEY" \
  | jq '[.byModel[] | select(.model == "bench-slow") | .records] | add // 0')
jq -nc --argjson n "$recorded" --argjson want $((2 * HOLD)) '{phase:"hold-metering", records:$n, expected:$want}' | tee -a "$RESULTS" >&2

python3 bench/report.py "$RESULTS" "$SLO_MS" | tee "$OUT/summary.md"
