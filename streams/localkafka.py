"""A single-node Apache Kafka broker (KRaft) on 127.0.0.1, run from jars, without Docker.

Nudge needs a real broker for development and for its integration tests
(nothing else behaves like Kafka; see FIELD-NOTES.md), and it cannot assume
Docker. Maven already knows how to fetch Kafka with its dependencies, and a JDK
can run it, so this module:

1. resolves the broker's jars once with ``mvn dependency:copy-dependencies`` on
   ``deploy/kafka-local/pom.xml`` into a per-user cache (:func:`resolve_jars`);
2. renders ``deploy/kafka-local/server.properties.template`` into a data
   directory, formats the KRaft storage once, and starts ``java`` in its own
   session, recording its PID (:class:`LocalKafka`);
3. stops it by that PID: SIGTERM, then SIGKILL after a grace period.

``nudge kafka start|stop|status`` calls :func:`run_command`; the test suite
starts a :meth:`LocalKafka.ephemeral` broker on free ports per session.

The layout under the cache directory (see :func:`default_cache_dir`)::

    kafka-<version>/libs/*.jar      the broker's classpath, shared by every broker
    kafka-data/                     the developer broker (:func:`developer_broker`)
        server.properties           rendered from the template on every start
        broker.pid                  PID of the running broker
        kraft/                      topic data and the KRaft metadata log
        logs/server.log             the broker's own log (log4j2)
        logs/stdout.log             the JVM's stdout and stderr (crashes, bad options)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Literal

__all__ = [
    "DEFAULT_PORT",
    "DEPLOY_DIR",
    "BrokerStatus",
    "LocalKafka",
    "LocalKafkaError",
    "SecureListeners",
    "TlsFiles",
    "broker_ready",
    "default_cache_dir",
    "developer_broker",
    "free_port",
    "free_ports",
    "kafka_version",
    "make_tls_files",
    "resolve_jars",
    "run_command",
]

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka-local"
"""Where the pom, the broker config template and the log4j2 config live."""

DEFAULT_PORT = 9092
"""Client port of the developer broker; its controller listens on the next port."""

HOST = "127.0.0.1"
"""The only address a local broker binds: it has no authentication."""

JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    # One GC thread, no concurrent phases: a laptop or a 2-core CI runner also
    # runs the workers and the tests, and a test broker holds little data.
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    # Plain IPv4 sockets: `ss -ltn` then shows 127.0.0.1:port, not ::ffff:127.0.0.1.
    "-Djava.net.preferIPv4Stack=true",
)
"""JVM flags for the broker; no JMX port is opened (nothing to bind but 127.0.0.1)."""

_MARKER = ".nudge-pom.sha256"

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Brokers this process started, by PID. Kept for as long as they run, so that
whichever LocalKafka object stops one can reap it (no zombie), and no Popen is
garbage-collected while its broker runs on (which warns ResourceWarning)."""
_READY_POLL_SECONDS = 0.25


