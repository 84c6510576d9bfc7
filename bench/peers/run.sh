#!/usr/bin/env bash
# bosun beside LangGraph, Pydantic AI (DBOS) and the OpenAI Agents SDK: builds one venv per peer
# with the versions measured, then runs the interleaved comparison and prints one table.
#
#   bash bench/peers/run.sh [--reps 5] [--runs 200] [--n 500]     (arguments go to run.py)
#
# bosun runs in the Python this script finds first on PATH (the project's venv); the peers'
# venvs go under $BOSUN_PEERS_HOME (default .peers/, gitignored). The harness is read from
# $BOSUN_PEERBENCH (default ../shared/peerbench beside the repository), never copied here.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export BOSUN_PEERS_HOME=${BOSUN_PEERS_HOME:-$REPO/.peers}
export BOSUN_PEERBENCH=${BOSUN_PEERBENCH:-$REPO/../shared/peerbench}
PY311=${PY311:-python3.11}
H=$BOSUN_PEERS_HOME
mkdir -p "$H"
for v in lg pai oai; do [ -x "$H/venv_$v/bin/python" ] || "$PY311" -m venv "$H/venv_$v"; done
# The pins are the harness's (its setup.sh), so figures compare with its README's.
"$H/venv_lg/bin/python" -m pip install -q langgraph==1.2.22 langchain-core==1.7.2 \
  langgraph-prebuilt==1.1.2 langgraph-checkpoint==4.3.2 langgraph-checkpoint-sqlite==3.1.2 \
  aiosqlite==0.22.1 langchain==1.4.7
"$H/venv_pai/bin/python" -m pip install -q "pydantic-ai-slim[dbos]==2.68.0" dbos==3.4.0 \
  pydantic==2.14.3
"$H/venv_oai/bin/python" -m pip install -q openai-agents==0.24.0 openai==3.54.0
exec python "$REPO/bench/peers/run.py" "$@"
