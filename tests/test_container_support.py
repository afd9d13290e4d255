"""Shared helpers for the dev-container SSH tests (no tests of its own).

docker/entrypoint.sh installs the owner's key, renders docker/sshd_config and
execs ``sshd -D``. The tests run it against a temporary directory on a free
loopback port, exactly as in the container (sshd unprivileged, as the login
user); when they run as root a second scenario runs sshd as root (as a
container started with ``--user root`` would). Everything binds to 127.0.0.1
only, every subprocess has a timeout and every started process is stopped.

Needs openssh-server and openssh-client (.ci/run installs them). Without them
the tests skip, except under CI (``CI`` set), where they fail.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / "docker"
# One account per test process (runs may overlap); the pid in the name lets a
# later run remove accounts whose process died before its teardown.
TEST_USER_PREFIX = "empo-sshtest-"
TEST_USER = f"{TEST_USER_PREFIX}{os.getpid()}"
TIMEOUT = 20
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"
IS_ROOT = os.geteuid() == 0
SCENARIOS = ["sshd-as-user", "sshd-as-root"] if IS_ROOT else ["sshd-as-user"]


def find_sshd() -> str | None:
    """Path of the sshd executable (often outside a non-root PATH), or None."""
    return shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/sbin")


@dataclass(frozen=True)
class LoginUser:
    """The non-root account that may log in, and a directory it owns.

    Parameters
    ----------
    name, uid, gid
        The account.
    workdir : Path
        Directory owned by the account, outside world-writable parents up to
        its home (sshd's StrictModes checks every parent of authorized_keys).
    scripts : Path
        Copies of docker/entrypoint.sh, sshd_config and healthcheck.sh that the
        account can read (the checkout itself may not be readable to it).
    """

    name: str
    uid: int
    gid: int
    workdir: Path
    scripts: Path


@dataclass
class Server:
    """A running entrypoint (sshd in the foreground) and what it wrote."""

    process: subprocess.Popen
    port: int
    state_dir: Path
    authorized_keys: Path
    log: Path
    known_hosts: Path
    user: LoginUser
    as_root: bool
    terminals_work: bool

    def log_text(self) -> str:
        """Everything the entrypoint and sshd have logged so far."""
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def openssh() -> str:
    """Path of sshd; fails under CI and skips elsewhere when OpenSSH is missing."""
    sshd = find_sshd()
    missing = [
        name
        for name, path in (
            ("sshd", sshd),
            ("ssh", shutil.which("ssh")),
            ("ssh-keygen", shutil.which("ssh-keygen")),
        )
        if path is None
    ]
    if missing:
        message = (
            f"OpenSSH is not installed ({', '.join(missing)} missing): "
            "apt-get install -y openssh-server openssh-client"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert sshd is not None
    return sshd


def run_bounded(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with captured text output and the module timeout."""
    return subprocess.run(
        args, capture_output=True, text=True, timeout=TIMEOUT, **kwargs
    )


def remove_test_user(name: str = TEST_USER) -> None:
    """Delete the test account ``name`` if it exists."""
    if run_bounded(["getent", "passwd", name]).returncode == 0:
        result = run_bounded(["userdel", "--force", name])
        assert result.returncode == 0, result.stderr


def remove_stale_test_users() -> None:
    """Delete test accounts left behind by test processes that no longer run."""
    for entry in pwd.getpwall():
        suffix = entry.pw_name.removeprefix(TEST_USER_PREFIX)
        if entry.pw_name != suffix and suffix.isdigit():
            if not Path(f"/proc/{suffix}").exists():
                remove_test_user(entry.pw_name)


@pytest.fixture(scope="module")
def login_user(openssh: str) -> Iterator[LoginUser]:
    """A dedicated account when running as root, else the current user."""
    if IS_ROOT:
        remove_stale_test_users()
        remove_test_user()
        base = Path(tempfile.mkdtemp(prefix="empo-sshtest-"))
        base.chmod(0o755)
        home = base / "home"
        created = run_bounded(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/bin/bash",
                "--user-group",
                "--password",
                "*",
                TEST_USER,
            ]
        )
        assert created.returncode == 0, f"useradd failed: {created.stderr}"
        entry = pwd.getpwnam(TEST_USER)
        workdir = home
    else:
        entry = pwd.getpwuid(os.getuid())
        cache = Path(entry.pw_dir) / ".cache"
        cache.mkdir(mode=0o700, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="empo-sshtest-", dir=cache))
        workdir = base
    scripts = base / "docker"
    scripts.mkdir()
    for name in ("entrypoint.sh", "sshd_config", "healthcheck.sh"):
        shutil.copy(DOCKER_DIR / name, scripts / name)
        (scripts / name).chmod(0o755)
    scripts.chmod(0o755)
    user = LoginUser(entry.pw_name, entry.pw_uid, entry.pw_gid, workdir, scripts)
    try:
        yield user
    finally:
        if IS_ROOT:
            remove_test_user()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def client_keys(tmp_path_factory: pytest.TempPathFactory, openssh: str) -> Path:
    """Two client key pairs: ``owner`` (authorised) and ``stranger`` (not)."""
    directory = tmp_path_factory.mktemp("client-keys")
    for name in ("owner", "stranger"):
        result = run_bounded(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", name],
            cwd=directory,
        )
        assert result.returncode == 0, result.stderr
    return directory


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def entrypoint_env(user: LoginUser, run_dir: Path, port: int, sshd: str) -> dict:
    """The environment of one entrypoint run, confined to ``run_dir``."""
    return {
        "PATH": SYSTEM_PATH,
        "HOME": str(user.workdir),
        "LANG": "C.UTF-8",
        "SSH_USER": user.name,
        "SSH_PORT": str(port),
        "SSH_LISTEN_ADDRESS": "127.0.0.1",
        "SSHD_STATE_DIR": str(run_dir / "sshd"),
        "AUTHORIZED_KEYS_FILE": str(run_dir / "ssh" / "authorized_keys"),
        "SSHD_CONFIG_TEMPLATE": str(user.scripts / "sshd_config"),
        "SSHD_BIN": sshd,
        "SSH_PUBLIC_KEY_FILE": str(run_dir / "no-mounted-key.pub"),
    }


