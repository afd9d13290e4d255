"""The dev container's sshd, started by its entrypoint, probed with real clients.

Logs in with the configured key, checks what the session receives (W&B key,
git identity, a terminal, SFTP) and that other keys, passwords and root are
refused; ``sshd -T`` shows the settings sshd really applies. Helpers and
fixtures: tests/test_container_support.py.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_container_support import (
    CONTAINER_PTS,
    IS_ROOT,
    PASSWORD_ONLY,
    SCENARIOS,
    SYSTEM_PATH,
    WANDB_KEY,
    LoginUser,
    Server,
    askpass,
    client_keys,
    container_pts,
    free_port,
    login_user,
    openssh,
    run_bounded,
    ssh,
    start_server,
    stop,
)

__all__ = ["client_keys", "container_pts", "login_user", "openssh"]


@pytest.fixture(scope="module", params=SCENARIOS)
def server(
    request: pytest.FixtureRequest,
    login_user: LoginUser,
    client_keys: Path,
    openssh: str,
    container_pts: bool,
) -> Iterator[Server]:
    """The entrypoint serving the owner's key, with W&B key and git identity."""
    as_root = request.param == "sshd-as-root"
    extra = {
        "SSH_PUBLIC_KEY": (client_keys / "owner.pub").read_text(),
        "WANDB_API_KEY": WANDB_KEY,
        "WANDB_PROJECT": "empo",
        "GIT_USER_NAME": "Ada Lovelace",
        "GIT_USER_EMAIL": "ada@example.org",
        "EMPO_TEST_MARKER": "forwarded value 42",
        "SSH_FORWARD_ENV": "EMPO_TEST_MARKER",
    }
    running = start_server(
        login_user, openssh, request.param, extra, as_root, container_pts
    )
    try:
        yield running
    finally:
        stop(running.process)


def test_configured_key_logs_in_and_runs_a_command(
    server: Server, client_keys: Path
) -> None:
    result = ssh(server, server.user.name, "id -un; id -u", client_keys / "owner")
    assert result.returncode == 0, result.stderr + server.log_text()
    assert result.stdout.split() == [server.user.name, str(server.user.uid)]
    assert f"Accepted publickey for {server.user.name}" in server.log_text()


def test_terminal_session_and_file_transfer_work(
    server: Server, client_keys: Path, tmp_path: Path
) -> None:
    """What editors and tmux need: a pseudo-terminal and the SFTP subsystem."""
    if not server.terminals_work:
        message = (
            "an unprivileged sshd can only hand out terminals from a /dev/pts "
            f"mounted like Docker's ({CONTAINER_PTS}); this host's is not and "
            "no mount namespace is available (run the tests as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    terminal = ssh(
        server,
        server.user.name,
        "tty",
        client_keys / "owner",
        options=("BatchMode=yes", "RequestTTY=force"),
    )
    assert terminal.returncode == 0, terminal.stderr + server.log_text()
    assert re.fullmatch(r"/dev/pts/\d+", terminal.stdout.strip()), terminal.stdout
    payload = tmp_path / "payload.txt"
    payload.write_text("sent over sftp\n")
    target = server.user.workdir / f"received-{server.port}.txt"
    batch = tmp_path / "batch"
    batch.write_text(f"put {payload} {target}\n")
    args = ["sftp", "-F", "/dev/null", "-P", str(server.port), "-b", str(batch)]
    args += ["-i", str(client_keys / "owner"), "-o", "IdentitiesOnly=yes"]
    args += ["-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=yes"]
    args += ["-o", f"UserKnownHostsFile={server.known_hosts}"]
    sent = run_bounded([*args, f"{server.user.name}@127.0.0.1"])
    assert sent.returncode == 0, sent.stderr
    assert target.read_text() == "sent over sftp\n"
    assert target.stat().st_uid == server.user.uid


def test_agent_forwarding_reaches_the_session(
    server: Server, client_keys: Path
) -> None:
    """git inside can push with the owner's forwarded agent, no key copied in."""
    started = run_bounded(["ssh-agent", "-s"], env={"PATH": SYSTEM_PATH})
    assert started.returncode == 0, started.stderr
    agent = dict(re.findall(r"(SSH_AUTH_SOCK|SSH_AGENT_PID)=([^;]+);", started.stdout))
    env = {"PATH": SYSTEM_PATH, **agent}
    try:
        added = run_bounded(["ssh-add", str(client_keys / "owner")], env=env)
        assert added.returncode == 0, added.stderr
        listed = ssh(
            server,
            server.user.name,
            "ssh-add -l",
            client_keys / "owner",
            options=(
                "BatchMode=yes",
                f"IdentityAgent={agent['SSH_AUTH_SOCK']}",
                "ForwardAgent=yes",
            ),
            env=env,
        )
    finally:
        run_bounded(["ssh-agent", "-k"], env=env)
    assert listed.returncode == 0, listed.stderr + server.log_text()
    fingerprint = run_bounded(["ssh-keygen", "-l", "-f", str(client_keys / "owner")])
    assert listed.stdout.split()[1] == fingerprint.stdout.split()[1]


