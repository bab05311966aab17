"""Run a script in a network namespace that has only loopback, and record every attempt to leave it.

    python tests/netjail.py LOGDIR SCRIPT.sh      (as root; the test calls it through `unshare`)

Inside the namespace, /etc/resolv.conf is replaced (in a private mount namespace) by one naming a
resolver on 127.0.0.1 that this driver runs: it records every name asked for and answers REFUSED. The
script runs under strace, which records every connect/sendto/sendmsg system call of every process it
starts, so an attempt that bypasses DNS (a literal address) is recorded too, even though with no route
out it fails at once. The caller reads LOGDIR/dns.log and LOGDIR/strace.log; `egress()` parses them.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_HOST = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')
_LOOPBACK = re.compile(r"^(127\.|::1$|::ffff:127\.)")


def _qname(packet: bytes) -> str:
    i, labels = 12, []
    while i < len(packet) and packet[i]:
        n = packet[i]
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return ".".join(labels)


def _refused(query: bytes) -> bytes:
    reply = bytearray(query)
    reply[2] |= 0x80  # a response
    reply[3] = (reply[3] & 0xF0) | 5  # RCODE 5: refused
    return bytes(reply)


def _resolver(log: Path, ready: threading.Event) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(16)
    out = log.open("a", buffering=1)

    def serve_tcp() -> None:
        while True:
            conn, _ = tcp.accept()
            with conn:
                data = conn.recv(4096)
                if len(data) > 2:
                    out.write(_qname(data[2:]) + "\n")
                    reply = _refused(data[2:])
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)

    threading.Thread(target=serve_tcp, daemon=True).start()
    ready.set()
    while True:
        query, addr = udp.recvfrom(4096)
        out.write(_qname(query) + "\n")
        udp.sendto(_refused(query), addr)


def egress(logdir: Path) -> list[str]:
    """Every attempt recorded in a jail's logs to reach anything but loopback (names looked up included)."""
    found = [f"DNS lookup of {n}" for n in (logdir / "dns.log").read_text().split() if n != "localhost"]
    for line in (logdir / "strace.log").read_text().splitlines():
        if "AF_INET" not in line:
            continue
        port, host = _PORT.search(line), _HOST.search(line)
        if port is None or host is None:
            found.append(f"unparsed network call: {line.strip()}")
            continue
        addr = host.group(1) or host.group(2)
        if not _LOOPBACK.match(addr) and addr not in ("0.0.0.0", "::"):
            found.append(f"connection attempt to {addr} port {port.group(1)}: {line.strip()}")
    return found


def main() -> int:
    logdir, script = Path(sys.argv[1]), Path(sys.argv[2])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    resolv = logdir / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    (logdir / "dns.log").touch()
    ready = threading.Event()
    threading.Thread(target=_resolver, args=(logdir / "dns.log", ready), daemon=True).start()
    ready.wait(10)
    cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg",
           "-o", str(logdir / "strace.log"), "bash", str(script)]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
