#!/usr/bin/env bash
# Entrypoint of the empo dev container.
#
# Without arguments: install the owner's SSH public key, make sure host keys
# exist, render the sshd configuration (key-only login for one non-root user)
# and run sshd in the foreground. With arguments: run them instead (for
# example `docker run --rm IMAGE python -m pytest`); no key is needed then.
#
# Nothing here is baked into the image: the key, the W&B key and the git
# identity are read from the environment (or a mounted file) at every start.
#
# Environment (container defaults in brackets; .env.template documents them):
#   SSH_PUBLIC_KEY        public key line(s) to authorise            [unset]
#   AUTHORIZED_KEYS       alias of SSH_PUBLIC_KEY                     [unset]
#   SSH_PUBLIC_KEY_FILE   mounted file with public key line(s)
#                                          [/run/secrets/ssh_public_key]
#   SSH_USER              the only user allowed to log in       [current user]
#   SSH_PORT              port sshd listens on                          [2222]
#   SSH_LISTEN_ADDRESS    address sshd listens on                    [0.0.0.0]
#   SSHD_STATE_DIR        host keys, rendered config, pid file
#                                                     [<user home>/.sshd]
#   AUTHORIZED_KEYS_FILE  where the key is installed
#                                     [<user home>/.ssh/authorized_keys]
#   SSHD_CONFIG_TEMPLATE  sshd configuration template
#                                            [/etc/empo/sshd_config]
#   SSHD_BIN              sshd executable (absolute path)     [/usr/sbin/sshd]
#   WANDB_API_KEY, WANDB_ENTITY, WANDB_PROJECT, WANDB_MODE, WANDB_BASE_URL,
#   WANDB_DIR             passed on to SSH sessions when set
#   GIT_USER_NAME, GIT_USER_EMAIL
#                         git author/committer identity of SSH sessions
#   SSH_FORWARD_ENV       extra variable names (space separated) to pass on
set -euo pipefail

readonly PROG="empo-entrypoint"

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

info() {
    printf '%s: %s\n' "$PROG" "$*" >&2
}

