#!/usr/bin/env python3
"""A large download through a job network's NAT beside the same download from the host, in the
same run (DESIGN.md section 8: NAT throughput >= 0.9x host).

Builds a stand-in internet: a network namespace with 198.51.100.10 behind a veth from the host
(a route to 198.51.100.0/24 through it), serving SIZE_MIB bytes from a file in tmpfs with
sendfile(2) on port 80. Then times, alternating, RUNS downloads with curl -o /dev/null:
  - from the host itself;
  - from a step of `boxcar run` with network = "host" (--allow-host-network): the sandbox's own
    cost (seccomp on every syscall, cgroup accounting), no NAT;
  - from a step of `boxcar run` on its job network (default egress policy: veth + NAT + rules).
The step's curl reports its own speed (%{speed_download}), so the sandbox's start is not counted.
The NAT's cost is the job step against the host-network step; the host line is for reference.
Needs root. Run from the repository root after a build:
  bench/egress_bench.py [RUNS]          (env: BOXCAR, SIZE_MIB=1024)
"""
import os, shutil, socket, statistics, subprocess, sys, tempfile, textwrap, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOXCAR = os.environ.get("BOXCAR", os.path.join(ROOT, "build/cli/boxcar"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SIZE_MIB = int(os.environ.get("SIZE_MIB", 1024))
NS, HOST_IF, PEER_IF = "bxbench-inet", "bxbinet0", "bxbinet1"
SERVER = textwrap.dedent("""
    import os, socket, sys
    path = sys.argv[1]; size = os.path.getsize(path)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.10", 80)); s.listen(16)
    while True:
        c, _ = s.accept()
        try:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % size)
            with open(path, "rb") as f: c.sendfile(f)
        except OSError: pass
        c.close()
""")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setup(data):
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF, "netns", NS)
    sh("ip", "addr", "add", "192.0.0.169/31", "dev", HOST_IF)  # any point-to-point pair will do
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "-n", NS, "addr", "add", "192.0.0.168/31", "dev", PEER_IF)
    sh("ip", "-n", NS, "addr", "add", "198.51.100.10/32", "dev", "lo")
    sh("ip", "-n", NS, "link", "set", PEER_IF, "up")
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    sh("ip", "-n", NS, "route", "add", "default", "via", "192.0.0.169")
    sh("ip", "route", "add", "198.51.100.0/24", "via", "192.0.0.168")
    return subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", SERVER, data])


def teardown(server):
    if server:
        server.kill()
        server.wait()
    sh("ip", "route", "del", "198.51.100.0/24", check=False)
    sh("ip", "link", "del", HOST_IF, check=False)
    sh("ip", "netns", "del", NS, check=False)


CURL = "curl -sS -o /dev/null -w '%{speed_download}\\n' http://198.51.100.10/big"


def host_speed():
    return float(sh("sh", "-c", CURL).stdout.strip())


def step_speed(workspace, network):
    with open(os.path.join(workspace, ".boxcar.toml"), "w") as f:
        f.write('version = 1\n[[step]]\nname = "download"\nnetwork = "%s"\nrun = "%s"\n'
                % (network, CURL.replace("\\", "\\\\")))
    out = subprocess.run([BOXCAR, "run", "--allow-host-network"], cwd=workspace, check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("[download] ") and line[11:].strip().replace(".", "", 1).isdigit():
            return float(line[11:].strip())
    raise SystemExit("no speed in the step's output:\n" + out)


def main():
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, veth, routes)")
    tmp = tempfile.mkdtemp(prefix="boxcar-egress-bench-", dir="/dev/shm")
    workspace = tempfile.mkdtemp(prefix="boxcar-egress-bench-ws-")
    server = None
    try:
        data = os.path.join(tmp, "big")
        with open(data, "wb") as f:
            f.write(os.urandom(1 << 20) * SIZE_MIB)
        server = setup(data)
        for _ in range(200):  # the server's bind, in its namespace
            try:
                socket.create_connection(("198.51.100.10", 80), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        host, hostnet, job = [], [], []
        host_speed()  # warm: the server's first accept, the page cache
        for _ in range(RUNS):
            host.append(host_speed())
            hostnet.append(step_speed(workspace, "host"))
            job.append(step_speed(workspace, "job"))
        mib = lambda v: v / (1 << 20)
        line = lambda name, v: print(f"  {name:30s} {mib(statistics.median(v)):6.0f} MiB/s  (runs: {', '.join(f'{mib(x):.0f}' for x in v)})")
        print(f"egress: {SIZE_MIB} MiB download, median of {RUNS}")
        line("host:", host)
        line("step, network = host:", hostnet)
        line("step, job network (NAT):", job)
        print(f"  NAT: job network / host network, both in a step: {statistics.median(job) / statistics.median(hostnet):.2f}")
        print(f"  job network step / host itself:                 {statistics.median(job) / statistics.median(host):.2f}")
    finally:
        teardown(server)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
