"""What a steady cluster (nothing changes) costs, for this build, a baseline
build of it and, when a checkout is given, CycleCloud's azslurm-exporter,
on one cluster in one run. Each runs alone in its own window, at its
default intervals, scraped by a real Prometheus every 15 s (which asks for
gzip and, from ours, OpenMetrics). Prints per exporter:

- CPU seconds per minute (from a cgroup of its own: every thread, and for
  azslurm-exporter the squeue, sinfo, sdiag and sacct processes it runs),
  after a warm-up past the first full loads;
- slurmctld RPCs and their server time per minute, from slurmctld's own
  statistics (sdiag before and after the window; the exporter runs alone,
  so they are its own, less the two sdiag reads of this script);
- peak RSS; Prometheus' samples per scrape and mean scrape duration;
- for ours and the baseline, one full collection cycle (`collect --once`:
  every source loaded in full, every family made and rendered): its wall
  time, CPU and peak RSS, what a cycle costs when everything changed.

That Prometheus read every sample is checked: the samples it scraped
equal the sample lines of a plain scrape of the same exporter.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time, urllib.parse, urllib.request

from bench import fill_queue, free_port, proc_hwm_mb, queue_size, rpc_totals, scrape, sh, start_exporter


def proc_cpu_ms(pid, children):
    """utime + stime (and the waited-for children's, when `children`), in
    clock ticks (10 ms): the fallback where no cgroup can be made."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time of a process, its threads (those that ended too) and the
    children it starts, to the nanosecond: the process is moved into a
    cgroup of its own and the cgroup's usage read (v1 cpuacct or v2). A
    steady exporter uses a few ms a minute, below what clock ticks
    resolve in a few minutes."""

    def __init__(self, pid, name, children):
        self.pid, self.children, self.dir, self.read = pid, children, None, None
        tries = [("/sys/fs/cgroup/cpuacct", "cpuacct.usage", lambda t: int(t) / 1e6)]
        for v2 in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]:
            if os.path.exists(os.path.join(v2, "cgroup.controllers")) or os.path.basename(v2) == "unified":
                tries.append((v2, "cpu.stat", lambda t: int(t.split("usage_usec")[1].split()[0]) / 1e3))
        for base, file, parse in tries:
            d = os.path.join(base, f"steady-bench-{name.replace('@', '-')}-{os.getpid()}")
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
                parse(open(os.path.join(d, file)).read())
            except (OSError, IndexError, ValueError):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
                continue
            self.dir, self.read = d, (lambda d=d, file=file, parse=parse: parse(open(os.path.join(d, file)).read()))
            return
        print(f"{name}: no cgroup could be made; CPU in clock ticks (10 ms)", flush=True)

    def ms(self):
        return self.read() if self.read else proc_cpu_ms(self.pid, self.children)

    def close(self):
        """After the processes ended: an empty cgroup can be removed."""
        if self.dir:
            for _ in range(50):
                try:
                    os.rmdir(self.dir)
                    return
                except OSError:
                    time.sleep(0.1)


def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]["result"]


def first_value(result):
    return float(result[0]["value"][1]) if result else 0.0


def sample_lines(port):
    return sum(1 for l in scrape(port).decode().splitlines() if l and not l.startswith("#"))


def wait_http(url, proc, seconds=120):
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{url} never answered")
            time.sleep(0.5)


def start_prometheus(target_port, workdir):
    port = free_port()
    conf = os.path.join(workdir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\nscrape_configs:\n"
                f"  - job_name: exporter\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
    p = subprocess.Popen(["prometheus", f"--config.file={conf}",
                          f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/-/ready", p, 60)
    return p, port


def start_azslurm(venv, port):
    p = subprocess.Popen([os.path.join(venv, "bin", "azslurm-exporter"), "--host", "127.0.0.1", "--port", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/metrics", p)
    return p


def full_cycle(exporter):
    """collect --once, alone: (wall ms, CPU ms, peak RSS MB, sample lines).
    Peak RSS through GNU time: a child forked from this Python process
    counts Python's pages until it execs, so wait4's own figure is never
    below Python's (some 40 MB)."""
    t0 = time.time()
    p = subprocess.Popen(["/usr/bin/time", "-f", "peak-kb %M", exporter, "collect", "--once"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = sum(1 for l in p.stdout if l and not l.startswith(b"#"))
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    wall = (time.time() - t0) * 1000
    if status != 0:
        print(f"warning: {exporter} collect --once: a collector failed (wait status {status})", flush=True)
    peak_kb = int(err.rsplit("peak-kb ", 1)[1].split()[0])
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, peak_kb / 1024, lines


def window(name, start, children, warmup, seconds):
    """One exporter alone: started, warmed up, measured, stopped."""
    port = free_port()
    proc = start(port)
    meter = CpuMeter(proc.pid, name, children)
    workdir = tempfile.mkdtemp(prefix="steady-bench-")
    prom = None
    try:
        prom, prom_port = start_prometheus(port, workdir)
        time.sleep(warmup)
        cpu0, (c0, t0), w0 = meter.ms(), rpc_totals(), time.time()
        time.sleep(seconds)
        cpu1, (c1, t1), w1 = meter.ms(), rpc_totals(), time.time()
        minutes = (w1 - w0) / 60
        rng = f"[{seconds}s]"
        row = dict(
            cpu=(cpu1 - cpu0) / 1000 / minutes,
            rpcs=(c1 - c0 - 1) / minutes,
            rpc_ms=(t1 - t0) / 1000 / minutes,
            rss=proc_hwm_mb(proc.pid),
            samples=first_value(prom_query(prom_port, 'scrape_samples_scraped{job="exporter"}')),
            scrape_ms=first_value(prom_query(prom_port, f'avg_over_time(scrape_duration_seconds{{job="exporter"}}{rng})')) * 1000,
            up=first_value(prom_query(prom_port, f'min_over_time(up{{job="exporter"}}{rng})')),
            lines=sample_lines(port),
        )
        print(f"{name}: {row}", flush=True)
        return row
    finally:
        for p in (prom, proc):
            if p:
                p.terminate(); p.wait()
        meter.close()
        shutil.rmtree(workdir, ignore_errors=True)


AZ_INTERVALS = ["--collector.jobs.interval=60s", "--collector.nodes.interval=30s",
                "--collector.partitions.interval=30s", "--collector.scheduler.interval=300s",
                "--collector.accounting.interval=300s"] + [
                f"--no-collector.{c}" for c in ["controllers", "licenses", "reservations", "fairshare", "dbd"]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--azslurm-venv", help="a venv with azure-slurm-exporter installed")
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--running", type=int, default=0, help="jobs running (sleep) beside the held ones")
    ap.add_argument("--warmup", type=int, default=60)
    a = ap.parse_args()
    fill_queue(a.jobs)
    # Running jobs beside the held ones (a running job that does not end
    # changes nothing): at most the bed's 12 slurmd CPUs.
    for _ in range(a.running):
        sh("sbatch", "-Q", "-p", "debug", "-n", "1", "--wrap", "sleep 100000")
    if a.running:
        deadline = time.time() + 120
        while len(sh("squeue", "-h", "-t", "R", "-o", "%i").split()) < a.running:
            if time.time() > deadline:
                raise SystemExit(f"{a.running} jobs did not all start in 120 s")
            time.sleep(1)
    nodes = len(sh("sinfo", "-h", "-N", "-o", "%N").split())
    running = len(sh("squeue", "-h", "-t", "R", "-o", "%i").split())
    print(f"cluster: {queue_size()} jobs ({running} running), {nodes} node lines; nothing changes from here", flush=True)
    peers = [("ours", lambda port: start_exporter(a.exporter, port, []), False),
             ("baseline", lambda port: start_exporter(a.baseline, port, []), False)]
    if a.azslurm_venv:
        peers.append(("azslurm", lambda port: start_azslurm(a.azslurm_venv, port), True))
        # Ours with azslurm-exporter's data at its intervals (squeue 60 s,
        # sinfo 30 s, sdiag and sacct 300 s), what the issue compares
        # slurmctld's load at; the collectors it has no peer for are off.
        peers.append(("ours@az", lambda port: start_exporter(a.exporter, port, AZ_INTERVALS), False))
    cycles = {}
    for name, path in [("ours", a.exporter), ("baseline", a.baseline)]:
        cycles[name] = full_cycle(path)
        print(f"{name}: one full cycle (collect --once): {cycles[name]}", flush=True)
    rows = {name: window(name, start, children, a.warmup, a.seconds) for name, start, children in peers}
    print()
    print(f"steady cluster, each exporter alone at its default intervals, Prometheus every 15 s (gzip), "
          f"{a.seconds} s measured after {a.warmup} s")
    names = list(rows)
    print(f"{'per minute unless said':34}" + "".join(f"{n:>12}" for n in names)
          + "".join(f"{'ours/' + n:>16}" for n in names[1:]))
    for k, label in [("cpu", "exporter CPU (s)"), ("rpcs", "slurmctld RPCs"), ("rpc_ms", "slurmctld RPC time (ms)"),
                     ("rss", "peak RSS (MB)"), ("scrape_ms", "scrape duration (ms, mean)"),
                     ("samples", "samples per scrape")]:
        o = rows["ours"][k]
        ratios = "".join(f"{(o / rows[n][k] if rows[n][k] else float('nan')):16.3f}" for n in names[1:])
        print(f"{label:34}" + "".join(f"{rows[n][k]:12.4f}" for n in names) + ratios)
    if "ours@az" in rows:
        o, z = rows["ours@az"], rows["azslurm"]
        print(f"{'same data, same intervals':34}ours@az/azslurm: CPU {o['cpu'] / z['cpu']:.3f}, "
              f"slurmctld RPCs {o['rpcs'] / z['rpcs']:.3f}, RPC time {o['rpc_ms'] / z['rpc_ms']:.3f}")
    print()
    print("one full collection cycle (collect --once: every source loaded, every family made and rendered)")
    print(f"{'':34}{'ours':>12}{'baseline':>12}{'ours/baseline':>16}")
    for i, label in enumerate(["wall time (ms)", "CPU (ms)", "peak RSS (MB)", "sample lines"]):
        o, b = cycles["ours"][i], cycles["baseline"][i]
        print(f"{label:34}{o:12.1f}{b:12.1f}{(o / b if b else float('nan')):16.3f}")
    bad = [n for n, r in rows.items() if r["up"] != 1.0 or abs(r["samples"] - r["lines"]) > 50]
    if bad:
        sys.exit(f"Prometheus did not read every sample of {bad}")
    print("Prometheus read every sample of each (samples scraped = sample lines of a plain scrape, up the whole window)")


if __name__ == "__main__":
    main()
