#!/usr/bin/env bash
# The study on a real (single-node) Slurm: `bench plan` -> `sbatch` -> `bench merge --plan`, on the bundled
# fixtures (3 cells: D-all, full-ft and D4, seed 0, 64x64, 2 epochs). Cell 1's first attempt is killed after
# its first epoch (as a lost node or an out-of-memory kill would end it), so the check sees the task requeue
# itself and its second attempt resume from the checkpoint. Then the same grid runs without Slurm, in a shell
# loop of `bench run --plan DIR --cell N`, and both merged reports must hold the same numbers.
#
#   scripts/slurm-check.sh        # installs slurmctld, slurmd, slurm-client, munge and jq when missing
#
# It starts its own munged, slurmctld and slurmd on localhost (its own key, socket, ports and state, all in a
# temporary directory; nothing in /etc is touched) and stops them by PID at the end, however it ends.
# Slurm delays a requeued task by about two minutes, so the check takes three to four minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH="/opt/swift/usr/bin:$PATH"

missing=()
for tool in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge jq:jq; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "slurm-check: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
swift build -c release --product sonoquant >/dev/null
sonoquant="$repo/.build/release/sonoquant"

work=$(mktemp -d /tmp/sonoquant-slurm-check.XXXXXX)
chmod 755 "$work"
started_pids=()
stop_daemons() {
    set +e
    if [ -n "${SLURM_CONF:-}" ] && [ -n "${job:-}" ]; then scancel "$job" 2>/dev/null; sleep 1; fi
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    sleep 1
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
        [ -s "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
    done
    [ "${KEEP:-0}" = 1 ] && echo "slurm-check: kept $work" || rm -rf "$work"
}
trap stop_daemons EXIT
fail() { echo "slurm-check: FAILED: $*" >&2; for log in "$work"/log/*.log "$work"/study/logs/*.log; do [ -f "$log" ] && { echo "--- $log"; tail -20 "$log"; }; done; exit 1; }

# --- munge and a one-node Slurm on localhost --------------------------------------------------------------
mkdir -p "$work/munge" "$work/log" "$work/state" "$work/spool"
chmod 700 "$work/munge"
head -c 1024 /dev/urandom > "$work/munge/munge.key"
chmod 600 "$work/munge/munge.key"
munged --force --socket="$work/munge/socket" --key-file="$work/munge/munge.key" --pid-file="$work/munge/munged.pid" \
    --seed-file="$work/munge/seed" --log-file="$work/log/munged.log"
port=$(( 20000 + $$ % 20000 ))
host=$(hostname -s)
user=$(id -un)
export SLURM_CONF="$work/slurm.conf"
cat > "$SLURM_CONF" <<EOF
ClusterName=sonoquant-check
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$work/munge/socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=$port
SlurmdPort=$(( port + 1 ))
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=30 State=UP
EOF
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %t | grep -q idle || fail "the Slurm node did not come up"
echo "slurm-check: Slurm up on $host (ports $port, $(( port + 1 ))), state in $work"

# --- the plan, and a sonoquant that loses cell 1's first attempt -------------------------------------------
grid=(--strategies D-all,full-ft,D4 --seeds 0 --size 64x64 --epochs 2
      --data fixtures/hc18/training_set --split fixtures/hc18/split.csv
      --init fixtures/mobilenet_v2_imagenet_f16.safetensors --batch 4 --lr 1e-3 --images 8
      --threads 1 --rounds 2 --runs-per-round 1 --frames 1)
cell1_run="$work/study/cells/full-ft-seed0-64x64-split/full-ft-seed0"
cat > "$work/sonoquant-losing-cell-1" <<EOF
#!/usr/bin/env bash
# Runs sonoquant, except that cell 1's first attempt is killed (SIGKILL) once its first epoch is checkpointed.
if [[ " \$* " == *" --cell 1 "* ]] && [ ! -e "$work/cell-1-lost" ]; then
    touch "$work/cell-1-lost"
    "$sonoquant" "\$@" & pid=\$!
    until [ -e "$cell1_run/resume.safetensors" ] || ! kill -0 \$pid 2>/dev/null; do sleep 0.02; done
    kill -9 \$pid; wait \$pid
    exit \$?
fi
exec "$sonoquant" "\$@"
EOF
chmod +x "$work/sonoquant-losing-cell-1"
"$sonoquant" bench plan "${grid[@]}" --out "$work/study" --max-running 2 --cpus-per-task 1 --time 10:00 --requeues 2 \
    --sonoquant "$work/sonoquant-losing-cell-1"

# --- submit, watch cell 1 fail and requeue, wait --------------------------------------------------------------
job=$(sbatch --parsable "$work/study/sbatch.sh")
echo "slurm-check: submitted job array $job (3 tasks)"
checked_interrupted=0
for second in $(seq 600); do
    if [ $checked_interrupted = 0 ] && grep -q "requeued" "$work/study/logs/cell-1.log" 2>/dev/null; then
        # Between the lost attempt and its requeue the merge must call cell 1 interrupted and exit 1.
        set +e
        "$sonoquant" bench merge --plan "$work/study" --out "$work/report-partial" > "$work/merge-partial.log" 2>&1
        status=$?
        set -e
        [ $status = 1 ] || fail "merge with cell 1 lost exited $status, expected 1"
        grep -q "cell 1 full-ft-seed0-64x64-split: interrupted" "$work/merge-partial.log" \
            || fail "merge did not report cell 1 as interrupted: $(cat "$work/merge-partial.log")"
        echo "slurm-check: cell 1's first attempt lost after epoch 1; merge reports it interrupted (exit 1); waiting for the requeue"
        checked_interrupted=1
    fi
    [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
    sleep 1
done
[ -z "$(squeue -h -j "$job")" ] || fail "job $job still queued or running after 600 s: $(squeue -j "$job")"
echo "slurm-check: all tasks ended after about $second s"
[ $checked_interrupted = 1 ] || fail "cell 1 was never requeued (its log: $(cat "$work/study/logs/cell-1.log"))"
[ "$(grep -c '^== cell 1, attempt' "$work/study/logs/cell-1.log")" = 2 ] || fail "cell 1 did not run exactly twice"
grep -q "resuming .* after epoch 1 of 2" "$work/study/logs/cell-1.log" || fail "cell 1's second attempt did not resume after epoch 1"
[ "$(jq .attempts "$work/study/cells/full-ft-seed0-64x64-split/cell.json")" = 2 ] || fail "cell 1's cell.json does not count 2 attempts"

# --- merge and check the report -------------------------------------------------------------------------------
"$sonoquant" bench merge --plan "$work/study" --out "$work/report-slurm" || fail "merge after the job array"
for name in D-all-seed0-64x64-split full-ft-seed0-64x64-split D4-seed0-64x64-split; do
    grep -q "| $name | done |" "$work/report-slurm/REPORT.md" || fail "REPORT.md does not list cell $name as done"
done
[ "$(jq '.rows | length' "$work/report-slurm/results.json")" = 3 ] || fail "results.json does not have 3 rows"
echo "slurm-check: merged report names all 3 cells done; cell 1 done on its second attempt, resumed after epoch 1"

# --- the same grid without Slurm ---------------------------------------------------------------------------------
"$sonoquant" bench plan "${grid[@]}" --out "$work/laptop" >/dev/null
for n in 0 1 2; do "$sonoquant" bench run --plan "$work/laptop" --cell $n > "$work/laptop-cell-$n.log"; done
"$sonoquant" bench merge --plan "$work/laptop" --out "$work/report-laptop" >/dev/null
numbers='[.rows[] | {strategy, seed, epochs, trainableParameters,
           float: (.float | {dice: .dice.mean, iou: .iou.mean, pixelAccuracy: .pixelAccuracy.mean, hc: .hcErrorMM.mean}),
           int8: (.int8 | {dice: .dice.mean, iou: .iou.mean, pixelAccuracy: .pixelAccuracy.mean, hc: .hcErrorMM.mean})}]'
jq -S "$numbers" "$work/report-slurm/results.json" > "$work/numbers-slurm.json"
jq -S "$numbers" "$work/report-laptop/results.json" > "$work/numbers-laptop.json"
diff "$work/numbers-slurm.json" "$work/numbers-laptop.json" > /dev/null \
    || fail "Slurm and the shell loop give different numbers: $(diff "$work/numbers-slurm.json" "$work/numbers-laptop.json" | head)"
echo "slurm-check: the shell loop's merged report has the same rows and numbers (Dice, IoU, pixel accuracy, HC error; float and int8)"
jq -r '.rows[] | "  \(.strategy) seed \(.seed): float Dice \(.float.dice.mean), int8 Dice \(.int8.dice.mean)"' "$work/report-slurm/results.json"
echo "slurm-check: OK"
