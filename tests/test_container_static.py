"""Static checks of the dev container's Dockerfile, .dockerignore and .env.template.

No Docker engine runs here, so the Dockerfile is parsed and checked for what a
build would bake into its layers: no secret file copied (directly or through
``COPY .`` and the build context left by .dockerignore), a non-root ``USER``,
pinned base images and no credentials in ``ENV``/``ARG`` defaults.
"""

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_TEMPLATE = ROOT / ".env.template"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.sh"

SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", flags=re.IGNORECASE
)
SECRET_FILE = re.compile(
    r"(^|/)(\.env(\.(?!template$)[^/]*)?|\.netrc|\.git-credentials|\.pypirc"
    r"|authorized_keys|known_hosts|id_(rsa|dsa|ecdsa|ed25519)[^/]*"
    r"|[^/]*\.(pem|key|p12|pfx|secret)|secrets?(/.*)?|\.ssh(/.*)?)$"
)


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction after joining continuation lines.

    Parameters
    ----------
    keyword : str
        The instruction in upper case (``FROM``, ``RUN``, ...).
    args : str
        Everything after the keyword, continuations joined by spaces.
    line : int
        1-based line number where the instruction starts.
    """

    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions (comments and blank lines dropped).

    Parameters
    ----------
    text : str
        The Dockerfile's content.

    Returns
    -------
    list[Instruction]
        The instructions in file order.
    """
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            joined = " ".join(part for part in pending if part)
            keyword, _, args = joined.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip(), start))
            pending = []
    assert not pending, f"Dockerfile ends inside a continued line from line {start}"
    return instructions


def parse_assignments(args: str) -> dict[str, str]:
    """Read the ``NAME=value`` pairs of an ``ARG`` or ``ENV`` instruction.

    Parameters
    ----------
    args : str
        The instruction's arguments; ``ARG NAME`` without a default gives "".

    Returns
    -------
    dict[str, str]
        Each name with its default (quotes removed).
    """
    pairs: dict[str, str] = {}
    tokens = re.findall(r'[^\s"=]+(?:=(?:"[^"]*"|\S*))?', args)
    if len(tokens) == 2 and "=" not in tokens[0] and "=" not in args:
        return {tokens[0]: tokens[1]}
    for token in tokens:
        name, _, value = token.partition("=")
        pairs[name] = value.strip('"')
    return pairs


def expand(text: str, variables: dict[str, str]) -> str:
    """Substitute ``$NAME``/``${NAME}``/``${NAME:-default}`` like Docker does."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2) or ""
        return variables.get(name) or default

    pattern = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
    return re.sub(pattern, substitute, text)


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Translate one .dockerignore pattern into a regular expression.

    Follows Docker's pattern matcher: ``**`` spans any number of directories
    (``**/`` also none), ``*`` and ``?`` stay inside one path element.
    """
    pattern = pattern.strip("/")
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            out += ".*" if index >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", index)
            out += pattern[index : end + 1]
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out += re.escape(pattern[index])
        else:
            out += re.escape(char)
        index += 1
    return re.compile(f"^{out}$")


def load_dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """The .dockerignore rules as (is_exception, regex), in file order."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        rules.append((exception, dockerignore_regex(line.lstrip("!").strip())))
    return rules


def in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ``path`` (relative, ``/``-separated) to the build.

    A rule matches a path when it matches the path or one of its parent
    directories; the last matching rule decides.
    """
    parts = path.split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    included = True
    for exception, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            included = exception
    return included


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARG defaults declared before the first FROM (usable in FROM lines)."""
    defaults: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            defaults.update(parse_assignments(instruction.args))
    return defaults


def stages(
    instructions: list[Instruction], variables: dict[str, str]
) -> list[tuple[str, str, list[Instruction]]]:
    """Split into build stages: (image reference, stage name, instructions)."""
    result: list[tuple[str, str, list[Instruction]]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            result.append((expand(words[0], variables), name, []))
        elif result:
            result[-1][2].append(instruction)
    return result


def is_pinned(image: str) -> bool:
    """An exact version tag (at least major.minor, not latest) or a digest."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return False
    return tag != "latest" and re.search(r"\d+\.\d+", tag) is not None


