#!/usr/bin/env python3
"""CI service benchmarks, each beside its baseline in the same run:
- webhook received -> first step running (p50, p95) on the embedded store, native sandboxes;
- resident memory of an idle server (--agents 0) and of an idle remote agent, and whether the
  idle agent burns CPU (no busy polling);
- second checkout of a repository from the agent's mirror cache vs a fresh `git clone`.
Run from the repository root after a build: bench/service_bench.py [N]."""
import hashlib, hmac, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOXCAR = os.environ.get("BOXCAR", os.path.join(ROOT, "build/cli/boxcar"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
SECRET, TOKEN = "bench-secret", "bench-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.email=b@b", "-c", "user.name=b", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def wait_http(url, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            http("GET", url)
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not come up")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main():
    work = tempfile.mkdtemp(prefix="boxcar-bench-")
    procs = []
    try:
        repo = os.path.join(work, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main", ".")
        with open(os.path.join(repo, ".boxcar.toml"), "w") as f:
            f.write('version = 1\n[[step]]\nname = "first"\nrun = "true"\n')
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "init")
        sha = git(repo, "rev-parse", "HEAD")

        # 1. Webhook -> first step running, server + in-process agent on SQLite.
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        srv = subprocess.Popen([BOXCAR, "serve", "--listen", f"127.0.0.1:{port}", "--data",
                                os.path.join(work, "data"), "--webhook-secret", SECRET,
                                "--agent-token", TOKEN, "--allow-local-repos"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        procs.append(srv)
        wait_http(base + "/healthz")
        latencies = []
        for i in range(N):
            body = json.dumps({"ref": "refs/heads/main", "after": sha,
                               "repository": {"clone_url": repo}}).encode()
            sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            _, answer = http("POST", base + "/hooks/github", body, {
                "Content-Type": "application/json", "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"bench-{i}", "X-Hub-Signature-256": sig})
            job_id = json.loads(answer)["id"]
            while True:
                _, j = http("GET", f"{base}/api/v1/jobs/{job_id}")
                job = json.loads(j)
                if job["state"] in ("success", "failed", "error", "cancelled", "skipped"):
                    break
                time.sleep(0.02)
            if job["state"] != "success":
                raise SystemExit(f"job {job_id} ended {job['state']}: {job.get('reason')}")
            # Both stamps come from this machine's clock, in ms: created when the webhook was
            # accepted, started when the agent launched the step.
            from datetime import datetime
            ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
            latencies.append(ts(job["steps"][0]["started_at"]) - ts(job["created_at"]))
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"webhook -> first step running, {N} pushes, SQLite, native sandboxes: "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=30)

        # 2. Idle resident memory and CPU: a server with no agents, and a remote agent.
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        srv = subprocess.Popen([BOXCAR, "serve", "--listen", f"127.0.0.1:{port}", "--agents", "0",
                                "--data", os.path.join(work, "data2"), "--agent-token", TOKEN],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(srv)
        wait_http(base + "/healthz")
        agent = subprocess.Popen([BOXCAR, "agent", "--server", base, "--token", TOKEN, "--data",
                                  os.path.join(work, "agent"), "--allow-local-repos"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        procs.append(agent)
        time.sleep(2)
        t0 = (cpu_ticks(srv.pid), cpu_ticks(agent.pid))
        time.sleep(10)
        t1 = (cpu_ticks(srv.pid), cpu_ticks(agent.pid))
        hz = os.sysconf("SC_CLK_TCK")
        print(f"idle server: {rss_kib(srv.pid) / 1024:.1f} MiB resident, "
              f"{(t1[0] - t0[0]) / hz * 1000 / 10:.1f} ms CPU per second idle")
        print(f"idle agent: {rss_kib(agent.pid) / 1024:.1f} MiB resident, "
              f"{(t1[1] - t0[1]) / hz * 1000 / 10:.1f} ms CPU per second idle")
        # Baseline in the same run: a sleeping process of the same binary size class.
        sleeper = subprocess.Popen(["sleep", "30"])
        time.sleep(0.2)
        print(f"baseline: `sleep` resident {rss_kib(sleeper.pid) / 1024:.1f} MiB")
        sleeper.kill()

        # 3. Second checkout from the mirror vs a fresh clone, on a repository with history.
        big = os.path.join(work, "big")
        os.makedirs(big)
        git(big, "init", "-q", "-b", "main", ".")
        for i in range(200):
            with open(os.path.join(big, f"file{i % 50}.txt"), "a") as f:
                f.write(("line %d\n" % i) * 2000)
            git(big, "add", ".")
            git(big, "commit", "-qm", f"c{i}")
        with open(os.path.join(big, ".boxcar.toml"), "w") as f:
            f.write('version = 1\n[[step]]\nname = "first"\nrun = "true"\n')
        git(big, "add", ".")
        git(big, "commit", "-qm", "pipeline")
        times = []
        for i in range(3):
            status, answer = http("POST", base + "/api/v1/jobs",
                                  json.dumps({"repo": "file://" + big}).encode(),
                                  {"Content-Type": "application/json"})
            job_id = json.loads(answer)["id"]
            while True:
                _, j = http("GET", f"{base}/api/v1/jobs/{job_id}")
                job = json.loads(j)
                if job["state"] not in ("queued", "running"):
                    break
                time.sleep(0.02)
            _, log = http("GET", f"{base}/api/v1/jobs/{job_id}/logs")
            from datetime import datetime
            ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
            times.append(ts(job["steps"][0]["started_at"]) - ts(job["started_at"]))
        clone_times = []
        for i in range(3):
            dest = os.path.join(work, f"clone{i}")
            t = time.time()
            subprocess.run(["git", "clone", "-q", "file://" + big, dest], check=True)
            clone_times.append((time.time() - t) * 1000)
        print(f"checkout until the first step starts: first job {times[0]:.0f} ms (fetches the "
              f"mirror), then {statistics.median(times[1:]):.0f} ms from the mirror; "
              f"`git clone file://` of the same repository {statistics.median(clone_times):.0f} ms")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
