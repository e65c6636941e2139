"""A real Kubernetes control plane on loopback for the deploy tests (no kubelet, no containers).

etcd + kube-apiserver (+ kube-controller-manager and kube-scheduler when asked), built from the
Go module proxy by deploy/tools/build.sh, started as processes with their logs in the run
directory, stopped (SIGTERM, then SIGKILL) at the end. Authentication is one static token in
group system:masters; the kubeconfig skips TLS verification of the self-signed serving cert.
Ports: etcd 12379/12380, apiserver 16443, controller-manager 16444, scheduler 16445
(PARLEY_K8S_PORT_BASE moves them all: base+79/+80 for etcd, +43/+44/+45 for the rest).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN = "parley-deploy-tests-" + os.urandom(8).hex()


def _ports() -> dict[str, int]:
    base = os.environ.get("PARLEY_K8S_PORT_BASE")
    if not base:
        return {"etcd": 12379, "peer": 12380, "api": 16443, "kcm": 16444, "sched": 16445}
    b = int(base)
    return {"etcd": b + 79, "peer": b + 80, "api": b + 43, "kcm": b + 44, "sched": b + 45}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class ControlPlane:
    tools: dict[str, str]
    workdir: Path
    ports: dict[str, int] = field(default_factory=_ports)
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    kubeconfig: Path = field(init=False)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, controllers: bool) -> None:
        names = ["etcd", "peer", "api"] + (["kcm", "sched"] if controllers else [])
        busy = [f"{n}:{self.ports[n]}" for n in names if not _port_free(self.ports[n])]
        if busy:
            raise RuntimeError(
                f"ports in use ({', '.join(busy)}): another control plane is running? "
                "Set PARLEY_K8S_PORT_BASE to move them."
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._keys()
        self._start_etcd()
        self._start_apiserver()
        self.kubeconfig = self._write_kubeconfig()
        if controllers:
            self._start_controllers()

    def stop(self) -> None:
        """Controllers first, etcd last; each gets a few seconds to exit on SIGTERM."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.procs.append((name, proc))
        return proc

    def _wait(self, name: str, check, timeout: float) -> None:
        proc = dict(self.procs)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} not ready within {timeout}s:\n{tail}")

    # --- components ------------------------------------------------------------------------
    def _keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.workdir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (self.workdir / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (self.workdir / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['peer']}"
        self._spawn(
            "etcd",
            [
                self.tools["etcd"],
                "--name=default",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--log-level=warn",
                "--quota-backend-bytes=1073741824",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(client + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"

        self._wait("etcd", healthy, 60)

    def _start_apiserver(self) -> None:
        w = self.workdir
        self._spawn(
            "kube-apiserver",
            [
                self.tools["kube-apiserver"],
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['api']}",
                f"--cert-dir={w / 'certs'}",
                f"--token-auth-file={w / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={w / 'sa.pub'}",
                f"--service-account-signing-key-file={w / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=false",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
                "DefaultStorageClass,ResourceQuota,PodSecurity",
                "--profiling=false",
                "-v=1",
            ],
        )
        ctx = self.ssl_context()
        url = f"https://127.0.0.1:{self.ports['api']}/readyz"

        def ready() -> bool:
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(req, timeout=3, context=ctx) as r:
                return r.read().strip() == b"ok"

        self._wait("kube-apiserver", ready, 120)

    def _start_controllers(self) -> None:
        self._spawn(
            "kube-controller-manager",
            [
                self.tools["kube-controller-manager"],
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['kcm']}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={self.workdir / 'sa.key'}",
                # No kubelet renews Node leases here: the node lifecycle controller would taint
                # the test Nodes unreachable and evict; nothing else is left out.
                "--controllers=*,-nodelifecycle,-nodeipam",
                "--concurrent-deployment-syncs=2",
                "--concurrent-replicaset-syncs=2",
                "-v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                self.tools["kube-scheduler"],
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['sched']}",
                f"--cert-dir={self.workdir / 'sched-certs'}",
                "--leader-elect=false",
                "-v=1",
            ],
        )
        ctx = self.ssl_context()
        for name, port in (("kube-controller-manager", "kcm"), ("kube-scheduler", "sched")):
            url = f"https://127.0.0.1:{self.ports[port]}/healthz"

            def healthy(url: str = url) -> bool:
                req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
                with urllib.request.urlopen(req, timeout=3, context=ctx) as r:
                    return r.read().strip() == b"ok"

            self._wait(name, healthy, 90)

    # --- clients ---------------------------------------------------------------------------
    @staticmethod
    def ssl_context() -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _write_kubeconfig(self) -> Path:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.ports['api']}",
                        "insecure-skip-tls-verify": True,
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": TOKEN}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        path = self.workdir / "kubeconfig"
        path.write_text(json.dumps(cfg))
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        """Environment for kubectl and helm: this cluster only, helm state in the run dir."""
        w = self.workdir
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(w / "helm-cache"),
            "HELM_CONFIG_HOME": str(w / "helm-config"),
            "HELM_DATA_HOME": str(w / "helm-data"),
        }
