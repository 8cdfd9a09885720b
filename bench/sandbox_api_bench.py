#!/usr/bin/env python3
"""The sandbox API (SANDBOXES.md section 6) of a real `boxcar serve`, each figure beside its
baselines in the same run:
1. HTTP create -> ready (POST /api/v1/sandboxes answered 201), p50/p95 over N;
   vs `unshare -Urpf --mount-proc true`, `bwrap --unshare-all ... true` and `runc run` (busybox).
2. create + exec `true` + delete, vs the same baselines (one whole process each).
3. exec `true` round trip in one live sandbox, vs fork+exec+wait of /bin/true (subprocess), the HTTP
   floor (GET /healthz on the same keep-alive connection, and `curl -s /healthz`), and
   `nsenter -t PID -a true` into an `unshare -Urpf --mount-proc sleep`.
4. output latency: `date +%s%N` inside -> its SSE stdout event at the client (exec, "stream": true),
   vs the same loop read over a pipe from a local subprocess.
5. files: PUT and GET of a FILE_MIB (default 256) MiB file vs `cp` on the same disk and an artifact
   upload/download of the same file on a second server (--agents 0); 200 x 4 KiB PUTs vs `cp -r`.
6. IDLE idle sandboxes (default 200; --idle 1000): MemAvailable delta per sandbox, serve's RSS, its
   context switches over 10 s, and GET /api/v1/sandboxes latency; vs as many
   `bwrap --unshare-all ... sleep 1000`.
Every API call goes over one keep-alive connection (http.client). Run from the repository root
after a build: bench/sandbox_api_bench.py [--n N] [--idle 200|1000] [--file-mib 256] [--warm 4]
[--figures 1,2,6]
(BOXCAR=path overrides build/cli/boxcar)."""
import argparse, glob, hashlib, http.client, json, math, os, shutil, signal, socket, statistics
import subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOXCAR = os.environ.get("BOXCAR", os.path.join(ROOT, "build/cli/boxcar"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ms(seconds):
    return seconds * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(len(xs) * p / 100) - 1)]


def table(title, rows):
    """rows: (name, p50 ms, p95 ms or None, note)."""
    print(f"\n{title}")
    print(f"  {'what':<58} {'p50':>9} {'p95':>9}  note")
    for name, p50, p95, note in rows:
        f = lambda v: "" if v is None else (f"{v:9.2f}" if v < 100 else f"{v:9.0f}")
        print(f"  {name:<58} {f(p50):>9} {f(p95):>9}  {note}")
    sys.stdout.flush()


def timed_runs(argv, n, **kw):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)
        out.append(ms(time.perf_counter() - t))
    return out


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ctx_switches(pid):
    n = 0
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(st) as f:
                for line in f:
                    if "ctxt_switches" in line:
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def children(pid):
    out = []
    for c in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(c) as f:
            out += [int(x) for x in f.read().split()]
    return out


def descendants(pid):
    out = []
    for c in children(pid):
        out += [c] + descendants(c)
    return out


def kill_tree(proc):
    """SIGKILL a Popen and everything under it: killing `unshare -f` or `bwrap` alone leaves the
    namespace's init and its sleep behind."""
    try:
        tree = descendants(proc.pid)
    except OSError:
        tree = []
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def pss_kib(pids):
    n = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


class Api:
    """One keep-alive connection; reconnects if the server closed it."""

    def __init__(self, port, token):
        self.port, self.auth = port, {"Authorization": "Bearer " + token}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, blocksize=1 << 20)

    def request(self, method, path, body=None, headers=None, stream=False):
        h = dict(self.auth, **(headers or {}))
        if isinstance(body, (dict, list)):
            body, h["Content-Type"] = json.dumps(body).encode(), "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                if stream:
                    return r
                return r.status, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt or hasattr(body, "read"):
                    raise
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120, blocksize=1 << 20)

    def json(self, method, path, body=None, want=(200, 201, 204)):
        status, data = self.request(method, path, body)
        if status not in want:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    def create(self, **spec):
        return self.json("POST", "/api/v1/sandboxes", spec, want=(201,))["id"]

    def delete(self, sid):
        self.json("DELETE", f"/api/v1/sandboxes/{sid}", want=(204,))

    def exec(self, sid, body):
        return self.json("POST", f"/api/v1/sandboxes/{sid}/exec", body, want=(200,))


