#!/usr/bin/env bash
# Set up everything on a fresh Debian machine (as root): Debian packages, the pinned
# virtualenv in .venv, and the lab (a real dev and a real prod on this machine).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(openssh-server openssh-client git python3 python3-venv)
# prometheus: only its promtool is used (checks the metrics text and the example alert rules).
packages+=(prometheus)
# logrotate and cron: their checkers (logrotate -d, crontab -n) test the scheduled audit's files.
packages+=(logrotate cron)
# strace: proves that `docker compose config`, as the audit runs it, writes nothing and connects nowhere.
packages+=(strace)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/ansible-playbook ] || ! cmp -s requirements.txt .venv/.requirements.txt; then
  echo "setup: creating the virtualenv .venv (pinned: requirements.txt)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.txt
fi

/usr/bin/python3 lab/labctl up