class LocalKafkaError(RuntimeError):
    """The local broker could not be set up, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerStatus:
    """What :meth:`LocalKafka.status` found: a broker process for this data directory, or none."""

    running: bool
    pid: int | None
    bootstrap_servers: str
    data_dir: Path


SecureProtocol = Literal["SASL_PLAINTEXT", "SSL", "SASL_SSL"]

_SAFE_CREDENTIAL = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class SecureListeners:
    """Client listeners that authenticate (SASL) or encrypt (TLS), for testing Nudge's settings.

    They are added beside the PLAINTEXT listener, which stays: the readiness
    probe and the broker's own traffic use it. A SASL listener accepts
    ``users`` over PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (SCRAM credentials
    are written into the KRaft metadata when the storage is formatted, so
    they exist only on a broker started on fresh storage). TLS listeners
    present ``keystore``; with ``truststore`` the SSL listener (not SASL_SSL)
    also requires a client certificate signed by one of its CAs.
    """

    ports: Mapping[SecureProtocol, int]
    users: Mapping[str, str] = field(default_factory=dict)
    """User name to password; letters, digits, ``._-`` only (they go into JAAS and CLI syntax)."""
    keystore: Path | None = None
    """PEM file: the broker's unencrypted PKCS#8 private key, then its certificate chain."""
    truststore: Path | None = None
    """PEM CA certificates the SSL listener verifies client certificates against."""

    def __post_init__(self) -> None:
        for text in (*self.users, *self.users.values()):
            if not _SAFE_CREDENTIAL.match(text):
                raise LocalKafkaError("user names and passwords may hold only A-Z a-z 0-9 . _ -")
        if self.keystore is None and any(name.endswith("SSL") for name in self.ports):
            raise LocalKafkaError("a TLS listener needs a keystore")

    def bootstrap(self, protocol: SecureProtocol) -> str:
        """``host:port`` of the listener speaking ``protocol``."""
        return f"{HOST}:{self.ports[protocol]}"

    def properties(self, port: int, controller_port: int) -> str:
        """Broker properties adding these listeners, to append to the rendered template.

        In a ``.properties`` file a key given again overrides the earlier
        value, so ``listeners`` and its companions are restated in full.
        """
        plain = [f"PLAINTEXT://{HOST}:{port}"]
        controller = [f"CONTROLLER://{HOST}:{controller_port}"]
        extra = [f"{name}://{HOST}:{number}" for name, number in self.ports.items()]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        protocols += [f"{name}:{name}" for name in self.ports]
        lines = [
            "",
            "# Secure listeners (streams/localkafka.py SecureListeners); keys repeated",
            "# from above override them.",
            "listeners=" + ",".join(plain + controller + extra),
            "advertised.listeners=" + ",".join(plain + extra),
            "listener.security.protocol.map=" + ",".join(protocols),
        ]
        sasl = [name for name in self.ports if name.startswith("SASL_")]
        if sasl:
            lines.append("sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
        plain_users = " ".join(f'user_{name}="{secret}"' for name, secret in self.users.items())
        for name in sasl:
            prefix = f"listener.name.{name.lower()}"
            lines.append(
                f"{prefix}.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            )
            for mechanism in ("scram-sha-256", "scram-sha-512"):
                lines.append(
                    f"{prefix}.{mechanism}.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        if self.keystore is not None:
            lines += [
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={_properties_escape(str(self.keystore))}",
            ]
        if self.truststore is not None and "SSL" in self.ports:
            lines += [
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={_properties_escape(str(self.truststore))}",
                "listener.name.ssl.ssl.client.auth=required",
            ]
        return "\n".join(lines) + "\n"

    def scram_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments creating every user's SCRAM credentials."""
        return [
            argument
            for name, secret in self.users.items()
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            for argument in ("--add-scram", f"{mechanism}=[name={name},password={secret}]")
        ]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway CA, a broker certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    keystore: Path
    """The broker's private key and certificate, for :attr:`SecureListeners.keystore`."""
    client_certificate: Path
    client_key: Path
    """Encrypted with the password given to :func:`make_tls_files`."""


_OPENSSL_CONFIG = """\
[req]
distinguished_name = name
prompt = no
[name]
CN = Nudge test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


def make_tls_files(directory: Path, *, client_key_password: str) -> TlsFiles:
    """Create a CA and a broker and a client certificate it signed, valid for one day.

    For TLS tests against a local broker only: the CA's key is left beside
    the certificates, unencrypted. Needs the ``openssl`` command.

    Raises
    ------
    LocalKafkaError
        ``openssl`` is missing or failed (with its output).

    """
    openssl = _require_tool("openssl", "install OpenSSL to make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "openssl.cnf").write_text(_OPENSSL_CONFIG)

    def run(command: str, *extra: str) -> None:
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [openssl, *command.split(), *extra],
            capture_output=True,
            text=True,
            check=False,
            cwd=directory,
        )
        if result.returncode != 0:
            raise LocalKafkaError(f"openssl {command} failed:\n{result.stderr}")

    new_key = "req -config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
    run(
        f"{new_key} -x509 -extensions ca -nodes -subj /CN=nudge-test-ca -days 1"
        " -keyout ca.key -out ca.pem"
    )
    run(f"{new_key} -new -nodes -subj /CN=127.0.0.1 -keyout broker.key -out broker.csr")
    run(
        f"{new_key} -new -subj /CN=nudge -keyout client.key -out client.csr",
        "-passout",
        f"pass:{client_key_password}",
    )
    for serial, name in enumerate(("broker", "client"), start=1):
        run(
            f"x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -set_serial {serial}"
            f" -extfile openssl.cnf -extensions {name} -days 1 -out {name}.pem"
        )
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(
        (directory / "broker.key").read_text() + (directory / "broker.pem").read_text()
    )
    return TlsFiles(
        ca=directory / "ca.pem",
        keystore=keystore,
        client_certificate=directory / "client.pem",
        client_key=directory / "client.key",
    )


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where jars and the developer broker's data live: outside the repository, per user.

    ``$NUDGE_KAFKA_CACHE`` if set, else ``$XDG_CACHE_HOME/nudge``, else
    ``~/.cache/nudge``. ``environ`` defaults to :data:`os.environ`; pass a
    mapping to decide without reading the process environment.
    """
    env = os.environ if environ is None else environ
    if env.get("NUDGE_KAFKA_CACHE"):
        return Path(env["NUDGE_KAFKA_CACHE"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "nudge"
    return Path.home() / ".cache" / "nudge"


def kafka_version(pom: Path = DEPLOY_DIR / "pom.xml") -> str:
    """Read the Kafka version the pom pins (``<kafka.version>``); it names the jar cache."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text())
    if match is None:
        raise LocalKafkaError(f"{pom} has no <kafka.version> property")
    return match.group(1)


def resolve_jars(cache_dir: Path, *, pom: Path = DEPLOY_DIR / "pom.xml") -> Path:
    """Return the directory holding the broker's jars, running Maven only when needed.

    The jars go to ``cache_dir/kafka-<version>/libs``. A marker file there
    records the SHA-256 of the pom they were resolved from, so Maven runs once
    per pom content, not once per start. Maven writes into a temporary
    directory that is renamed into place, under a file lock, so an
    interrupted or concurrent resolve never leaves a half-filled classpath.

    Raises
    ------
    LocalKafkaError
        ``mvn`` is not installed, or Maven failed (with its last output lines).

    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    home = cache_dir / f"kafka-{kafka_version(pom)}"
    libs = home / "libs"
    if _resolved(libs, digest):
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / ".resolve.lock"):
        if _resolved(libs, digest):  # another process resolved while we waited
            return libs
        mvn = _require_tool("mvn", "install Apache Maven 3 (and a JDK 17+) to fetch Kafka's jars")
        staging = home / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            command, capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not any(staging.glob("kafka_*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalKafkaError(
                f"Maven could not resolve Kafka's jars from {pom} "
                f"(exit code {result.returncode}); last lines:\n"
                + _last_lines(result.stdout + result.stderr, 25)
            )
        (staging / _MARKER).write_text(digest + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs


def free_ports(count: int) -> tuple[int, ...]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (for test brokers).

    All sockets stay bound until every port is picked, so the ports differ;
    another process may still take one before the broker binds it.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return tuple(int(sock.getsockname()[1]) for sock in sockets)


def free_port() -> int:
    """One TCP port free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def broker_ready(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    """Whether the broker at ``host:port`` answers a metadata request listing a live broker.

    A raw Metadata v4 request (no client library, no background threads): the
    listening socket opens before the broker serves requests, and a broker
    appears in the answer only once the controller has unfenced it, which is
    when topics can be created and written.
    """
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    client_id = b"nudge-localkafka"
    # Header v1: api_key 3 (Metadata), version 4, correlation id, client id;
    # body: an empty topic list (not "all topics"), no auto-creation.
    request = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id + struct.pack(">i?", 0, 0)
    try:
        with socket.create_connection((host or HOST, int(port)), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            payload = _recv_exactly(sock, size)
        correlation_id, _throttle_ms, brokers = struct.unpack_from(">iii", payload)
    except (OSError, ValueError, struct.error):
        return False
    return bool(correlation_id == 1 and brokers > 0)


@dataclass
class LocalKafka:
    """One local broker: its data directory, its ports, and the process running it.

    The data directory identifies the broker: its PID file, rendered config,
    KRaft storage and logs live there, so any process (``nudge kafka stop`` in
    another terminal) can find and stop a broker another process started.

    Examples
    --------
    >>> broker = LocalKafka.ephemeral(Path("/tmp/nudge-kafka-example"))  # doctest: +SKIP
    >>> broker.start()  # doctest: +SKIP
    >>> broker.bootstrap_servers  # doctest: +SKIP
    '127.0.0.1:41235'
    >>> broker.stop()  # doctest: +SKIP
    True

    """

    data_dir: Path
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_PORT + 1
    cache_dir: Path = field(default_factory=default_cache_dir)
    deploy_dir: Path = DEPLOY_DIR
    node_id: int = 1
    secure: SecureListeners | None = None
    """Extra SASL and TLS client listeners (tests of Nudge's security settings)."""

    def __post_init__(self) -> None:
        # Absolute, so the PID check can find this exact config on the java command line.
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.cache_dir = Path(self.cache_dir).expanduser()
        if self.port == self.controller_port:
            raise LocalKafkaError("the client port and the controller port must differ")

    @classmethod
    def ephemeral(cls, data_dir: Path, *, cache_dir: Path | None = None) -> LocalKafka:
        """Make a broker on two free loopback ports: for tests, beside any developer broker."""
        port, controller_port = free_ports(2)
        return cls(
            data_dir,
            port=port,
            controller_port=controller_port,
            cache_dir=default_cache_dir() if cache_dir is None else cache_dir,
        )

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for clients (``bootstrap_servers``, ``NUDGE_BOOTSTRAP_SERVERS``)."""
        return f"{HOST}:{self.port}"

    @property
    def config_file(self) -> Path:
        """The rendered broker config; rewritten on every start."""
        return self.data_dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        """Holds the PID of the running broker; removed by :meth:`stop`."""
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        """The broker's log4j2 log: read this when a start fails."""
        return self.data_dir / "logs" / "server.log"

    @property
    def stdout_file(self) -> Path:
        """The JVM's stdout and stderr: errors before logging starts land here."""
        return self.data_dir / "logs" / "stdout.log"

    @property
    def storage_dir(self) -> Path:
        """``log.dirs``: topic data and the KRaft metadata log."""
        return self.data_dir / "kraft"

    def status(self) -> BrokerStatus:
        """Whether this data directory's broker process is alive (it may still be starting)."""
        pid = self._running_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap_servers=self.bootstrap_servers,
            data_dir=self.data_dir,
        )

    def start(self, timeout: float = 120.0) -> None:
        """Start the broker and return once it serves metadata requests.

        Resolves the jars if needed, renders the config, formats the storage
        on first use, launches ``java`` in a new session (so a Ctrl-C in the
        terminal that started it does not kill it) and writes the PID file.
        On failure the broker is stopped again and the error carries the tail
        of its log.

        Raises
        ------
        LocalKafkaError
            Already running, a port is taken, ``java``/``mvn`` is missing,
            formatting failed, or the broker exited or was not ready within
            ``timeout`` seconds.

        """
        deadline = time.monotonic() + timeout
        running = self._running_pid()
        if running is not None:
            raise LocalKafkaError(
                f"a broker for {self.data_dir} is already running (pid {running})"
            )
        for port in (self.port, self.controller_port):
            if not _port_free(port):
                raise LocalKafkaError(
                    f"{HOST}:{port} is already in use; stop what listens there or pick another port"
                )
        java = _require_tool("java", "install a JDK 17+ (Kafka 4 runs on Java 17 or later)")
        libs = resolve_jars(self.cache_dir, pom=self.deploy_dir / "pom.xml")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.storage_dir / "meta.properties").exists():
            self._format(java, libs)

        command = [java, *JVM_OPTIONS, *self._logging_options(), "-cp", f"{libs}/*"]
        command += ["kafka.Kafka", str(self.config_file)]
        with self.stdout_file.open("ab") as output:
            process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process
        _write_atomically(self.pid_file, f"{process.pid}\n")
        try:
            self._wait_ready(process, deadline, timeout)
        except BaseException:
            self.stop(grace=10.0)
            raise

    def stop(self, grace: float = 30.0) -> bool:
        """Stop the broker: SIGTERM, then SIGKILL if it is still alive after ``grace`` seconds.

        SIGTERM lets Kafka shut down cleanly (flush, close the logs), so the
        next start does not have to recover its segments. Only a process whose
        command line names this broker's config is signalled, never a stranger
        that reused a stale PID. Returns whether a broker was stopped.
        """
        pid = self._running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, grace):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not self._wait_exit(pid, 10.0):
                raise LocalKafkaError(f"broker pid {pid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        _CHILDREN.pop(pid, None)
        return True

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        child = _CHILDREN.get(pid)
        if child is not None:
            if child.poll() is None:
                return pid
            del _CHILDREN[pid]  # exited (and now reaped)
            return None
        return pid if _is_broker_process(pid, self.config_file) else None

    def _write_config(self) -> None:
        path = self.deploy_dir / "server.properties.template"
        try:
            rendered = Template(path.read_text()).substitute(
                node_id=self.node_id,
                port=self.port,
                controller_port=self.controller_port,
                log_dirs=_properties_escape(str(self.storage_dir)),
            )
        except (KeyError, ValueError) as exc:
            raise LocalKafkaError(f"{path} has a bad placeholder: {exc}") from exc
        if self.secure is not None:
            rendered += self.secure.properties(self.port, self.controller_port)
        _write_atomically(self.config_file, rendered)

    def _logging_options(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.deploy_dir / 'log4j2.properties'}",
            f"-Dnudge.kafka.logdir={self.log_file.parent}",
        ]

    def _format(self, java: str, libs: Path) -> None:
        # KRaft refuses to start on unformatted storage; the cluster id is made
        # here (Kafka's own format) rather than by one more JVM start.
        command = [java, "-Xmx256m", "-XX:+UseSerialGC", *self._logging_options()]
        command += ["-cp", f"{libs}/*", "kafka.tools.StorageTool", "format"]
        command += ["--ignore-formatted", "-t", _new_cluster_id(), "-c", str(self.config_file)]
        if self.secure is not None:
            command += self.secure.scram_arguments()
        try:
            result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                command, capture_output=True, text=True, check=False, timeout=120
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalKafkaError(f"formatting {self.storage_dir} took over 120 s") from exc
        if result.returncode != 0:
            output = result.stdout + result.stderr
            hint = (
                "\n(Kafka 4 needs Java 17 or later: check `java -version`)"
                if "UnsupportedClassVersionError" in output
                else ""
            )
            raise LocalKafkaError(
                f"formatting {self.storage_dir} failed (exit code {result.returncode}):\n"
                + _last_lines(output, 20)
                + hint
            )

    def _wait_ready(
        self, process: subprocess.Popen[bytes], deadline: float, timeout: float
    ) -> None:
        while True:
            code = process.poll()
            if code is not None:
                raise LocalKafkaError(
                    f"the broker exited with code {code} while starting.\n{self._log_tail()}"
                )
            if broker_ready(self.bootstrap_servers):
                return
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"the broker did not answer on {self.bootstrap_servers} within "
                    f"{timeout:g} s.\n{self._log_tail()}"
                )
            time.sleep(_READY_POLL_SECONDS)

    def _log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.stdout_file, self.log_file):
            text = path.read_text(errors="replace") if path.exists() else ""
            if text.strip():
                parts.append(f"--- last lines of {path} ---\n{_last_lines(text, lines)}")
        return "\n".join(parts) or f"(nothing logged in {self.log_file.parent})"

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        child = _CHILDREN.get(pid)
        if child is not None:
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True


def developer_broker(*, home: Path | None = None, port: int = DEFAULT_PORT) -> LocalKafka:
    """Make the broker ``nudge kafka start`` and ``make demo`` run, with data kept under ``home``.

    ``home`` defaults to :func:`default_cache_dir`; the data stays in
    ``home/kafka-data`` across restarts, the controller listens on ``port + 1``.
    """
    home = default_cache_dir() if home is None else home
    return LocalKafka(home / "kafka-data", port=port, controller_port=port + 1, cache_dir=home)


def run_command(
    action: Literal["start", "stop", "status"],
    *,
    home: Path | None = None,
    data_dir: Path | None = None,
    port: int = DEFAULT_PORT,
    timeout: float = 120.0,
) -> int:
    """Carry out ``nudge kafka start|stop|status``: print one line, return the exit code.

    ``start`` on a running broker and ``stop`` on a stopped one say so and
    succeed (exit code 0), so scripts and ``make`` targets can call them
    unconditionally. Failures print the reason on stderr and return 1.
    ``home`` is the cache root (jars, and the default data directory
    ``home/kafka-data``); ``data_dir`` puts the broker's data elsewhere.
    """
    broker = developer_broker(home=home, port=port)
    if data_dir is not None:
        broker = LocalKafka(
            data_dir, port=port, controller_port=port + 1, cache_dir=broker.cache_dir
        )
    current = broker.status()
    try:
        if action == "status":
            if current.running:
                print(f"Kafka is running at {current.bootstrap_servers} (pid {current.pid}).")
            else:
                print(f"Kafka is not running (data in {broker.data_dir}).")
        elif action == "start":
            if current.running:
                print(
                    f"Kafka is already running at {current.bootstrap_servers} (pid {current.pid})."
                )
                return 0
            began = time.monotonic()
            broker.start(timeout=timeout)
            pid = broker.status().pid
            print(
                f"Kafka {kafka_version(broker.deploy_dir / 'pom.xml')} started at "
                f"{broker.bootstrap_servers} (pid {pid}) in {time.monotonic() - began:.1f} s; "
                f"log: {broker.log_file}"
            )
        elif action == "stop":
            if broker.stop():
                print(f"Kafka stopped (pid {current.pid}).")
            else:
                print("Kafka is not running; nothing to stop.")
        else:
            print(f"unknown action {action!r}: use start, stop or status", file=sys.stderr)
            return 2
    except LocalKafkaError as exc:
        print(f"Kafka {action} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _resolved(libs: Path, digest: str) -> bool:
    marker = libs / _MARKER
    return marker.exists() and marker.read_text().strip() == digest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise LocalKafkaError(f"`{name}` is not on PATH: {hint}")
    return found


def _last_lines(text: str, count: int) -> str:
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)  # Maven colours some lines even with -B
    return "\n".join(text.rstrip().splitlines()[-count:])


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(text)
    staging.replace(path)


def _new_cluster_id() -> str:
    # Kafka's Uuid.randomUuid: 16 random bytes, URL-safe base64 without
    # padding, never starting with "-" (it would read as a CLI flag).
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _properties_escape(value: str) -> str:
    # Java reads .properties as ISO-8859-1 with backslash escapes: escape
    # backslashes and anything outside printable ASCII (UTF-16 code units).
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif " " <= char <= "~":
            out.append(char)
        else:
            encoded = char.encode("utf-16-be")
            for i in range(0, len(encoded), 2):
                out.append(f"\\u{encoded[i]:02x}{encoded[i + 1]:02x}")
    return "".join(out)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the JVM binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    if not 0 <= size <= 1 << 20:
        raise ValueError(f"implausible response size {size}")
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _command_line(pid: int) -> list[str] | None:
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            raw = proc.read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        return raw.decode(errors="replace").split("\0") if raw else None
    # No /proc (macOS): ask ps; the arguments then come space-separated.
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - ps is in every PATH
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.split() if result.returncode == 0 and result.stdout.strip() else None


def _is_broker_process(pid: int, config_file: Path) -> bool:
    if not _pid_alive(pid):
        return False
    args = _command_line(pid) or []
    return "kafka.Kafka" in args and str(config_file) in args


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Our own exited child is a zombie until reaped: reap it, it is gone.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
