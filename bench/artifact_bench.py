#!/usr/bin/env python3
"""Artifact upload and download throughput of `boxcar serve`, beside baselines in the same run.
Uploads one file of SIZE MiB (default 1024) through the agent endpoint (streamed by curl -T,
hashed and spooled by the server) and downloads it back (GET, served from the blob with pread),
then a Range request for its last MiB. Baselines: `cp` of the same file on the same disk and
`sha256sum` of it (the server does both a copy and a hash while receiving). Also reports the
server's peak RSS (VmHWM). Run from the repository root after a build:
bench/artifact_bench.py [SIZE_MIB]."""
import hashlib, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOXCAR = os.environ.get("BOXCAR", os.path.join(ROOT, "build/cli/boxcar"))
MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
TOKEN = "bench-token"          # the agents' registration token
API_TOKEN = "bench-api-token"  # the admin token for /api/v1/jobs


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return -1


def main():
    work = tempfile.mkdtemp(prefix="boxcar-artifact-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([BOXCAR, "serve", "--listen", f"127.0.0.1:{port}", "--data",
                               os.path.join(work, "data"), "--agents", "0", "--agent-token", TOKEN,
                               "--api-token", API_TOKEN],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                http("GET", base + "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        src = os.path.join(work, "big.bin")
        subprocess.run(["head", "-c", f"{MIB}M", "/dev/urandom"], stdout=open(src, "wb"), check=True)
        size = os.path.getsize(src)
        t_sha = timed(["sha256sum", src])
        digest = subprocess.run(["sha256sum", src], capture_output=True, text=True).stdout.split()[0]
        t_cp = timed(["cp", src, os.path.join(work, "copy.bin")])
        os.unlink(os.path.join(work, "copy.bin"))

        api = {"Authorization": "Bearer " + API_TOKEN}
        _, body = http("POST", base + "/api/v1/jobs", json.dumps({"repo": "https://example.com/r.git"}).encode(),
                       {**api, "Content-Type": "application/json"})
        job = json.loads(body)["id"]
        # An agent as the protocol has it: register for a credential, claim the job for a lease.
        _, body = http("POST", base + "/api/v1/agent/register", json.dumps({"name": "bench"}).encode(),
                       {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        credential = json.loads(body)["credential"]
        _, body = http("POST", base + "/api/v1/agent/claim", json.dumps({"labels": [], "wait_ms": 0}).encode(),
                       {"Authorization": "Bearer " + credential, "Content-Type": "application/json"})
        claim = json.loads(body)
        lease = claim["job"]["lease_token"]

        up = base + f"/api/v1/agent/jobs/{job}/artifacts?path=big.bin&sha256={digest}&step=s"
        t = time.perf_counter()
        out = subprocess.run(["curl", "-sS", "-f", "-X", "POST", "-T", src, "-H", "Authorization: Bearer " + credential,
                              "-H", "X-Boxcar-Lease: " + lease,
                              "-H", "Content-Type: application/octet-stream", "-H", "Expect:", up],
                             capture_output=True, text=True, check=True)
        t_up = time.perf_counter() - t
        assert json.loads(out.stdout)["stored"], out.stdout

        dst = os.path.join(work, "down.bin")
        t = time.perf_counter()
        subprocess.run(["curl", "-sS", "-f", "-H", "Authorization: Bearer " + API_TOKEN, "-o", dst,
                        base + f"/api/v1/jobs/{job}/artifacts/big.bin"], check=True)
        t_down = time.perf_counter() - t
        ok = subprocess.run(["sha256sum", dst], capture_output=True, text=True).stdout.split()[0] == digest

        t = time.perf_counter()
        r = subprocess.run(["curl", "-sS", "-f", "-H", "Authorization: Bearer " + API_TOKEN, "-r", f"{size - (1 << 20)}-", "-o", "/dev/null",
                            "-w", "%{http_code}", base + f"/api/v1/jobs/{job}/artifacts/big.bin"],
                           capture_output=True, text=True, check=True)
        t_range = time.perf_counter() - t
        rss = peak_rss_mib(server.pid)

        mb = size / 1e6
        print(f"file: {MIB} MiB of /dev/urandom")
        print(f"upload   (POST, hashed + spooled + moved to its blob): {mb / t_up:7.0f} MB/s  ({t_up:.2f} s)")
        print(f"download (GET, pread + write):                         {mb / t_down:7.0f} MB/s  ({t_down:.2f} s), sha256 {'matches' if ok else 'DIFFERS'}")
        print(f"range    (last MiB, HTTP {r.stdout}):                   {t_range * 1000:7.1f} ms")
        print(f"baseline cp (same disk):                               {mb / t_cp:7.0f} MB/s")
        print(f"baseline sha256sum:                                    {mb / t_sha:7.0f} MB/s")
        print(f"boxcar serve peak RSS:                                 {rss:7.1f} MiB")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
