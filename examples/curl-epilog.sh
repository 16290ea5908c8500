#!/bin/bash
# slurmctld EpilogSlurmctld without Python on the controller (`lmrpc agent epilog` is the
# supported hook, see docs/agent.md): gives the job's licenses back (deletes the job and its
# bookings). Always exits 0: a failing epilog would requeue the job, and the agent's
# reconcile cycle releases what is left behind.
set -u
: "${LMRPC_URL:=http://127.0.0.1:8000}"
: "${LMRPC_TOKEN:?set LMRPC_TOKEN (an access token of this cluster) in the slurmctld environment}"
: "${LMRPC_TIMEOUT:=5}"
body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"jobs.delete_by_slurm_id\",\"params\":{\"slurm_job_id\":\"$SLURM_JOB_ID\"}}"
answer=$(curl -sS --max-time "$LMRPC_TIMEOUT" -H "Authorization: Bearer $LMRPC_TOKEN" \
  -H 'Content-Type: application/json' -d "$body" "$LMRPC_URL/rpc") || {
  logger -t lmrpc-epilog "job $SLURM_JOB_ID: lmrpc unreachable"; exit 0; }
case "$answer" in
  *'"result"'*|*'"code":-32004'*) exit 0 ;;   # deleted, or the job never booked
  *) logger -t lmrpc-epilog "job $SLURM_JOB_ID: $answer"; exit 0 ;;
esac