# Docker mounts a fresh /dev/pts for every container with these options; a
# terminal then belongs to group tty already and the unprivileged sshd never
# needs to chown it. As root the tests give sshd the same mount, in a private
# mount namespace that leaves the host's /dev/pts alone.
CONTAINER_PTS = "newinstance,gid=5,mode=620,ptmxmode=666"
_NAMESPACE_SCRIPT = (
    f"mount -t devpts -o {CONTAINER_PTS} devpts /dev/pts"
    ' && mount --bind /dev/pts/ptmx /dev/ptmx && exec "$@"'
)
_NAMESPACE = ["unshare", "--mount", "--propagation", "private"]
_NAMESPACE += ["sh", "-c", _NAMESPACE_SCRIPT, "sh"]


@pytest.fixture(scope="module")
def container_pts(openssh: str) -> bool:
    """Whether sshd gets Docker's /dev/pts (root, with mount namespaces)."""
    if not IS_ROOT or shutil.which("unshare") is None:
        return False
    return run_bounded([*_NAMESPACE, "true"]).returncode == 0


def host_pts_like_docker() -> bool:
    """Whether this host's own /dev/pts already hands out group-tty terminals."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/dev/pts" and "gid=5" in line:
            return True
    return False


def run_entrypoint(
    user: LoginUser,
    env: dict,
    args: tuple[str, ...] = (),
    as_root: bool = False,
    namespace: bool = False,
    **popen: object,
) -> subprocess.Popen:
    """Start docker/entrypoint.sh as ``user`` (or as root, when asked).

    With ``namespace`` (needs root) it runs behind Docker's /dev/pts mount.
    """
    command = ["bash", str(user.scripts / "entrypoint.sh"), *args]
    identity: dict[str, object] = {}
    if IS_ROOT and not as_root:
        if namespace:
            drop = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}"]
            command = [*drop, "--clear-groups", *command]
        else:
            identity = {"user": user.uid, "group": user.gid, "extra_groups": []}
    if namespace:
        command = [*_NAMESPACE, *command]
    return subprocess.Popen(
        command,
        env=env,
        cwd=user.workdir,
        start_new_session=True,
        **identity,
        **popen,
    )


def stop(process: subprocess.Popen) -> None:
    """Stop the process group this test module started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def start_server(
    user: LoginUser,
    sshd: str,
    run_name: str,
    extra_env: dict,
    as_root: bool = False,
    namespace: bool = False,
) -> Server:
    """Run the entrypoint until sshd listens; raise with its log otherwise."""
    run_dir = user.workdir / run_name
    port = free_port()
    env = {**entrypoint_env(user, run_dir, port, sshd), **extra_env}
    log = user.workdir / f"{run_name}.log"
    with log.open("w") as sink:
        process = run_entrypoint(
            user,
            env,
            as_root=as_root,
            namespace=namespace,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    ready = f"Server listening on 127.0.0.1 port {port}."
    deadline = time.monotonic() + TIMEOUT
    while ready not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"sshd did not start:\n{log.read_text()}")
        time.sleep(0.05)
    state = Path(env["SSHD_STATE_DIR"])
    host_key = (state / "ssh_host_ed25519_key.pub").read_text().split()
    known_hosts = user.workdir / f"{run_name}.known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    return Server(
        process,
        port,
        state,
        Path(env["AUTHORIZED_KEYS_FILE"]),
        log,
        known_hosts,
        user,
        as_root,
        terminals_work=as_root or namespace or host_pts_like_docker(),
    )