def test_session_gets_wandb_key_and_git_identity_at_run_time(
    server: Server, client_keys: Path
) -> None:
    command = (
        "printenv WANDB_API_KEY WANDB_PROJECT EMPO_TEST_MARKER;"
        " git var GIT_AUTHOR_IDENT; git var GIT_COMMITTER_IDENT"
    )
    result = ssh(server, server.user.name, command, client_keys / "owner")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [WANDB_KEY, "empo", "forwarded value 42"]
    for ident in lines[3:5]:
        assert re.fullmatch(r"Ada Lovelace <ada@example\.org> \d+ [+-]\d{4}", ident)
    written = [
        path
        for path in server.user.workdir.rglob("*")
        if path.is_file() and WANDB_KEY.encode() in path.read_bytes()
    ]
    assert written == [], "the W&B key was written to a file"
    rendered = (server.state_dir / "sshd_config").read_text().splitlines()
    assert not [line for line in rendered if line.startswith("SetEnv")]


def test_authorized_keys_hold_exactly_the_owner_key(
    server: Server, client_keys: Path
) -> None:
    installed = server.authorized_keys.read_text().split()
    assert installed == (client_keys / "owner.pub").read_text().split()
    assert server.authorized_keys.stat().st_mode & 0o777 == 0o600


def test_other_key_is_refused(server: Server, client_keys: Path) -> None:
    result = ssh(server, server.user.name, "true", client_keys / "stranger")
    assert result.returncode == 255
    assert "Permission denied (publickey)." in result.stderr


def test_password_login_is_refused_without_being_offered(
    server: Server, tmp_path: Path
) -> None:
    marker, env = askpass(tmp_path)
    result = ssh(server, server.user.name, "true", options=PASSWORD_ONLY, env=env)
    assert result.returncode == 255
    # The server lists what may continue: only publickey, no password or
    # keyboard-interactive, so the client never gets to ask for a password.
    assert "Permission denied (publickey)." in result.stderr
    assert not marker.exists()


def test_password_probe_detects_a_server_that_offers_passwords(
    login_user: LoginUser, client_keys: Path, openssh: str, tmp_path: Path
) -> None:
    """Control: the same probe against the template with password login enabled."""
    template = (login_user.scripts / "sshd_config").read_text()
    enabled = template.replace(
        "PasswordAuthentication no", "PasswordAuthentication yes"
    ).replace("AuthenticationMethods publickey\n", "")
    assert enabled.count("PasswordAuthentication yes") == 1
    assert "AuthenticationMethods" not in enabled
    control_template = login_user.workdir / "control_sshd_config"
    control_template.write_text(enabled)
    control_template.chmod(0o644)
    extra = {
        "SSH_PUBLIC_KEY": (client_keys / "owner.pub").read_text(),
        "SSHD_CONFIG_TEMPLATE": str(control_template),
    }
    control = start_server(login_user, openssh, "control", extra)
    marker, env = askpass(tmp_path)
    try:
        result = ssh(control, login_user.name, "true", options=PASSWORD_ONLY, env=env)
    finally:
        stop(control.process)
    assert result.returncode == 255
    assert "Permission denied (publickey,password)." in result.stderr
    assert marker.exists(), "the client was never offered password login"


def test_root_login_is_refused_even_with_the_authorised_key(
    server: Server, client_keys: Path
) -> None:
    # AuthorizedKeysFile is an absolute path, so root would be checked
    # against the very file that holds the owner's key.
    result = ssh(server, "root", "id -un", client_keys / "owner")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr
    assert result.stdout == ""
    assert re.search(
        r"User root .*not allowed|ROOT LOGIN REFUSED|Invalid user root",
        server.log_text(),
    ), server.log_text()


def _effective_config(server: Server, sshd: str, user: str) -> dict[str, str]:
    """``sshd -T`` for a connection of ``user``: the settings sshd really uses."""
    args = [sshd, "-T", "-f", str(server.state_dir / "sshd_config")]
    args += ["-C", f"user={user},host=localhost,addr=127.0.0.1"]
    identity = {}
    if IS_ROOT and not server.as_root:
        identity = {
            "user": server.user.uid,
            "group": server.user.gid,
            "extra_groups": [],
        }
    result = run_bounded(args, env={"PATH": SYSTEM_PATH}, **identity)
    assert result.returncode == 0, result.stderr
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, value)
    return settings


@pytest.mark.parametrize("connecting", ["owner", "root"])
def test_effective_sshd_settings(server: Server, openssh: str, connecting: str) -> None:
    user = server.user.name if connecting == "owner" else "root"
    settings = _effective_config(server, openssh, user)
    expected = {
        "port": str(server.port),
        "listenaddress": f"127.0.0.1:{server.port}",
        "pubkeyauthentication": "yes",
        "authenticationmethods": "publickey",
        "passwordauthentication": "no",
        "kbdinteractiveauthentication": "no",
        "permitemptypasswords": "no",
        "hostbasedauthentication": "no",
        "permitrootlogin": "no",
        "allowusers": server.user.name,
        "usepam": "no",
        "strictmodes": "yes",
        "permituserenvironment": "no",
        "authorizedkeysfile": str(server.authorized_keys),
    }
    assert {key: settings.get(key) for key in expected} == expected


def test_healthcheck_follows_sshd(server: Server, login_user: LoginUser) -> None:
    script = str(login_user.scripts / "healthcheck.sh")
    env = {"PATH": SYSTEM_PATH, "SSH_LISTEN_ADDRESS": "0.0.0.0"}
    healthy = run_bounded(["bash", script], env={**env, "SSH_PORT": str(server.port)})
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith("healthy: SSH-2.0-OpenSSH")
    down = run_bounded(["bash", script], env={**env, "SSH_PORT": str(free_port())})
    assert down.returncode == 1
    assert "unhealthy: nothing accepts connections" in down.stderr
