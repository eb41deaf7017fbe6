"""Measures, on one cluster state and in one run:

- slurmctld RPCs per collection cycle and their total server time, from
  slurmctld's own RPC statistics (sdiag's counters, read before and after);
- exporter CPU per cycle and peak RSS (/proc), scrape latency p50/p99;

for this exporter (daemon, steady state: incremental loads) and for a
baseline that runs what a shelling exporter runs each cycle: squeue, sinfo,
sdiag and sacct with the CycleCloud exporter's arguments.
"""
import argparse, concurrent.futures, os, re, resource, subprocess, time, urllib.request, socket


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def rpc_totals():
    """(count, total_time_us) summed over every RPC type, from sdiag."""
    out = sh("sdiag")
    part = out.split("Remote Procedure Call statistics by message type", 1)[1]
    part = part.split("Remote Procedure Call statistics by user", 1)[0]
    count = total = 0
    for m in re.finditer(r"count:(\d+)\s+ave_time:\d+\s+total_time:(\d+)", part):
        count += int(m.group(1)); total += int(m.group(2))
    return count, total


def queue_size():
    return len(sh("squeue", "-h", "-o", "%i").split())


def fill_queue(n):
    have = queue_size()
    need = max(0, n - have)
    print(f"submitting {need} held jobs ({have} already queued)", flush=True)
    # Several partitions, as the queue of a real cluster has.
    parts = ["debug", "batch"]
    def submit(i):
        subprocess.run(["sbatch", "-Q", "-H", "-p", parts[i % len(parts)], "--wrap", "true"], check=True,
                       capture_output=True)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(submit, range(need)))
    print(f"queue: {queue_size()} jobs", flush=True)


BASELINE = [
    ["squeue", "-h", "-o", "%i|%j|%D|%N|%P|%T|%V|%S|%u"],
    ["sinfo", "-h", "-o", "%N|%D|%R|%E|%T"],
    ["sdiag"],
]


def baseline(cycles):
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 300))
    sacct = ["sacct", "-P", "-n", "-o",
             "jobid,jobname,nodelist,nnodes,partition,exitcode,derivedexitcode,state,user,start,submit,end,reason",
             "-s", "completed,failed,cancelled,timeout,node_fail,preempted,out_of_memory,deadline,boot_fail",
             "--allocations", "--starttime", start, "--endtime", "now"]
    before_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = rpc_totals()
    wall = time.time()
    for _ in range(cycles):
        for cmd in BASELINE + [sacct]:
            subprocess.run(cmd, check=True, capture_output=True)
    wall = time.time() - wall
    c1, t1 = rpc_totals()
    after_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after_cpu.ru_utime + after_cpu.ru_stime) - (before_cpu.ru_utime + before_cpu.ru_stime)
    # One sdiag of ours (the 'before' read) is inside the window.
    return dict(rpcs=(c1 - c0 - 1) / cycles, rpc_time_ms=(t1 - t0) / cycles / 1000,
                cpu_ms=cpu * 1000 / cycles, wall_ms=wall * 1000 / cycles,
                rss_mb=after_cpu.ru_maxrss / 1024)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def scrape(port, accept=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def proc_cpu_ms(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_exporter(exporter, port, flags):
    """The daemon on 127.0.0.1:port, once it answers /-/ready."""
    p = subprocess.Popen([exporter, "run", f"--web.listen-address=127.0.0.1:{port}"] + flags,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).read()
            return p
        except Exception:
            if time.time() > deadline:
                p.terminate(); p.wait()
                raise
            time.sleep(0.2)


def ours(exporter, seconds):
    port = free_port()
    # The data the baseline's commands give: jobs (squeue), nodes and
    # partitions (sinfo), scheduler (sdiag), accounting (sacct).
    same = ["jobs", "nodes", "partitions", "scheduler", "accounting"]
    flags = [f"--collector.{c}.interval=1s" for c in same]
    flags += [f"--no-collector.{c}" for c in ["controllers", "licenses", "reservations", "cyclecloud"]]
    p = start_exporter(exporter, port, flags)
    try:
        time.sleep(2)  # past the first, full loads: measure the steady state
        text = scrape(port).decode()
        cyc0 = metric(text, "slurm_exporter_slurmctld_requests_total", '{source="stats",answer="data"}')
        cpu0 = proc_cpu_ms(p.pid)
        c0, t0 = rpc_totals()
        time.sleep(seconds)
        c1, t1 = rpc_totals()
        cpu1 = proc_cpu_ms(p.pid)
        text = scrape(port).decode()
        cycles = metric(text, "slurm_exporter_slurmctld_requests_total", '{source="stats",answer="data"}') - cyc0
        series = sum(1 for l in text.splitlines() if l and not l.startswith("#"))
        lat = []
        for i in range(1000):
            t = time.perf_counter(); scrape(port); lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        return dict(rpcs=(c1 - c0 - 1) / cycles, rpc_time_ms=(t1 - t0) / cycles / 1000,
                    cpu_ms=(cpu1 - cpu0) / cycles, rss_mb=proc_hwm_mb(p.pid), cycles=cycles,
                    p50_ms=lat[len(lat) // 2], p99_ms=lat[int(len(lat) * 0.99)], series=series,
                    body_kb=len(text) / 1024)
    finally:
        p.terminate(); p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--baseline-cycles", type=int, default=5)
    a = ap.parse_args()
    fill_queue(a.jobs)
    nodes = len(sh("sinfo", "-h", "-N", "-o", "%N").split())
    print(f"cluster: {queue_size()} jobs, {nodes} node lines", flush=True)
    # Baseline first: its peak RSS is read from RUSAGE_CHILDREN, which would
    # also count the exporter once it has been a child of this process.
    b = baseline(a.baseline_cycles)
    o = ours(a.exporter, a.seconds)
    print()
    print(f"{'per collection cycle':32} {'ours':>12} {'baseline':>12} {'ours/baseline':>14}")
    for k, label in [("rpcs", "slurmctld RPCs"), ("rpc_time_ms", "slurmctld RPC time (ms)"),
                     ("cpu_ms", "client CPU (ms)"), ("rss_mb", "peak RSS (MB)")]:
        ratio = o[k] / b[k] if b[k] else float("nan")
        print(f"{label:32} {o[k]:12.2f} {b[k]:12.2f} {ratio:14.3f}")
    print(f"{'scrape latency p50 / p99 (ms)':32} {o['p50_ms']:6.2f} / {o['p99_ms']:.2f}  ({o['series']} series, {o['body_kb']:.0f} KiB, 1000 scrapes)")
    print(f"ours measured over {o['cycles']:.0f} cycles (jobs, nodes, partitions, scheduler, accounting at 1 s); baseline over {a.baseline_cycles} cycles, {b['wall_ms']:.0f} ms wall each")


if __name__ == "__main__":
    main()