def test_parser_reads_hand_written_dockerfile() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nARG BASE=debian:12.12-slim\n"
        "FROM ${BASE} AS one\nRUN apt-get update \\\n    # note\n    && true\n"
        'ENV A=1 B="two words"\nUSER dev\n'
    )
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.line) for i in parsed] == [
        ("ARG", 2),
        ("FROM", 3),
        ("RUN", 4),
        ("ENV", 7),
        ("USER", 8),
    ]
    assert parsed[2].args == "apt-get update && true"
    assert parse_assignments(parsed[3].args) == {"A": "1", "B": "two words"}
    assert parse_assignments("NAME value") == {"NAME": "value"}
    assert expand("base-${DEVICE}", {"DEVICE": "cuda"}) == "base-cuda"
    assert is_pinned("debian:12.12-slim")
    assert is_pinned("nvidia/cuda:12.8.1-runtime-ubuntu24.04")
    assert is_pinned("debian@sha256:" + "a" * 64)
    for floating in ("debian", "debian:latest", "debian:bookworm-slim", "python:3"):
        assert not is_pinned(floating), floating


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_base_images_are_pinned_for_each_device(
    instructions: list[Instruction], global_args: dict[str, str], device: str
) -> None:
    variables = {**global_args, "DEVICE": device}
    built = stages(instructions, variables)
    names = {name for _, name, _ in built}
    external = [image for image, _, _ in built if image not in names]
    assert external, "no FROM with an external base image"
    for image in external:
        assert is_pinned(image), f"base image {image!r} is not pinned"
    final_image = built[-1][0]
    assert final_image == f"base-{device}", final_image
    chosen = dict((name, image) for image, name, _ in built)[final_image]
    assert chosen == global_args[f"{device.upper()}_BASE_IMAGE"]
    assert is_pinned(chosen)


def test_final_stage_runs_as_non_root_user(
    instructions: list[Instruction], global_args: dict[str, str]
) -> None:
    final = stages(instructions, global_args)[-1][2]
    stage_args: dict[str, str] = dict(global_args)
    user = "root"
    user_at_entrypoint = None
    for instruction in final:
        if instruction.keyword == "ARG":
            for name, value in parse_assignments(instruction.args).items():
                stage_args[name] = value or stage_args.get(name, "")
        elif instruction.keyword == "USER":
            user = expand(instruction.args, stage_args).split(":")[0]
        elif instruction.keyword == "ENTRYPOINT":
            user_at_entrypoint = user
    assert user_at_entrypoint is not None, "the final stage has no ENTRYPOINT"
    assert user_at_entrypoint not in ("", "root", "0"), user_at_entrypoint
    assert stage_args["USER_UID"] != "0" and stage_args["USER_GID"] != "0"


def test_no_credentials_in_arg_or_env_defaults(
    instructions: list[Instruction],
) -> None:
    for instruction in instructions:
        if instruction.keyword not in ("ARG", "ENV"):
            continue
        for name, value in parse_assignments(instruction.args).items():
            where = f"Dockerfile line {instruction.line}: {instruction.keyword} {name}"
            if SECRET_NAME.search(name):
                assert value == "", f"{where} has a non-empty default"
            assert not re.search(r"://[^/\s]*:[^/\s]*@", value), f"{where}: URL login"
            assert not re.fullmatch(r"[0-9a-f]{40}", value), f"{where}: key-like"


def test_runtime_secrets_are_never_mentioned_by_build_steps(
    instructions: list[Instruction],
) -> None:
    runtime_only = (
        "WANDB_API_KEY",
        "SSH_PUBLIC_KEY",
        "AUTHORIZED_KEYS",
        "GIT_USER_NAME",
        "GIT_USER_EMAIL",
        "GITHUB_TOKEN",
        "GIT_TOKEN",
        "/run/secrets",
    )
    for instruction in instructions:
        for word in runtime_only:
            assert word not in instruction.args, (
                f"Dockerfile line {instruction.line} ({instruction.keyword}) "
                f"uses {word}, which must only be read at run time"
            )


def copy_sources(instruction: Instruction) -> list[str]:
    """Source paths of a COPY/ADD from the build context (not --from=)."""
    words = instruction.args.split()
    if any(word.startswith("--from=") for word in words):
        return []
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def test_no_secret_file_is_copied(instructions: list[Instruction]) -> None:
    copies = [i for i in instructions if i.keyword in ("COPY", "ADD")]
    assert copies, "the Dockerfile copies nothing"
    for instruction in copies:
        assert instruction.keyword == "COPY", f"line {instruction.line}: use COPY"
        for source in copy_sources(instruction):
            path = source.removeprefix("./").rstrip("/") or "."
            assert not SECRET_FILE.search(path), (
                f"Dockerfile line {instruction.line} copies {source!r}, "
                "which looks like a secret"
            )


