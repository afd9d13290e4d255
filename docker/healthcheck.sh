#!/usr/bin/env bash
# Healthcheck of the empo dev container: healthy when sshd answers on its port
# with an SSH protocol banner. Reads SSH_PORT and SSH_LISTEN_ADDRESS like the
# entrypoint; a wildcard listen address is probed on loopback.
set -euo pipefail

port="${SSH_PORT:-2222}"
address="${SSH_LISTEN_ADDRESS:-0.0.0.0}"
case "$address" in
0.0.0.0) address=127.0.0.1 ;;
:: | '[::]') address=::1 ;;
esac

if ! { exec 3<>"/dev/tcp/$address/$port"; } 2>/dev/null; then
    echo "unhealthy: nothing accepts connections on $address:$port" >&2
    exit 1
fi
banner=""
read -r -t 5 banner <&3 || true
exec 3<&-
if [[ "$banner" != SSH-2.0-* ]]; then
    echo "unhealthy: $address:$port did not answer with an SSH banner" >&2
    exit 1
fi
echo "healthy: ${banner%$'\r'} on $address:$port"
