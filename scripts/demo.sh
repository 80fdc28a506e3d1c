#!/usr/bin/env bash
# One command on a fresh machine: set everything up, then audit the lab's dev and prod.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "demo: ansible-playbook compare.yml (inventory: the lab)"
status=0
.venv/bin/ansible-playbook compare.yml "$@" || status=$?
echo "demo: report in reports/latest.md (exit code $status; see README 'Exit codes')"
exit "$status"