def test_secret_pattern_recognises_secrets() -> None:
    for secret in (
        ".env",
        "deploy/.env.production",
        "secrets/wandb",
        "a/id_ed25519.pub",
        "certs/server.pem",
        ".netrc",
        "home/.ssh/config",
        "authorized_keys",
    ):
        assert SECRET_FILE.search(secret), secret
    for ordinary in (".env.template", "empo/utils/loggers.py", "keys.py"):
        assert not SECRET_FILE.search(ordinary), ordinary


def test_dockerignore_matcher_follows_docker_rules() -> None:
    rules = [
        (False, dockerignore_regex("**/.env.*")),
        (True, dockerignore_regex(".env.template")),
        (False, dockerignore_regex("runs")),
        (False, dockerignore_regex("*.md")),
    ]
    assert not in_build_context(".env.local", rules)
    assert not in_build_context("sub/dir/.env.local", rules)
    assert in_build_context(".env.template", rules)
    assert not in_build_context("runs/a/b.pt", rules)
    assert in_build_context("empo/runs.py", rules)
    assert not in_build_context("README.md", rules)
    assert in_build_context("docs/README.md", rules)


def test_dockerignore_excludes_secrets_and_outputs() -> None:
    rules = load_dockerignore()
    for excluded in (
        ".env",
        ".env.local",
        "configs/.env",
        "secrets/wandb_api_key",
        "docker/secrets/key",
        ".git/config",
        ".git-credentials",
        ".netrc",
        "runs/2026-11-21/policy.pt",
        "wandb/run-20261121_000000-abc/files/config.yaml",
        "id_ed25519",
        "keys/id_rsa.pub",
        "server.pem",
        "home/.ssh/authorized_keys",
        "empo/__pycache__/x.cpython-311.pyc",
    ):
        assert not in_build_context(excluded, rules), f"{excluded} reaches the build"
    for needed in (
        "requirements.txt",
        "requirements_dev.txt",
        "setup.py",
        "pyproject.toml",
        "empo/__init__.py",
        "empo/utils/loggers.py",
        "docker/entrypoint.sh",
        "docker/sshd_config",
        "docker/healthcheck.sh",
    ):
        assert in_build_context(needed, rules), f"{needed} is missing from the build"


def build_context(rules: list[tuple[bool, re.Pattern[str]]]) -> list[str]:
    """Files of this checkout that ``docker build .`` would send (sorted).

    Directories excluded as a whole are not entered (this .dockerignore has no
    exception below an excluded directory).
    """
    context = []
    for directory, subdirs, files in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        subdirs[:] = [d for d in subdirs if in_build_context(prefix + d, rules)]
        context += [prefix + f for f in files if in_build_context(prefix + f, rules)]
    return sorted(context)


def test_build_context_of_this_checkout_holds_no_secret() -> None:
    context = build_context(load_dockerignore())
    assert {"setup.py", "requirements_dev.txt", "docker/entrypoint.sh"} <= set(context)
    assert not any(path.startswith(".git/") for path in context)
    leaked = [path for path in context if SECRET_FILE.search(path)]
    assert leaked == [], f"secret-looking files would be sent to docker build: {leaked}"


def test_every_copy_source_is_in_the_build_context(
    instructions: list[Instruction],
) -> None:
    rules = load_dockerignore()
    for instruction in instructions:
        if instruction.keyword != "COPY":
            continue
        for source in copy_sources(instruction):
            if source == ".":
                continue
            assert (ROOT / source).is_file(), f"line {instruction.line}: no {source}"
            assert in_build_context(source, rules), f"{source} is dockerignored"


def test_editable_install_from_requirements_dev(
    instructions: list[Instruction],
) -> None:
    assert "-e ." in (ROOT / "requirements_dev.txt").read_text().splitlines()
    keywords = [(i.keyword, i.args) for i in instructions]
    copy_all = next(
        n for n, (k, a) in enumerate(keywords) if k == "COPY" and " . " in f" {a} "
    )
    installs = [
        n
        for n, (k, a) in enumerate(keywords)
        if k == "RUN" and re.search(r"pip install .*-r requirements_dev\.txt", a)
    ]
    assert installs and installs[0] > copy_all
    torch_pins = [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("torch==")
    ]
    assert len(torch_pins) == 1, "the build reads the torch pin from requirements.txt"