def sse_events(resp):
    """Yields (event, data, receive time in ns) from a streamed answer."""
    event, data = None, []
    while True:
        line = resp.readline()
        now = time.time_ns()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if line == "":
            if event or data:
                yield event, "\n".join(data), now
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def wait_healthz(port, proc, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"boxcar serve exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("boxcar serve did not come up")


def artifact_baseline(work, src, digest):
    """Upload and download of src as a job artifact on a second server (--agents 0), as
    bench/artifact_bench.py does; returns (upload s, download s)."""
    port, token, api_token = free_port(), "bench-agent-token", "bench-api-token"
    srv = subprocess.Popen([BOXCAR, "serve", "--listen", f"127.0.0.1:{port}", "--data",
                            os.path.join(work, "data-artifacts"), "--agents", "0", "--agent-token", token,
                            "--api-token", api_token], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthz(port, srv)
        api = Api(port, api_token)
        job = api.json("POST", "/api/v1/jobs", {"repo": "https://example.com/r.git"})["id"]
        agent = Api(port, token)
        cred = agent.json("POST", "/api/v1/agent/register", {"name": "bench"})["credential"]
        agent = Api(port, cred)
        lease = agent.json("POST", "/api/v1/agent/claim", {"labels": [], "wait_ms": 0})["job"]["lease_token"]
        t = time.perf_counter()
        with open(src, "rb") as f:
            status, body = agent.request(
                "POST", f"/api/v1/agent/jobs/{job}/artifacts?path=big.bin&sha256={digest}&step=s", f,
                {"X-Boxcar-Lease": lease, "Content-Type": "application/octet-stream",
                 "Content-Length": str(os.path.getsize(src))})
        up = time.perf_counter() - t
        if status != 200 or not json.loads(body).get("stored"):
            raise RuntimeError(f"artifact upload: HTTP {status} {body[:200]!r}")
        t = time.perf_counter()
        r = api.request("GET", f"/api/v1/jobs/{job}/artifacts/big.bin", stream=True)
        with open(os.path.join(work, "artifact.out"), "wb") as out:
            while chunk := r.read(1 << 20):
                out.write(chunk)
        down = time.perf_counter() - t
        os.unlink(os.path.join(work, "artifact.out"))
        return up, down
    finally:
        srv.terminate()
        srv.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="samples per latency figure (default 100)")
    ap.add_argument("--idle", type=int, default=200, help="idle sandboxes for figure 6 (default 200)")
    ap.add_argument("--file-mib", type=int, default=256, help="size of the big file (default 256)")
    ap.add_argument("--idle-network", default="job", choices=("none", "job"),
                    help="network of the idle sandboxes (default job)")
    ap.add_argument("--warm", type=int, default=4,
                    help="serve's --sandbox-warm (default 4; 0: every create is cold)")
    ap.add_argument("--figures", default="1,2,3,4,5,6", help="which figures to run (default all: 1,2,3,4,5,6)")
    args = ap.parse_args()
    N = args.n
    figures = {int(f) for f in args.figures.split(",") if f}

    work = tempfile.mkdtemp(prefix="boxcar-sandbox-api-bench-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    procs, sandboxes, notes = [], [], []
    api = None
    print(f"machine: {os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[:3]}, "
          f"{os.uname().release}; {BOXCAR}; work dir {work} ({N} samples per latency figure)")
    try:
        have_bwrap, have_runc = shutil.which("bwrap"), shutil.which("runc") and shutil.which("busybox")
        bundle = os.path.join(work, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        if have_bwrap or have_runc:
            for d in ("bin", "proc", "dev", "tmp"):
                os.makedirs(os.path.join(rootfs, d))
            shutil.copy(shutil.which("busybox"), os.path.join(rootfs, "bin/busybox"))
            for t in ("sh", "true", "sleep"):
                os.symlink("busybox", os.path.join(rootfs, "bin", t))
        BWRAP = ["bwrap", "--unshare-all", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev"]
        UNSHARE = ["unshare", "-Urpf", "--mount-proc"]
        if have_runc:
            subprocess.run(["runc", "spec"], cwd=bundle, check=True)
            cfg = json.load(open(os.path.join(bundle, "config.json")))
            cfg["process"]["terminal"], cfg["process"]["args"] = False, ["true"]
            json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))

        def works(argv, what):
            r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode:
                notes.append(f"{what} left out: exit {r.returncode}: {r.stderr.strip()[:200]}")
            return r.returncode == 0

        have_bwrap = have_bwrap and works(BWRAP + ["/bin/true"], "bwrap")
        have_runc = have_runc and works(["runc", "run", "--bundle", bundle, "bench-true"], "runc")

        def baselines(n):
            rows = [("`unshare -Urpf --mount-proc true`", timed_runs(UNSHARE + ["true"], n))]
            if have_bwrap:
                rows.append(("`bwrap --unshare-all` (busybox root) true", timed_runs(BWRAP + ["/bin/true"], n)))
            if have_runc:
                rows.append(("`runc run` (busybox) true",
                             timed_runs(["runc", "run", "--bundle", bundle, "bench-true"], n)))
            return rows

        port = free_port()
        data = os.path.join(work, "data")
        flags = ["--max-sandboxes", str(max(1000, args.idle + 50)), "--sandbox-slots", str(max(1000, args.idle + 50))]
        help_text = subprocess.run([BOXCAR, "serve", "--help"], capture_output=True, text=True)
        if "--max-sandboxes-per-token" in help_text.stdout + help_text.stderr:
            flags += ["--max-sandboxes-per-token", str(args.idle + 50)]
        else:
            flags = []
            notes.append("serve has no --max-sandboxes flags: idle count capped by its defaults")
        if args.warm and "--sandbox-warm" in help_text.stdout + help_text.stderr:
            flags += ["--sandbox-warm", str(args.warm)]
        elif args.warm:
            notes.append("serve has no --sandbox-warm: every create is cold")
            args.warm = 0
        srv = subprocess.Popen([BOXCAR, "serve", "--listen", f"127.0.0.1:{port}", "--data", data] + flags,
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
        procs.append(srv)
        wait_healthz(port, srv)
        for _ in range(200):
            if os.path.exists(os.path.join(data, "api-token")):
                break
            time.sleep(0.05)
        api = Api(port, open(os.path.join(data, "api-token")).read().strip())
        # The in-process agent syncs its sandbox slots shortly after start: wait for a create.
        end = time.time() + 30
        while True:
            status, body = api.request("POST", "/api/v1/sandboxes", {})
            if status == 201:
                api.delete(json.loads(body)["id"])
                break
            if time.time() > end:
                raise SystemExit(f"create never succeeded: HTTP {status} {body[:300]!r}")
            time.sleep(0.2)

        agent_ms = []  # the agent's own create_ms of every timed create

        def warm_taken():
            """How many timed creates took a warm sandbox: the agent's create_ms is 0-2 ms then (a
            cold one sets up a Job, init and maybe a network: 10 ms or more)."""
            return sum(1 for m in agent_ms if m <= 2)

        # The cold create: one resource off the defaults, so the pool is not used (same cost).
        COLD = {"resources": {"pids": 1023}}

        def timed_creates(spec, pause):
            """N creates of spec, each answered 201; `pause` s untimed after each (the pool refills),
            deleted in batches of 20 (untimed). Returns (ms list, warm takes among them)."""
            out, w0 = [], warm_taken()
            for _ in range(N):
                t = time.perf_counter()
                answer = api.json("POST", "/api/v1/sandboxes", spec, want=(201,))
                out.append(ms(time.perf_counter() - t))
                sid = answer["id"]
                agent_ms.append(answer.get("create_ms", 99))
                sandboxes.append(sid)
                if len(sandboxes) >= 20:
                    for s in sandboxes:
                        api.delete(s)
                    sandboxes.clear()
                if pause:
                    time.sleep(pause)
            for s in sandboxes:
                api.delete(s)
            sandboxes.clear()
            return out, warm_taken() - w0

        if 1 in figures:
            # 1. create -> ready.
            rows = []
            if args.warm:
                create_warm, took = timed_creates({}, 0.25)
                rows.append((f"POST {{}} -> 201, warm (network job; {took}/{N} took a warm one)",
                             statistics.median(create_warm), pct(create_warm, 95), ""))
            create, took_cold = timed_creates(COLD, 0)
            create_none, _ = timed_creates({"network": "none"}, 0)
            base1 = baselines(N)
            rows += [(f"POST {{resources:{{pids:1023}}}} -> 201, cold (network job)", statistics.median(create), pct(create, 95),
                      f"{took_cold} warm" if took_cold else ""),
                     ('POST {"network":"none"} -> 201, cold', statistics.median(create_none), pct(create_none, 95), "")]
            rows += [(name, statistics.median(x), pct(x, 95), f"api/this {statistics.median(create) / statistics.median(x):.2f}x")
                     for name, x in base1]
            c50 = statistics.median(create)
            runc = [statistics.median(x) for name, x in base1 if "runc" in name]
            rows.append(("target: p50 <= 10 ms cold", 10, None, "met" if c50 <= 10 else "NOT met"))
            if args.warm:
                w50 = statistics.median(create_warm)
                rows.append(("target: p50 <= 5 ms warm", 5, None, "met" if w50 <= 5 else "NOT met"))
            if runc:
                rows.append(("target: >= 5x faster than runc (cold)", runc[0] / 5, None,
                             f"{'met' if c50 * 5 <= runc[0] else 'NOT met'} ({runc[0] / c50:.2f}x faster)"))
            table(f"1. create -> ready (ms, N={N}; serve --sandbox-warm {args.warm})", rows)

        if 2 in figures:
            # 2. create + exec true + delete.
            def full_cycle(spec, pause):
                out, bad, w0 = [], 0, warm_taken()
                for _ in range(N):
                    t = time.perf_counter()
                    answer = api.json("POST", "/api/v1/sandboxes", spec, want=(201,))
                    sid = answer["id"]
                    r = api.exec(sid, {"argv": ["true"]})
                    api.delete(sid)
                    out.append(ms(time.perf_counter() - t))
                    bad += r.get("exit_code") != 0
                    agent_ms.append(answer.get("create_ms", 99))
                    if pause:
                        time.sleep(pause)
                return out, bad, warm_taken() - w0

            rows = []
            if args.warm:
                full_warm, bad, took = full_cycle({}, 0.25)
                rows.append((f"create + exec true + delete, warm ({took}/{N} warm)", statistics.median(full_warm),
                             pct(full_warm, 95), f"{bad} execs not exit 0" if bad else ""))
            full, bad, _ = full_cycle(COLD, 0)
            base2 = baselines(N)
            rows.append(("create + exec true + delete, cold", statistics.median(full), pct(full, 95),
                         f"{bad} execs not exit 0" if bad else ""))
            rows += [(name, statistics.median(x), pct(x, 95), f"api/this {statistics.median(full) / statistics.median(x):.2f}x")
                     for name, x in base2]
            bw = [statistics.median(x) for name, x in base2 if "bwrap" in name]
            if bw:
                rows.append(("target: <= 2x bwrap's whole process (cold)", 2 * bw[0], None,
                             "met" if statistics.median(full) <= 2 * bw[0] else "NOT met"))
                if args.warm:
                    rows.append(("target: <= 2x bwrap's whole process (warm)", 2 * bw[0], None,
                                 "met" if statistics.median(full_warm) <= 2 * bw[0] else "NOT met"))
            table(f"2. create + exec `true` + delete (ms, N={N})", rows)

        if figures & {3, 4, 5}:  # one live sandbox shared by the three
            # 3. exec true round trip in one live sandbox.
            sid = api.create()
            sandboxes.append(sid)
            for _ in range(5):
                api.exec(sid, {"argv": ["true"]})
            ex, server_ms = [], []
            for _ in range(N):
                t = time.perf_counter()
                r = api.exec(sid, {"argv": ["true"]})
                ex.append(ms(time.perf_counter() - t))
                server_ms.append(r.get("duration_ms") or 0)
            fork = []
            for _ in range(N):
                t = time.perf_counter()
                subprocess.run(["/bin/true"])
                fork.append(ms(time.perf_counter() - t))
            floor = []
            for _ in range(N):
                t = time.perf_counter()
                status, _ = api.request("GET", "/healthz")
                floor.append(ms(time.perf_counter() - t))
            curl = timed_runs(["curl", "-s", f"http://127.0.0.1:{port}/healthz"], N)
            sleeper = subprocess.Popen(UNSHARE + ["sleep", "1000"])
            procs.append(sleeper)
            inner = None
            for _ in range(100):
                kids = children(sleeper.pid)
                if kids:
                    inner = kids[0]
                    break
                time.sleep(0.02)
            time.sleep(0.1)
            nsenter = timed_runs(["nsenter", "-t", str(inner), "-a", "true"], N)
            kill_tree(sleeper)
            p = lambda x: (statistics.median(x), pct(x, 95))
            target = statistics.median(floor) + 1.5 * statistics.median(fork)
            rows = [("POST .../exec {argv:[true]}", *p(ex), f"agent's duration_ms p50 {statistics.median(server_ms):.2f}"),
                    ("fork+exec+wait /bin/true (python subprocess)", *p(fork), ""),
                    ("GET /healthz, same keep-alive connection (HTTP floor)", *p(floor), ""),
                    ("`curl -s /healthz` (a process + a connection)", *p(curl), ""),
                    ("`nsenter -t PID -a true` (unshare -Urpf sleep)", *p(nsenter), ""),
                    ("target: floor + 1.5 x fork+exec", target, None,
                     f"{'met' if statistics.median(ex) <= target else 'NOT met'}; "
                     f"<= nsenter {'met' if statistics.median(ex) <= statistics.median(nsenter) else 'NOT met'}")]
            table(f"3. exec `true` round trip in a live sandbox (ms, N={N})", rows)

            # 4. output latency: date +%s%N inside -> SSE event at the client.
            loop = "for i in $(seq 20); do date +%s%N; sleep 0.02; done"
            lat = []
            for _ in range(max(1, N // 20)):
                r = api.request("POST", f"/api/v1/sandboxes/{sid}/exec", {"command": loop, "stream": True}, stream=True)
                if r.status != 200:
                    raise RuntimeError(f"streamed exec: HTTP {r.status} {r.read()[:200]!r}")
                for event, d, now in sse_events(r):
                    if event == "stdout":
                        for line in json.loads(d).get("data", "").split():
                            lat.append((now - int(line)) / 1e6)
                    if event in ("exit", "error"):
                        break
                r.read()
            local = []
            for _ in range(max(1, N // 20)):
                pr = subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE)
                for line in pr.stdout:
                    local.append((time.time_ns() - int(line)) / 1e6)
                pr.wait()
            table(f"4. output latency, `date +%s%N` -> client (ms, {len(lat)} lines)",
                  [("exec stream:true, SSE stdout event", *p(lat),
                    f"target p50 <= 2 ms: {'met' if statistics.median(lat) <= 2 else 'NOT met'}"),
                   ("baseline: local bash over a pipe", *p(local), "")])

            # 5. files.
            mib = args.file_mib
            src = os.path.join(work, "big.bin")
            with open(src, "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
            size = os.path.getsize(src)
            digest = hashlib.file_digest(open(src, "rb"), "sha256").hexdigest()
            cps = []
            for i in range(3):
                t = time.perf_counter()
                subprocess.run(["cp", src, src + ".copy"], check=True)
                cps.append(time.perf_counter() - t)
                os.unlink(src + ".copy")
            t_cp = statistics.median(cps)
            path = f"/api/v1/sandboxes/{sid}/files/workspace/big"
            t = time.perf_counter()
            with open(src, "rb") as f:
                status, body = api.request("PUT", path, f, {"Content-Length": str(size),
                                                            "Content-Type": "application/octet-stream"})
            t_put = time.perf_counter() - t
            if status not in (200, 201):
                raise RuntimeError(f"PUT: HTTP {status} {body[:200]!r}")
            t = time.perf_counter()
            r = api.request("GET", path, stream=True)
            got = os.path.join(work, "got.bin")
            with open(got, "wb") as out:
                while chunk := r.read(1 << 20):
                    out.write(chunk)
            t_get = time.perf_counter() - t
            same = r.status == 200 and hashlib.file_digest(open(got, "rb"), "sha256").hexdigest() == digest
            os.unlink(got)
            try:
                a_up, a_down = artifact_baseline(work, src, digest)
            except Exception as e:  # the baseline only
                a_up = a_down = None
                notes.append(f"artifact baseline failed: {e}")
            mb = size / 1e6
            rate = lambda s: f"{mb / s:7.0f} MB/s ({s:.2f} s)"
            print(f"\n5. files: one {mib} MiB file of random bytes (MB/s, one run each; cp median of 3)")
            print(f"  PUT  .../files/workspace/big                 {rate(t_put)}  vs cp {t_cp / t_put:.2f}x"
                  f"  (target >= 0.3x cp: {'met' if t_cp / t_put >= 0.3 else 'NOT met'})")
            print(f"  GET  .../files/workspace/big (to a file)     {rate(t_get)}  {'bytes match' if same else 'BYTES DIFFER'}"
                  + (f"  vs artifact download {a_down / t_get:.2f}x (target >= 0.5x: "
                     f"{'met' if a_down / t_get >= 0.5 else 'NOT met'})" if a_down else ""))
            print(f"  baseline cp, same disk                       {rate(t_cp)}")
            if a_up:
                print(f"  baseline artifact upload (POST, 2nd server)  {rate(a_up)}")
                print(f"  baseline artifact download (GET)             {rate(a_down)}")
            small_dir = os.path.join(work, "small")
            os.makedirs(small_dir)
            blobs = [os.urandom(4096) for _ in range(200)]
            for i, b in enumerate(blobs):
                with open(os.path.join(small_dir, f"f{i}"), "wb") as f:
                    f.write(b)
            puts = []
            t0 = time.perf_counter()
            for i, b in enumerate(blobs):
                t = time.perf_counter()
                status, body = api.request("PUT", f"/api/v1/sandboxes/{sid}/files/workspace/small/f{i}?mkdirs=1", b)
                puts.append(ms(time.perf_counter() - t))
                if status not in (200, 201):
                    raise RuntimeError(f"small PUT: HTTP {status} {body[:200]!r}")
            t_small = time.perf_counter() - t0
            t = time.perf_counter()
            subprocess.run(["cp", "-r", small_dir, small_dir + ".copy"], check=True)
            t_cpr = time.perf_counter() - t
            print(f"  200 x 4 KiB PUT: {ms(t_small):.0f} ms in all ({200 / t_small:.0f} files/s), per PUT p50 "
                  f"{statistics.median(puts):.2f} ms p95 {pct(puts, 95):.2f} ms; `cp -r` of the 200 files {ms(t_cpr):.1f} ms")
            api.delete(sid)
            sandboxes.remove(sid)
            os.unlink(src)
            sys.stdout.flush()

        if 6 in figures:
            # 6. idle sandboxes.
            M = args.idle
            time.sleep(1)
            mem0, rss0 = mem_available_kib(), rss_kib(srv.pid)
            t0 = time.perf_counter()
            failed = None
            fd0 = len(os.listdir(f"/proc/{srv.pid}/fd"))
            for i in range(M):
                try:
                    sandboxes.append(api.create(network=args.idle_network))
                except RuntimeError as e:
                    failed = f"create {i + 1} of {M} failed: {e}"
                    notes.append(failed)
                    break
            t_create = time.perf_counter() - t0
            held = len(sandboxes)
            time.sleep(3)
            mem1, rss1 = mem_available_kib(), rss_kib(srv.pid)
            fd1 = len(os.listdir(f"/proc/{srv.pid}/fd"))
            tree = descendants(srv.pid)
            pss_tree = pss_kib(tree)
            c0 = ctx_switches(srv.pid)
            cpu0 = sum(int(open(f"/proc/{srv.pid}/stat").read().rsplit(")", 1)[1].split()[i]) for i in (11, 12))
            time.sleep(10)
            c1 = ctx_switches(srv.pid)
            cpu1 = sum(int(open(f"/proc/{srv.pid}/stat").read().rsplit(")", 1)[1].split()[i]) for i in (11, 12))
            lists, lists_all = [], []
            count = count_all = 0
            for _ in range(20):
                t = time.perf_counter()
                got = api.json("GET", "/api/v1/sandboxes")
                lists.append(ms(time.perf_counter() - t))
                count = len(got["sandboxes"])
                t = time.perf_counter()
                got = api.json("GET", "/api/v1/sandboxes?limit=1000")
                lists_all.append(ms(time.perf_counter() - t))
                count_all = len(got["sandboxes"])
            t0 = time.perf_counter()
            for s in sandboxes:
                api.delete(s)
            t_delete = time.perf_counter() - t0
            sandboxes.clear()
            time.sleep(2)
            mem2 = mem_available_kib()
            sleeps = []
            argv = (BWRAP + ["/bin/sleep", "1000"]) if have_bwrap else (UNSHARE + ["sleep", "1000"])
            for _ in range(M):
                sleeps.append(subprocess.Popen(argv))
            procs += sleeps
            time.sleep(3)
            mem3 = mem_available_kib()
            bw_tree = [d for sl in sleeps for d in [sl.pid] + descendants(sl.pid)]
            pss_bw = pss_kib(bw_tree)
            for s in sleeps:
                kill_tree(s)
            per_sb, per_bw = (mem0 - mem1) / max(held, 1), (mem2 - mem3) / M
            print(f"\n6. {held} idle sandboxes, network {args.idle_network} (created in {t_create:.1f} s, deleted in {t_delete:.1f} s)")
            print(f"  MemAvailable delta per sandbox      {per_sb:8.0f} KiB   "
                  f"(target <= 1024 KiB: {'met' if per_sb <= 1024 else 'NOT met'}; <= 2x bwrap: "
                  f"{'met' if per_sb <= 2 * per_bw else 'NOT met'}, {per_sb / per_bw:.2f}x)")
            print(f"  baseline {M} `{' '.join(argv[:2])} ... sleep 1000`: {per_bw:8.0f} KiB each")
            print(f"  PSS of serve's {len(tree)} descendant processes: {pss_tree / max(held, 1):.0f} KiB per sandbox; "
                  f"of the bwraps' {len(bw_tree)} processes: {pss_bw / M:.0f} KiB each")
            print(f"  serve's RSS (server + in-process agent): {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB with "
                  f"{held} ({(rss1 - rss0) / max(held, 1):.0f} KiB per sandbox)")
            print(f"  serve's open files: {fd0} before, {fd1} with {held} ({(fd1 - fd0) / max(held, 1):.1f} per sandbox)")
            print(f"  serve over 10 s idle: {c1 - c0} context switches (all threads), "
                  f"{(cpu1 - cpu0) * 1000 / os.sysconf('SC_CLK_TCK'):.0f} ms CPU")
            print(f"  GET /api/v1/sandboxes ({count} listed) p50 {statistics.median(lists):.2f} ms p95 {pct(lists, 95):.2f} ms;"
                  f" ?limit=1000 ({count_all}) p50 {statistics.median(lists_all):.2f} ms p95 {pct(lists_all, 95):.2f} ms"
                  f" (target <= 20 ms: {'met' if statistics.median(lists_all) <= 20 else 'NOT met'})")
        print(f"  load after: {open('/proc/loadavg').read().split()[:3]}")
        for n in notes:
            print("note:", n)
    except BaseException:
        if procs and procs[0].poll() is not None:
            print(f"boxcar serve exited with {procs[0].returncode}; the end of its log:", file=sys.stderr)
        if os.path.exists(os.path.join(work, "serve.log")):
            print("".join(open(os.path.join(work, "serve.log"), errors="replace").readlines()[-30:]), file=sys.stderr)
        raise
    finally:
        if api is not None:
            for s in sandboxes:
                try:
                    api.delete(s)
                except Exception:
                    pass
        for p in reversed(procs):
            if p is not procs[0]:
                kill_tree(p)
            elif p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run(["runc", "delete", "-f", "bench-true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
