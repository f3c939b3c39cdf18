#!/usr/bin/env bash
# Install the PostgreSQL and RabbitMQ servers, pgBackRest (backups of the private PostgreSQL), the wrk load
# generator (make bench), and Node.js with npm (which build the web page), from Debian's packages when missing,
# without starting their services: scripts/infra.py runs private instances of them instead. With OBSERVE=1
# (make up OBSERVE=1), Prometheus too, which scripts/observe.py runs privately; with WITH_BROWSER=1 (the test
# targets), Chromium and its WebDriver, which the browser tests drive.
set -euo pipefail

missing=()
[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || missing+=(rabbitmq-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[[ -x /usr/bin/pgbackrest ]] || missing+=(pgbackrest)
[[ -x /usr/bin/wrk ]] || missing+=(wrk)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [[ ${WITH_BROWSER:-0} == 1 ]]; then
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    [[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
fi
if [[ ${OBSERVE:-0} == 1 ]]; then
    [[ -x /usr/bin/prometheus ]] || missing+=(prometheus)
fi
if ((${#missing[@]} == 0)); then exit 0; fi

if ((EUID != 0)); then
    echo "Missing system packages: ${missing[*]}. Install them as root:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    exit 1
fi

# Debian's maintainer scripts start a service after installing it unless policy-rc.d forbids it (101).
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
export RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive

echo "Installing ${missing[*]} from Debian's packages..."
apt-get update -qq
# Without recommends: Prometheus would bring its node exporter, which nothing here runs; Chromium, fonts and
# extensions nobody sees.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Installed ${missing[*]}."