def test_sshd_host_keys_of_the_package_are_deleted_in_its_layer(
    instructions: list[Instruction],
) -> None:
    installs = [
        i for i in instructions if i.keyword == "RUN" and "openssh-server" in i.args
    ]
    assert len(installs) == 1
    assert "rm -f /etc/ssh/ssh_host_*" in installs[0].args


def test_entrypoint_healthcheck_and_config_are_wired(
    instructions: list[Instruction],
) -> None:
    copies = {}
    for instruction in instructions:
        if instruction.keyword == "COPY":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            copies[words[-1]] = words[:-1]
    assert copies["/usr/local/bin/empo-entrypoint"] == ["docker/entrypoint.sh"]
    assert copies["/usr/local/bin/empo-healthcheck"] == ["docker/healthcheck.sh"]
    assert copies["/etc/empo/sshd_config"] == ["docker/sshd_config"]
    script = ENTRYPOINT.read_text()
    assert 'SSHD_CONFIG_TEMPLATE="${SSHD_CONFIG_TEMPLATE:-/etc/empo/sshd_config}"' in (
        script
    )
    entrypoint = next(i for i in instructions if i.keyword == "ENTRYPOINT").args
    assert entrypoint == '["/usr/bin/tini", "--", "/usr/local/bin/empo-entrypoint"]'
    healthcheck = next(i for i in instructions if i.keyword == "HEALTHCHECK").args
    assert healthcheck.endswith('CMD ["/usr/local/bin/empo-healthcheck"]')
    exposed = next(i for i in instructions if i.keyword == "EXPOSE").args
    assert 'SSH_PORT="${SSH_PORT:-' + exposed + '}"' in script
    assert 'port="${SSH_PORT:-' + exposed + '}"' in HEALTHCHECK.read_text()


@pytest.mark.parametrize("script", [ENTRYPOINT, HEALTHCHECK], ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path) -> None:
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert script.stat().st_mode & 0o111, f"{script} is not executable"


def template_names() -> dict[str, str]:
    """Variables of .env.template: set or commented-out ``NAME=value`` lines."""
    names: dict[str, str] = {}
    for raw in ENV_TEMPLATE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(\S*)", raw)
        if match:
            names.setdefault(match.group(1), match.group(2))
    return names


def test_env_template_documents_every_variable(
    instructions: list[Instruction], global_args: dict[str, str]
) -> None:
    documented = template_names()
    read = set()
    for script in (ENTRYPOINT, HEALTHCHECK):
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", script.read_text()))
    forward = re.search(r"forward=\(([^)]*)\)", ENTRYPOINT.read_text())
    assert forward is not None, "entrypoint.sh has no forward=(...) list"
    forwarded = set(forward.group(1).split())
    assert {"WANDB_API_KEY", "PATH"} <= forwarded
    read |= {name for name in forwarded if name.startswith("WANDB_")}
    assert read - set(documented) == set(), "undocumented run-time variables"
    text = ENV_TEMPLATE.read_text()
    assert {name for name in forwarded if name not in text} == set()
    build_args = set()
    for instruction in instructions:
        if instruction.keyword == "ARG":
            build_args |= set(parse_assignments(instruction.args))
    assert build_args - set(documented) == set(), "undocumented build arguments"
    for name in ("CPU_BASE_IMAGE", "CUDA_BASE_IMAGE", "DEVICE"):
        assert documented[name] == global_args[name], name


def test_env_template_holds_no_secret_values() -> None:
    for raw in ENV_TEMPLATE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", raw)
        if match and SECRET_NAME.search(match.group(1)):
            assert match.group(2) == "", f".env.template sets {match.group(1)}"


@pytest.mark.parametrize("doc", ["README.md", "docs/container.md"])
def test_documented_docker_runs_publish_ssh_on_loopback_only(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8").replace("\\\n", " ")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    runs = [
        line
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("docker run") and " -p " in line
    ]
    assert runs, f"{doc} shows no docker run that publishes a port"
    for line in runs:
        published = re.findall(r"-p (\S+)", line)
        assert all(p.startswith("127.0.0.1:") for p in published), line