def ssh(
    server: Server,
    login: str,
    command: str,
    key: Path | None = None,
    options: tuple[str, ...] = ("BatchMode=yes",),
    env: dict | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` over SSH with a fixed, hermetic client configuration."""
    args = ["ssh", "-F", "/dev/null", "-p", str(server.port)]
    # ssh keeps the first value given for an option: ``options`` come first.
    fixed = (
        *options,
        f"UserKnownHostsFile={server.known_hosts}",
        "GlobalKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=yes",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "ConnectTimeout=5",
    )
    for option in fixed:
        args += ["-o", option]
    if key is not None:
        args += ["-i", str(key)]
    else:
        args += ["-o", "PubkeyAuthentication=no"]
    return run_bounded([*args, f"{login}@127.0.0.1", command], env=env)


def askpass(directory: Path) -> tuple[Path, dict]:
    """An askpass program that records being asked and answers a password."""
    marker = directory / "askpass-was-called"
    script = directory / "askpass.sh"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\necho not-the-password\n")
    script.chmod(0o755)
    env = {
        "PATH": SYSTEM_PATH,
        "SSH_ASKPASS": str(script),
        "SSH_ASKPASS_REQUIRE": "force",
        "DISPLAY": ":0",
    }
    return marker, env


PASSWORD_ONLY = (
    "BatchMode=no",
    "PreferredAuthentications=keyboard-interactive,password",
    "NumberOfPasswordPrompts=1",
)


def entrypoint_once(
    user: LoginUser, sshd: str, run_name: str, extra: dict, args: tuple = ()
) -> tuple[subprocess.CompletedProcess[str], Path, int]:
    """Run the entrypoint to completion (it must exit by itself)."""
    run_dir = user.workdir / run_name
    port = free_port()
    env = {**entrypoint_env(user, run_dir, port, sshd), **extra}
    process = run_entrypoint(
        user, env, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        stop(process)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done, run_dir, port


def nothing_listens(port: int) -> bool:
    """Whether a connection to 127.0.0.1:``port`` is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0
