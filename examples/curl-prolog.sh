#!/bin/bash
# slurmctld PrologSlurmctld without Python on the controller (`lmrpc agent prolog` is the
# supported hook, see docs/agent.md): books the job's licenses in lmrpc before it starts.
# Slurm's license request (SLURM_JOB_LICENSES, e.g. "abaqus.cae@flexlm:4,ansys.hpc@rlm:2")
# becomes one jobs.create call; all bookings are admitted together or none.
# A hard timeout keeps slurmctld from waiting on lmrpc: when lmrpc is down or slow the job
# is refused (Slurm requeues it) and the miss is logged; LMRPC_AGENT_PROLOG_ON_ERROR=admit
# lets it start instead.
set -u
: "${LMRPC_URL:=http://127.0.0.1:8000}"
: "${LMRPC_TOKEN:?set LMRPC_TOKEN (an access token of this cluster) in the slurmctld environment}"
: "${LMRPC_TIMEOUT:=5}"
[ -n "${SLURM_JOB_LICENSES:-}" ] || exit 0   # no licenses requested: nothing to book

bookings=""
IFS=',' read -ra requests <<< "$SLURM_JOB_LICENSES"
for request in "${requests[@]}"; do
  name=${request%%:*}; count=${request#*:}; [ "$count" = "$request" ] && count=1
  name=${name%@*}                              # product.feature@server-type → product.feature
  case "$name" in *.*) ;; *) continue ;; esac  # not a license lmrpc manages
  bookings+="${bookings:+,}{\"product_feature\":\"$name\",\"quantity\":$count}"
done
[ -n "$bookings" ] || exit 0
lead_host=$(scontrol show hostnames "${SLURM_JOB_NODELIST:-unknown}" 2>/dev/null | head -n1)
: "${lead_host:=${SLURM_JOB_NODELIST:-unknown}}"

body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"jobs.create\",\"params\":{\"slurm_job_id\":\"$SLURM_JOB_ID\",\"username\":\"${SLURM_JOB_USER:-unknown}\",\"lead_host\":\"$lead_host\",\"bookings\":[$bookings]}}"
answer=$(curl -sS --max-time "$LMRPC_TIMEOUT" -H "Authorization: Bearer $LMRPC_TOKEN" \
  -H 'Content-Type: application/json' -d "$body" "$LMRPC_URL/rpc") || {
  logger -t lmrpc-prolog "job $SLURM_JOB_ID: lmrpc unreachable"; [ "${LMRPC_AGENT_PROLOG_ON_ERROR:-refuse}" = admit ]; exit $?; }
case "$answer" in
  *'"result"'*|*'"code":-32009'*) exit 0 ;;   # booked, or booked by an earlier try of this prolog
  *'"code":-32010'*) logger -t lmrpc-prolog "job $SLURM_JOB_ID: not enough licenses: $answer"; exit 1 ;;
  *'"code":-32004'*) logger -t lmrpc-prolog "job $SLURM_JOB_ID: $answer"; exit 0 ;;  # untracked
  *) logger -t lmrpc-prolog "job $SLURM_JOB_ID: $answer"
     [ "${LMRPC_AGENT_PROLOG_ON_ERROR:-refuse}" = admit ]; exit $? ;;
esac
