#!/usr/bin/env bash
# The whole test suite: lint, unit, lab, integration and molecule. Sets up what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

echo "== lint"
ruff check .
ruff format --check .
yamllint --strict .
ansible-lint --profile production

echo "== tests (unit, lab, integration)"
pytest tests "$@"

echo "== molecule"
for scenarios in roles/*/molecule; do
  role_dir=$(dirname "$scenarios")
  echo "-- molecule: $role_dir"
  (cd "$role_dir" && molecule test --all)
done
