"""The dev container's entrypoint on its own: key sources and clear failures.

A missing, private or malformed key, a root login user or an unusable
setting stops the entrypoint before sshd starts, with a message saying what
to do; arguments run instead of sshd. Helpers and fixtures:
tests/test_container_support.py.
"""

from pathlib import Path

import pytest
from test_container_support import (
    LoginUser,
    client_keys,
    entrypoint_once,
    login_user,
    nothing_listens,
    openssh,
    ssh,
    start_server,
    stop,
)

__all__ = ["client_keys", "login_user", "openssh"]


@pytest.mark.parametrize("given", [None, "   \n  "], ids=["unset", "blank"])
def test_missing_key_exits_with_a_clear_message(
    login_user: LoginUser, openssh: str, given: str | None
) -> None:
    extra = {} if given is None else {"SSH_PUBLIC_KEY": given}
    result, run_dir, port = entrypoint_once(login_user, openssh, "nokey", extra)
    assert result.returncode == 1
    assert "empo-entrypoint: error: no SSH public key given" in result.stderr
    assert 'SSH_PUBLIC_KEY="$(cat ~/.ssh/id_ed25519.pub)"' in result.stderr
    assert f"mount it read-only at {run_dir / 'no-mounted-key.pub'}" in result.stderr
    assert not (run_dir / "sshd" / "sshd_config").exists()
    assert nothing_listens(port)


def test_key_from_a_mounted_file(
    login_user: LoginUser, client_keys: Path, openssh: str
) -> None:
    mounted = login_user.workdir / "mounted-key.pub"
    mounted.write_text("# owner\n\n" + (client_keys / "owner.pub").read_text())
    mounted.chmod(0o644)
    extra = {"SSH_PUBLIC_KEY_FILE": str(mounted)}
    running = start_server(login_user, openssh, "mounted", extra)
    try:
        result = ssh(running, login_user.name, "id -un", client_keys / "owner")
    finally:
        stop(running.process)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == login_user.name
    assert f"from {mounted}" in running.log_text()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SSH_PUBLIC_KEY", "private", "is a PRIVATE key; give the public key"),
        ("SSH_PUBLIC_KEY", "ssh-ed25519 AAAAnotbase64", "is not an OpenSSH public key"),
        ("SSH_USER", "root", "root login is never allowed"),
        ("SSH_USER", "no-such-user-empo", "does not exist in this container"),
        ("SSH_PORT", "0", "is not a port number"),
        ("GIT_USER_NAME", 'Ada "A" Lovelace', "_NAME contains a double quote"),
        ("SSH_FORWARD_ENV", "NOT-A-NAME", "which is not a variable name"),
    ],
)
def test_bad_settings_exit_with_a_clear_message(
    login_user: LoginUser,
    client_keys: Path,
    openssh: str,
    variable: str,
    value: str,
    message: str,
) -> None:
    extra = {"SSH_PUBLIC_KEY": (client_keys / "owner.pub").read_text()}
    if value == "private":
        value = (client_keys / "owner").read_text()
    extra[variable] = value
    result, _, port = entrypoint_once(login_user, openssh, "bad", extra)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert nothing_listens(port)
    if variable == "SSH_PUBLIC_KEY":
        for line in value.splitlines()[1:2] + ["AAAAnotbase64"]:
            assert line not in result.stderr, "key material was echoed"


def test_arguments_run_instead_of_sshd(login_user: LoginUser, openssh: str) -> None:
    result, _, port = entrypoint_once(
        login_user, openssh, "command", {}, ("sh", "-c", "id -un; echo ran")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [login_user.name, "ran"]
    assert nothing_listens(port)
