"""Application hosts on one machine: Linux network namespaces joined by two bridges.

``lab(count)`` makes ``count`` hosts (network namespaces, each with its loopback up)
and two bridges in the machine's own namespace, with addresses from 198.18.0.0/15
(the benchmarking range, RFC 2544) only:

* the *front* bridge, 198.18.N.1/24, reaches each host's HTTP servers at
  198.18.N.(10+i): the tests' requests go there;
* the *database* bridge, 198.19.N.1/24, where PostgreSQL listens; each host reaches
  it from 198.19.N.(10+i) through a veth pair of its own, so :func:`cut` (that
  pair's outer end taken off the bridge, still up) cuts one host off from the
  database as a broken network would: its packets leave it and are dropped on the
  way, nothing answers, no error, no reset; its HTTP servers stay reachable.
  :func:`restore` puts the link back on the bridge.

Commands run inside a host with :meth:`Host.command` (``ip netns exec``, and its own
UTS namespace with the host's name, so each host has its own ``gethostname()``).
Names carry the pid of the process that made them: ``lab`` first deletes whatever a
dead process left behind (a killed run), and everything it made when it ends.
Needs root and Debian's ``iproute2`` (``make system-deps`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

#: Every namespace, bridge and veth made here starts with this.
PREFIX: Final = "cmh"
#: How long one ``ip`` command may take (seconds).
IP_TIMEOUT: Final = 30.0
#: The hosts' last address byte is this plus their index.
FIRST_HOST: Final = 10

#: The ``ip`` binary (in /usr/sbin, which a PATH may lack).
IP: Final = shutil.which("ip") or "/usr/sbin/ip"

_OWNED = re.compile(rf"^{PREFIX}[fdn]?(\d+)")


class NetnsError(RuntimeError):
    """An ``ip`` command failed."""


@dataclass(frozen=True)
class Host:
    """One application host: a network namespace and its addresses."""

    name: str  # its hostname, e.g. "host-a"
    namespace: str
    front_ip: str  # where its servers listen (reached through the front bridge)
    db_ip: str  # its address on the database bridge
    db_link: str  # the database bridge's end of its veth pair (what cut() detaches)

    def command(self, cmd: list[str]) -> list[str]:
        """``cmd`` run inside this host, under its own hostname."""
        script = 'hostname "$0" && exec "$@"'
        return [
            IP,
            "netns",
            "exec",
            self.namespace,
            "unshare",
            "--uts",
            "sh",
            "-c",
            script,
            self.name,
            *cmd,
        ]


@dataclass(frozen=True)
class Lab:
    """The hosts and the two bridges (see the module's doc)."""

    hosts: list[Host]
    front_bridge: str
    db_bridge: str
    front_gateway: str  # this namespace's address on the front bridge
    db_address: str  # this namespace's address on the database bridge: PostgreSQL's
    db_network: str  # the database bridge's subnet (CIDR), to trust in pg_hba.conf


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; raise :class:`NetnsError` if it fails and ``check``."""
    result = subprocess.run(
        [IP, *args],
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: exit {result.returncode}: {result.stderr}")
    return result


def _owner_alive(name: str) -> bool:
    """False for names of a dead process of ours (or this one's: a leftover of an
    earlier process with the same pid)."""
    match = _OWNED.match(name)
    if match is None:
        return True
    pid = int(match.group(1))
    return pid != os.getpid() and os.path.exists(f"/proc/{pid}")


def remove_stale() -> None:
    """Delete the namespaces, bridges and veths a dead process of ours left."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX) and not _owner_alive(name):
            ip("netns", "delete", name, check=False)
    for line in ip("-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX) and not _owner_alive(name):
            ip("link", "delete", name, check=False)


def _subnet_byte(pid: int) -> int:
    """The third byte of this run's subnets (1-254), from its pid."""
    return pid % 254 + 1


def _plan(count: int, pid: int) -> Lab:
    n = _subnet_byte(pid)
    hosts = [
        Host(
            name=f"host-{chr(ord('a') + i)}",
            namespace=f"{PREFIX}n{pid}{chr(ord('a') + i)}",
            front_ip=f"198.18.{n}.{FIRST_HOST + i}",
            db_ip=f"198.19.{n}.{FIRST_HOST + i}",
            db_link=f"{PREFIX}d{pid}{chr(ord('a') + i)}",
        )
        for i in range(count)
    ]
    return Lab(
        hosts=hosts,
        front_bridge=f"{PREFIX}f{pid}",
        db_bridge=f"{PREFIX}d{pid}",
        front_gateway=f"198.18.{n}.1",
        db_address=f"198.19.{n}.1",
        db_network=f"198.19.{n}.0/24",
    )


def _bridge(name: str, address: str) -> None:
    ip("link", "add", name, "type", "bridge")
    ip("address", "add", f"{address}/24", "dev", name)
    ip("link", "set", name, "up")


def _attach(host: Host, outside: str, bridge: str, address: str) -> None:
    """A veth pair: ``outside`` on ``bridge``, its peer inside ``host`` with ``address``."""
    inside = f"{outside}i"
    ip("link", "add", outside, "type", "veth", "peer", "name", inside)
    ip("link", "set", inside, "netns", host.namespace)
    ip("link", "set", outside, "master", bridge)
    ip("link", "set", outside, "up")
    ip("-n", host.namespace, "address", "add", f"{address}/24", "dev", inside)
    ip("-n", host.namespace, "link", "set", inside, "up")


def _build(lab: Lab) -> None:
    _bridge(lab.front_bridge, lab.front_gateway)
    _bridge(lab.db_bridge, lab.db_address)
    for index, host in enumerate(lab.hosts):
        ip("netns", "add", host.namespace)
        ip("-n", host.namespace, "link", "set", "lo", "up")
        _attach(host, f"{lab.front_bridge}{chr(ord('a') + index)}", lab.front_bridge, host.front_ip)
        _attach(host, host.db_link, lab.db_bridge, host.db_ip)


def _tear_down(lab: Lab) -> None:
    for host in lab.hosts:  # a namespace's deletion deletes the veth pairs in it
        ip("netns", "delete", host.namespace, check=False)
    for bridge in (lab.front_bridge, lab.db_bridge):
        ip("link", "delete", bridge, check=False)


@contextlib.contextmanager
def lab(count: int) -> Iterator[Lab]:
    """``count`` hosts and their bridges for the ``with`` block, deleted after it."""
    remove_stale()
    made = _plan(count, os.getpid())
    try:
        _build(made)
        yield made
    finally:
        _tear_down(made)


def cut(host: Host) -> None:
    """Cut ``host`` off from the database: its packets there are dropped from now on
    (outside the host: its own link stays up, as when a switch or router fails)."""
    ip("link", "set", host.db_link, "nomaster")


def restore(host: Host, lab: Lab) -> None:
    """Give ``host`` its database link back."""
    ip("link", "set", host.db_link, "master", lab.db_bridge)
