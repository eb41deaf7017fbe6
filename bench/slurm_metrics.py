"""slurmctld's cost of Slurm's own exporter (metrics/openmetrics, 25.11+)
against ours, on one cluster state and in one run:

- per scrape of Slurm's exporter: one GET of each of /metrics/jobs,
  /metrics/nodes, /metrics/partitions and /metrics/scheduler, served by
  slurmctld itself;
- per collection cycle of ours (daemon; jobs, nodes, partitions and
  scheduler at 1 s; steady state: incremental loads). A scrape of ours
  reads a rendered snapshot and costs slurmctld nothing.

slurmctld's CPU comes from /proc/<pid>/stat (user + system), with the CPU it
spends idle over the same wall time taken off; its RPCs from its own RPC
statistics (sdiag counters before and after). Both sides see the same
slurmctld, the same jobs and nodes, one after the other.
"""
import argparse, os, time, urllib.request
import bench  # sh, rpc_totals, fill_queue, free_port, scrape, metric, proc_cpu_ms, start_exporter

ENDPOINTS = ["jobs", "nodes", "partitions", "scheduler"]


def ctld_cpu_ms(pid):
    return bench.proc_cpu_ms(pid)


def window(pid, seconds, work):
    """slurmctld CPU (ms), RPCs and RPC time (µs) while `work` runs for
    `seconds`, and how many units of work it did."""
    c0, t0 = bench.rpc_totals()
    cpu0 = ctld_cpu_ms(pid)
    start = time.time()
    units = work(start + seconds)
    wall = time.time() - start
    cpu1 = ctld_cpu_ms(pid)
    c1, t1 = bench.rpc_totals()
    # One sdiag (the 'before' read) falls inside the window.
    return dict(cpu_ms=cpu1 - cpu0, rpcs=c1 - c0 - 1, rpc_us=t1 - t0, wall=wall, units=units)


def idle(until):
    while time.time() < until:
        time.sleep(0.1)
    return 0


def slurms_scrapes(port, body_bytes):
    def work(until):
        n = 0
        while time.time() < until:
            for ep in ENDPOINTS:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics/{ep}", timeout=60).read()
                body_bytes[ep] = len(body)
            n += 1
        return n
    return work


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--ctld-pid-file", required=True)
    ap.add_argument("--ctld-port", type=int, default=6817)
    a = ap.parse_args()
    bench.fill_queue(a.jobs)
    nodes = len(bench.sh("sinfo", "-h", "-N", "-o", "%N").split())
    print(f"cluster: {bench.queue_size()} jobs, {nodes} node lines; slurmctld {bench.sh('slurmctld', '-V').strip()}", flush=True)
    pid = int(open(a.ctld_pid_file).read().split()[0])
    # Let the submissions settle (scheduling passes over the new jobs).
    time.sleep(5)

    quiet = window(pid, a.seconds, idle)
    idle_rate = quiet["cpu_ms"] / quiet["wall"]

    sizes = {}
    theirs = window(pid, a.seconds, slurms_scrapes(a.ctld_port, sizes))

    port = bench.free_port()
    flags = [f"--collector.{c}.interval=1s" for c in ["jobs", "nodes", "partitions", "scheduler"]]
    flags += [f"--no-collector.{c}" for c in ["accounting", "controllers", "licenses", "reservations", "cyclecloud"]]
    p = bench.start_exporter(a.exporter, port, flags)
    try:
        time.sleep(3)  # past the first, full loads: the steady state
        cyc = lambda: bench.metric(bench.scrape(port).decode(), "slurm_exporter_slurmctld_requests_total", '{source="stats",answer="data"}')
        k0 = cyc()
        ours = window(pid, a.seconds, idle)
        ours["units"] = cyc() - k0
        ours_text = bench.scrape(port).decode()
    finally:
        p.terminate(); p.wait()

    def per(w):
        extra = max(0.0, w["cpu_ms"] - idle_rate * w["wall"])
        return dict(cpu_ms=extra / w["units"], rpcs=w["rpcs"] / w["units"], rpc_ms=w["rpc_us"] / w["units"] / 1000)

    # The same partition figures from both, on this big cluster: Slurm
    # keeps a partition's summed node CPUs in 16-bit fields.
    parts = urllib.request.urlopen(f"http://127.0.0.1:{a.ctld_port}/metrics/partitions", timeout=60).read().decode()
    print()
    print(f"{'partition CPUs':34} {'ours':>12} {'Slurm':>13}")
    for part in sorted({l.split('partition="')[1].split('"')[0] for l in parts.splitlines() if 'partition="' in l}):
        lab = f'{{partition="{part}"}}'
        for label, o_name, o_lab, t_name in [
            ("total", "slurm_partition_cpus", f'{{partition="{part}",state="total"}}', "slurm_partition_cpus"),
            ("allocated", "slurm_partition_cpus", f'{{partition="{part}",state="alloc"}}', "slurm_partition_nodes_cpus_alloc"),
            ("idle", "slurm_partition_cpus", f'{{partition="{part}",state="idle"}}', "slurm_partition_nodes_cpus_idle"),
            ("effective (Slurm) / not other (ours)", None, None, "slurm_partition_nodes_cpus_efctv"),
        ]:
            mine = (bench.metric(ours_text, o_name, o_lab) if o_name else
                    bench.metric(ours_text, "slurm_partition_cpus", f'{{partition="{part}",state="total"}}')
                    - bench.metric(ours_text, "slurm_partition_cpus", f'{{partition="{part}",state="other"}}'))
            print(f"{part + ' ' + label:34} {mine:12.0f} {bench.metric(parts, t_name, lab):13.0f}")

    t, o = per(theirs), per(ours)
    print()
    print(f"slurmctld idle: {idle_rate:.1f} ms CPU per second (taken off both sides)")
    print(f"Slurm's exporter: {theirs['units']} scrapes of the 4 endpoints in {theirs['wall']:.0f} s "
          f"({sum(sizes.values()) / 1024:.0f} KiB per scrape: " + ", ".join(f"{k} {v / 1024:.0f}" for k, v in sizes.items()) + ")")
    print(f"ours: {ours['units']:.0f} collection cycles in {ours['wall']:.0f} s")
    print()
    print(f"{'slurmctld cost':34} {'ours/cycle':>12} {'Slurm/scrape':>13} {'ours/Slurm':>11}")
    for k, label in [("cpu_ms", "CPU (ms)"), ("rpcs", "RPCs"), ("rpc_ms", "RPC handling time (ms)")]:
        # Slurm's exporter makes no RPC: what its window shows is our own
        # closing sdiag read, so no ratio there.
        none = k != "cpu_ms" and t["rpcs"] < 0.5
        ratio = f"{'n/a':>11}" if none or not t[k] else f"{o[k] / t[k]:11.3f}"
        print(f"{label:34} {o[k]:12.2f} {t[k]:13.2f} {ratio}")
    print("(Slurm's exporter is served over HTTP inside slurmctld: no RPC, none in its RPC statistics;")
    print(" a scrape of ours reads the last rendered snapshot: no slurmctld cost at all)")


if __name__ == "__main__":
    main()