if [[ $# -gt 0 ]]; then
    exec "$@"
fi

SSH_USER="${SSH_USER:-$(id -un)}"
SSH_PORT="${SSH_PORT:-2222}"
SSH_LISTEN_ADDRESS="${SSH_LISTEN_ADDRESS:-0.0.0.0}"
SSH_PUBLIC_KEY_FILE="${SSH_PUBLIC_KEY_FILE:-/run/secrets/ssh_public_key}"
SSHD_CONFIG_TEMPLATE="${SSHD_CONFIG_TEMPLATE:-/etc/empo/sshd_config}"
SSHD_BIN="${SSHD_BIN:-/usr/sbin/sshd}"

if [[ "$SSH_USER" == "root" ]]; then
    die "SSH_USER is root; root login is never allowed. Run the container as" \
        "its dev user (the image default) or set SSH_USER to a non-root user."
fi
[[ "$SSH_USER" =~ ^[a-z_][a-z0-9_-]*$ ]] ||
    die "SSH_USER='$SSH_USER' is not a valid user name."
user_entry="$(getent passwd "$SSH_USER")" ||
    die "SSH_USER='$SSH_USER' does not exist in this container."
user_home="$(cut -d: -f6 <<<"$user_entry")"
SSHD_STATE_DIR="${SSHD_STATE_DIR:-$user_home/.sshd}"
AUTHORIZED_KEYS_FILE="${AUTHORIZED_KEYS_FILE:-$user_home/.ssh/authorized_keys}"

if ! [[ "$SSH_PORT" =~ ^[1-9][0-9]{0,4}$ ]] || ((SSH_PORT > 65535)); then
    die "SSH_PORT='$SSH_PORT' is not a port number (1-65535)."
fi
[[ -x "$SSHD_BIN" && "$SSHD_BIN" == /* ]] ||
    die "SSHD_BIN='$SSHD_BIN' is not an executable absolute path" \
        "(install openssh-server)."
[[ -r "$SSHD_CONFIG_TEMPLATE" ]] ||
    die "SSHD_CONFIG_TEMPLATE='$SSHD_CONFIG_TEMPLATE' is not a readable file."
for path_var in SSHD_STATE_DIR AUTHORIZED_KEYS_FILE; do
    [[ "${!path_var}" == /* && "${!path_var}" != *[[:space:]]* ]] ||
        die "$path_var='${!path_var}' must be an absolute path without spaces."
done

# --- the owner's public key: environment first, then a mounted file --------
keys="${SSH_PUBLIC_KEY:-}"
if [[ -n "${AUTHORIZED_KEYS:-}" ]]; then
    keys+=$'\n'"$AUTHORIZED_KEYS"
fi
key_source="the environment (SSH_PUBLIC_KEY / AUTHORIZED_KEYS)"
if [[ -z "${keys//[[:space:]]/}" ]]; then
    if [[ -f "$SSH_PUBLIC_KEY_FILE" ]]; then
        [[ -r "$SSH_PUBLIC_KEY_FILE" ]] ||
            die "SSH_PUBLIC_KEY_FILE='$SSH_PUBLIC_KEY_FILE' is not readable by $(id -un)."
        keys="$(<"$SSH_PUBLIC_KEY_FILE")"
        key_source="$SSH_PUBLIC_KEY_FILE"
    fi
fi
if [[ -z "${keys//[[:space:]]/}" ]]; then
    die "no SSH public key given, so nobody could log in." \
        "Pass your public key with -e SSH_PUBLIC_KEY=\"\$(cat ~/.ssh/id_ed25519.pub)\"" \
        "or mount it read-only at $SSH_PUBLIC_KEY_FILE" \
        "(-v ~/.ssh/id_ed25519.pub:$SSH_PUBLIC_KEY_FILE:ro)."
fi
if [[ "$keys" == *"PRIVATE KEY"* ]]; then
    die "the key from $key_source is a PRIVATE key; give the public key (.pub)."
fi

key_list="$(mktemp)"
trap 'rm -f "$key_list"' EXIT
grep -v -E '^[[:space:]]*(#|$)' <<<"$keys" >"$key_list" || true
line_no=0
while IFS= read -r line; do
    line_no=$((line_no + 1))
    printf '%s\n' "$line" | ssh-keygen -l -f - >/dev/null 2>&1 ||
        die "line $line_no of the key from $key_source is not an OpenSSH" \
            "public key (its content is not shown, in case it is a secret)."
done <"$key_list"

# sshd reads the file with the user's rights: the user must own it.
owner=()
if [[ "$(id -u)" -eq 0 ]]; then
    owner=(-o "$SSH_USER" -g "$(cut -d: -f4 <<<"$user_entry")")
fi
install -d -m 700 "${owner[@]}" "$(dirname "$AUTHORIZED_KEYS_FILE")"
install -m 600 "${owner[@]}" "$key_list" "$AUTHORIZED_KEYS_FILE"
info "authorised $(wc -l <"$key_list") key(s) for $SSH_USER from $key_source:"
ssh-keygen -l -f "$AUTHORIZED_KEYS_FILE" >&2

# --- host key (kept in the state dir, so a mounted volume keeps it) ---------
install -d -m 700 "$SSHD_STATE_DIR"
host_key="$SSHD_STATE_DIR/ssh_host_ed25519_key"
if [[ ! -f "$host_key" ]]; then
    ssh-keygen -q -t ed25519 -N '' -C "empo-dev-container" -f "$host_key"
fi
info "host key fingerprint (check it on first connect):"
ssh-keygen -l -f "$host_key.pub" >&2

# --- session environment: sshd gives sessions a clean environment ----------
forward=(PATH VIRTUAL_ENV LD_LIBRARY_PATH LANG TZ
    NVIDIA_VISIBLE_DEVICES NVIDIA_DRIVER_CAPABILITIES CUDA_VISIBLE_DEVICES
    WANDB_API_KEY WANDB_ENTITY WANDB_PROJECT WANDB_MODE WANDB_BASE_URL WANDB_DIR)
read -r -a extra <<<"${SSH_FORWARD_ENV:-}"
forward+=("${extra[@]}")
declare -A session_env=()
for name in "${forward[@]}"; do
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
        die "SSH_FORWARD_ENV names '$name', which is not a variable name."
    if [[ -n "${!name:-}" ]]; then
        session_env[$name]="${!name}"
    fi
done
for role in AUTHOR COMMITTER; do
    if [[ -n "${GIT_USER_NAME:-}" ]]; then
        session_env[GIT_${role}_NAME]="$GIT_USER_NAME"
    fi
    if [[ -n "${GIT_USER_EMAIL:-}" ]]; then
        session_env[GIT_${role}_EMAIL]="$GIT_USER_EMAIL"
    fi
done
setenv_line=""
for name in "${!session_env[@]}"; do
    value="${session_env[$name]}"
    case "$value" in
    *'"'* | *\\* | *[[:cntrl:]]*)
        die "$name contains a double quote, backslash or control character," \
            "which cannot be passed to SSH sessions."
        ;;
    esac
    setenv_line+=" \"$name=$value\""
done

# --- render the configuration ----------------------------------------------
# The file in the state directory (often a volume) holds no secret: the SetEnv
# line with the session variables (the W&B key among them) reaches sshd only
# through a pipe, so the key lives in process environments and memory alone.
config="$SSHD_STATE_DIR/sshd_config"
escape() {
    local text="${1//\\/\\\\}"
    text="${text//&/\\&}"
    printf '%s' "${text//|/\\|}"
}
(
    umask 077
    sed -e "s|@PORT@|$SSH_PORT|g" \
        -e "s|@LISTEN_ADDRESS@|$(escape "$SSH_LISTEN_ADDRESS")|g" \
        -e "s|@HOST_KEY@|$(escape "$host_key")|g" \
        -e "s|@PID_FILE@|$(escape "$SSHD_STATE_DIR/sshd.pid")|g" \
        -e "s|@AUTHORIZED_KEYS_FILE@|$(escape "$AUTHORIZED_KEYS_FILE")|g" \
        -e "s|@USER@|$SSH_USER|g" \
        "$SSHD_CONFIG_TEMPLATE" >"$config"
)
unknown="$(grep -v '^[[:space:]]*#' "$config" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ' || true)"
if [[ -n "$unknown" ]]; then
    die "$SSHD_CONFIG_TEMPLATE has placeholders the entrypoint does not know: $unknown"
fi
full_config() {
    cat "$config"
    if [[ -n "$setenv_line" ]]; then
        # sshd honours only the first SetEnv line: all variables go on one.
        printf 'SetEnv%s\n' "$setenv_line"
    fi
}

if [[ "$(id -u)" -eq 0 ]]; then
    # A root sshd separates privileges and needs its empty chroot directory.
    install -d -m 755 /run/sshd
fi
"$SSHD_BIN" -t -f /dev/stdin < <(full_config) ||
    die "sshd rejected the rendered configuration $config."

info "sshd listening on $SSH_LISTEN_ADDRESS:$SSH_PORT; only $SSH_USER may log in, by key."
rm -f "$key_list"
trap - EXIT
# sshd reads its configuration from standard input once, at start (sshd closes
# every other descriptor first), and hands it to each session process itself.
exec "$SSHD_BIN" -D -e -f /dev/stdin < <(full_config)
