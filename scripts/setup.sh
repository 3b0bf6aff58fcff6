#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine, as root: Debian packages, then the venv.
# Fast when nothing is missing: one dpkg-query and a stamp comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(iproute2 nftables iperf3 iputils-ping tcpdump tshark frr freeradius etcd-server
          python3-venv python3-nftables procps chromium chromium-driver
          wpasupplicant eapoltest)  # real supplicants: the lab's servers behind a switch, bench/eap.py's baseline

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start system services we do not want: the lab runs its own instances.
  for svc in freeradius etcd frr wpa_supplicant; do
    (systemctl disable --now "$svc" || service "$svc" stop || true) >/dev/null 2>&1
  done
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if [ ! -f .venv/.stamp ] || [ pyproject.toml -nt .venv/.stamp ]; then
  echo "setup: installing tenet and its pinned dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test,bench]'
  touch .venv/.stamp
fi
