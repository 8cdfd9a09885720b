#!/usr/bin/env python3
"""Cold pull + unpack of an image, beside its baselines in the same run (DESIGN.md section 8:
boxcar no slower than skopeo's download alone).

Starts Debian's docker-registry on loopback (storage in a temporary directory), writes an OCI
layout with two gzip layers of random bytes (one file each, 64 MiB and 256 MiB: random data
does not compress, so the bytes on the wire equal the bytes on disk and the download
dominates), pushes it with skopeo, then times, alternating, each with an empty destination:
  - `boxcar image pull` into an empty --image-cache (download + verify + unpack);
  - `skopeo copy docker://... dir:` (download + verify only);
  - `skopeo copy docker://... oci:` then `umoci unpack` (download + unpack).
`sync` runs before each timed command so one run's writeback does not land in the next.
Works offline. Run from the repository root after a build:
  bench/image_pull_bench.py [RUNS]          (env: BOXCAR, SMALL_MIB=64, LARGE_MIB=256)
"""
import hashlib, json, os, shutil, socket, statistics, subprocess, sys, tarfile, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOXCAR = os.environ.get("BOXCAR", os.path.join(ROOT, "build/cli/boxcar"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
LAYERS_MIB = [int(os.environ.get("SMALL_MIB", 64)), int(os.environ.get("LARGE_MIB", 256))]
TAG = "1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("docker-registry exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("docker-registry did not start")


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def layer_blob(work, mib, i):
    """A tar.gz holding one file of `mib` MiB of random bytes, gzip -1 (the content is random:
    level makes no difference to the size, only to the time to build it)."""
    tar = os.path.join(work, f"layer{i}.tar")
    payload = os.path.join(work, "payload")
    with open(payload, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as t:
        t.add(payload, arcname=f"data/random{i}.bin")
    os.unlink(payload)
    with open(tar, "rb") as f:
        diff_id = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
    subprocess.run(["gzip", "-1", "-n", tar], check=True)
    with open(tar + ".gz", "rb") as f:
        data = f.read()
    os.unlink(tar + ".gz")
    return data, diff_id


def write_layout(work):
    layout = os.path.join(work, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    layers, diff_ids = [], []
    for i, mib in enumerate(LAYERS_MIB):
        data, diff_id = layer_blob(work, mib, i)
        d = put_blob(layout, data)
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append(d)
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    c = put_blob(layout, config)
    c["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": c, "layers": layers}).encode()
    m = put_blob(layout, manifest)
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"org.opencontainers.image.ref.name": TAG}
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    return layout


def timed(argv):
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({r.returncode}): {r.stderr.strip()}")
    return time.perf_counter() - t0


def main():
    work = tempfile.mkdtemp(prefix="boxcar-image-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    registry = None
    try:
        port = free_port()
        addr = f"127.0.0.1:{port}"
        with open(os.path.join(work, "config.yml"), "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n"
                    f"  filesystem:\n    rootdirectory: {work}/storage\nhttp:\n  addr: {addr}\n")
        registry = subprocess.Popen(["/usr/bin/docker-registry", "serve", os.path.join(work, "config.yml")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(port, registry)
        layout = write_layout(work)
        ref = f"{addr}/bench/big:{TAG}"
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests",
                        "--dest-tls-verify=false", f"oci:{layout}:{TAG}", f"docker://{ref}"], check=True)
        shutil.rmtree(layout)
        total = sum(LAYERS_MIB)

        out = os.path.join(work, "out")
        cases = {
            "boxcar image pull (download + verify + unpack)": lambda: timed(
                [BOXCAR, "image", "pull", "--image-cache", out, "--insecure-registry", addr, ref]),
            "skopeo copy docker:// dir: (download + verify)": lambda: timed(
                ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
                 f"dir:{out}"]),
            "skopeo copy docker:// oci: + umoci unpack": lambda: timed(
                ["sh", "-c", f"mkdir -p {out} && skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://{ref} "
                             f"oci:{out}/oci:{TAG} && umoci unpack --image {out}/oci:{TAG} {out}/bundle"]),
        }
        times = {name: [] for name in cases}
        names = list(cases)
        for run in range(RUNS):
            # Alternate the order so no command always runs right after the same other one.
            for name in names[run % len(names):] + names[:run % len(names)]:
                times[name].append(cases[name]())
                shutil.rmtree(out, ignore_errors=True)
        print(f"cold pull of {LAYERS_MIB[0]} + {LAYERS_MIB[1]} MiB (gzip of random bytes), {RUNS} runs each, "
              f"alternated; registry docker-registry on loopback")
        print("| command | median | min - max | MB/s (median) |")
        print("|---|---|---|---|")
        for name in names:
            t = times[name]
            print(f"| {name} | {statistics.median(t):.2f} s | {min(t):.2f} - {max(t):.2f} s | "
                  f"{total * 1.048576 / statistics.median(t):.0f} |")
        base = statistics.median(times[names[1]])
        print(f"boxcar / skopeo dir: {statistics.median(times[names[0]]) / base:.2f} (goal <= 1.00)")
    finally:
        if registry:
            registry.terminate()
            registry.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
