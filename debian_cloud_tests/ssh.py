"""One persistent, verified SSH connection per machine (sshhost.py puts testinfra on top of it).

The host key is checked against the keys the guest announced on its console (or the key we
injected): paramiko's AutoAddPolicy is never used, and a mismatch is refused.  The socket has
TCP_NODELAY set: without it every command pays ~40 ms of Nagle delay.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

import paramiko

from .errors import HostKeyMismatchError
from .machine import SSHEndpoint

# Handshakes fail by the dozen while a guest boots; paramiko logs each one with a traceback.
# The readiness wait reports what matters, in one line.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class HandshakeFailed(Exception):
    """The TCP connection or SSH handshake did not complete (the guest is not ready yet)."""


class LoginRefused(Exception):
    """The handshake completed with the right host key, but the login was refused."""


#: what paramiko raises when the connection fails or dies (EOFError: the peer closed it)
TRANSPORT_ERRORS = (paramiko.SSHException, OSError, EOFError)
#: what a command ends in, instead of an answer, when the connection dies under it (a guest
#: going down; testinfra's reconnect, which our backend makes, raising HandshakeFailed)
CONNECTION_LOST = (*TRANSPORT_ERRORS, HandshakeFailed, LoginRefused)


class _VerifyAnnounced(paramiko.MissingHostKeyPolicy):
    """Accept exactly the keys the guest announced; refuse everything else."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.allowed = {" ".join(k.split()[:2]) for k in allowed}

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        presented = f"{key.get_name()} {key.get_base64()}"
        if presented not in self.allowed:
            raise HostKeyMismatchError(
                f"host key mismatch for {hostname}: the server presented {key.get_name()} "
                f"{key.fingerprint} which the guest did not announce on its console; "
                "refusing to connect (another machine on that port, or a man in the middle)")


#: how long authentication may take once the host key is verified: sshd is up by then, and a
#: loaded guest (PAM, a slow disk) can take far longer than a handshake attempt is given
AUTH_TIMEOUT = 60.0


def connect(endpoint: SSHEndpoint, host_keys: Sequence[str], timeout: float = 5.0,
            auth_timeout: float = AUTH_TIMEOUT) -> paramiko.SSHClient:
    """Open a verified, authenticated connection: *timeout* for each step up to the verified
    host key, *auth_timeout* for the login after it.

    Raises:
        HandshakeFailed: nothing answered, or the handshake stalled (guest still booting).
        HostKeyMismatchError: the server's key is not one of *host_keys*.
        LoginRefused: the key was verified but authentication failed.
    """
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except OSError as exc:
        raise HandshakeFailed(str(exc)) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    # Only the announced key types, so the server cannot pick one we cannot verify.
    client.set_missing_host_key_policy(_VerifyAnnounced(host_keys))
    key_types = sorted({k.split()[0] for k in host_keys})
    try:
        client.connect(endpoint.host, endpoint.port, username=endpoint.user,
                       key_filename=str(endpoint.key_file), sock=sock, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=auth_timeout,
                       look_for_keys=False, allow_agent=False,
                       disabled_algorithms=_only_key_types(key_types))
    except HostKeyMismatchError:
        client.close()
        raise
    except paramiko.AuthenticationException as exc:
        client.close()
        if "timeout" in str(exc).lower():  # paramiko's auth_timeout: no answer, not a refusal
            raise HandshakeFailed(str(exc)) from None
        raise LoginRefused(f"{endpoint.user}@{endpoint.host}:{endpoint.port}: {exc}") from None
    except TRANSPORT_ERRORS as exc:
        client.close()
        raise HandshakeFailed(str(exc) or type(exc).__name__) from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(15)
    return client


def presented_key(client: paramiko.SSHClient) -> str | None:
    """The host key ("TYPE BASE64") the server presented on *client*'s connection, which
    :func:`connect` verified; None once the connection is gone."""
    transport = client.get_transport()
    if transport is None:
        return None
    try:
        key = transport.get_remote_server_key()
    except paramiko.SSHException:
        return None
    return f"{key.get_name()} {key.get_base64()}"


def _only_key_types(key_types: Sequence[str]) -> dict[str, list[str]]:
    all_types = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-dss"]
    wanted = set(key_types)
    if "ssh-rsa" in wanted:
        wanted |= {"rsa-sha2-512", "rsa-sha2-256"}
    if not wanted:
        return {}
    return {"keys": [t for t in all_types if t not in wanted]}
